"""Code assignments over a whole data set, from indices given directly or from a quantiser or a
model run batch by batch: a vector-quantize-pytorch layer (``VectorQuantize``, ``ResidualVQ``,
``FSQ``, ``LFQ``) or any module whose output is ``(quantized, indices, ...)``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vaecollapse.core.errors import InputError

BATCH = 256  # samples a forward pass when the data are one tensor


@dataclass(frozen=True)
class Assignments:
    """Every sample's codes: ``indices`` ``(N, *grid)``, or ``(N, *grid, L)`` for a residual
    quantiser of ``levels`` L; ``encodings`` ``(M, D)`` the vectors the first level quantised,
    one per code of level 1, and ``codebook`` ``(K, D)`` that level's code vectors, where known."""

    indices: torch.Tensor
    codebook_size: int
    levels: int | None = None
    encodings: torch.Tensor | None = None
    codebook: torch.Tensor | None = None

    def level(self, level: int) -> torch.Tensor:
        """Level ``level``'s indices ``(N, *grid)`` (the indices themselves for one level)."""
        return self.indices if self.levels is None else self.indices[..., level]


def _batches(data, batch_size: int) -> Iterable[torch.Tensor]:
    """The inputs of each forward pass: slices of a tensor (or of a Dataset's training split),
    or the first tensor of each item of an iterable such as a DataLoader."""
    if hasattr(data, "train") and hasattr(data.train, "x"):
        data = data.train.x
    if isinstance(data, np.ndarray):
        data = torch.as_tensor(data)
    if isinstance(data, torch.Tensor):
        for start in range(0, data.shape[0], batch_size):
            yield data[start : start + batch_size]
        return
    for item in data:
        batch = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(batch, torch.Tensor):
            raise InputError(
                "each item of the data must be a tensor or a tuple whose first element is one; "
                f"got {type(batch).__name__}."
            )
        yield batch


def _indices_of(output, module: nn.Module) -> torch.Tensor:
    """The code indices in a module's output: the second element of a tuple (a named tuple
    included), or the ``indices`` entry of a dict."""
    found = None
    if isinstance(output, dict):
        found = output.get("indices")
    elif isinstance(output, (tuple, list)) and len(output) >= 2:
        found = output[1]
    if not isinstance(found, torch.Tensor) or found.dtype.is_floating_point:
        raise InputError(
            f"{type(module).__name__}'s output is not (quantized, indices, ...) with integer "
            f"indices (got {type(output).__name__}). Give diagnose_codebook a quantiser or a "
            "module returning that tuple (or a dict with 'indices'), or pass the indices "
            "themselves with codebook_size."
        )
    return found


def _channel_last(x: torch.Tensor, dim: int, channel_first: bool) -> torch.Tensor | None:
    """A quantiser's input as rows ``(M, dim)`` (``channel_first``: an image feature map or a
    sequence with channels on axis 1), or None where its channels are not the codes' size (a
    quantiser that projects its input first)."""
    if channel_first:
        x = x.movedim(1, -1)
    return x.reshape(-1, dim) if x.shape[-1] == dim else None


def _first_codebook(module: nn.Module) -> torch.Tensor | None:
    """The code vectors ``(K, D)`` of a vector quantiser's (first) codebook, where it has one
    (vector-quantize-pytorch: ``codebook`` ``(K, D)``, or ``codebooks`` ``(L, K, D)``)."""
    for name in ("codebook", "codebooks"):
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor) and value.ndim in (2, 3):
            value = value.detach().float()
            return value if value.ndim == 2 else value[0]
    return None


def codebook_size_of(module: nn.Module, given: int | None) -> int:
    """The codebook size given, else the module's ``codebook_size``."""
    size = given if given is not None else getattr(module, "codebook_size", None)
    if not isinstance(size, int):
        raise InputError(
            f"{type(module).__name__} does not say its codebook size: pass codebook_size."
        )
    return size


def from_module(
    module: nn.Module, data, codebook_size: int | None = None, batch_size: int = BATCH
) -> Assignments:
    """Run ``module`` (in eval mode, without gradients; its mode is restored) over ``data`` and
    collect every sample's indices, and, for a vector quantiser with a codebook, its inputs."""
    size = codebook_size_of(module, codebook_size)
    levels = getattr(module, "num_quantizers", None)
    codebook = _first_codebook(module)
    # vector-quantize-pytorch's options for inputs with channels on axis 1
    channel_first = bool(getattr(module, "accept_image_fmap", False)) or (
        getattr(module, "channel_last", True) is False
    )
    indices, encodings = [], []
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for batch in _batches(data, batch_size):
                indices.append(_indices_of(module(batch), module).cpu())
                rows = None
                if codebook is not None:
                    rows = _channel_last(batch, codebook.shape[1], channel_first)
                if rows is None:  # its inputs are not in the codebook's space
                    codebook = None
                else:
                    encodings.append(rows.cpu())
    finally:
        module.train(was_training)
    if not indices:
        raise InputError("the data held no samples to quantise.")
    stacked = torch.cat(indices)
    if levels is not None and (stacked.ndim < 2 or stacked.shape[-1] != levels):
        raise InputError(
            f"{type(module).__name__} has {levels} quantisers, but its indices have shape "
            f"{tuple(stacked.shape)}, without a last axis of that length."
        )
    return Assignments(
        stacked, size, levels,
        torch.cat(encodings) if codebook is not None else None, codebook,
    )  # fmt: skip
