"""Views of a data set: the quadrant task, single-digit subsets, centring, the logit transform,
principal axes, second-moment rows. Each returns a copy."""

from __future__ import annotations

from dataclasses import replace

import torch

from vaecollapse.core.data.dataset import Dataset, Split
from vaecollapse.core.errors import InputError


def quadrant_mask(image_shape: tuple[int, int, int]) -> torch.Tensor:
    """Boolean ``(C*H*W,)`` mask of the bottom-left quadrant (rows H/2.., columns ..W/2) of every
    channel, in the raster order of the flat rows."""
    _, height, width = image_shape
    if height % 2 or width % 2:
        raise InputError(
            f"The quadrant task splits an image into four equal quadrants, but the images are "
            f"{height}x{width}: both sides must be even."
        )
    mask = torch.zeros(image_shape, dtype=torch.bool)
    mask[:, height // 2 :, : width // 2] = True
    return mask.flatten()


def quadrant_view(dataset: Dataset) -> Dataset:
    """Sohn et al.'s task: x = bottom-left quadrant, y = the other three quadrants.

    Both keep raster order: x is the quadrant's pixels row by row; y is every other pixel of the
    image row by row (so a row of the top half contributes W values, a row of the bottom half W/2).
    For 28x28 MNIST x has 196 values and y 588; for 8x8 digits 16 and 48.
    """
    if dataset.view != "flat" or dataset.train.y is not None:
        raise InputError(f"The quadrant view needs flat images; '{dataset.name}' is already split.")
    if dataset.image_shape is None:
        raise InputError(
            f"The quadrant task needs images, but the rows of '{dataset.name}' have no image shape."
        )
    mask = quadrant_mask(dataset.image_shape)

    def split(part: Split) -> Split:
        return Split(part.x[:, mask], part.x[:, ~mask], part.labels)

    test = None if dataset.test is None else split(dataset.test)
    return replace(dataset, train=split(dataset.train), test=test, view="quadrant", spec=None)


def digit_subset(dataset: Dataset, digits: tuple[int, ...]) -> Dataset:
    """Keep only the examples whose label is in ``digits`` (every split)."""
    if dataset.train.labels is None:
        raise InputError(f"Data set '{dataset.name}' has no labels, so it has no digit subsets.")
    present = set(torch.unique(dataset.train.labels).tolist())
    missing = sorted(set(digits) - present)
    if missing:
        raise InputError(
            f"Data set '{dataset.name}' has no examples labelled {missing}; its labels are "
            f"{sorted(present)}."
        )
    wanted = torch.tensor(sorted(digits))

    def keep(part: Split) -> Split:
        assert part.labels is not None
        return part.select(torch.isin(part.labels, wanted))

    test = None if dataset.test is None else keep(dataset.test)
    return replace(
        dataset, train=keep(dataset.train), test=test, digits=tuple(sorted(digits)), spec=None
    )


def centered_view(dataset: Dataset) -> Dataset:
    """Subtract the training mean of x (and of y) from every split. The paper does not centre."""

    train_mean_x = dataset.train.x.mean(0)
    train_mean_y = None if dataset.train.y is None else dataset.train.y.mean(0)

    def center(part: Split) -> Split:
        y = None if part.y is None else part.y - train_mean_y
        return Split(part.x - train_mean_x, y, part.labels)

    test = None if dataset.test is None else center(dataset.test)
    return replace(dataset, train=center(dataset.train), test=test, centered=True, spec=None)


def logit_view(dataset: Dataset, levels: int, alpha: float = 1e-6, seed: int = 0) -> Dataset:
    """Dequantised images in logit space, as density models of images take them (Dinh et al.,
    Papamakarios et al.): each pixel ``v/(levels − 1)`` on a grid of ``levels`` becomes
    ``u = (v + noise)/levels`` with uniform noise, then ``logit(alpha + (1 − 2·alpha)·u)``. The
    noise is drawn from ``seed``, the training split's first, so the view is the same on every
    call."""
    scale = levels - 1

    def on_grid(part: Split) -> torch.Tensor:
        steps = part.x.double() * scale
        if (steps - steps.round()).abs().max() > 1e-4 or steps.min() < 0 or steps.max() > scale:
            raise InputError(
                f"The logit view dequantises pixels on a grid of {levels} levels in [0, 1], but "
                f"the rows of '{dataset.name}' are not on that grid. Give the number of levels "
                "the images were stored with (256 for 8-bit images)."
            )
        return steps.round()

    generator = torch.Generator().manual_seed(seed)

    def transform(part: Split) -> Split:
        grid = on_grid(part)
        noise = torch.rand(grid.shape, generator=generator, dtype=torch.float64)
        squeezed = alpha + (1 - 2 * alpha) * (grid + noise) / levels
        logits = torch.log(squeezed) - torch.log1p(-squeezed)
        return Split(logits.to(part.x.dtype), part.y, part.labels)

    train = transform(dataset.train)
    test = None if dataset.test is None else transform(dataset.test)
    return replace(
        dataset,
        name=f"{dataset.name}-logit",
        train=train,
        test=test,
        spec=None,
        notes=(
            *dataset.notes,
            f"dequantised ({levels} levels) and logit-transformed, α = {alpha:g}",
        ),
    )


def principal_axes_view(dataset: Dataset) -> Dataset:
    """Every split's x in the coordinates of the training split's principal axes: x ↦ xU for the
    eigenvectors U of E[xxᵀ] over the training rows, largest eigenvalue first.

    An orthogonal change of coordinates: a linear model's ELBO, its optimum, pPCA's
    log-likelihood and every per-sample KL are what they are on the data, and the rows stay the
    data's (a one-sample ELBO sees the same noise). What changes is the optimiser's view: a
    per-coordinate method (Adam, RMSprop, Rprop) scales its steps along the modes instead of
    along the pixels. Needs unpaired data: rotating [x, y] together would mix input and target.
    Each axis's sign is the eigensolver's (torch's LAPACK), so the view is fixed for the pinned
    torch build, not across builds."""
    if dataset.train.y is not None:
        raise InputError(
            f"The principal-axes view rotates x alone, but '{dataset.name}' pairs x with y: a "
            "CVAE's input and target would be mixed. Use it on unpaired data."
        )
    x = dataset.train.x.double()
    _, eigenvectors = torch.linalg.eigh(x.T @ x / len(x))
    axes = eigenvectors.flip(1)

    def rotate(part: Split) -> Split:
        return Split((part.x.double() @ axes).to(part.x.dtype), None, part.labels)

    test = None if dataset.test is None else rotate(dataset.test)
    return replace(
        dataset,
        name=f"{dataset.name}-principal-axes",
        train=rotate(dataset.train),
        test=test,
        spec=None,
        image_shape=None,
        notes=(*dataset.notes, f"x in the principal axes of the training rows of {dataset.name}"),
    )


def second_moment_rows(dataset: Dataset) -> Dataset:
    """The training split replaced by as many rows as it has columns, whose second moment is the
    training split's: the rows of √D·A^{1/2} for the D columns of [x, y] and A = E[[x;y][x;y]ᵀ].

    A linear model with a data-independent encoder variance, trained by the exact expected
    reconstruction (``analytic``), sees its data only through A, so one full-batch step on these
    rows is one full-batch step on the data, at a fraction of the cost when N ≫ D. Per-sample
    quantities (the (ε,δ)-collapse of a dimension) still need the real rows: the test split is
    dropped, so nothing is measured on these by mistake."""
    x, y = dataset.train.x.double(), dataset.train.y
    joint = x if y is None else torch.cat([x, y.double()], dim=1)
    n, width = joint.shape
    eigenvalues, eigenvectors = torch.linalg.eigh(joint.T @ joint / n)
    root = (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T
    rows = (width**0.5 * root).float()
    split = Split(rows[:, : x.shape[1]], None if y is None else rows[:, x.shape[1] :])
    return replace(
        dataset,
        name=f"{dataset.name}-second-moment",
        train=split,
        test=None,
        spec=None,
        notes=(
            *dataset.notes,
            f"{width} rows with the second moment of the {n} training rows of {dataset.name}",
        ),
    )
