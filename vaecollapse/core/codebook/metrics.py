"""Pure metrics of a discrete latent's codebook use, over whatever assignments they are given (the
whole data set, not one batch: a batch's figure depends on its size, :func:`batch_perplexities`).

Shapes: ``indices`` are integer code ids, any shape; ``counts`` ``(K,)`` for a codebook of K codes;
``encodings`` ``(M, D)`` encoder outputs and ``codebook`` ``(K, D)`` code vectors.
"""

from __future__ import annotations

import math

import torch

from vaecollapse.core.errors import InputError

DISTANCE_CHUNK = 4096  # query rows per block of a nearest-distance search


def check_indices(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """``indices`` as int64, checked to be integer ids in [0, codebook_size)."""
    if codebook_size < 1:
        raise InputError(f"the codebook size must be a positive integer; got {codebook_size}.")
    if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
        raise InputError(
            f"code indices must be integers; got a tensor of {indices.dtype}. Pass the indices a "
            "quantiser returns (e.g. the second output of vector-quantize-pytorch's layers), not "
            "the quantised vectors."
        )
    indices = indices.long()
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= codebook_size):
        raise InputError(
            f"code indices must lie in [0, {codebook_size}); these range from "
            f"{int(indices.min())} to {int(indices.max())}. Check the codebook size."
        )
    return indices


def usage_counts(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """How often each code is chosen ``(K,)`` over every entry of ``indices``."""
    flat = check_indices(indices, codebook_size).reshape(-1)
    return torch.bincount(flat, minlength=codebook_size)


def perplexity(counts: torch.Tensor) -> float:
    """exp(H(p)) of the usage distribution p = counts / their sum: the number of equally used
    codes that would have the same entropy (1 when one code takes everything)."""
    total = float(counts.sum())
    if total == 0:
        raise InputError("no code assignments were given: there is no usage to measure.")
    p = counts.double()[counts > 0] / total
    return math.exp(float(-(p * p.log()).sum()))


def dead_codes(counts: torch.Tensor, share: float = 0.0) -> torch.Tensor:
    """The ids of codes chosen for at most ``share`` of the assignments (0: never chosen)."""
    if not 0.0 <= share < 1.0:
        raise InputError(f"the dead-code share must be in [0, 1); got {share}.")
    bound = share * float(counts.sum())
    return torch.nonzero(counts.double() <= bound).flatten()


def codes_covering(counts: torch.Tensor, share: float = 0.95) -> int:
    """The fewest codes that together take at least ``share`` of the assignments."""
    ordered = torch.sort(counts.double(), descending=True).values
    reached = torch.cumsum(ordered, 0) >= share * float(counts.sum()) * (1 - 1e-12)
    return int(torch.nonzero(reached)[0]) + 1


def batch_perplexities(indices: torch.Tensor, codebook_size: int, batch_size: int) -> torch.Tensor:
    """The perplexity of each batch of ``batch_size`` consecutive samples (the first axis of
    ``indices``; a sample may hold many tokens) ``(batches,)``: what a per-batch monitor prints.
    A trailing partial batch is left out, so every figure is of the same size."""
    indices = check_indices(indices, codebook_size)
    batches = indices.shape[0] // batch_size
    if batches == 0:
        raise InputError(f"{indices.shape[0]} samples hold no whole batch of {batch_size}.")
    grouped = indices[: batches * batch_size].reshape(batches, -1)
    counts = torch.zeros(batches, codebook_size, dtype=torch.float64)
    counts.scatter_add_(1, grouped, torch.ones_like(grouped, dtype=torch.float64))
    p = counts / counts.sum(1, keepdim=True)
    entropy = -torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p)).sum(1)
    return entropy.exp()


def sequence_entropy(indices: torch.Tensor) -> tuple[float, int]:
    """The entropy (nats) of the samples' whole token sequences — each sample's codes at every
    position (and level) as one symbol — over the first axis of ``indices`` ``(N, ...)``, and the
    number of distinct sequences. For a deterministic quantiser this is the mutual information
    between the inputs and their tokens, I(x; t) = H(t), at most log N on N samples."""
    rows = indices.reshape(indices.shape[0], -1)
    _, counts = torch.unique(rows, dim=0, return_counts=True)
    p = counts.double() / rows.shape[0]
    return float(-(p * p.log()).sum()), int(counts.numel())


def position_counts(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Usage counts per token position ``(P, K)`` for ``indices`` ``(N, *grid)`` with P positions
    (a sequence or a spatial grid of tokens per sample)."""
    indices = check_indices(indices, codebook_size)
    if indices.ndim < 2:
        raise InputError("per-position usage needs indices shaped (samples, positions...).")
    flat = indices.reshape(indices.shape[0], -1).T  # (P, N)
    counts = torch.zeros(flat.shape[0], codebook_size, dtype=torch.int64)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    return counts


def squared_distances_to_codes(
    encodings: torch.Tensor, codebook: torch.Tensor, indices: torch.Tensor
) -> torch.Tensor:
    """||e_m − c_{k_m}||² ``(M,)``: each encoder output's squared distance to the code it was
    given (what a commitment loss pulls down)."""
    check_indices(indices, codebook.shape[0])
    if encodings.ndim != 2 or encodings.shape[1] != codebook.shape[1]:
        raise InputError(
            f"encodings must be (M, {codebook.shape[1]}) to match the codebook's code size; got "
            f"{tuple(encodings.shape)}."
        )
    if indices.numel() != encodings.shape[0]:
        raise InputError(
            f"one index per encoding is needed; got {indices.numel()} for {encodings.shape[0]}."
        )
    chosen = codebook[indices.reshape(-1).long()]
    return (encodings.double() - chosen.double()).square().sum(1)


def nearest_squared_distances(queries: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Each query's squared distance to its nearest point ``(Q,)``, in blocks of
    ``DISTANCE_CHUNK`` queries (queries ``(Q, D)``, points ``(M, D)``)."""
    if points.shape[0] == 0:
        raise InputError("there are no points to measure distances to.")
    found = []
    points64 = points.double()
    for start in range(0, queries.shape[0], DISTANCE_CHUNK):
        block = queries[start : start + DISTANCE_CHUNK].double()
        found.append(torch.cdist(block, points64).amin(1).square())
    return torch.cat(found) if found else torch.zeros(0, dtype=torch.float64)
