"""Latents that are grids — (B, C, H, W) of a latent-diffusion autoencoder, (B, T, d) of a
sequence model — diagnosed without flattening: KL and collapse per channel and per position, the
aggregate posterior per channel against the prior, ablations per channel, and a diffusers
AutoencoderKL read through its adapter. Every expected figure is computed from the constructed
encoder's parameters, independently of the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import vaecollapse
from vaecollapse.core.diagnostics.plots import plot_kl_map
from vaecollapse.core.errors import InputError

C, H, W = 4, 4, 4


def _grid_encoder(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(z | x) over a (4, 4, 4) grid from 8 input features: channel 0 carries x[:, :4] in its
    top-left 2×2 positions with σ = 0.5; channel 2 has a row-independent mean 1 and σ = 2 at
    every position; channels 1 and 3 are the prior N(0, 1) everywhere."""
    b = x.shape[0]
    mean = torch.zeros(b, C, H, W)
    logvar = torch.zeros(b, C, H, W)
    mean[:, 0, :2, :2] = x[:, :4].reshape(b, 2, 2)
    logvar[:, 0, :2, :2] = 2 * math.log(0.5)
    mean[:, 2] = 1.0
    logvar[:, 2] = 2 * math.log(2.0)
    return mean, logvar


def _kl(mean: torch.Tensor, std: float) -> torch.Tensor:
    """KL(N(mean, std²) ‖ N(0, 1)) per value."""
    return 0.5 * (mean.square() + std**2 - 1) - math.log(std)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(4000, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def report(x):
    return vaecollapse.diagnose(_grid_encoder, x)


def test_kl_per_channel_and_per_position_match_the_constructed_posterior(report, x) -> None:
    level = report.levels["z"]
    assert level.latent_shape == (C, H, W) and level.latent_dim == C * H * W
    carried = _kl(x[:, :4], 0.5).double().mean(0)  # (4,): channel 0's four positions
    spread = float(_kl(torch.ones(1), 2.0))  # every position of channel 2
    expected = np.array([float(carried.sum()), 0.0, 16 * spread, 0.0])
    np.testing.assert_allclose(level.kl_per_channel, expected, rtol=1e-6, atol=1e-9)
    grid = np.full((H, W), spread)
    grid[:2, :2] += carried.reshape(2, 2).numpy()
    np.testing.assert_allclose(level.kl_per_position, grid, rtol=1e-6)
    assert level.collapsed_channels == [1, 3]
    assert level.collapsed_per_channel.tolist() == [12, 16, 0, 16]
    out = report.to_dict()["levels"]["z"]
    assert out["latent_shape"] == [C, H, W] and len(out["kl_per_channel"]) == C
    assert np.asarray(out["kl_per_position"]).shape == (H, W)


def test_the_aggregate_posterior_per_channel_and_the_scaling_factor(report, x) -> None:
    aggregate = report.levels["z"].aggregate_posterior()
    # channel 0 pools 4 positions of N(x_j, 0.25) and 12 of N(0, 1) over the rows
    values = x[:, :4].double()
    mean0 = float(values.mean()) * 4 / 16
    second0 = (float((values.square() + 0.25).mean()) * 4 + 12) / 16
    expected_mean = [mean0, 0.0, 1.0, 0.0]
    expected_var = [second0 - mean0**2, 1.0, 4.0, 1.0]
    np.testing.assert_allclose(aggregate["mean"], expected_mean, atol=1e-9)
    np.testing.assert_allclose(np.square(aggregate["std"]), expected_var, rtol=1e-6)
    v, m = np.array(expected_var), np.array(expected_mean)
    np.testing.assert_allclose(
        aggregate["kl_to_prior"], 0.5 * (v + m**2 - 1 - np.log(v)), rtol=1e-6, atol=1e-12
    )
    # every latent value pooled: the std a diffusion model's latents are divided by
    shift = m.mean()
    pooled = np.mean(v + (m - shift) ** 2)
    assert aggregate["shift"] == pytest.approx(shift)
    assert aggregate["scaling_factor"] == pytest.approx(1 / math.sqrt(pooled), rel=1e-9)


def test_the_scaling_factor_is_the_std_of_drawn_latents() -> None:
    """An independent route: draw z ~ q(z | x) for many rows and take the std of every value."""
    rows = torch.randn(20000, 8, generator=torch.Generator().manual_seed(3))
    report = vaecollapse.diagnose(_grid_encoder, rows, probes=False)
    mean, logvar = _grid_encoder(rows)
    draws = mean + torch.exp(0.5 * logvar) * torch.randn(
        mean.shape, generator=torch.Generator().manual_seed(4)
    )
    scaling = report.levels["z"].aggregate_posterior()["scaling_factor"]
    assert scaling == pytest.approx(1 / float(draws.double().std()), rel=5e-3)


def test_a_sequence_latent_takes_its_features_as_channels() -> None:
    def encoder(x: torch.Tensor):  # (B, T=5, d=3): only feature 1 carries x, at every step
        mean = torch.zeros(x.shape[0], 5, 3)
        mean[:, :, 1] = x[:, :1]
        return mean, torch.zeros_like(mean)

    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    level = vaecollapse.diagnose(encoder, x, probes=False).levels["z"]
    assert level.channel_axis == 1 and level.position_shape == (5,)
    assert level.collapsed_channels == [0, 2]
    expected = 5 * 0.5 * float(x[:, 0].double().square().mean())
    assert level.kl_per_channel[1] == pytest.approx(expected, rel=1e-6)
    assert level.kl_per_position.shape == (5,)


def test_a_channels_last_grid_with_channel_axis(x) -> None:
    def channels_last(batch):
        mean, logvar = _grid_encoder(batch)
        return mean.permute(0, 2, 3, 1), logvar.permute(0, 2, 3, 1)

    first = vaecollapse.diagnose(_grid_encoder, x[:500], probes=False).levels["z"]
    last = vaecollapse.diagnose(channels_last, x[:500], probes=False, channel_axis=-1)
    np.testing.assert_allclose(last.levels["z"].kl_per_channel, first.kl_per_channel, rtol=1e-6)
    with pytest.raises(InputError, match="channel_axis 3 is not an axis"):
        vaecollapse.diagnose(_grid_encoder, x[:10], probes=False, channel_axis=3)


class _ReadsChannelZero(nn.Module):
    """A decoder of a (4, 4, 4) grid that reads channel 0 only: x̂ = the top-left 2×2 of it,
    padded with zeros to 8 features."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.shape[1:] == (C, H, W), "the decoder must receive the grid"
        top = z[:, 0, :2, :2].reshape(z.shape[0], 4)
        return torch.cat([top, torch.zeros_like(top)], dim=1)


def test_ablation_per_channel_finds_the_one_channel_the_decoder_reads(x) -> None:
    report = vaecollapse.diagnose(_grid_encoder, x[:1000], decoder=_ReadsChannelZero(), eta_dec=0.5)
    usage = report.probes["decoder_usage"]
    assert usage.ablation.shape == (C,) and not usage.per_value
    assert usage.used_dims(report.epsilon) == [0]
    assert usage.ablation[1:].tolist() == [0.0, 0.0, 0.0]
    assert usage.to_dict()["ablation_of"] == "channel"
    # channel 2 costs KL and is not read: the finding names exactly its 16 values
    findings = [f for f in report.verdict["findings"] if f["code"] == "decoder-ignores-latent"]
    assert len(findings) == 1
    assert findings[0]["dims"] == list(range(2 * H * W, 3 * H * W))
    text = repr(report)
    assert "channels [2]" in text and "channels of z (4×4×4, channel axis 0)" in text


def test_the_html_and_the_plots_show_channels(report) -> None:
    page = report._repr_html_()
    assert "<th>channel</th>" in page and "aggregate posterior of z per channel" in page
    figure = plot_kl_map(report)
    image = figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, report.levels["z"].kl_per_position)


def test_a_small_diffusers_autoencoder_is_read_as_it_is() -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=1, out_channels=1, latent_channels=4, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8,
    ).eval()  # fmt: skip
    x = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    report = vaecollapse.diagnose(vae, x, eta_dec=0.1, iwae_k=2)
    level = report.levels["z"]
    assert (
        level.latent_shape == (4, 4, 4)
        and len(report.to_dict()["levels"]["z"]["kl_per_channel"]) == 4
    )
    with torch.no_grad():
        own = vae.encode(x).latent_dist.kl()  # diffusers' own KL to N(0, I), summed per row
    assert level.kl_total == pytest.approx(float(own.double().mean()), rel=1e-5)
    assert report.settings["scaling_factor"] == pytest.approx(vae.config.scaling_factor)
    assert report.probes["decoder_usage"].ablation.shape == (4,)
    with torch.no_grad():  # the likelihood is N(decode(z).sample, η_dec²) summed over pixels
        z = vae.encode(x).latent_dist.mean
        expected = torch.distributions.Normal(vae.decode(z).sample, 0.1).log_prob(x).sum((1, 2, 3))
    latent = vaecollapse.core.adapters.as_latent_model(vae, eta_dec=0.1)
    latent.latent_levels(x[:1])  # learns the grid shape
    got = latent.log_likelihood(x, None, z.reshape(1, x.shape[0], -1))[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-3)


def test_the_monitor_records_a_grids_channels(x, tmp_path) -> None:
    events = []
    monitor = vaecollapse.CollapseMonitor(
        _grid_encoder, x[:500], out=tmp_path / "m.jsonl", on_event=events.append
    )
    messages = monitor.update(1)
    level = monitor.records[-1]["levels"]["z"]
    assert level["latent_shape"] == [C, H, W] and level["collapsed_channels"] == [1, 3]
    expected = vaecollapse.diagnose(_grid_encoder, x[:500], probes=False).levels["z"]
    np.testing.assert_allclose(level["kl_per_channel"], expected.kl_per_channel, rtol=1e-6)
    # channels 1 and 3 and 12 positions of channel 0: collapsed from the first check
    assert len(events) == len(messages) == 16 + 16 + 12
    assert all(e.kind == "collapsed-at-start" for e in events)
