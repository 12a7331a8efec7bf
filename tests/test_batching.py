"""Permutation batching: every example once per epoch, aligned tensors, reproducible order."""

from __future__ import annotations

import pytest
import torch

from vaecollapse.core.data import minibatch_indices, minibatches


def test_every_index_exactly_once() -> None:
    batches = list(minibatch_indices(103, 10, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(103))
    assert not torch.equal(torch.cat(batches), torch.arange(103))
    assert len(list(minibatch_indices(103, 10, drop_last=True))) == 10
    assert torch.equal(torch.cat(list(minibatch_indices(5, 2, shuffle=False))), torch.arange(5))


def test_same_seed_same_order_and_alignment() -> None:
    x = torch.arange(20.0).unsqueeze(1)
    y = 2 * x
    first = list(minibatches(x, y, None, batch_size=6, generator=torch.Generator().manual_seed(4)))
    second = list(minibatches(x, y, None, batch_size=6, generator=torch.Generator().manual_seed(4)))
    for (xa, ya, none), (xb, _, _) in zip(first, second, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, 2 * xa) and none is None


def test_bad_batch_size() -> None:
    with pytest.raises(ValueError):
        list(minibatch_indices(5, 0))
