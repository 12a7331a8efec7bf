"""Every family x backbone x encoder-variance mode builds and returns unreduced terms of the right
shapes; image backbones place the CVAE's quadrant halves on one canvas; the autoencoder mode."""

from __future__ import annotations

import pytest
import torch

from vaecollapse.core.data.views import quadrant_mask
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import CVAE, MHVAE, VAE, CVAEConfig, MHVAEConfig, VAEConfig
from vaecollapse.core.models.backbones import Canvas, TransposedConvDecoder

SHAPES = {"linear": (1, 8, 8), "mlp": (1, 8, 8), "cnn": (1, 8, 8), "resnet18": (3, 8, 8)}
VARIANCES = [("amortized", None), ("shared", None), ("fixed", 0.5)]


def _common(backbone: str, variance: str, sigma) -> dict:
    return {
        "latent_dim": 3,
        "backbone": backbone,
        "hidden": 8,
        "channels": (4, 2),
        "image_shape": SHAPES[backbone],
        "encoder_variance": variance,
        "sigma": sigma,
    }


@pytest.mark.parametrize("backbone", list(SHAPES))
@pytest.mark.parametrize(("variance", "sigma"), VARIANCES)
def test_every_family_backbone_and_variance(backbone: str, variance: str, sigma) -> None:
    torch.manual_seed(0)
    c, h, w = SHAPES[backbone]
    pixels = c * h * w
    x = torch.rand(2, pixels)
    common = _common(backbone, variance, sigma)

    vae_terms = VAE(VAEConfig(data_dim=pixels, **common))(x, n_samples=2)
    assert vae_terms.recon.shape == (2,) and vae_terms.kl["z"].shape == (2, 3)

    mask = quadrant_mask(SHAPES[backbone])
    cvae = CVAE(
        CVAEConfig(
            x_dim=int(mask.sum()), y_dim=int((~mask).sum()), conditional_prior=True, **common
        )
    )
    cvae_terms = cvae(x[:, mask], x[:, ~mask], n_samples=2)
    assert cvae_terms.recon.shape == (2,) and cvae_terms.kl["z"].shape == (2, 3)

    mhvae = MHVAE(MHVAEConfig(data_dim=pixels, latent_dims=(3, 2), **common))
    mh_terms = mhvae(x, n_samples=2)
    assert mh_terms.kl["z1"].shape == (2, 3) and mh_terms.kl["z2"].shape == (2, 2)
    for terms in (vae_terms, cvae_terms, mh_terms):
        assert torch.isfinite(terms.loss())
        terms.loss().backward()


def test_canvas_places_columns_at_their_pixels() -> None:
    mask = quadrant_mask((1, 4, 4))
    pixels = torch.cat([torch.nonzero(mask)[:, 0], torch.nonzero(~mask)[:, 0]])
    image = torch.arange(16.0).view(1, 16)
    rows = torch.cat([image[:, mask], image[:, ~mask]], dim=1)
    assert torch.equal(Canvas((1, 4, 4), 16, pixels)(rows), image.view(1, 1, 4, 4))
    quadrant_only = Canvas((1, 4, 4), 4, torch.nonzero(mask)[:, 0])(image[:, mask])
    assert torch.equal(quadrant_only[0, 0, 2:, :2], image.view(4, 4)[2:, :2])
    assert float(quadrant_only.abs().sum()) == float(image[:, mask].sum())


def test_transposed_conv_decoder_reads_out_the_requested_pixels() -> None:
    torch.manual_seed(0)
    full = TransposedConvDecoder(5, (1, 28, 28), (32, 16), "relu", None)
    picked = torch.tensor([0, 27, 783])
    part = TransposedConvDecoder(5, (1, 28, 28), (32, 16), "relu", picked)
    part.load_state_dict(full.state_dict())
    codes = torch.randn(3, 4, 5)  # (K, B, in)
    assert full(codes).shape == (3, 4, 784)
    assert torch.equal(part(codes), full(codes)[..., picked])
    assert full.start == (16, 7, 7)  # 7 -> 14 -> 28, the paper's MNIST decoders
    widths = [(m.in_channels, m.out_channels, m.stride) for m in full.deconv[::2]]
    assert widths == [(16, 32, (2, 2)), (32, 16, (2, 2)), (16, 1, (1, 1))]


def test_image_backbones_need_images() -> None:
    with pytest.raises(InputError, match="needs images"):
        VAE(VAEConfig(data_dim=10, latent_dim=2, backbone="cnn"))


