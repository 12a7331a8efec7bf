"""The numbers in docs/reproduction.md's prose against the records of the full runs they describe
(docs/records). A paragraph or list that follows a line ``<!-- numbers: NAME -->`` speaks of
NAME's recorded full run (``<!-- numbers: NAME OTHER -->``: of several entries' runs), and every
number in it must be one of (for one of the entries named):

- a value of the record — a number of its ``comparison.md``, a cell of its ``results.csv`` or a
  value of its ``result.json`` — at the precision printed (as a percentage too);
- a quantity derived from the record by a formula below (``DERIVED``), at the precision printed;
- a setting or a reference (an epoch count, a width, a learning rate, a section of the paper),
  listed below per entry (``NOT_RESULTS``) so that a new number is never waved through.

A number stated at a setting ("0.00 at η_dec = 2", "3.3 at a = 1/8") must moreover be the
record's there: a cell of the rows at that setting, or a derived quantity keyed with it.

Dates, code spans and the numbers of figures, tables, sections, equations and theorems are not
results and are skipped. A small integer can match some value of a large record by chance, so
the check is strongest for the decimals, where drift happens: a number typed from an older run
or a rounding done by hand fails it."""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .test_reproduction_record import DOCUMENT, RECORDS, recorded

MARKER = re.compile(r"^<!-- numbers: ([\w -]+?) -->\n(.+\n?(?:(?!- \*\*|<!--).+\n?)*)", re.M)
NUMBER = re.compile(r"(?<![\w.·⁻/])[−-]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[−-]?\d+)?(?![\w⁻])")
# what a number following these words names is a part of a paper, not a result
REFERENCE = re.compile(
    r"(?:Figs?\.|Figure|Table|Section|Sections|[Ee]q\.|[Ee]qs\.|Theorems?|Propositions?|Prop\.|"
    r"App\.|Appendix|issue|Algorithm)\s*\(?$"
)
SKIPPED = re.compile(r"`[^`]*`|\d{4}-\d{2}-\d{2}|\([\w., ]+ \d{4}\)")


@dataclass(frozen=True)
class Record:
    """One entry's recorded full run: the rows of its ``results.csv`` and every number of it."""

    rows: list[dict[str, str]]
    values: tuple[float, ...]
    table: dict[str, tuple[str, str]]  # comparison rows: quantity -> (paper, ours)

    def column(self, name: str, **where: str) -> list[float]:
        """The values of column ``name`` in the rows whose other columns equal ``where``."""
        chosen = [r for r in self.rows if all(r[k] == v for k, v in where.items())]
        assert chosen, f"no row of the record has {where}"
        return [float(r[name]) for r in chosen]

    def mean(self, name: str, **where: str) -> float:
        return statistics.fmean(self.column(name, **where))


def numbers(text: str) -> list[str]:
    """The numbers of ``text`` that could be results, as printed."""
    text = SKIPPED.sub(" ", text)
    return [
        m.group()
        for m in NUMBER.finditer(text)
        if not REFERENCE.search(text[max(0, m.start() - 14) : m.start()])
    ]


def as_float(printed: str) -> float:
    return float(printed.replace("−", "-").replace(",", ""))


def half_unit(printed: str) -> float:
    """Half a unit of the last digit printed: the rounding the number may carry."""
    mantissa, _, exponent = printed.replace("−", "-").replace(",", "").partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def agrees(printed: str, value: float) -> bool:
    """Whether ``printed`` is ``value`` (or its percentage) rounded at the precision printed."""
    target, slack = as_float(printed), half_unit(printed) * (1 + 1e-9)
    return any(math.isfinite(v) and abs(v - target) <= slack for v in (value, 100 * value))


def load_record(name: str) -> Record:
    folder = RECORDS / name
    rows = list(csv.DictReader((folder / "results.csv").read_text(encoding="utf-8").splitlines()))
    comparison = (folder / "comparison.md").read_text(encoding="utf-8")
    values = [as_float(n) for n in NUMBER.findall(comparison)]
    cells = [line.split(" | ") for line in comparison.splitlines() if line.startswith("| ")]
    table = {c[0][2:]: (c[1], c[2]) for c in cells if len(c) >= 3}
    for row in rows:
        for cell in row.values():
            try:
                values.append(float(cell))
            except (TypeError, ValueError):
                continue

    def walk(item: object) -> None:
        if isinstance(item, bool):
            return
        if isinstance(item, int | float):
            values.append(float(item))
        elif isinstance(item, dict):
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)
        elif isinstance(item, str):
            values.extend(as_float(n) for n in NUMBER.findall(item))

    walk(json.loads((folder / "result.json").read_text(encoding="utf-8")))
    return Record(rows, tuple(values), table)


