"""The ``vaecollapse`` command. Exit codes: 0 ok, 2 bad input or usage, 1 unexpected error."""

from __future__ import annotations

import os
import sys
import textwrap
import traceback

import click

from vaecollapse.cli.codebook_cmd import codebook_remedies_command
from vaecollapse.cli.data_cmd import data
from vaecollapse.cli.demo_cmd import demo
from vaecollapse.cli.diagnose_cmd import diagnose
from vaecollapse.cli.phase_cmd import phase_command
from vaecollapse.cli.remedies_cmd import remedies_command
from vaecollapse.cli.reproduce_cmd import reproduce
from vaecollapse.cli.sweep_cmd import sweep_command
from vaecollapse.cli.theory_cmd import theory
from vaecollapse.cli.train_cmd import train_command
from vaecollapse.core.errors import InputError, Interrupted
from vaecollapse.core.logs import show_progress
from vaecollapse.core.memory import keep_freed_memory


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="vaecollapse")
def cli() -> None:
    """Predict, detect and explain posterior collapse in VAEs, CVAEs and hierarchical VAEs."""


INTERRUPTED = "interrupted; what was complete is kept: run the same command again to resume."

cli.add_command(codebook_remedies_command)
cli.add_command(data)
cli.add_command(demo)
cli.add_command(diagnose)
cli.add_command(phase_command)
cli.add_command(remedies_command)
cli.add_command(reproduce)
cli.add_command(sweep_command)
cli.add_command(theory)
cli.add_command(train_command)


def _fail(message: str) -> None:
    width = 100
    click.echo(textwrap.fill(f"error: {message}", width=width), err=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the CLI and maps every failure to a short message and exit code."""
    show_progress()  # the library logs progress; the command line shows it on stderr
    keep_freed_memory()  # CPU training steps reuse their large blocks (vaecollapse/core/memory.py)
    try:
        code = cli.main(args=argv, prog_name="vaecollapse", standalone_mode=False)
        code = code if isinstance(code, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort; anything already written is kept (writes are atomic)
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo(INTERRUPTED if interrupted else "aborted", err=True)
        code = 130 if interrupted else 1
    except Interrupted as exc:
        click.echo(textwrap.fill(str(exc), width=100), err=True)
        code = exc.exit_code
    except InputError as exc:
        _fail(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo(INTERRUPTED, err=True)
        code = 130
    except Exception as exc:
        if os.environ.get("VAECOLLAPSE_DEBUG"):
            traceback.print_exc()
        _fail(
            f"unexpected {type(exc).__name__}: {exc}. This is a bug in vaecollapse; run again with "
            "VAECOLLAPSE_DEBUG=1 to see the traceback and please report it."
        )
        code = 1
    sys.exit(code)
