"""One declaration per setting: its type, domain and help live on the dataclass field
(:func:`setting`), and everything else is derived from there — the checks the Python API runs
(:func:`check_fields`, called by each config's ``__post_init__``), the command-line options
(:func:`command_options`), the keys a TOML/YAML configuration file may hold
(:func:`read_settings_file`) and, because the configs are what a run stores, ``config.json``.

A value outside its domain (NaN, ±inf, a non-positive scale, a zero count, a word that is not one
of the choices) is an :class:`~vaecollapse.core.errors.InputError` naming the setting and its
allowed range, raised before anything is created.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from vaecollapse.core.errors import InputError
from vaecollapse.core.fileio import shortened

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCALAR, LIST, SCALAR_OR_LIST = "scalar", "list", "scalar-or-list"
POSITIVE = {"low": 0, "low_open": True}  # the domain of a scale or weight: finite and > 0
MAX_SEED = 2**32 - 1  # the largest seed every generator takes (NumPy's legacy one included)
METAVARS = {int: "INT", float: "FLOAT", str: "TEXT", dict: "NAME=VALUE[,...]"}


@dataclass(frozen=True)
class Setting:
    """How a setting's values look. ``kind``: int, float, str or bool; ``low``/``high``: bounds
    (``low_open``/``high_open``: strictly); ``choices``: the allowed words; ``shape``: one value,
    a list (comma-separated on the command line) or either; ``none_items``: list items may be
    None (a level the setting does not apply to)."""

    kind: type
    help: str
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    shape: str = SCALAR
    none_items: bool = False

    def describe(self) -> str:
        """The domain in words, e.g. ``a number > 0`` or ``one of vae, cvae``."""
        if self.kind is dict:
            return "name=value pairs (numbers, true/false or words)"
        if self.kind is bool:
            one = "true or false"
        elif self.kind is str and not self.choices:
            one = "text"
        elif self.choices:
            one = "one of " + ", ".join(self.choices)
        else:
            one = "an integer" if self.kind is int else "a finite number"
            shown = (lambda v: str(int(v))) if self.kind is int else (lambda v: f"{v:g}")
            if self.low is not None:
                one += f" {'>' if self.low_open else '≥'} {shown(self.low)}"
            if self.high is not None:
                bound = "<" if self.high_open else "≤"
                one += f"{' and' if self.low is not None else ''} {bound} {shown(self.high)}"
        if self.shape == LIST:
            return f"a list, each {one}"
        if self.shape == SCALAR_OR_LIST:
            return f"{one}, or a list of them"
        return one

    def check(self, name: str, value: Any) -> Any:
        """``value`` in its normal form (lists as tuples, ints as floats where a float is meant,
        a word as its choice is spelt, whatever its case), or an InputError naming ``name`` and
        the domain."""
        if self.kind is dict:
            return self._mapping(name, value)
        if self.shape != SCALAR and isinstance(value, (list, tuple)):
            if not value:
                raise InputError(f"{name} must be {self.describe()}; got an empty list.")
            return tuple(
                None if item is None and self.none_items else self._one(name, item)
                for item in value
            )
        if self.shape == LIST:
            raise InputError(f"{name} must be {self.describe()}; got {quoted(value)}.")
        return self._one(name, value)

    def _one(self, name: str, value: Any) -> Any:
        wrong = InputError(f"{name} must be {self.describe()}; got {quoted(value)}.")
        if isinstance(value, bool) != (self.kind is bool):
            raise wrong  # bool is an int subclass: accept it only where a bool is meant
        if self.kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, self.kind):
            raise wrong
        if self.kind is str:
            if self.choices and value not in self.choices:
                # torch's names are CamelCase, people type them as they say them: adam, steplr
                same = [c for c in self.choices if c.casefold() == value.casefold()]
                if len(same) != 1:
                    raise wrong
                return same[0]
            return value
        if self.kind in (int, float):
            if not math.isfinite(value):
                raise wrong
            low_fails = self.low is not None and (
                value <= self.low if self.low_open else value < self.low
            )
            high_fails = self.high is not None and (
                value >= self.high if self.high_open else value > self.high
            )
            if low_fails or high_fails:
                raise wrong
        return value

    def _mapping(self, name: str, value: Any) -> dict:
        """Keyword arguments: a table of names to scalars (finite numbers, booleans, words)."""
        wrong = InputError(f"{name} must be {self.describe()}; got {quoted(value)}.")
        if not isinstance(value, dict):
            raise wrong
        for key, item in value.items():
            finite = not isinstance(item, float) or math.isfinite(item)
            if not (isinstance(key, str) and key.isidentifier()):
                raise wrong
            if not (isinstance(item, (bool, int, float, str)) and finite):
                raise wrong
        return dict(value)

    def parse(self, flag: str, text: str) -> Any:
        """A command-line string as the value it stands for (lists are comma-separated;
        mappings are ``name=value`` pairs)."""
        if self.kind is dict:
            return dict(self._pair(flag, part) for part in text.split(",") if part.strip())
        parts = [part.strip() for part in text.split(",")]
        if self.shape == SCALAR or (self.shape == SCALAR_OR_LIST and len(parts) == 1):
            return self._parse_one(flag, text.strip())
        return [self._parse_one(flag, part) for part in parts]

    @staticmethod
    def _pair(flag: str, text: str) -> tuple[str, Any]:
        key, equals, raw = text.partition("=")
        if not equals or not key.strip():
            raise InputError(f"{flag} takes name=value pairs, e.g. momentum=0.9; got '{text}'.")
        raw = raw.strip()
        if raw.lower() in ("true", "false"):
            return key.strip(), raw.lower() == "true"
        for kind in (int, float):
            try:
                return key.strip(), kind(raw)
            except ValueError:
                pass
        return key.strip(), raw

    def _parse_one(self, flag: str, text: str) -> Any:
        if self.kind is str:
            return text
        try:
            return int(text) if self.kind is int else float(text)
        except ValueError:
            what = "an integer" if self.kind is int else "a number"
            many = "" if self.shape == SCALAR else " (or a comma-separated list)"
            raise InputError(f"{flag} takes {what}{many}; got '{text}'.") from None


# What an error quotes of a value: enough to recognise it, never the whole of a huge one.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxtuple, _QUOTE.maxdict = 3, 6, 6, 6
_QUOTE.maxstring, _QUOTE.maxlong, _QUOTE.maxother = 80, 40, 80


def quoted(value: Any) -> str:
    """``repr(value)`` for a message, shortened where long (at most a few hundred characters)."""
    return _QUOTE.repr(value)


def setting(default: Any, kind: type, help: str, **domain: Any) -> Any:
    """A dataclass field declared with its domain: ``x: float = setting(1.0, float, "...",
    low=0, low_open=True)``."""
    return dataclasses.field(default=default, metadata={"setting": Setting(kind, help, **domain)})


def declared(cls: type) -> dict[str, tuple[Setting, Any]]:
    """``name -> (Setting, default)`` for every declared field of a dataclass (bases first)."""
    return {
        f.name: (f.metadata["setting"], f.default)
        for f in dataclasses.fields(cls)
        if "setting" in f.metadata
    }


def check_fields(instance: Any) -> None:
    """Check every declared field of a (frozen) dataclass instance against its domain and store
    its normal form; None passes where None is the default (the setting is unset)."""
    for name, (spec, default) in declared(type(instance)).items():
        value = getattr(instance, name)
        if value is None and default is None:
            continue
        object.__setattr__(instance, name, spec.check(name, value))


def flag_name(name: str, negated: bool = False) -> str:
    """``latent_dim`` -> ``--latent-dim`` (``--no-...`` when ``negated``)."""
    return ("--no-" if negated else "--") + name.replace("_", "-")


def command_options(
    *classes: type, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> Callable[[Callable], Callable]:
    """A decorator adding one click option per declared field of ``classes`` (each name once):
    ``--name VALUE`` (lists comma-separated) or ``--name/--no-name`` for booleans. Unset options
    arrive as None, so a configuration file's values are not overridden by defaults."""
    wanted = None if only is None else set(only)
    specs: dict[str, tuple[Setting, Any]] = {}
    for cls in classes:
        for name, entry in declared(cls).items():
            if name not in exclude and (wanted is None or name in wanted):
                specs.setdefault(name, entry)

    def decorate(func: Callable) -> Callable:
        for name, (spec, default) in reversed(list(specs.items())):
            shown = (
                "" if default in (None, dataclasses.MISSING) else f" [default: {_shown(default)}]"
            )
            domain = "" if spec.kind in (bool, str) else f" ({spec.describe()})"
            text = f"{spec.help}{domain}{shown}"
            if spec.kind is bool:
                flags = f"{flag_name(name)}/{flag_name(name, negated=True)}"
                func = click.option(flags, name, default=None, help=text)(func)
            else:
                metavar = "|".join(spec.choices) if spec.choices else METAVARS[spec.kind]
                if spec.shape != SCALAR:
                    metavar += "[,...]"
                func = click.option(flag_name(name), name, metavar=metavar, help=text)(func)
        return func

    return decorate


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    if isinstance(default, dict):
        return ",".join(f"{k}={v}" for k, v in default.items())
    return str(default)


