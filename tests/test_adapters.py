"""Users' models and data: every encoder output form, images, data sets and loaders, Bernoulli
and Gaussian decoders, and a clear error for whatever is not recognised."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal
from torch.utils.data import DataLoader, TensorDataset

from vaecollapse.core.adapters import EncoderModel, as_latent_model, as_tensor_data
from vaecollapse.core.diagnostics import diagnose
from vaecollapse.core.errors import InputError
from vaecollapse.core.models import VAE, VAEConfig
from vaecollapse.core.protocol import LatentModel


@pytest.fixture(scope="module")
def ours():
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=6, latent_dim=3, backbone="mlp", hidden=8)).eval()
    with torch.no_grad():
        model.head.logvar.bias.fill_(-1.0)
    return model


@pytest.fixture(scope="module")
def x():
    return torch.randn(200, 6, generator=torch.Generator().manual_seed(1))


def _scale_encoder(model):
    def encode(batch):
        mean, logvar = model.encode(batch)
        return mean, torch.exp(0.5 * logvar)

    return encode


@pytest.mark.parametrize(
    ("wrap", "options"),
    [
        (lambda m: m.encode, {}),
        (_scale_encoder, {"encoder_output": "scale"}),
        (lambda m: lambda b: Normal(m.encode(b)[0], torch.exp(0.5 * m.encode(b)[1])), {}),
    ],
    ids=["mean-logvar", "loc-scale", "normal"],
)
def test_every_encoder_form_gives_the_same_report_as_our_model(ours, x, wrap, options) -> None:
    native = diagnose(ours, x)
    theirs = diagnose(wrap(ours), x, **options)
    assert torch.allclose(theirs.levels["z"].kl, native.levels["z"].kl, atol=1e-5)
    assert theirs.active_units == native.active_units
    assert theirs.collapsed_dims == native.collapsed_dims


def test_a_users_gaussian_decoder_gives_our_likelihood(ours, x) -> None:
    torch.manual_seed(3)
    native = diagnose(ours, x, iwae_k=50).iwae
    torch.manual_seed(3)
    theirs = diagnose(ours.encode, x, iwae_k=50, decoder=ours.decoder, eta_dec=1.0).iwae
    assert theirs.mean == pytest.approx(native.mean, abs=1e-4)


def test_a_bernoulli_decoder_on_images_in_nchw(x) -> None:
    images = (torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    decoder = nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (1, 4, 4)))

    def encode(batch):
        return encoder(batch).chunk(2, dim=1)

    report = diagnose(encode, images, iwae_k=20, decoder=decoder, likelihood="bernoulli")
    # a K = 1 bound can only be lower than K = 20 on average, and both are below zero
    single = diagnose(encode, images, iwae_k=1, decoder=decoder, likelihood="bernoulli")
    assert report.iwae.mean < 0 and single.iwae.mean < report.iwae.mean + 3 * (
        report.iwae.standard_error + single.iwae.standard_error
    )
    assert report.levels["z"].latent_dim == 2 and report.levels["z"].kl.shape == (64, 2)


def test_data_as_tensor_dataset_and_loaders_of_tuples_or_dicts(x) -> None:
    labels = torch.arange(len(x))
    for data in (
        TensorDataset(x, labels),
        DataLoader(TensorDataset(x, labels), batch_size=32),
        DataLoader([{"image": row, "label": 0} for row in x], batch_size=50),
        x.numpy(),
    ):
        assert torch.equal(as_tensor_data(data), x)


@pytest.mark.parametrize(
    ("encoder", "data", "message"),
    [
        (lambda b: b, None, "returned a tensor of shape"),
        (lambda b: {"mu": b}, None, "returned a dict"),
        (lambda b: (b, -torch.ones_like(b)), "scale", "non-finite log-variances"),
        (lambda b: (b, b[:, :1]), None, r"must both be \(B, d\)"),
    ],
)
def test_unrecognised_encoders_say_what_was_found_and_what_is_accepted(
    x, encoder, data, message
) -> None:
    options = {"encoder_output": "scale"} if data == "scale" else {}
    with pytest.raises(InputError, match=message):
        diagnose(encoder, x, **options)


def test_unrecognised_data_and_options_are_clear_errors(ours, x) -> None:
    with pytest.raises(InputError, match="dict with keys \\['label', 'pixels'\\]"):
        as_tensor_data(DataLoader([{"pixels": row, "label": 0} for row in x], batch_size=50))
    with pytest.raises(InputError, match="not understood"):
        as_tensor_data(object())
    with pytest.raises(InputError, match="needs the decoder"):
        diagnose(ours.encode, x, iwae_k=5)
    with pytest.raises(InputError, match="brings its own prior and likelihood"):
        diagnose(ours, x, decoder=ours.decoder)
    with pytest.raises(InputError, match="encoder_output must be one of"):
        EncoderModel(ours.encode, encoder_output="std")
    with pytest.raises(InputError, match="not an encoder"):
        as_latent_model(42)


def test_our_models_follow_the_protocol(ours) -> None:
    assert isinstance(ours, LatentModel)
    levels = ours.latent_levels(torch.randn(5, 6), n_samples=3)
    assert [level.name for level in levels] == ["z"] and levels[0].sample.shape == (3, 5, 3)
    assert levels[0].prior.scale.item() == pytest.approx(math.exp(0.0))


def test_a_users_model_gets_a_verdict_naming_the_dimensions_at_the_prior() -> None:
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(4))

    def encode(batch):  # dimension 1 ignores the input and sits at the prior
        mean = torch.stack([batch[:, 0], torch.zeros(len(batch))], dim=1)
        return mean, torch.stack([torch.full((len(batch),), -3.0), torch.zeros(len(batch))], 1)

    verdict = diagnose(encode, x).verdict
    (finding,) = verdict["findings"]
    # without a decoder nothing probes the cause: the dimension is named, the cause is not
    assert finding["dims"] == [1] and finding["code"] == "undetermined"
    assert verdict["summary"] == "z: 1 of 2 dimensions collapsed"


class CustomDecoder(nn.Module):
    """A decoder written as most people write one: layers called in forward."""

    def __init__(self, squash: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2, self.squash = nn.Linear(3, 16), nn.Linear(16, 40), squash

    def forward(self, z):
        out = self.fc2(torch.relu(self.fc1(z)))
        return torch.sigmoid(out) if self.squash else out


@pytest.mark.parametrize("squash", [False, True], ids=["linear-head", "sigmoid-after-it"])
def test_a_custom_decoders_gaussian_likelihood_is_exact_with_or_without_the_fast_path(
    squash,
) -> None:
    from vaecollapse.core.adapters import linear_head

    torch.manual_seed(0)
    decoder, x = CustomDecoder(squash), torch.randn(7, 40)
    z = torch.randn(5, 7, 3)
    model = EncoderModel(lambda b: (b[:, :3], b[:, :3] * 0), decoder=decoder, eta_dec=0.7)
    direct = Normal(decoder(z), 0.7).log_prob(x).sum(-1)
    with torch.no_grad():
        assert torch.allclose(model.log_likelihood(x, None, z), direct, rtol=1e-5, atol=1e-3)
    assert (linear_head(decoder, z[0]) is None) == squash
    assert "forward" not in vars(decoder.fc2)  # the probe put the layer back as it was


class _TutorialVAE(nn.Module):
    """A VAE as tutorials write one: encode -> (mu, logvar), decode -> sigmoid probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.mu, self.logvar = nn.Linear(6, 8), nn.Linear(8, 2), nn.Linear(8, 2)
        self.out = nn.Linear(2, 6)

    def encode(self, x):
        h = torch.relu(self.hidden(x))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        return torch.sigmoid(self.out(z))


