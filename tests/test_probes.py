"""The probes and the verdict on users' models whose answer is known by construction: a decoder
that reads only some dimensions, one that ignores z while the encoder's KL is large, a lagging
encoder in front of an informative decoder, the exact linear optimum at a β that collapses two
modes, and loss functions that weight the KL wrongly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from vaecollapse.core.data.synthetic import gaussian_with_spectrum
from vaecollapse.core.diagnostics import amortisation_gap, decoder_usage, diagnose
from vaecollapse.core.diagnostics.verdict import CAUSES
from vaecollapse.core.errors import InputError, MisreadingWarning

D, d = 12, 4
THETA2 = np.array([9.0, 2.25, 1.0, 0.25])  # θ_i² of the data's four modes


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    """600 rows whose second moment has eigenvalues THETA2 along the first four axes exactly, and
    whose mean is exactly zero (each row beside its negative)."""
    values = np.concatenate([THETA2, np.zeros(D - 4)])
    rows = gaussian_with_spectrum(300, values, seed=0, rotate=False, exact=True)
    return torch.as_tensor(np.concatenate([rows, -rows]), dtype=torch.float32)


def _linear(weight: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.zero_()
    return layer


class LinearVAE(nn.Module):
    """The linear VAE at its global optimum for β and η_dec (η_enc = 1), written as a user would:
    mode i of variance θ_i² keeps u_i² = θ_i² − β·η² (0 below the threshold), the encoder's mean
    is u_i·x_i/θ_i² and its variance β·η²/θ_i² (1 where the mode is collapsed)."""

    def __init__(self, beta: float, eta: float) -> None:
        super().__init__()
        theta2 = torch.as_tensor(THETA2, dtype=torch.float32)
        u = torch.sqrt(torch.clamp(theta2 - beta * eta**2, min=0))
        self.decoder = _linear(torch.eye(D, d) * u)
        self.encoder = _linear(torch.eye(d, D) * (u / theta2)[:, None])
        self.logvar = torch.where(u > 0, torch.log(beta * eta**2 / theta2), torch.zeros(d))

    def encode(self, batch):
        mean = self.encoder(batch)
        return mean, self.logvar.expand_as(mean)


def _codes(report) -> dict[str, list]:
    return {f["code"]: f["dims"] for f in report.verdict["findings"]}


def test_a_decoder_that_reads_only_two_dimensions(x) -> None:
    model = LinearVAE(beta=0.1, eta=1.0)  # every mode active, KL well above ε in all four
    with torch.no_grad():
        model.decoder.weight[:, 2:] = 0  # ... but the decoder reads dimensions 0 and 1 only
    usage = decoder_usage(model_as_latent(model), x)
    assert usage.used_dims(0.01) == [0, 1]
    assert usage.ablation[2:].tolist() == [0.0, 0.0] and usage.information_used > 1
    report = diagnose(model, x, decoder=model.decoder, eta_dec=1.0)
    assert report.collapsed_dims == []
    assert _codes(report) == {"decoder-ignores-latent": [2, 3]}


def model_as_latent(model):
    from vaecollapse.core.adapters import as_latent_model

    return as_latent_model(model, decoder=model.decoder, eta_dec=1.0)


def test_a_decoder_that_ignores_z_while_the_kl_is_large(x) -> None:
    model = LinearVAE(beta=0.1, eta=1.0)
    with torch.no_grad():
        model.decoder.weight.zero_()
    report = diagnose(model, x, decoder=model.decoder, eta_dec=1.0)
    usage = report.probes["decoder_usage"]
    assert report.kl_total > 4 and usage.information_used == 0 and usage.prior == usage.posterior
    assert _codes(report) == {"decoder-ignores-latent": [0, 1, 2, 3]}
    # and never the prose of another cause: the finding says the decoder does not read z
    (finding,) = report.verdict["findings"]
    assert "does not read" in finding["explanation"]


def test_a_lagging_encoder_is_told_from_an_objective_that_prefers_collapse(x) -> None:
    informative = LinearVAE(beta=0.1, eta=1.0).decoder

    def at_the_prior(batch):  # an encoder that has not caught up: q(z|x) = p(z) for every row
        zeros = torch.zeros(batch.shape[0], d)
        return zeros, zeros

    gap = amortisation_gap(model_as_latent_pair(at_the_prior, informative), x[:200])
    assert gap.collapsed_before == [0, 1, 2, 3] and gap.revived == [0, 1, 2, 3]
    assert gap.gain > 10 * gap.gain_error and gap.gain > 1
    report = diagnose(at_the_prior, x, decoder=informative, eta_dec=1.0)
    assert report.verdict["levels"]["z"]["collapsed_as_a_whole"]
    assert _codes(report) == {"lagging-encoder": [0, 1, 2, 3]}
    # the same encoder before a decoder that ignores z: nothing to gain, nothing revives
    silent = nn.Linear(d, D)
    with torch.no_grad():
        silent.weight.zero_()
    report = diagnose(at_the_prior, x, decoder=silent, eta_dec=1.0)
    assert report.probes["amortisation_gap"].revived == []
    assert _codes(report) == {"over-regularised": [0, 1, 2, 3]}


def model_as_latent_pair(encoder, decoder):
    from vaecollapse.core.adapters import EncoderModel

    return EncoderModel(encoder, decoder=decoder, eta_dec=1.0)


def test_the_linear_threshold_explains_a_kl_weighted_beyond_two_modes(x) -> None:
    # β·η² = 4 exceeds θ² = 2.25, 1, 0.25 of modes 2-4; d = 4 keeps one mode, three collapse
    model = LinearVAE(beta=4.0, eta=1.0)
    report = diagnose(model, x, decoder=model.decoder, eta_dec=1.0, beta=4.0)
    assert report.collapsed_dims == [1, 2, 3]
    codes = _codes(report)
    assert (
        set(codes) == {"over-regularised", "learnable-variance"} and codes["over-regularised"] == 3
    )
    (over,) = [f for f in report.verdict["findings"] if f["code"] == "over-regularised"]
    # the next mode revives below β = θ_2²/η² = 2.25 (at η_dec = 1) or η_dec < 1.5/2 = 0.75
    assert "β < 2.25 (at η_dec = 1)" in over["suggestion"] and "η_dec < 0.75" in over["suggestion"]
    assert "β stated, η_dec stated" in over["explanation"]
    # without β the probes still name the cause: per-row posteriors stay at the prior
    assert _codes(diagnose(model, x, decoder=model.decoder, eta_dec=1.0)) == {
        "over-regularised": [1, 2, 3]
    }


def _small_model():
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(D, 2 * d)
            self.decoder = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, D))

        def encode(self, batch):
            return self.encoder(batch).chunk(2, dim=1)

        def forward(self, batch):
            mean, logvar = self.encode(batch)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            return self.decoder(z), mean, logvar

    return Model()


def _kl(mean, logvar):
    return 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)


@pytest.fixture(scope="module")
def binary(x) -> torch.Tensor:
    return (x > 0).float()


def test_a_mean_reduced_reconstruction_is_a_loss_scale_cause(binary) -> None:
    model = _small_model()

    def mean_reduced(model, batch):  # BCE averaged over the 12 pixels, KL summed over z
        logits, mean, logvar = model(batch)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, batch)
        return bce + _kl(mean, logvar).mean()

    report = diagnose(model, binary, decoder=model.decoder, likelihood="bernoulli",
                      loss_fn=mean_reduced)  # fmt: skip
    assert report.probes["loss_scale"].kl_weight == pytest.approx(D, rel=1e-3)
    (finding,) = [f for f in report.verdict["findings"] if f["code"] == "loss-scale"]
    assert f"averaged over the {D} values of a row" in finding["explanation"]

    def summed(model, batch):  # the ELBO as it should be, β = 2
        logits, mean, logvar = model(batch)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, batch, reduction="none")
        return (bce.sum(1) + 2.0 * _kl(mean, logvar)).mean()

    report = diagnose(model, binary, decoder=model.decoder, likelihood="bernoulli",
                      loss_fn=summed, beta=2.0)  # fmt: skip
    assert report.probes["loss_scale"].kl_weight == pytest.approx(2.0, rel=1e-3)
    assert "loss-scale" not in _codes(report)


def test_a_kl_that_never_reaches_the_gradient_and_a_mean_squared_error(x) -> None:
    model = _small_model()

    def detached(model, batch):
        out, mean, logvar = model(batch)
        return (0.5 * (out - batch).square().sum(1) + _kl(mean, logvar).detach()).mean()

    report = diagnose(model, x, decoder=model.decoder, eta_dec=1.0, loss_fn=detached)
    assert abs(report.probes["loss_scale"].kl_weight) < 1e-4
    (finding,) = [f for f in report.verdict["findings"] if f["code"] == "loss-scale"]
    assert "no KL term" in finding["explanation"]

    def mse(model, batch):  # mean squared error over the row: β_eff = β·D/2 at η_dec = 1
        out, mean, logvar = model(batch)
        return nn.functional.mse_loss(out, batch) + _kl(mean, logvar).mean()

    report = diagnose(model, x, decoder=model.decoder, eta_dec=1.0, loss_fn=mse)
    assert report.probes["loss_scale"].kl_weight == pytest.approx(D / 2, rel=1e-3)
    assert "a mean squared error" in str(report.verdict["findings"])


def test_loss_fn_errors_are_one_paragraph(x) -> None:
    model = _small_model()
    with pytest.raises(InputError, match="scalar tensor"):
        diagnose(model, x, decoder=model.decoder, eta_dec=1.0, loss_fn=lambda m, b: m(b)[0])
    with pytest.raises(InputError, match="never called the encoder"):
        diagnose(model, x, decoder=model.decoder, eta_dec=1.0, loss_fn=lambda m, b: b.sum() * 0)
    with pytest.raises(InputError, match="not a bare function"):
        diagnose(lambda b: model.encode(b), x, decoder=model.decoder, eta_dec=1.0,
                 loss_fn=lambda m, b: b.sum())  # fmt: skip
    with pytest.raises(InputError, match="beta must be"):
        diagnose(model, x, decoder=model.decoder, beta=-1.0)


def test_misreadings_warn_and_name_the_fix(x, binary) -> None:
    model = LinearVAE(beta=0.1, eta=1.0)

    def scale_encoder(batch):  # (loc, scale): positive everywhere
        mean, logvar = model.encode(batch)
        return mean, torch.exp(0.5 * logvar)

    with pytest.warns(MisreadingWarning, match="encoder_output='scale'"):
        misread = diagnose(scale_encoder, x)
    right = diagnose(scale_encoder, x, encoder_output="scale")
    assert [w["code"] for w in misread.warnings] == ["scale-read-as-logvar"]
    assert right.warnings == [] and abs(right.kl_total - misread.kl_total) > 1

    probabilities = nn.Sequential(model.decoder, nn.Sigmoid())
    with pytest.warns(MisreadingWarning, match="decoder_output='probabilities'"):
        diagnose(model, binary, decoder=probabilities, likelihood="bernoulli")
    read_right = diagnose(model, binary, decoder=probabilities, likelihood="bernoulli",
                          decoder_output="probabilities", iwae_k=5)  # fmt: skip
    assert read_right.warnings == [] and math.isfinite(read_right.iwae.mean)

    # an η_dec left at its default of 1 on data whose residuals are a tenth of that
    with pytest.warns(MisreadingWarning, match=r"eta_dec=0\.\d+"):
        far = diagnose(model, x * 0.1, decoder=model.decoder)
    assert [w["code"] for w in far.warnings] == ["eta-dec-far-from-residuals"]
    assert diagnose(model, x * 0.1, decoder=model.decoder, eta_dec=1.0).warnings == []


def test_near_total_collapse_is_headlined_as_a_whole() -> None:
    rows = 400
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 16, generator=generator)
    # 16 dimensions whose KL is 0.1 nats for 6% of the rows and 0 for the rest: each escapes the
    # (ε,δ) count, the level as a whole carries 0.1 nats
    mean = torch.zeros(rows, 16)
    mean[: int(0.06 * rows)] = math.sqrt(0.2)

    def encoder(batch):
        return mean[: batch.shape[0]], torch.zeros(batch.shape[0], 16)

    report = diagnose(encoder, x, batch_size=rows)
    assert report.collapsed_dims == [] and report.kl_total < 0.16
    text = repr(report)
    assert (
        "z: collapsed as a whole" in text.splitlines()[1]
        and "of 16 dimensions collapsed" not in text
    )
    assert report.verdict["findings"][0]["dims"] == list(range(16))


def test_disagreeing_counts_are_explained_in_one_sentence() -> None:
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))

    def encoder(batch):  # dimension 0 follows x; 1 and 2 are offset alike for every row
        mean = torch.stack([batch[:, 0], torch.ones(len(batch)), torch.ones(len(batch))], 1)
        return mean, torch.full_like(mean, -2.0)

    report = diagnose(encoder, x)
    assert report.collapsed_dims == [] and report.active_units == 1
    note = report.verdict["levels"]["z"]["counts_note"]
    assert note.startswith("2 dimension(s) have KL ≥ ε yet a mean that hardly moves with x")
    assert "counts: " + note in repr(report)


def test_every_code_is_documented_and_the_report_is_json(x) -> None:
    from tests.conftest import REPO_ROOT

    page = (REPO_ROOT / "docs" / "diagnosis.md").read_text()
    for code in CAUSES:
        assert f"`{code}`" in page, code
    model = LinearVAE(beta=4.0, eta=1.0)
    report = diagnose(model, x, decoder=model.decoder, eta_dec=1.0, beta=4.0)
    text = report.to_json()
    assert isinstance(text, str)
    parsed = json.loads(text)
    assert {f["code"] for f in parsed["verdict"]["findings"]} <= set(CAUSES)
    assert set(parsed["probes"]) == {"decoder_usage", "amortisation_gap"}
    assert parsed["settings"]["beta"] == 4.0