def test_autoencoder_mode_has_no_noise_and_no_kl() -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=6, latent_dim=2, backbone="mlp", hidden=8, deterministic=True))
    x = torch.rand(5, 6)
    first, second = model(x, n_samples=3), model(x, n_samples=3)
    assert first.kl == {} and torch.equal(first.recon, second.recon)
    expected = 0.5 * ((x - model.decoder(model.encode(x)[0])) ** 2).sum(1) + 3 * torch.log(
        torch.tensor(2 * torch.pi)
    )
    assert torch.allclose(first.loss(), expected.mean())


@pytest.mark.parametrize("backbone", ["mlp", "cnn"])
@torch.no_grad()
def test_bounded_means_put_every_gaussian_mean_through_tanh(backbone: str) -> None:
    """Built from one seed, with and without the bound: each encoder mean and decoder output of
    the bounded model is tanh of the unbounded one's, which large inputs drive past 1."""
    c, h, w = SHAPES[backbone]
    pixels = c * h * w
    x = 50 * torch.randn(4, pixels)
    mask = quadrant_mask(SHAPES[backbone])
    builders = {
        "vae": lambda **k: VAE(VAEConfig(data_dim=pixels, **k)),
        "cvae": lambda **k: CVAE(
            CVAEConfig(x_dim=int(mask.sum()), y_dim=int((~mask).sum()), conditional_prior=True, **k)
        ),
        "mhvae": lambda **k: MHVAE(MHVAEConfig(data_dim=pixels, latent_dims=(3, 2), **k)),
    }
    for family, build in builders.items():
        common = _common(backbone, "amortized", None)
        free, bounded = (_seeded(build, **common, bounded_means=b) for b in (False, True))
        if family == "cvae":
            means = [m.encode(x[:, mask], x[:, ~mask])[0] for m in (free, bounded)]
            means += [m.prior_head(m.prior_body(x[:, mask]))[0] for m in (free, bounded)]
            codes = 50 * torch.randn(4, 3 + int(mask.sum()))
        else:
            means = [m.encode(x)[0] for m in (free, bounded)]
            codes = 50 * torch.randn(4, 3)
        decoders = [m.decoders[0] if family == "mhvae" else m.decoder for m in (free, bounded)]
        means += [d(codes) for d in decoders]
        if family == "mhvae":
            means += [m.encoders[1](codes)[0] for m in (free, bounded)]
            upper = 50 * torch.randn(4, 2)
            means += [m.decoders[1](upper) for m in (free, bounded)]
        for unbounded_mean, bounded_mean in zip(means[::2], means[1::2], strict=True):
            assert float(unbounded_mean.abs().max()) > 1, family
            assert torch.allclose(bounded_mean, torch.tanh(unbounded_mean), atol=1e-6), family


def _seeded(build, **settings):
    torch.manual_seed(0)
    return build(**settings)


def test_bounded_means_need_a_nonlinear_backbone() -> None:
    with pytest.raises(InputError, match="nonlinear backbone"):
        VAE(VAEConfig(data_dim=4, latent_dim=2, bounded_means=True))


def test_conv_depth_adds_same_scale_convolutions_to_encoder_and_decoder() -> None:
    """Dai et al.'s depth per scale: conv_depth k puts k − 1 stride-1 convolutions after each
    stride-2 one, in the encoder and the decoder alike; k = 1 is the unchanged architecture."""

    def convolutions(model: VAE) -> tuple[list[int], list[int]]:
        strides = [
            m.stride[0] for m in model.encoder_body.modules() if isinstance(m, torch.nn.Conv2d)
        ]
        decoder = [
            m.stride[0]
            for m in model.decoder.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
        ]
        return strides, decoder

    shape = {"data_dim": 64, "image_shape": (1, 8, 8), "latent_dim": 3, "backbone": "cnn"}
    plain = VAE(VAEConfig(**shape, channels=(4, 6)))
    assert convolutions(plain) == ([2, 2], [2, 2, 1])
    deep = VAE(VAEConfig(**shape, channels=(4, 6), conv_depth=3))
    assert convolutions(deep) == ([2, 1, 1, 2, 1, 1], [2, 1, 1, 2, 1, 1, 1])
    x = torch.rand(5, 64)
    assert deep(x).recon.shape == (5,) and deep.encode(x)[0].shape == (5, 3)
    with pytest.raises(InputError, match="conv_depth"):
        VAEConfig(**shape, conv_depth=0)