def from_command_line(flags: dict[str, Any], *classes: type) -> dict[str, Any]:
    """The options given on the command line (None = not given), parsed and checked by their
    declaration (an error names the flag)."""
    specs = {name: spec for cls in classes for name, (spec, _) in declared(cls).items()}
    parsed = {}
    for name, value in flags.items():
        if value is None:
            continue
        spec = specs.get(name)
        if spec is not None:
            if isinstance(value, str):
                value = spec.parse(flag_name(name), value)
            value = spec.check(flag_name(name), value)
        parsed[name] = value
    return parsed


def read_settings_file(path: str | Path, *classes: type) -> dict[str, Any]:
    """Settings from a ``.toml`` or ``.yaml``/``.yml`` file: every key must be a declared field of
    ``classes`` (``-`` may stand for ``_``) and every value in its domain."""
    return checked_settings(parse_settings_file(path), path, *classes)


def parse_settings_file(path: str | Path) -> dict[str, Any]:
    """The table a ``.toml`` or ``.yaml``/``.yml`` file holds, not yet checked."""
    if not str(path).strip():
        raise InputError("the configuration file's name is empty; name a .toml or .yaml file.")
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the configuration file {file}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{file} is not UTF-8 text (byte {exc.start} cannot be decoded); save the "
            "configuration file as UTF-8."
        ) from None
    return _parse_settings_text(file, text)