Derivation = Callable[[Record], float]


def paper_values(record: Record, quantity: str) -> list[float]:
    """The paper's numbers in the record's comparison row that starts with ``quantity``."""
    (paper,) = [cells[0] for row, cells in record.table.items() if row.startswith(quantity)]
    return [as_float(n) for n in NUMBER.findall(paper)]


def means(record: Record, column: str, by: str, **where: str) -> list[float]:
    """Means of ``column`` over the rows of each value of ``by`` (in the record's order)."""
    keys = dict.fromkeys(r[by] for r in record.rows if all(r[k] == v for k, v in where.items()))
    return [record.mean(column, **where, **{by: key}) for key in keys]


def kl_above_paper(record: Record) -> list[float]:
    """table3: our mean KL along β minus the paper's, per β."""
    ours = means(record, "kl", "beta_paper", sweep="beta")
    return [o - p for o, p in zip(ours, paper_values(record, "KL (nats), beta"), strict=True)]


def iwae_below_paper(record: Record) -> list[float]:
    """table3: the paper's IWAE along β minus our mean, per β."""
    ours = means(record, "iwae_ll", "beta_paper", sweep="beta")
    paper = paper_values(record, "IWAE log p(y|x), K = 1000, beta")
    return [p - o for o, p in zip(ours, paper, strict=True)]


def kl_above_paper_at(record: Record, correlation: str) -> float:
    """table4: our mean KL at correlation a minus the paper's."""
    order = list(dict.fromkeys(row["correlation"] for row in record.rows))
    paper = paper_values(record, "KL (nats), x = a·y")
    return record.mean("kl", correlation=correlation) - paper[order.index(correlation)]


def aggressive_epochs(record: Record) -> tuple[list[float], float]:
    """he2019-remedies: aggressive training's epochs on per seed, and its encoder steps per
    decoder step while on, from the comparison row that reports them."""
    (cell,) = [ours for row, (_, ours) in record.table.items() if row.startswith("aggressive")]
    on, _, ratio = cell.partition(";")
    return [as_float(n) for n in NUMBER.findall(on)][:-1], as_float(ratio.strip())


def depth_checks(record: Record) -> tuple[int, int]:
    """dai-fig1: the claim's checks that pass, and all of them — each VAE's error above the
    autoencoder's at its depth, and the autoencoder's deepest error above its lowest."""
    autoencoder = {r["depth"]: float(r["reconstruction_error"]) for r in record.rows
                   if r["kind"] == "autoencoder"}  # fmt: skip
    vaes = [r for r in record.rows if r["kind"] != "autoencoder"]
    passed = sum(float(r["reconstruction_error"]) > autoencoder[r["depth"]] for r in vaes)
    deepest = autoencoder[max(autoencoder, key=int)]
    return passed + (deepest > min(autoencoder.values())), len(vaes) + 1


def latent_gap(latent_dim: str) -> Derivation:
    """lucas-latent: the exact log-likelihood minus the trained ELBO, σ² fixed."""
    return lambda r: (
        r.mean("log_likelihood_fixed_sigma", latent_dim=latent_dim)
        - r.mean("elbo_fixed_sigma", latent_dim=latent_dim)
    )


# lucas-latent: the gap as printed, at each latent size
LATENT_GAPS = (
    ("0.003", "10"), ("0.026", "25"), ("0.31", "50"), ("1.5", "100"), ("4.1", "200"),
    ("10.9", "300"),
)  # fmt: skip