class _SequenceDecoderVAE(nn.Module):
    """An encoder attribute and a decoder that needs the input as well as z (teacher forcing)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(6, 4)
        self.decoder = nn.Bilinear(2, 6, 6)

    def encode(self, x):
        return self.encoder(x).chunk(2, dim=1)


def test_a_models_own_decoder_is_found_and_its_likelihood_read() -> None:
    torch.manual_seed(0)
    model = _TutorialVAE()
    x = torch.rand(300, 6, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(1)  # the same IWAE draws for both
    found = diagnose(model, x, iwae_k=10)
    torch.manual_seed(1)
    given = diagnose(
        model, x, iwae_k=10, decoder=model.decode, likelihood="bernoulli",
        decoder_output="probabilities",
    )  # fmt: skip
    assert (
        "_TutorialVAE.decode (found on the model), read as Bernoulli probabilities"
        in (found.settings["decoder"])
    )
    assert found.iwae.mean == pytest.approx(given.iwae.mean, rel=1e-6)
    assert "decoder_usage" in found.probes and "decoder: _TutorialVAE.decode" in repr(found)
    # data outside [0, 1]: the same decoder read as a Gaussian mean
    gaussian = diagnose(model, 3 * x - 1, iwae_k=0)
    assert "read as the mean of a Gaussian with η_dec = 1" in gaussian.settings["decoder"]
    stated = diagnose(model, x, likelihood="gaussian", eta_dec=0.5)
    assert "read as the gaussian likelihood stated" in stated.settings["decoder"]


def test_a_decoder_of_another_signature_is_named_and_left_alone() -> None:
    x = torch.randn(100, 6, generator=torch.Generator().manual_seed(3))
    report = diagnose(_SequenceDecoderVAE(), x)
    note = report.settings["decoder"]
    assert note.startswith("_SequenceDecoderVAE.decoder found but not used: called on codes it")
    assert "give decoder= or decoder_log_likelihood=" in note and report.probes == {}
