"""The registry's declared sweeps (``vaecollapse.reproductions.sweeps``): how lines through a grid
of diagnosed runs become a claim, paper-vs-ours lines, rows and panels. The reports are built from
KL matrices whose summaries are known, so each direction and check has a known answer."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vaecollapse.core.diagnostics.report import DiagnosisReport, LevelReport
from vaecollapse.reproductions.common import RunOutcome
from vaecollapse.reproductions.registry import Context
from vaecollapse.reproductions.sweeps import Grid, Line, LineSweep, Measure
from vaecollapse.training.config import TrainConfig


def outcome(kl_per_dim: list[float], rows: int = 10, seed: int = 0) -> RunOutcome:
    """A diagnosed run whose every row has the KL per dimension ``kl_per_dim``."""
    kl = torch.tensor(kl_per_dim, dtype=torch.float64).expand(rows, -1).clone()
    level = LevelReport(
        kl=kl, mean_variance=kl.mean(0), encoder_std=torch.ones_like(kl), epsilon=0.01, delta=0.05
    )
    report = DiagnosisReport({"z": level}, epsilon=0.01, delta=0.05)
    return RunOutcome({}, [{"seconds": 2.0}], report, Path("unused"), seed)


KL = Measure("kl", "KL (nats)", "KL", follows_kl=True, judge="kl")
COLLAPSED = Measure(
    "collapsed", "collapsed dimensions", fmt="{:.0f}", follows_kl=False, judge="monotone"
)


def row(line: Line, point, result: RunOutcome) -> dict:
    return {"sweep": line.name, "point": point, "kl": result.report.kl_total}


def sweep_of(lines, measures=(KL, COLLAPSED), **options) -> LineSweep:
    return LineSweep("the KL falls along a and b", tuple(lines), tuple(measures), row, **options)


OUTCOMES = {  # one seed a point
    "a1": [outcome([2.0, 1.0, 0.5])],
    "a2": [outcome([1.0, 0.5, 0.0])],
    "a3": [outcome([0.5, 0.0, 0.0])],
    "b1": [outcome([0.5, 0.5, 0.0])],
    "b2": [outcome([1.0, 1.0, 1.0])],  # the KL rises along b
}


def test_a_line_against_its_claimed_direction_fails_the_claim_and_names_the_line(tmp_path):
    ctx = Context(tmp_path, quick=True)
    falls = Line("a", (1, 2, 3), ("a1", "a2", "a3"), kl_rises=False)
    result = sweep_of([falls]).result(ctx, OUTCOMES)
    assert result.claim_holds
    assert [r["point"] for r in result.rows] == ["a1", "a2", "a3"]
    assert result.train_seconds == pytest.approx(6.0)
    kl_line, collapsed_line = result.comparisons
    assert kl_line.ours == "3.50, 1.50, 0.50" and kl_line.agreement.startswith("falls")
    assert collapsed_line.ours == "0, 1, 2" and collapsed_line.agreement.startswith("rises")

    rises = Line("b", (1, 2), ("b1", "b2"), kl_rises=False)
    failed = sweep_of([falls, rises]).result(ctx, OUTCOMES)
    assert not failed.claim_holds
    assert "as b grows" in failed.margin and "FAILS" in failed.margin
    # a line that is only reported does not decide the claim, and is still shown
    reported = Line("b", (1, 2), ("b1", "b2"), kl_rises=False, asserted=False)
    shown = sweep_of([falls, reported]).result(ctx, OUTCOMES)
    assert shown.claim_holds and len(shown.comparisons) == 4
    assert shown.comparisons[2].agreement == "rises, where the paper's falls"


def test_monotone_judges_every_step_not_only_the_end_points(tmp_path):
    """table3's AU: 100, 25, 50 falls from end to end but rises in its second step."""
    ctx = Context(tmp_path, quick=True)
    share = Measure("au_kl_pairs_pct", "AU %", fmt="{:.0f}", follows_kl=True, judge="monotone")
    down_up = {
        "p": [outcome([1.0, 1.0, 1.0, 1.0])],
        "q": [outcome([1.0, 0.0, 0.0, 0.0])],
        "r": [outcome([1.0, 1.0, 0.0, 0.0])],
    }
    line = Line("a", (1, 2, 3), ("p", "q", "r"), kl_rises=False)
    result = sweep_of([line], [share]).result(ctx, down_up)
    assert not result.claim_holds and "FAILS by -25" in result.margin
    assert "not monotone" in result.comparisons[0].agreement
    ordered = Line("a", (1, 2, 3), ("p", "r", "q"), kl_rises=False)
    assert sweep_of([ordered], [share]).result(ctx, down_up).claim_holds


