"""Run one benchmark script and write what it printed, under the command that printed it, as a
page of the documentation: the timings the guides cite are these generated pages, never typed.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/record.py BENCHMARK [ITS ARGUMENTS...]

writes ``docs/benchmarks/BENCHMARK.md`` (underscores as hyphens): the script's first docstring
line as the title, the command, torch's version and the machine's core count, then its output —
markdown table rows as a table, every other line verbatim in a text block. The benchmark runs in
a fresh process with this tree's package; a benchmark that fails writes nothing.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAGES = ROOT / "docs" / "benchmarks"


def as_markdown(output: str) -> str:
    """``output`` with its runs of table rows (lines starting with ``|``) as markdown tables and
    each run of other lines in a fenced text block."""
    blocks: list[tuple[bool, list[str]]] = []
    for line in output.rstrip().splitlines():
        is_row = line.startswith("|")
        if not blocks or blocks[-1][0] != is_row:
            blocks.append((is_row, []))
        blocks[-1][1].append(line)
    parts = []
    for is_row, lines in blocks:
        if is_row:
            parts.append("\n".join(lines))
        elif any(line.strip() for line in lines):
            parts.append("```text\n" + "\n".join(lines).strip("\n") + "\n```")
    return "\n\n".join(parts) + "\n"


def title(script: Path) -> str:
    """The script's docstring's first sentence, without its trailing colon or full stop."""
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or script.stem
    first = docstring.split("\n\n")[0].replace("\n", " ")
    return first.split(": ")[0].split(". ")[0].rstrip(".:")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    name, arguments = sys.argv[1], sys.argv[2:]
    script = HERE / f"{name}.py"
    if not script.is_file() or name == "record":
        raise SystemExit(f"no benchmark benchmarks/{name}.py")
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script), *arguments], cwd=ROOT, env=environment,
                          capture_output=True, text=True, check=False)  # fmt: skip
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"benchmarks/{name}.py failed (exit {done.returncode}); nothing written")
    import torch

    data = "VAECOLLAPSE_DATA=../shared/data " if "VAECOLLAPSE_DATA" in os.environ else ""
    command = " ".join([f"{data}python benchmarks/record.py", name, *arguments])
    page = (
        f"# {title(script)}\n\n"
        f"Made by `{command}` (torch {torch.__version__}, a machine of {os.cpu_count()} cores; "
        f"the script's own docstring says what it measures and how).\n\n" + as_markdown(done.stdout)
    )
    PAGES.mkdir(parents=True, exist_ok=True)
    path = PAGES / f"{name.replace('_', '-')}.md"
    path.write_text(page, encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
