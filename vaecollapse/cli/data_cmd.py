"""``vaecollapse data``: what a data set holds and where its files were found."""

from __future__ import annotations

import click

from vaecollapse.cli.common import data_options_without_name, data_spec, print_json
from vaecollapse.core.data import DATASET_NAMES, Dataset


@click.group()
def data() -> None:
    """Inspect data sets."""


@data.command("info")
@click.argument("name")
@data_options_without_name
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def info(name: str, as_json: bool, **flags) -> None:
    """Sizes per split, shapes, value ranges, where the files were found, checksum status.

    NAME is one of: digits (embedded, offline), mnist, fashion-mnist, cifar10, any of them with
    -quadrant (the CVAE quadrant task), or a path to a .npy / .npz file.
    """
    dataset = data_spec(flags, dataset=name).load()
    summary = dataset.summary()
    if as_json:
        print_json(summary)
    else:
        click.echo(format_summary(dataset, summary))


def format_summary(dataset: Dataset, summary: dict) -> str:
    source = summary["source"]
    lines = [f"data set    {dataset.name}  (view: {dataset.view})"]
    if dataset.digits:
        lines.append(f"digits      {', '.join(map(str, dataset.digits))}")
    where = source["directory"] or source["found_via"] or source["kind"]
    via = (
        f"  (found via {source['found_via']})"
        if source["directory"] and source["found_via"]
        else ""
    )
    lines.append(f"source      {where}{via}")
    verified = summary["checksums_verified"]
    if verified is not None:
        checks = sorted({f["check"] for f in source["files"]})
        state = "verified" if verified else "NOT verified"
        lines.append(
            f"checksums   {state} ({len(source['files'])} files; md5 of {', '.join(checks)})"
        )
    if dataset.image_shape:
        lines.append(f"images      {'x'.join(map(str, dataset.image_shape))} (C x H x W)")
    if dataset.centered:
        lines.append("centred     yes (training mean subtracted)")
    lines.append("")
    lines.append(f"{'split':<7}{'n':>8}  {'x':>10}  {'x range':<16}{'y':>10}  {'y range':<16}")
    for split_name, split in summary["splits"].items():
        x_range = "[{:.3g}, {:.3g}]".format(*split["x_range"])
        y_dim = split.get("y_shape", [None, "-"])[1]
        y_range = "[{:.3g}, {:.3g}]".format(*split["y_range"]) if "y_range" in split else "-"
        lines.append(
            f"{split_name:<7}{split['n']:>8}  {split['x_shape'][1]:>10}  {x_range:<16}"
            f"{y_dim!s:>10}  {y_range:<16}"
        )
    for split_name, split in summary["splits"].items():
        if "label_counts" in split:
            counts = " ".join(f"{k}:{v}" for k, v in split["label_counts"].items())
            lines.append(f"labels ({split_name}): {counts}")
    for note in summary["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


@data.command("list")
def list_names() -> None:
    """The data set names this toolkit knows."""
    for name in DATASET_NAMES:
        click.echo(name)