def test_printed_values_appear_in_full_runs_at_the_sweeps_level_only(tmp_path):
    printed = {"kl": (9.0, 8.0, 7.0)}
    line = Line("a", (1, 2, 3), ("a1", "a2", "a3"), kl_rises=False, paper=printed)
    other_level = Measure("kl", "KL of z again", level="z")
    iwae = Measure("iwae_ll", "IWAE")  # the runs have no IWAE estimate: left out
    sweep = sweep_of([line], [KL, other_level, iwae], figure="lines.png", paper_says=None)
    full = sweep.result(Context(tmp_path, quick=False), OUTCOMES)
    assert [c.paper for c in full.comparisons] == ["9, 8, 7", "—"]
    assert full.figures == [tmp_path / "lines.png"] and full.figures[0].stat().st_size > 0
    quick_ctx = Context(tmp_path, quick=True)
    quick = sweep.result(quick_ctx, OUTCOMES)
    assert [c.paper for c in quick.comparisons] == ["—", "—"]
    said = sweep_of([line], paper_says="larger a → less KL").result(
        Context(tmp_path, True), OUTCOMES
    )
    assert {c.paper for c in said.comparisons} == {"larger a → less KL"}


def test_several_seeds_are_judged_on_their_means_and_shown_with_their_spread(tmp_path):
    # point s2's first seed alone would rise against the claim; the mean over seeds falls
    seeded = {
        "s1": [outcome([2.0, 2.0], seed=0), outcome([2.0, 1.0], seed=1)],
        "s2": [outcome([2.5, 2.0], seed=0), outcome([0.5, 0.0], seed=1)],
    }
    line = Line("a", (1, 2), ("s1", "s2"), kl_rises=False)
    result = sweep_of([line], [KL]).result(Context(tmp_path, quick=True), seeded)
    assert result.claim_holds
    assert result.comparisons[0].ours == "3.50 ± 0.71, 2.50 ± 2.83"
    assert [(r["point"], r["seed"]) for r in result.rows] == [
        ("s1", 0), ("s1", 1), ("s2", 0), ("s2", 1),
    ]  # fmt: skip
    assert result.train_seconds == pytest.approx(8.0)
    first_seeds = {p: runs[:1] for p, runs in seeded.items()}
    assert not sweep_of([line], [KL]).result(Context(tmp_path, quick=True), first_seeds).claim_holds


def test_a_flat_count_passes_no_step_against_it_but_fails_more_collapse(tmp_path):
    ctx = Context(tmp_path, quick=True)
    flat = {"f1": [outcome([2.0, 1.0, 0.0])], "f2": [outcome([1.5, 0.5, 0.0])]}  # 1 and 1
    line = Line("f", (1, 2), ("f1", "f2"), kl_rises=False)
    strictly = Measure(
        "collapsed", "collapsed dimensions", fmt="{:.0f}", follows_kl=False, judge="strictly"
    )
    assert sweep_of([line], [KL, COLLAPSED]).result(ctx, flat).claim_holds
    failed = sweep_of([line], [KL, strictly]).result(ctx, flat)
    assert not failed.claim_holds
    assert "collapsed dimensions: the last f against the first: 1 > 1 (FAILS" in failed.margin
    rising = {"f1": flat["f1"], "f2": [outcome([1.5, 0.0, 0.0])]}  # 1, then 2 collapsed
    assert sweep_of([line], [KL, strictly]).result(ctx, rising).claim_holds