# Quantities the prose derives from a record: entry -> number as printed -> formula. A number the
# prose states at a setting ("3.4 at a = 0") is keyed with it, and stands only there.
DERIVED: dict[str, dict[str, Derivation]] = {
    "dai-prop2": {  # learned γ* over the autoencoder's error per dimension
        "1.74": lambda r: (
            r.mean("gamma", run="sigma-learnable")
            / r.mean("reconstruction_error", run="autoencoder")
        ),
    },
    "dai-fig1": {
        "12": lambda r: depth_checks(r)[0],
        "13": lambda r: depth_checks(r)[1],
        # how far the depth-10 VAE's error falls below the autoencoder's
        "29": lambda r: (
            1
            - r.mean("reconstruction_error", depth="10", kind="VAE")
            / r.mean("reconstruction_error", depth="10", kind="autoencoder")
        ),
    },
    "dai-fig2": {  # how much the error rises from 2 to 4 convolutions per scale
        "17": lambda r: (
            r.mean("reconstruction_error", conv_per_scale="4")
            / r.mean("reconstruction_error", conv_per_scale="2")
            - 1
        ),
    },
    "fig6a": {
        "2e-4": lambda r: r.mean("kl", k="1") / 64,  # what θ_1's KL leaves per dimension
        # the optimal KL of the mode just above θ_4 and θ_8: twice the split
        "0.022": lambda r: 2 * r.mean("kl_split", k="4"),
        "0.039": lambda r: 2 * r.mean("kl_split", k="8"),
    },
    "fig6b": {"0.074": lambda r: 2 * r.mean("kl_split", k="4")},
    "he2019-remedies": {  # the mean aggressive epochs A; the E at which 1 + r·A/E falls to 4
        "4.7": lambda r: statistics.fmean(aggressive_epochs(r)[0]),
        "64": lambda r: aggressive_epochs(r)[1] * statistics.fmean(aggressive_epochs(r)[0]) / 3,
    },
    "lucas-encoders": {"24": lambda r: len(r.column("epoch", run="linear encoder"))},
    "lucas-latent": {printed: latent_gap(size) for printed, size in LATENT_GAPS},
    "table3": {
        "0.1": lambda r: min(kl_above_paper(r)),
        "5.3": lambda r: max(kl_above_paper(r)),
        "1.7": lambda r: min(iwae_below_paper(r)),
        "5.2": lambda r: max(iwae_below_paper(r)),
    },
    "table4": {
        "6.0 at a = 1/2": lambda r: kl_above_paper_at(r, "0.5"),
        # the range's lower end: the smallest excess over the correlated and independent pairs,
        # which is a = 1/8's
        "3.3 at a = 1/8": lambda r: min(
            kl_above_paper_at(r, a) for a in ("0.5", "0.25", "0.125", "0.0")
        ),
        "3.4 at a = 0": lambda r: kl_above_paper_at(r, "0.0"),
    },
}

# Settings and references per entry: numbers in its blocks that are not results.
NOT_RESULTS: dict[str, set[str]] = {
    "dai-prop1": {"101"},  # Gauss–Hermite nodes
    "dai-prop2": {"512", "128", "16", "20"},  # widths, the quick latent size, epochs
    # width, learning rate, the entry's epochs and steps (their share of the paper's), its runs
    "dai-fig1": {"512", "2e-4", "20", "18,760", "7.5", "18"},
    # a width, the entry's own epochs, draws of z per image, training images
    "dai-fig2": {"32", "20", "8", "60,000"},
    "fig2a": {"100"},  # epochs
    "fig2c": {"10", "8.77"},  # runs in the batch; the paper's KL(z2) at the shared point
    "fig4": {"11", "16", "5", "36"},  # runs batched, in all, shared; test images shown
    "table2": {"1e-4", "16"},  # the paper's learning rate; latent dimensions
    "thm2-synthetic": {"200", "0.1"},  # Adam iterations and learning rate of all three
    "fig6a": {"1e-4"},  # learning rate
    "he2019-remedies": {"500"},  # importance samples of the IWAE
    "lucas-latent": {"12000"},  # steps
    "lucas-sigma": {"784", "256", "1e-3"},  # layer widths, learning rate
}


