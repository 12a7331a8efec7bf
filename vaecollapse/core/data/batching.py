"""Mini-batches as slices of one random permutation: no per-sample Python, no DataLoader workers."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def minibatch_indices(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield ``(B,)`` index tensors covering ``range(n)`` once (the last batch may be short)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if shuffle:
        source = generator.device if generator is not None else torch.device("cpu")
        order = torch.randperm(n, generator=generator, device=source).to(device or source)
    else:
        order = torch.arange(n, device=device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def minibatches(
    *tensors: torch.Tensor | None,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor | None, ...]]:
    """Yield tuples of aligned batches of ``tensors`` (None entries pass through as None)."""
    present = [t for t in tensors if t is not None]
    if not present:
        raise ValueError("minibatches needs at least one tensor")
    n = present[0].shape[0]
    for index in minibatch_indices(
        n,
        batch_size,
        shuffle=shuffle,
        generator=generator,
        device=present[0].device,
        drop_last=drop_last,
    ):
        yield tuple(None if t is None else t[index] for t in tensors)
