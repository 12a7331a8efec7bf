"""The helpers of the Lucas et al. and He et al. entries, on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaecollapse.core.data import gaussian_with_spectrum, synthetic_dataset
from vaecollapse.core.models import VAE, VAEConfig
from vaecollapse.core.theory import ppca_closed_form, vae_spectrum
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.he2019.lagging_inference import (
    aggressive_phase,
    information_gain,
    information_race,
)
from vaecollapse.reproductions.lucas2019.ppca_equivalence import (
    CHECK_EVERY,
    CONVERGED,
    LUCAS2019,
    REACHED,
    check_converged,
    converged_ppca,
    exact_elbo,
    reached_at,
    stopping_change,
)
from vaecollapse.reproductions.registry import Context, by_paper, run_entry
from vaecollapse.studies.remedy_bench import RunResult, summarise


def test_the_elbo_at_ppcas_optimum_is_its_exact_log_likelihood() -> None:
    """Set a linear VAE to maximum-likelihood pPCA (W = U_k (Λ_k − σ²)^½, the exact posterior
    q = N(M⁻¹Wᵀx, σ² M⁻¹), diagonal since WᵀW is): its float64 ELBO is the closed-form
    log-likelihood, and a rotated W (same likelihood, non-diagonal posterior) falls below it."""
    x = gaussian_with_spectrum(400, [5.0, 3.0, 2.0, 0.5, 0.4, 0.3], seed=1)
    x = x - x.mean(0)
    dataset = synthetic_dataset("ppca", x)
    k = 2
    likelihood = -ppca_closed_form(vae_spectrum(dataset), k).loss
    eig, vectors = np.linalg.eigh(x.T @ x / len(x))
    eig, vectors = eig[::-1], vectors[:, ::-1]
    noise = eig[k:].mean()

    def elbo_with(w: np.ndarray) -> float:
        m = w.T @ w + noise * np.eye(k)
        model = VAE(
            VAEConfig(data_dim=6, latent_dim=k, encoder_variance="shared", learn_eta_dec=True)
        )
        with torch.no_grad():
            model.decoder.weight.copy_(torch.tensor(w))
            model.head.mean.weight.copy_(torch.tensor(np.linalg.solve(m, w.T)))
            model.head.shared_logvar.copy_(torch.tensor(np.log(noise * np.diag(np.linalg.inv(m)))))
            model.log_eta_dec.fill_(0.5 * math.log(noise))
        return exact_elbo(model, dataset)["elbo"]

    w = vectors[:, :k] * np.sqrt(eig[:k] - noise)
    assert elbo_with(w) == pytest.approx(likelihood, abs=1e-9 * abs(likelihood))
    turn = np.array([[math.cos(0.6), -math.sin(0.6)], [math.sin(0.6), math.cos(0.6)]])
    assert elbo_with(w @ turn) < likelihood - 1e-3  # the diagonal q cannot follow the rotation


def test_reached_counts_from_the_first_snapshot_that_stays_within_reach() -> None:
    at = lambda gaps: reached_at(  # noqa: E731
        [{"epoch": e, "elbo": 10.0 - g} for e, g in zip((1, 2, 5, 9), gaps, strict=True)], 10.0
    )
    small, large = REACHED / 2, REACHED * 2
    assert at([large, small, small, small]) == 2
    assert at([small, large, small, small]) == 5  # it left the reach again at epoch 2
    assert at([large, large, large, small]) == 9
    assert at([small, small, small, large]) is None
    gaps = {1: 3.0, 2: 1.5, 5: 0.5, 9: 0.4}
    wider = [{"epoch": e, "elbo": 10.0 - g} for e, g in gaps.items()]
    assert reached_at(wider, 10.0, within=1.0) == 5 and reached_at(wider, 10.0, within=2.0) == 2


def test_the_stopping_rule_reads_the_change_since_the_snapshot_one_stage_before() -> None:
    """The change is the last snapshot's against the one CHECK_EVERY epochs before it, whatever
    lies between; a run without that snapshot cannot have met the rule."""
    rows = lambda *pairs: [{"epoch": e, "elbo": v} for e, v in pairs]  # noqa: E731
    slow = CONVERGED / 2
    two = rows((CHECK_EVERY, 5.0), (CHECK_EVERY + 10, 9.0), (2 * CHECK_EVERY, 5.0 + slow))
    assert stopping_change(two) == pytest.approx(slow)
    fast = rows((CHECK_EVERY, 5.0), (2 * CHECK_EVERY, 5.0 + 2 * CONVERGED))
    assert stopping_change(fast) == pytest.approx(2 * CONVERGED) and 2 * CONVERGED > CONVERGED
    assert stopping_change(rows((CHECK_EVERY, 5.0), (2 * CHECK_EVERY - 1, 5.0))) == math.inf
    assert stopping_change(rows((2 * CHECK_EVERY, 6.0), (3 * CHECK_EVERY, 5.0))) == 1.0


def test_the_stopping_rule_holds_only_for_a_run_it_stopped_before_the_cap() -> None:
    claim = Claim("converged")
    check_converged(claim, "met: ", CONVERGED / 2, 3000, 20000)
    assert claim.holds and claim.checks[0].gap == 17000
    check_converged(claim, "capped: ", 2 * CONVERGED, 20000, 20000)  # the cap stopped it
    assert not claim.checks[1].holds and not claim.holds


def test_the_lucas_entries_share_one_output_folder(tmp_path) -> None:
    """Every Lucas entry, run one after another into the same folder (cut at 2 steps), finds
    its runs in the shared area without claiming a run directory another trained otherwise."""
    for entry in by_paper()[LUCAS2019]:
        result = run_entry(entry.name, tmp_path, quick=True, epochs=2)
        assert result.train_seconds > 0 and (tmp_path / entry.name / "result.json").is_file()


def test_a_run_stopped_short_of_the_rule_goes_on_from_where_it_stopped(tmp_path) -> None:
    """Cut at 1500 steps (``--epochs``), the quick lucas-ppca run has not met the rule; asked
    again without the cut it resumes from 1500 (not from the early stages behind it) and trains
    on until the rule is met, every snapshot of the first call kept."""
    *_, cut, _ = converged_ppca(Context(tmp_path, quick=True, epochs=1500))
    assert cut[-1]["epoch"] == 1500 and stopping_change(cut) >= CONVERGED
    *_, whole, _ = converged_ppca(Context(tmp_path, quick=True))
    assert whole[: len(cut)] == cut and whole[-1]["epoch"] > 1500
    assert stopping_change(whole) < CONVERGED
    assert [row["epoch"] for row in whole[len(cut) :]] == list(
        range(1500 + CHECK_EVERY, whole[-1]["epoch"] + 1, CHECK_EVERY)
    )


def _run(
    remedy: str, information: float, curve: list | None = None, steps: int = 10, on: int = 0
) -> RunResult:
    return RunResult(
        remedy, 0, 1.0, 1, information, 0, -1.0, 0.1, 1.0, 1.0, steps, 4, None, [], [],
        curve or [], on,
    )  # fmt: skip


def test_the_information_race_averages_seeds_at_the_chosen_epochs() -> None:
    curve = lambda level: [(e, level + e / 10) for e in range(1, 9)]  # noqa: E731
    results = [_run("none", 0, curve(1.0)), _run("none", 0, curve(2.0))]
    results += [_run("warmup", 0, curve(0.0)), _run("aggressive", 0, curve(5.0))]
    epochs, race = information_race(results, 8)
    assert epochs == [1, 2, 4, 8]  # the first, a quarter, half and all of 8 epochs
    assert race["none"] == pytest.approx([1.6, 1.7, 1.9, 2.3])
    assert race["aggressive"] == pytest.approx([5.1, 5.2, 5.4, 5.8])
    sparse = [_run(r, 0, [(e, e / 10) for e in (4, 8, 12)]) for r in ("none", "warmup")]
    epochs, race = information_race([*sparse, _run("aggressive", 0, [(4, 1), (8, 2), (12, 3)])], 12)
    assert epochs == [4, 8, 12] and race["aggressive"] == [1, 2, 3]  # monitored every 4 epochs


def test_the_aggressive_phase_counts_encoder_steps_beyond_the_decoders() -> None:
    # 10 epochs of 50 decoder steps; seeds on for 2 and 4 epochs with 1000 and 2000 encoder steps
    results = [
        _run("aggressive", 0, steps=500 + 1000, on=2),
        _run("aggressive", 0, steps=2500, on=4),
    ]
    on, ratio = aggressive_phase([*results, _run("none", 0, steps=500)], 10, 50)
    assert on == [2, 4] and ratio == pytest.approx(3000 / (6 * 50))


def test_information_gain_is_the_difference_of_means_with_its_standard_error() -> None:
    results = [_run("none", v) for v in (1.0, 2.0, 3.0)] + [
        _run("aggressive", v) for v in (4.0, 4.0, 7.0)
    ]
    rows = {row["remedy"]: row for row in summarise(results)}
    gain, error = information_gain(rows, "aggressive", "none")
    assert gain == pytest.approx(3.0)
    # standard errors of the two means: 1/√3 and √3/√3 = 1; combined in quadrature
    assert error == pytest.approx(math.sqrt(1 / 3 + 1))