# "X at S = V": a number bound to the rows of its record where the setting S is V. Per entry,
# the column of results.csv that holds each setting named so; for a setting that picks a column
# instead of rows (fig2a's ε), the column of each value.
SETTING_COLUMNS: dict[str, dict[str, str | dict[float, str]]] = {
    "fig2a": {"ε": {8e-5: "collapsed_at_eps_8e-05", 0.01: "collapsed"}},
    "fig2b": {"β": "beta_paper", "η_dec": "eta_dec"},
    "fig2c": {"β1": "beta1_paper", "β2": "beta2_paper", "η_dec": "eta_dec"},
    "table4": {"a": "correlation"},
    "table5": {"β1": "beta1_paper", "β2": "beta2_paper", "η_dec": "eta_dec"},
    "lucas-sigma": {"σ": "sigma"},
    "dai-prop1": {"δ": "delta", "α": "alpha"},
    "dai-prop2": {"γ": "gamma"},
}
BOUND = re.compile(
    rf"(?<!of )(?P<number>{NUMBER.pattern})(?:\s*(?:%|nats|collapsed|more|dimensions))*\s+at "
    rf"(?P<symbol>[^\s=]{{1,8}}) = (?P<value>\d+/\d+|{NUMBER.pattern})"
)


def bound_numbers(text: str) -> list[tuple[str, str, str]]:
    """Each ``(number, setting, value)`` that ``text`` states as "number at setting = value"."""
    text = SKIPPED.sub(" ", text).replace("\n", " ")
    return [
        (m["number"], m["symbol"], m["value"])
        for m in BOUND.finditer(text)
        if not REFERENCE.search(text[max(0, m.start() - 14) : m.start()])
    ]


def setting_value(printed: str) -> float:
    numerator, slash, denominator = printed.partition("/")
    return as_float(numerator) / as_float(denominator) if slash else as_float(printed)


def cells_at(record: Record, column: str | dict[float, str], printed: str) -> list[float] | None:
    """The record's numbers at a setting: every cell of the rows whose ``column`` is the
    printed value, or, for a setting that picks a column, that column's cells; None when no
    row (or column) has it."""
    value = setting_value(printed)
    if isinstance(column, dict):
        picked = [name for v, name in column.items() if math.isclose(v, value, rel_tol=1e-9)]
        return [float(r[picked[0]]) for r in record.rows] if picked else None
    settings = {}
    for row in record.rows:
        try:
            settings[row[column]] = float(row[column])
        except (KeyError, TypeError, ValueError):
            continue
    # the rows at the setting nearest the printed value, if it is that value as printed
    nearest = min(settings.values(), key=lambda s: abs(s - value), default=None)
    if nearest is None or not (
        math.isclose(nearest, value, rel_tol=1e-9, abs_tol=1e-12)
        or ("/" not in printed and agrees(printed, nearest))
    ):
        return None
    rows = [r for r in record.rows if settings.get(r.get(column)) == nearest]  # fmt: skip
    cells = []
    for row in rows:
        for cell in row.values():
            try:
                cells.append(float(cell))
            except (TypeError, ValueError):
                continue
    return cells or None


def bound_failure(printed: str, symbol: str, value: str, names: tuple[str, ...]) -> str | None:
    """Why a number stated at a setting is not the record's there (None when it is): a value of
    the rows at that setting, a derived quantity (whose formula names its own rows) or a
    setting of the entry."""
    mapped = [name for name in names if symbol in SETTING_COLUMNS.get(name, {})]
    if not mapped:
        return f"{printed} at {symbol} = {value}: no entry of {names} maps the setting {symbol}"
    for name in mapped:
        derived = DERIVED.get(name, {}).get(f"{printed} at {symbol} = {value}")
        if derived is not None:
            return (
                None
                if agrees(printed, derived(load_record(name)))
                else (f"{printed} at {symbol} = {value} is not its formula's")
            )
        if printed in NOT_RESULTS.get(name, set()):
            return None
        cells = cells_at(load_record(name), SETTING_COLUMNS[name][symbol], value)
        if cells is not None and any(agrees(printed, cell) for cell in cells):
            return None
    return f"{printed} is not the record's at {symbol} = {value} ({', '.join(mapped)})"


def blocks() -> list[tuple[tuple[str, ...], str]]:
    """Every marked block: the entries it speaks of, its text."""
    return [(tuple(m.group(1).split()), m.group(2)) for m in MARKER.finditer(DOCUMENT)]


def explained(printed: str, name: str, record: Record) -> bool:
    """Whether ``printed`` is a setting of entry ``name``, a value of its record or a quantity
    derived from it; a derived number that its formula contradicts fails here."""
    if printed in NOT_RESULTS.get(name, set()):
        return True
    derived = DERIVED.get(name, {})
    formula = next((f for key, f in derived.items() if key.partition(" at ")[0] == printed), None)
    if formula is not None:
        assert agrees(printed, formula(record)), (
            f"{name}: the prose's {printed} is not its formula's {formula(record):.6g}"
        )
        return True
    return any(agrees(printed, value) for value in record.values)


