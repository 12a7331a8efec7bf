"""Adam, the trainer's optimiser.

The update is torch.optim.Adam's (default settings), done by the same fused kernel that
``torch.optim.Adam(fused=True)`` calls: one pass over each parameter instead of the seven that the
multi-tensor path makes, which on a CPU is a quarter of a small model's step. It is called here
directly because the first use of any ``torch.optim`` optimiser imports ``torch._dynamo`` (about
0.9 s on a 2-core machine), a fixed cost on every training process that is larger than a whole
epoch of a small model. Tests hold it to torch's Adam.
"""

from __future__ import annotations

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
        self.steps += 1
        by_kind: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i in live:  # the kernel takes one device and dtype at a time
            by_kind.setdefault((self.params[i].device, self.params[i].dtype), []).append(i)
        beta1, beta2 = self.betas
        for (device, _), members in by_kind.items():
            step = torch.tensor(float(self.steps), device=device)
            torch._fused_adam_(
                [self.params[i] for i in members],
                [self.params[i].grad for i in members],
                [self.exp_avg[i] for i in members],
                [self.exp_avg_sq[i] for i in members],
                [],
                [step] * len(members),
                lr=self.lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=0.0,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )

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
