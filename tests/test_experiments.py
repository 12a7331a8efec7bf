"""The experiment registry: every entry's quick variant runs, writes its files and holds its
claim (the CIFAR-10 entries on a small stand-in written here); every Dang et al. row of
EXPERIMENTS.md has an entry; the reproduce command lists, runs and rejects."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import statistics
from pathlib import Path

import pytest
import torch

from vaecollapse.reproductions import REGISTRY, run_entry
from vaecollapse.reproductions.common import data_derived
from vaecollapse.reproductions.registry import by_paper

from .stand_ins import write_cifar_stand_in

# Entries whose claim is a paper's statement that their quick run contradicts, with the check
# that contradicts it: the test asserts that it fails, and only it.
CONTRADICTED_QUICK = {
    # the report: neither encoder recovers pPCA's log-likelihood; on the digits the linear and
    # the one-layer MLP encoder end within 0.1 nats of it
    "lucas-encoders": ("linear encoder: final gap", "mlp encoder: final gap"),
}
# Entries that train no model: they solve or evaluate an objective directly.
UNTRAINED = {
    "dai-prop1",
    "dai-taxonomy-iii",
    "appc-samplewise",
    "thm2-synthetic",
    "thm3-synthetic",
    "thm5-synthetic",
}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_quick_entry_holds_its_claim(name: str, tmp_path: Path, request) -> None:
    entry = REGISTRY[name]
    if "cifar10" in entry.data:
        write_cifar_stand_in(tmp_path / "data", n_per_batch=8, patterns=3)
        result = run_entry(name, tmp_path, quick=True, data_dir=tmp_path / "data", verify=False)
    else:
        if "mnist" in entry.data:
            request.getfixturevalue("mnist_dir")  # fails, never skips, when MNIST is missing
        result = run_entry(name, tmp_path, quick=True)
    if name in CONTRADICTED_QUICK:
        failed = [c for c in result.checks if "(FAILS" in c]
        assert not result.claim_holds and len(failed) == len(CONTRADICTED_QUICK[name]), failed
        assert all(any(f"] {label}" in c for c in failed) for label in CONTRADICTED_QUICK[name])
    else:
        assert result.claim_holds, f"{name}: {result.margin}; {result.comparisons}"
    assert result.margin, "the claim states no checks"
    directory = tmp_path / name
    table = (directory / "comparison.md").read_text()
    assert "| quantity | paper | ours | agreement |" in table and "KL convention" in table
    assert "claim" in table.lower() and "holds" in table
    rows = list(csv.DictReader((directory / "results.csv").read_text().splitlines()))
    assert rows and all(p.stat().st_size > 0 for p in result.figures)
    outcome = json.loads((directory / "result.json").read_text())
    assert outcome["mode"] == "quick" and outcome["claim_holds"] is result.claim_holds
    # the synthetic entries optimise the theory's objective directly, and dai-prop1 computes its
    # energy and Hessian exactly: no model is trained
    assert (result.train_seconds > 0) is (name not in UNTRAINED)
    if result.train_seconds > 0:  # no entry clips gradients, and its table says so
        assert outcome["clip_grad_norm"] == [None]
        assert "Gradient clipping of its runs: none." in table


def dang_ids(experiments_md: str) -> list[str]:
    """The entry names of the Dang et al. table: 'fig4 (fig3b)' -> fig4; 'a (x) / b (y)' -> a, b."""
    section = experiments_md.split("## Dang et al.", 1)[1].split("\n## ", 1)[0]
    ids = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("id", "") or set(cells[0]) <= {"-"}:
            continue
        ids += [re.sub(r"\s*\(.*?\)", "", part).strip() for part in cells[0].split("/")]
    return ids


def test_every_dang_row_has_an_entry_with_a_quick_test() -> None:
    root = os.environ.get("VAECOLLAPSE_DATA")
    if not root:
        pytest.fail("VAECOLLAPSE_DATA is not set; EXPERIMENTS.md is found beside it.")
    path = Path(root).resolve().parent / "EXPERIMENTS.md"
    if not path.is_file():
        pytest.fail(f"{path} is missing.")
    ids = dang_ids(path.read_text())
    assert len(ids) >= 20 and "thm5-mnist" in ids and "fig4" in ids
    assert not set(ids) - set(REGISTRY), f"rows without an entry: {set(ids) - set(REGISTRY)}"
    # the quick test above must cover every registered entry, not a hand-kept list
    (marker,) = test_quick_entry_holds_its_claim.pytestmark
    assert set(marker.args[1]) == set(REGISTRY)


def test_dang_ids_parse_compound_rows() -> None:
    text = (
        "## Dang et al. (ICLR 2024)\n\n| id | what |\n|---|---|\n| fig4 (fig3b) | x |\n"
        "| thm5-synthetic (fig13) / thm5-mnist (fig14) | y |\n\n## Next\n| other | z |\n"
    )
    assert dang_ids(text) == ["fig4", "thm5-synthetic", "thm5-mnist"]


def test_reproduce_command(run_cli, tmp_path: Path) -> None:
    listed = run_cli("reproduce", "--list")
    assert listed.code == 0 and all(name in listed.out for name in REGISTRY)
    # grouped by paper: each paper's heading, then its entries indented below it
    lines = listed.out.splitlines()
    for paper, entries in by_paper().items():
        start = lines.index(paper)
        assert [line.split()[0] for line in lines[start + 1 : start + 1 + len(entries)]] == [
            entry.name for entry in entries
        ]
    assert next(iter(by_paper())) == "Dang et al. (ICLR 2024)" and len(by_paper()) > 1
    result = run_cli("reproduce", "thm3-synthetic", "--quick", "--out", str(tmp_path))
    assert result.code == 0 and "claim holds" in result.out
    assert (tmp_path / "thm3-synthetic" / "comparison.md").exists()
    collected = run_cli("reproduce", "--collect", "--out", str(tmp_path))
    row = "| Dang et al. (ICLR 2024) | thm3-synthetic | quick | holds |"
    assert collected.code == 0 and row in collected.out
    assert "### thm3-synthetic" in collected.out and "Not run yet" in collected.out
    assert run_cli("reproduce", "--collect", "--out", str(tmp_path / "none")).code == 2
    unknown = run_cli("reproduce", "fig99", "--out", str(tmp_path))
    assert unknown.code == 2 and "unknown experiment" in unknown.err
    assert run_cli("reproduce").code == 2
    no_jobs = run_cli("reproduce", "thm3-synthetic", "--jobs", "0", "--out", str(tmp_path))
    assert no_jobs.code == 2 and "Invalid value for '--jobs'" in no_jobs.err
    no_epochs = run_cli("reproduce", "thm3-synthetic", "--epochs", "0", "--out", str(tmp_path))
    assert no_epochs.code == 2 and "Invalid value for '--epochs'" in no_epochs.err


@pytest.mark.parametrize("name", ["dai-fig1", "dai-fig2"])
def test_an_entry_runs_on_its_alternative_data_set(name: str, run_cli, tmp_path: Path) -> None:
    data = write_cifar_stand_in(tmp_path / "data", n_per_batch=8, patterns=3).parent
    out = tmp_path / "out"
    args = ("--quick", "--out", str(out), "--data-dir", str(data), "--no-verify")
    result = run_cli("reproduce", name, "--dataset", "cifar10", *args)
    assert result.code == 0, result.err
    directory = out / f"{name}-cifar10"
    assert f"{directory}/comparison.md" in result.out and not (out / name).exists()
    outcome = json.loads((directory / "result.json").read_text())
    assert outcome["dataset"] == "cifar10" and outcome["mode"] == "quick"
    assert "on cifar10 in place of its own data" in (directory / "comparison.md").read_text()
    # every run it trained is convolutional and saw the colour images, whole
    configs = [json.loads(p.read_text()) for p in (out / "shared-runs").glob("**/config.json")]
    assert configs and all(c["model"]["backbone"] == "cnn" for c in configs)
    assert all(c["model"]["image_shape"] == [3, 32, 32] for c in configs)
    collected = run_cli("reproduce", "--collect", "--out", str(out))
    assert f"| {name}-cifar10 | quick, on cifar10 |" in collected.out
    assert f"Not run yet in {out}: " in collected.out and f" {name}," not in collected.out


def test_dai_fig1_with_jobs_trains_every_depth_at_once_and_matches_in_turn(
    run_cli, tmp_path: Path
) -> None:
    data = write_cifar_stand_in(tmp_path / "data", n_per_batch=8, patterns=3).parent
    results = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        args = ("--quick", "--out", str(out), "--data-dir", str(data), "--no-verify")
        result = run_cli(
            "reproduce", "dai-fig1", "--dataset", "cifar10", "--jobs", str(jobs), *args
        )
        assert result.code == 0, result.err
        # with --jobs 2 the six runs (two depths, three kinds) are trained before any is read
        assert ("training 6 runs, 2 at a time" in result.err) == (jobs == 2)
        with open(out / "dai-fig1-cifar10" / "results.csv", newline="") as table:
            results[jobs] = list(csv.DictReader(table))
    assert len(results[1]) == len(results[2]) == 6  # two depths × three kinds
    for in_turn, side_by_side in zip(results[1], results[2], strict=True):
        assert (in_turn["depth"], in_turn["kind"]) == (side_by_side["depth"], side_by_side["kind"])
        # the workers have one thread each: sums run in another order, to float precision
        error = float(side_by_side["reconstruction_error"])
        assert error == pytest.approx(float(in_turn["reconstruction_error"]), rel=1e-3)


def test_an_alternative_data_set_is_refused_where_an_entry_has_none(run_cli, tmp_path) -> None:
    refused = run_cli("reproduce", "fig2b", "--dataset", "cifar10", "--out", str(tmp_path))
    assert refused.code == 2
    assert "runs on its own data only" in refused.err and "dai-fig1, dai-fig2" in refused.err
    unknown = run_cli("reproduce", "dai-fig1", "--dataset", "svhn", "--out", str(tmp_path))
    assert unknown.code == 2 and "it takes cifar10" in unknown.err
    every = run_cli("reproduce", "all", "--dataset", "cifar10", "--out", str(tmp_path))
    assert every.code == 2 and "not `all`" in every.err
    assert not any(tmp_path.iterdir())
    listed = run_cli("reproduce", "--list").out
    assert "[also --dataset cifar10]" in listed.split("dai-fig1", 1)[1].split("dai-fig2")[0]


def test_epochs_asked_for_replace_the_entrys_and_a_later_call_resumes(tmp_path: Path) -> None:
    from vaecollapse.core.data import load_dataset
    from vaecollapse.core.errors import InputError
    from vaecollapse.reproductions.common import train_runs
    from vaecollapse.reproductions.registry import (
        REGISTRY,
        Context,
        EntryResult,
        clipping_note,
        collect_report,
        to_markdown,
    )
    from vaecollapse.training.config import TrainConfig

    dataset = load_dataset("digits")
    runs = {"small": {"latent_dim": 3, "backbone": "mlp", "hidden": 16}}
    entry_training = TrainConfig(epochs=6, lr=3e-3)

    def trained(epochs: int | None) -> list[dict]:
        ctx = Context(tmp_path, quick=True, epochs=epochs)
        return train_runs(ctx, "g", "vae", dataset, runs, entry_training)["small"].history

    short = trained(2)
    assert [row["epoch"] for row in short] == [1, 2]
    longer = trained(4)  # resumed: the first two epochs are the ones already trained
    assert [row["epoch"] for row in longer] == [1, 2, 3, 4] and longer[:2] == short
    with pytest.raises(InputError, match="trained 4 epochs, more than the 3 asked for"):
        trained(3)
    assert len(trained(None)) == entry_training.epochs
    clipped = Context(tmp_path, quick=True)
    clipped.training(TrainConfig(clip_grad_norm=0.1))
    clipped.training(TrainConfig())
    assert clipping_note(clipped.clip_norms) == (
        "Gradient clipping of its runs: none, total norm 0.1."
    )
    assert clipping_note(set()) == ""
    text = to_markdown(REGISTRY["fig9"], EntryResult("c", True), quick=False, epochs=10)
    assert "every run trained 10 epochs instead of the entry's own count" in text
    (tmp_path / "fig9").mkdir()
    (tmp_path / "fig9" / "comparison.md").write_text(text)
    outcome = {"mode": "full", "claim_holds": True, "seconds": 1, "train_seconds": 1, "epochs": 10}
    (tmp_path / "fig9" / "result.json").write_text(json.dumps(outcome))  # no revision: the first
    assert "| fig9 | full, 10 epochs, an earlier definition | holds |" in collect_report(tmp_path)
    outcome["revision"] = REGISTRY["fig9"].revision
    (tmp_path / "fig9" / "result.json").write_text(json.dumps(outcome))
    assert "| fig9 | full, 10 epochs | holds |" in collect_report(tmp_path)


def test_data_derived_settings_ignore_the_solvers_last_digits() -> None:
    # θ_2 of MNIST as computed with one and with two BLAS threads
    one, two = 2.0952639028811375, 2.0952639028811384
    assert one != two and data_derived(one) == data_derived(two)
    assert abs(data_derived(one) - one) < 1e-9 * one


def _small_sweep():
    """The digits, a small MLP VAE's settings at three β's, and a short training."""
    from vaecollapse.core.data import load_dataset
    from vaecollapse.training.config import TrainConfig

    settings = {"latent_dim": 3, "backbone": "mlp", "hidden": 16}
    runs = {f"beta{beta:g}": settings | {"beta": beta} for beta in (0.5, 1.0, 4.0)}
    return load_dataset("digits"), settings, runs, TrainConfig(epochs=3, lr=3e-3)


def test_runs_trained_side_by_side_match_runs_trained_in_turn(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from vaecollapse.core.errors import InputError
    from vaecollapse.core.logs import show_progress
    from vaecollapse.reproductions.common import train_runs
    from vaecollapse.reproductions.registry import Context
    from vaecollapse.training.config import TrainConfig

    dataset, _, runs, training = _small_sweep()
    outcomes = {}
    show_progress()  # as the command line does: the workers repeat it
    for jobs in (1, 2):
        ctx = Context(tmp_path / f"jobs{jobs}", quick=True, jobs=jobs, batch=False)
        outcomes[jobs] = train_runs(ctx, "sweep", "vae", dataset, runs, training)
    # the workers' own log lines (their file descriptors are this process's) name their runs
    assert "[sweep/beta4] epoch 3/3" in capfd.readouterr().err
    for label in runs:
        in_turn, side_by_side = (outcomes[jobs][label] for jobs in (1, 2))
        assert len(side_by_side.history) == 3
        # the workers have one thread each: sums run in another order, to float precision
        assert side_by_side.history[-1]["train_loss"] == pytest.approx(
            in_turn.history[-1]["train_loss"], rel=1e-4
        )
        assert side_by_side.report.kl_total == pytest.approx(in_turn.report.kl_total, rel=1e-3)
    # a worker's error reaches the caller: the runs exist with another learning rate
    with pytest.raises(InputError, match="different configuration"):
        train_runs(
            Context(tmp_path / "jobs2", quick=True, jobs=2, batch=False),
            "sweep", "vae", dataset, runs, TrainConfig(epochs=3, lr=1e-2),
        )  # fmt: skip


def test_a_sweep_that_can_share_a_batch_trains_as_one_and_matches_in_turn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from vaecollapse.core.errors import InputError
    from vaecollapse.reproductions.common import train_runs
    from vaecollapse.reproductions.registry import Context
    from vaecollapse.training.config import TrainConfig

    dataset, settings, runs, training = _small_sweep()
    outcomes = {}
    caplog.set_level(logging.INFO, logger="vaecollapse")
    for batch in (False, True):
        ctx = Context(tmp_path / f"batch{batch}", quick=True, batch=batch)
        outcomes[batch] = train_runs(ctx, "sweep", "vae", dataset, runs, training)
    assert "sweep: training 3 runs as one batch" in caplog.text
    for label in runs:
        in_turn, batched = outcomes[False][label], outcomes[True][label]
        assert batched.history[-1]["batched_runs"] == 3
        assert batched.history[-1]["train_loss"] == pytest.approx(
            in_turn.history[-1]["train_loss"], rel=1e-5
        )
        assert batched.report.kl_total == pytest.approx(in_turn.report.kl_total, rel=1e-4)
    # a run that cannot share the batch (another latent size) trains alone, and says why; the
    # others still train as one batch
    caplog.clear()
    mixed = runs | {"wide": settings | {"latent_dim": 5}}
    ctx = Context(tmp_path / "mixed", quick=True)
    trained = train_runs(ctx, "sweep", "vae", dataset, mixed, training)
    assert "batched_runs" not in trained["wide"].history[-1]
    assert all(trained[label].history[-1]["batched_runs"] == 3 for label in runs)
    assert "1 of 4 runs not batched (the model settings differ" in caplog.text
    with pytest.raises(InputError, match="different configuration"):
        train_runs(
            Context(tmp_path / "batchTrue", quick=True),
            "sweep", "vae", dataset, runs, TrainConfig(epochs=3, lr=1e-2),
        )  # fmt: skip


def test_trend_notes_say_when_a_tolerance_was_needed() -> None:
    from vaecollapse.reproductions.common import trend

    assert trend([1.0, 2.0, 3.0], increasing=True) == "rises (as the paper's)"
    noisy = trend([3.0, 2.0, 2.0005], increasing=False, tolerance=1e-3)
    assert noisy.startswith("falls") and "at most 0.001 against" in noisy
    # table4's AU for a < 1: strictly falling where the paper's rises, and said so
    assert trend([65.9, 65.1, 64.3, 64.2], increasing=True) == "falls, where the paper's rises"
    assert trend([65.9, 63.0, 64.3], increasing=True, tolerance=1.0) == "not monotone"
    assert trend([3.0, 2.0, 2.0005], increasing=False, tolerance=1e-3) != "falls (as the paper's)"


def test_run_area_totals_count_each_run_once(tmp_path: Path) -> None:
    from vaecollapse.reproductions.registry import run_area_totals

    for label, epochs, complete in (("a", (1.5, 2.0), True), ("b", (4.0,), False)):
        run = tmp_path / "full" / "group" / label
        run.mkdir(parents=True)
        lines = [json.dumps({"epoch": i + 1, "seconds": s}) for i, s in enumerate(epochs)]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        if complete:
            (run / "model.pt").write_bytes(b"")
    assert run_area_totals(tmp_path) == {"full": (2, 1, 7.5)}


def test_active_count_comparison_judges_on_the_mean_kl_count() -> None:
    from vaecollapse.reproductions.common import active_count_comparison

    row = active_count_comparison("active at θ_k", [0, 3, 7], [0, 2, 7], [0, 4, 10])
    assert row.ours == "0/0/0, 3/2/4, 7/7/10" and row.agreement == "2 of 3 agree (mean KL)"
    assert row.quantity.startswith("active at θ_k: theory / trained, mean KL")


def test_a_claim_names_its_tightest_check_with_the_numbers() -> None:
    from vaecollapse.reproductions.claims import Claim

    claim = Claim("x")
    assert not claim.holds  # a claim with no checks asserts nothing
    assert claim.greater("wide", 10.0, 1.0) and claim.less("narrow", 0.99, 1.0)
    # "at most": a tie holds where "less" is not strict, and fails where it is
    at_most = Claim("at most")
    assert at_most.less("tie", 2.0, 2.0, strict=False) and not Claim("z").less("t", 2.0, 2.0)
    assert "2 ≤ 2" in at_most.checks[-1].describe()
    assert claim.monotone("steps", [3.0, 2.0, 2.0], increasing=False)  # a tie is allowed
    assert claim.holds and claim.tightest.label == "steps"
    assert claim.margin() == "tightest check — steps: 3, 2, 2 falls (holds by 0, 0.00%)"
    assert not claim.monotone("up", [1.0, 0.5, 2.0], increasing=True, tolerance=0.2)
    assert not claim.holds and claim.tightest.label == "up"
    assert "FAILS by -0.3" in claim.margin()
    fields = claim.fields()
    assert fields["claim_holds"] is False and fields["claim"] == "x"


def test_steps_between_collapsed_values_are_not_judged() -> None:
    from vaecollapse.reproductions.claims import Claim

    claim = Claim("x")
    # 0.020 -> 0.025 rises against the direction, but both are under the floor 0.16
    assert claim.monotone("KL", [20.5, 3.9, 0.020, 0.025], False, 1e-3, floor=0.16)
    assert claim.tightest.gap == pytest.approx(3.9 - 0.020 + 1e-3)
    # a rise from under the floor to above it is judged
    assert not Claim("y").monotone("KL", [20.5, 0.02, 0.5], False, 1e-3, floor=0.16)


def test_seed_noise_is_twice_the_standard_error_of_a_difference_of_means() -> None:
    from vaecollapse.reproductions.sweeps import TABLE_SEEDS, seed_noise

    # table2's record: AU 100, 98.74, 100 against 100, 100, 100 over three seeds
    learnable = ({"au": 99.58}, {"au": statistics.stdev([100.0, 98.74, 100.0])})
    fixed = ({"au": 100.0}, {"au": 0.0})
    assert TABLE_SEEDS == 3 and seed_noise(learnable, fixed, "au") == pytest.approx(0.84, abs=1e-3)
    # the two points' errors add in quadrature, whichever comes first
    a, b = ({"kl": 1.0}, {"kl": 3.0}), ({"kl": 9.0}, {"kl": 4.0})
    assert seed_noise(a, b, "kl") == seed_noise(b, a, "kl") == pytest.approx(10 / 3**0.5)


def test_collect_records_the_full_entries(run_cli, tmp_path: Path) -> None:
    out, records = tmp_path / "out", tmp_path / "records"
    assert run_cli("reproduce", "thm3-synthetic", "--out", str(out)).code == 0  # full
    assert run_cli("reproduce", "thm2-synthetic", "--quick", "--out", str(out)).code == 0
    recorded = run_cli("reproduce", "--collect", "--out", str(out), "--record", str(records))
    assert recorded.code == 0 and "recorded 1 full entries" in recorded.out
    assert sorted(p.name for p in records.iterdir() if p.is_dir()) == ["thm3-synthetic"]
    for name in ("comparison.md", "result.json", "results.csv"):
        assert (records / "thm3-synthetic" / name).read_bytes() == (
            out / "thm3-synthetic" / name
        ).read_bytes()
    again = run_cli("reproduce", "--collect", "--out", str(out), "--record", str(records))
    assert again.code == 0  # a records folder is ours to update
    alone = run_cli("reproduce", "--record", str(records), "--out", str(out))
    assert alone.code == 2 and "--record goes with --collect" in alone.err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = run_cli("reproduce", "--collect", "--out", str(out), "--record", str(foreign))
    assert refused.code == 2 and (foreign / "notes.txt").read_text() == "mine"
    # while a run writes into --out, nothing is recorded from it (a result may be half-written)
    from vaecollapse.core.rundir import claimed_directory

    fresh = tmp_path / "fresh"
    with claimed_directory(out, "reproduction"):
        busy = run_cli("reproduce", "--collect", "--out", str(out), "--record", str(fresh))
    assert busy.code == 2 and "is in use by pid" in busy.err and not fresh.exists()


def test_the_reconstruction_error_is_eq_10_and_does_not_depend_on_images_a_pass() -> None:
    from vaecollapse.core.models import VAE, VAEConfig
    from vaecollapse.reproductions.dai2020.decoder_variance import reconstruction_error

    torch.manual_seed(0)
    x = torch.randn(23, 6)
    model = VAE(VAEConfig(data_dim=6, latent_dim=3, backbone="mlp", hidden=8)).eval()
    # eq. (10) written out: four draws of z per row, the squared error averaged over draws,
    # rows and pixels
    noise = torch.randn((4, 23, 3), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean, logvar = model.encode(x)
        expected = ((x - model.decoder(mean + torch.exp(0.5 * logvar) * noise)) ** 2).mean()
    for images in (20, 92, 1024):  # 5 rows a pass, all 23, all
        assert reconstruction_error(model, x, 4, images) == pytest.approx(float(expected), rel=1e-5)
    # the autoencoder decodes its code: no draws
    autoencoder = VAE(VAEConfig(data_dim=6, latent_dim=3, hidden=8, deterministic=True)).eval()
    with torch.no_grad():
        code = autoencoder.encode(x)[0]
        direct = float(((x - autoencoder.decoder(code)) ** 2).mean())
    assert reconstruction_error(autoencoder, x, 4, images=5) == pytest.approx(direct, rel=1e-5)