@pytest.mark.parametrize("name", recorded())
def test_every_number_in_an_entrys_blocks_is_its_records(name: str) -> None:
    texts = [(names, text) for names, text in blocks() if name in names]
    assert texts, f"docs/reproduction.md has no '<!-- numbers: {name} -->' block"
    unexplained = []
    for names, text in texts:
        records = {entry: load_record(entry) for entry in names}
        for printed in numbers(text):
            if not any(explained(printed, entry, records[entry]) for entry in names):
                unexplained.append(printed)
    assert not unexplained, (
        f"{name}: numbers in docs/reproduction.md that are not in the record, not derived from it "
        f"and not listed as settings: {unexplained}"
    )


def test_a_number_stated_at_a_setting_is_the_records_at_that_setting() -> None:
    stated = [(names, bound) for names, text in blocks() for bound in bound_numbers(text)]
    assert len(stated) >= 10, "the pattern no longer finds the document's bound numbers"
    failures = [
        failure
        for names, (printed, symbol, value) in stated
        if (failure := bound_failure(printed, symbol, value, names)) is not None
    ]
    assert not failures, "docs/reproduction.md: " + "; ".join(failures)


def test_the_setting_check_catches_a_number_quoted_at_the_wrong_setting() -> None:
    """table4's a = 1/8 excess as the docs state it, then moved to a = 0, where the record has
    another value; a number at a setting no row has fails too."""
    assert bound_numbers("the excess is 3.3 at a = 1/8 and 0% at a = 1") == [
        ("3.3", "a", "1/8"), ("0", "a", "1"),
    ]  # fmt: skip
    kl = load_record("table4").column("kl", correlation="0.125")[0]
    printed = f"{kl:.4f}"
    assert bound_failure(printed, "a", "1/8", ("table4",)) is None
    assert bound_failure(printed, "a", "0", ("table4",)) is not None
    assert bound_failure(printed, "a", "0.3", ("table4",)) is not None
    assert bound_failure(printed, "κ", "1", ("table4",)) is not None
    # a derived number stands at the setting its formula is keyed with, and nowhere else
    assert bound_failure("3.3", "a", "1/8", ("table4",)) is None
    assert bound_failure("3.3", "a", "0", ("table4",)) is not None
    assert bound_numbers("3 of 5 dimensions collapsed at ε = 8e-5") == []  # 5 is a total


def test_blocks_name_recorded_entries_and_mark_every_paragraph_about_one() -> None:
    named = {entry for names, _ in blocks() for entry in names}
    assert named <= set(recorded()), f"blocks of unrecorded entries: {named - set(recorded())}"
    for table in (DERIVED, NOT_RESULTS):
        for entry, listed in table.items():
            texts = [text for names, text in blocks() if entry in names]
            printed = {n for text in texts for n in numbers(text)}
            printed |= {f"{n} at {s} = {v}" for text in texts for n, s, v in bound_numbers(text)}
            unused = set(listed) - printed
            assert not unused, f"{entry}: listed, not in its blocks: {unused}"
    # a paragraph or item that opens with a recorded entry's name in bold is marked
    for name in recorded():
        for opening in re.finditer(rf"^(?:- )?\*\*{re.escape(name)}\*\*", DOCUMENT, re.M):
            before = DOCUMENT[: opening.start()].rstrip("\n").rpartition("\n")[2]
            assert re.fullmatch(rf"<!-- numbers: .*\b{re.escape(name)}\b.* -->", before), (
                f"docs/reproduction.md: the paragraph opening with **{name}** is not marked"
            )


def test_the_number_check_tells_a_drifted_number_from_a_rounded_one() -> None:
    assert agrees("0.01278", 0.012784) and agrees("2618", 2617.6) and agrees("94", 0.9375)
    assert not agrees("0.01278", 0.01280) and not agrees("2618", 2618.6)
    assert agrees("1e-4", 1.04e-4) and not agrees("1e-4", 1.6e-4)
    assert agrees("−177.70", -177.704) and not agrees("177.70", -177.704)
    assert numbers("Fig. 2 (2026-11-30, `--epochs 5`): 0.5 and θ_1 = 1,525.5") == ["0.5", "1,525.5"]
