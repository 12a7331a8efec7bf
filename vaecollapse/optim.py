"""Adam, the trainer's optimiser.

The update is torch.optim.Adam's (default settings, multi-tensor path), written out with the same
fused multi-tensor kernels. It exists because the first use of any ``torch.optim`` optimiser
imports ``torch._dynamo`` (about 0.9 s on a 2-core machine), a fixed cost on every training
process that is larger than a whole epoch of a small model. Tests hold it to torch's Adam.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class Adam:
    """Adam (Kingma & Ba) with bias correction; ``state_dict``/``load_state_dict`` for resume."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [self.params[i].grad for i in live]
        exp_avg = [self.exp_avg[i] for i in live]
        exp_avg_sq = [self.exp_avg_sq[i] for i in live]
        beta1, beta2 = self.betas
        self.steps += 1
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2)
        step_size = self.lr / (1 - beta1**self.steps)
        root_correction = math.sqrt(1 - beta2**self.steps)
        denominator = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denominator, root_correction)
        torch._foreach_add_(denominator, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denominator, -step_size)

    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "exp_avg": [t.clone() for t in self.exp_avg],
            "exp_avg_sq": [t.clone() for t in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["exp_avg"]) != len(self.params):
            raise ValueError("the optimiser state belongs to a model with other parameters")
        self.steps, self.lr, self.betas, self.eps = (
            state["steps"],
            state["lr"],
            tuple(state["betas"]),
            state["eps"],
        )
        for mine, theirs in zip(
            self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"], strict=True
        ):
            mine.copy_(theirs)