def checked_settings(raw: dict, path: str | Path, *classes: type) -> dict[str, Any]:
    """``raw``'s settings, each a declared field of ``classes`` with a value in its domain
    (errors name the file ``path``)."""
    specs = {name: spec for cls in classes for name, (spec, _) in declared(cls).items()}
    settings = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in specs:
            raise InputError(
                f"{path}: unknown setting '{key}'. Known settings: {', '.join(sorted(specs))}."
            )
        if value is not None:
            settings[name] = specs[name].check(f"{path}: setting '{key}'", value)
    return settings


def _parse_settings_text(file: Path, text: str) -> dict:
    if file.suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{file} is not valid TOML: {exc}") from None
        except RecursionError:
            raise InputError(
                f"{file} is not valid TOML here: its arrays or tables nest too deeply to read."
            ) from None
    elif file.suffix in (".yaml", ".yml"):
        raw = _parse_yaml(file, text)
    else:
        raise InputError(f"{file}: configuration files must be .toml, .yaml or .yml.")
    if not isinstance(raw, dict):
        raise InputError(f"{file} must hold a table of settings at its top level.")
    return raw


# A settings file is a few dozen values: YAML whose aliases would expand it past this many
# nodes is refused before it is built ("billion laughs").
MOST_YAML_NODES = 100_000


def _parse_yaml(file: Path, text: str) -> Any:
    """YAML's safe subset, refusing a document whose aliases expand it past MOST_YAML_NODES."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        if _expanded_size(node) > MOST_YAML_NODES:
            raise InputError(
                f"{file}: its aliases (*name) expand it past {MOST_YAML_NODES:,} values, far "
                "beyond any configuration; vaecollapse does not build it. Write the values out."
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InputError(f"{file} could not be parsed as YAML: {shortened(exc, 300)}") from None
    except RecursionError:
        raise InputError(f"{file}: its YAML lists or tables nest too deeply to read.") from None
    finally:
        loader.dispose()


def _expanded_size(root: Any) -> int:
    """How many nodes a YAML node graph holds once every alias is expanded (at most
    MOST_YAML_NODES + 1, also for an alias inside its own anchor, which expands without end),
    counting each distinct node once, so a bomb costs no time."""
    import yaml

    def children(node: Any) -> list:
        if isinstance(node, yaml.SequenceNode):
            return node.value
        if isinstance(node, yaml.MappingNode):
            return [item for pair in node.value for item in pair]
        return []

    beyond = MOST_YAML_NODES + 1
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # the ancestors of the node at hand
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            sizes[key] = min(1 + sum(sizes[id(c)] for c in children(node)), beyond)
            open_nodes.discard(key)
        elif key in open_nodes:
            return beyond
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children(node))
    return sizes[id(root)]


def split_settings(settings: dict[str, Any], cls: type) -> dict[str, Any]:
    """The entries of ``settings`` that are declared fields of ``cls``."""
    names = declared(cls)
    return {k: v for k, v in settings.items() if k in names}


def settings_markdown(sections: dict[str, tuple[type, ...]]) -> str:
    """A markdown table per section of every declared setting: name (the flag and the config
    key), domain, default, meaning. ``docs/settings.md`` is this text."""
    lines = []
    for title, classes in sections.items():
        lines += [f"## {title}", "", "| setting | flag | values | default | meaning |"]
        lines.append("|---|---|---|---|---|")
        seen = set()
        for cls in classes:
            for name, (spec, default) in declared(cls).items():
                if name in seen:
                    continue
                seen.add(name)
                if default is dataclasses.MISSING:
                    shown = "required"
                else:
                    shown = "—" if default is None else f"`{_shown(default)}`"
                flag = f"`{flag_name(name)}`"
                if spec.kind is bool:
                    flag = f"`{flag_name(name)}` / `{flag_name(name, negated=True)}`"
                lines.append(f"| `{name}` | {flag} | {spec.describe()} | {shown} | {spec.help} |")
        lines.append("")
    return "\n".join(lines)
