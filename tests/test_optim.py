"""The trainer's Adam is torch.optim.Adam, step for step, and its state round-trips."""

from __future__ import annotations

import torch

from vaecollapse.optim import Adam


def _problem(seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    torch.manual_seed(seed)
    params = [torch.randn(5, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    return params, torch.randn(7, 5)


def _loss(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return ((torch.tanh(x @ params[0] + params[1]) - 0.3) ** 2).sum()


def test_matches_torch_adam_exactly() -> None:
    ours_params, x = _problem(0)
    theirs_params, _ = _problem(0)
    frozen = torch.zeros(2, requires_grad=True)  # never gets a gradient: must stay untouched
    ours = Adam([*ours_params, frozen], lr=0.05)
    theirs = torch.optim.Adam(theirs_params, lr=0.05, foreach=True)
    for _ in range(25):
        for optimiser, params in ((ours, ours_params), (theirs, theirs_params)):
            optimiser.zero_grad()
            _loss(params, x).backward()
            optimiser.step()
    for a, b in zip(ours_params, theirs_params, strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    assert torch.equal(frozen, torch.zeros(2))


def test_state_round_trip_continues_identically() -> None:
    params, x = _problem(1)
    optimiser = Adam(params, lr=0.1)
    for _ in range(3):
        optimiser.zero_grad()
        _loss(params, x).backward()
        optimiser.step()
    saved_params = [p.detach().clone().requires_grad_() for p in params]
    restored = Adam(saved_params, lr=0.1)
    restored.load_state_dict(optimiser.state_dict())
    for opt, ps in ((optimiser, params), (restored, saved_params)):
        for _ in range(4):
            opt.zero_grad()
            _loss(ps, x).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(params, saved_params, strict=True))