def test_a_kl_along_its_own_weight_is_listed_as_a_consistency_check(tmp_path):
    ctx = Context(tmp_path, quick=True)
    own = Line("a", (1, 2, 3), ("a1", "a2", "a3"), kl_rises=False)
    other = Line("c", (1, 2), ("b1", "b2"), kl_rises=True, kl_weight=False)
    result = sweep_of([own, other]).result(ctx, OUTCOMES)
    kinds = {check.split("] ")[1].split(":")[0]: check.split("]")[0] for check in result.checks}
    assert kinds == {
        "KL as a grows": "[consistency",
        "collapsed dimensions as a grows": "[information",
        "KL as c grows": "[information",
        "collapsed dimensions as c grows": "[information",
    }
    from vaecollapse.reproductions.registry import REGISTRY, to_markdown

    text = to_markdown(REGISTRY["fig2b"], result, quick=True)
    assert "- [consistency] KL as a grows: 3.5, 1.5, 0.5 falls" in text


def test_a_grid_whose_points_share_a_directory_is_refused_before_training(tmp_path):
    grid = Grid(
        "g", "vae", {"latent_dim": 2}, vary=lambda p: {"beta": p}, label=lambda p: "same",
        training=TrainConfig(epochs=1),
    )  # fmt: skip
    with pytest.raises(ValueError, match="share a run directory"):
        grid.train(Context(tmp_path, quick=True), None, [1.0, 2.0])
    assert not (tmp_path / "runs").exists()


def test_a_grid_of_several_seeds_keeps_its_first_seeds_runs_and_seeds_the_others(tmp_path):
    from vaecollapse.core.data import load_dataset

    data = load_dataset("digits")
    grid = Grid(
        "g", "vae", {"latent_dim": 2}, vary=lambda beta: {"beta": beta},
        label=lambda beta: f"beta{beta:g}", training=TrainConfig(epochs=2, lr=1e-2, seed=4),
    )  # fmt: skip
    ctx = Context(tmp_path, quick=True)
    alone = grid.train(ctx, data, [1.0])[1.0]
    seeded = replace(grid, seeds=3).train_seeds(ctx, data, [1.0, 2.0])
    runs = ctx.run_dir("g")
    assert sorted(p.name for p in runs.iterdir()) == [
        "beta1", "beta1-seed5", "beta1-seed6", "beta2", "beta2-seed5", "beta2-seed6",
    ]  # fmt: skip
    assert [o.seed for o in seeded[1.0]] == [4, 5, 6]
    first, second = seeded[1.0][0], seeded[1.0][1]
    assert first.run_dir == alone.run_dir and first.history == alone.history  # found complete
    assert second.history[-1]["train_loss"] != first.history[-1]["train_loss"]
    with pytest.raises(ValueError, match="train_seeds"):
        replace(grid, seeds=2).train(ctx, data, [1.0])


def test_sharpness_per_image_and_the_noise_of_a_paired_step():
    from vaecollapse.reproductions.dang2024.mhvae_sweeps import image_sharpness, step_noise

    stripes = torch.tensor([[0.0, 1.0] * 8] * 4).reshape(1, 64)  # 8×8, alternating columns
    flat = torch.full((1, 64), 0.5)
    values = image_sharpness(torch.cat([stripes, flat]), (1, 8, 8))
    assert values.tolist() == pytest.approx([0.5, 0.0])  # across 1, down 0: (1 + 0) / 2
    # the same shift for every image is no noise; a shift of ±1 over 4 images is
    base = np.arange(4.0)
    assert step_noise([base, base + 0.3, base + 0.5]) == pytest.approx(0.0, abs=1e-12)
    assert step_noise([base, base + np.array([1.0, -1.0, 1.0, -1.0])]) == pytest.approx(
        2 * np.std([1.0, -1.0, 1.0, -1.0], ddof=1) / 2
    )
