"""The embedded digits, the quadrant task on hand-picked pixels, digit subsets, centring, the
principal axes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaecollapse.core.data import (
    Dataset,
    Provenance,
    Split,
    centered_view,
    digit_subset,
    load_dataset,
    logit_view,
    principal_axes_view,
    quadrant_view,
)
from vaecollapse.core.errors import InputError
from vaecollapse.core.models.factory import build_model, model_config


def index_images(side: int, n: int = 2) -> Dataset:
    """Images whose pixel (r, c) holds r * side + c (+ 1000 for the second image)."""
    base = torch.arange(side * side, dtype=torch.float32)
    x = torch.stack([base + 1000 * i for i in range(n)])
    return Dataset(
        "index", Split(x, None, torch.arange(n)), None, (1, side, side), Provenance("synthetic")
    )


def pixel(row: int, col: int, side: int) -> float:
    return float(row * side + col)


def test_quadrant_on_hand_picked_pixels_mnist_size() -> None:
    view = quadrant_view(index_images(28))
    x, y = view.train.x[0], view.train.y[0]
    assert x.shape == (196,) and y.shape == (588,)
    assert x[0] == pixel(14, 0, 28) and x[13] == pixel(14, 13, 28)
    assert x[14] == pixel(15, 0, 28) and x[-1] == pixel(27, 13, 28)
    assert y[0] == pixel(0, 0, 28) and y[27] == pixel(0, 27, 28) and y[28] == pixel(1, 0, 28)
    # Row 14 is the first row of the bottom half: its left half went to x.
    assert y[14 * 28] == pixel(14, 14, 28) and y[14 * 28 + 13] == pixel(14, 27, 28)
    assert y[14 * 28 + 14] == pixel(15, 14, 28) and y[-1] == pixel(27, 27, 28)
    assert view.train.y[1, 0] == 1000.0  # rows stay aligned with their example
    together = torch.cat([x, y]).sort().values
    assert torch.equal(together, torch.arange(784, dtype=torch.float32))


def test_quadrant_digits_size() -> None:
    view = quadrant_view(index_images(8))
    assert view.train.x[0].tolist() == [
        32,
        33,
        34,
        35,
        40,
        41,
        42,
        43,
        48,
        49,
        50,
        51,
        56,
        57,
        58,
        59,
    ]
    assert view.train.y.shape == (2, 48) and view.train.y[0, 32] == pixel(4, 4, 8)
    assert view.train.y[0, 36] == pixel(5, 4, 8)


def test_odd_sides_are_rejected() -> None:
    with pytest.raises(InputError, match="7x7"):
        quadrant_view(index_images(7))


def test_embedded_digits_and_fixed_split() -> None:
    digits = load_dataset("digits")
    assert len(digits.train) + len(digits.test) == 1797
    assert digits.x_dim == 64 and digits.image_shape == (1, 8, 8)
    assert float(digits.train.x.min()) == 0.0 and float(digits.train.x.max()) == 1.0
    again = load_dataset("digits")
    assert torch.equal(digits.test.x, again.test.x)
    assert digits.provenance.checksums_verified is None
    quadrant = load_dataset("digits-quadrant")
    assert quadrant.x_dim == 16 and quadrant.y_dim == 48


def test_digit_subset_and_missing_digit() -> None:
    sevens = digit_subset(load_dataset("digits"), (7,))
    assert set(sevens.train.labels.tolist()) == {7} and set(sevens.test.labels.tolist()) == {7}
    assert len(sevens.train) == int((load_dataset("digits").train.labels == 7).sum())
    only_two = Dataset(
        "d",
        Split(torch.zeros(2, 4), None, torch.tensor([0, 1])),
        None,
        None,
        Provenance("synthetic"),
    )
    with pytest.raises(InputError, match=r"\[5\]"):
        digit_subset(only_two, (5,))


def test_centering_uses_the_training_mean() -> None:
    view = load_dataset("digits-quadrant", center=True)
    assert view.centered
    assert torch.allclose(view.train.x.mean(0), torch.zeros(16), atol=1e-6)
    assert torch.allclose(view.train.y.mean(0), torch.zeros(48), atol=1e-6)
    raw = load_dataset("digits-quadrant")
    shift = raw.train.x.mean(0)
    assert torch.allclose(view.test.x, raw.test.x - shift)
    assert np.isclose(float(centered_view(raw).train.x.sum()), 0.0, atol=1e-3)


def test_unknown_name_and_view_conflicts() -> None:
    with pytest.raises(InputError, match="Unknown data set 'mnsit'"):
        load_dataset("mnsit")
    with pytest.raises(InputError, match="already names the quadrant view"):
        load_dataset("digits-quadrant", view="flat")


def test_the_principal_axes_diagonalise_the_second_moment_and_keep_a_linear_vaes_elbo() -> None:
    """On the axes the training rows' second moment is diag(λ), largest first; each row keeps its
    length; a linear VAE whose maps are turned with the data has the same ELBO and per-sample
    KL, analytic and one-sample with the same noise; a CVAE's paired data is refused."""
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(12, 12, generator=generator) * torch.linspace(3.0, 0.1, 12)
    rows = [torch.randn(n, 12, generator=generator) @ mixing for n in (400, 100)]
    data = Dataset(
        "mixed", Split(rows[0], None, None), Split(rows[1], None, None), None,
        Provenance("synthetic"),
    )  # fmt: skip
    axes = principal_axes_view(data)
    x, turned = data.train.x.double(), axes.train.x.double()
    moment = turned.T @ turned / len(turned)
    eigenvalues = torch.linalg.eigvalsh(x.T @ x / len(x)).flip(0)
    torch.testing.assert_close(torch.diagonal(moment), eigenvalues, rtol=1e-4, atol=1e-6)
    off = moment - torch.diag(torch.diagonal(moment))
    assert off.abs().max() < 1e-4 * eigenvalues[0]
    torch.testing.assert_close(turned.norm(dim=1), x.norm(dim=1), rtol=1e-5, atol=1e-6)
    assert axes.test is not None and len(axes.test) == len(data.test)

    torch.manual_seed(3)
    config = model_config("vae", data, latent_dim=4, encoder_variance="shared", eta_dec=0.7)
    model = build_model(config).double()
    rotation = torch.linalg.lstsq(x, turned).solution  # U, recovered from the two views
    torch.testing.assert_close(rotation.T @ rotation, torch.eye(12).double(), rtol=0, atol=1e-5)
    turned_model = build_model(config).double()
    turned_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        turned_model.head.mean.weight.copy_(model.head.mean.weight @ rotation)
        turned_model.decoder.weight.copy_(rotation.T @ model.decoder.weight)
    for analytic in (True, False):
        torch.manual_seed(5)
        on_data = model(x, analytic=analytic)
        torch.manual_seed(5)
        on_axes = turned_model(turned, analytic=analytic)
        assert on_axes.loss().item() == pytest.approx(on_data.loss().item(), rel=1e-5)
        torch.testing.assert_close(on_axes.kl["z"], on_data.kl["z"], rtol=1e-4, atol=1e-6)
    # the pixels' own second moment is far from diagonal: the check above can fail
    pixels = x.T @ x / len(x)
    assert (pixels - torch.diag(torch.diagonal(pixels))).abs().max() > 0.1 * eigenvalues[0]

    with pytest.raises(InputError, match="pairs x with y"):
        principal_axes_view(load_dataset("digits-quadrant"))


def test_the_logit_view_dequantises_each_pixel_within_its_own_level() -> None:
    """Each pixel's logit maps back (sigmoid, then the squeeze undone) into its own level's
    interval [v/L, (v+1)/L); the same seed gives the same view, another seed another; rows off
    the grid are refused."""
    digits = load_dataset("digits")
    seen = logit_view(digits, levels=17)
    levels = (digits.train.x.double() * 16).round()
    back = (torch.sigmoid(seen.train.x.double()) - 1e-6) / (1 - 2e-6) * 17
    assert (back >= levels - 1e-4).all() and (back < levels + 1 + 1e-4).all()
    inside = back - levels  # where in its level each pixel fell: spread over the whole interval
    assert inside.min() < 0.01 and inside.max() > 0.99 and abs(inside.mean() - 0.5) < 0.01
    assert torch.equal(logit_view(digits, levels=17).train.x, seen.train.x)
    assert not torch.equal(logit_view(digits, levels=17, seed=1).train.x, seen.train.x)
    assert seen.test is not None and seen.test.x.shape == digits.test.x.shape
    with pytest.raises(InputError, match="not on that grid"):
        logit_view(digits, levels=256)
