"""Optimiser step speed, side by side in one run: the trainer's Adam (torch's fused kernel, called
directly) against ``torch.optim.Adam`` on its default multi-tensor path and with ``fused=True``,
on the parameters of the paper's ReLU-MLP MHVAE for MNIST (784-256-16-256-16, about 0.4 M
parameters), where on a CPU the optimiser is a large share of each step.

    python benchmarks/adam_step.py [--steps 300] [--device cpu]

The three optimisers start from the same parameters and see the same gradients; the largest
parameter difference after the timed steps is printed as a correctness check.
"""

from __future__ import annotations

import argparse
import time

import torch

from vaecollapse.data import synthetic_dataset
from vaecollapse.models.factory import build_model, model_config
from vaecollapse.optim import Adam


def paper_mhvae_parameters(device: torch.device) -> list[torch.Tensor]:
    data = synthetic_dataset("shape-only", torch.zeros(2, 784).numpy())
    settings = {
        "backbone": "mlp",
        "hidden": 256,
        "latent_dims": (16, 16),
        "latent_dim": 16,
        "encoder_variances": ("fixed", "amortized"),
        "sigmas": (0.5, None),
        "eta_enc": 0.5,
    }
    torch.manual_seed(0)
    model = build_model(model_config("mhvae", data, **settings)).to(device)
    return [p.detach().clone().requires_grad_() for p in model.parameters()]


def timed_steps(make, params, gradients, steps: int, device: torch.device) -> float:
    optimiser = make(params)
    for p, g in zip(params, gradients, strict=True):
        p.grad = g
    optimiser.step()  # warm-up: state allocation
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        optimiser.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    reference = paper_mhvae_parameters(device)
    torch.manual_seed(1)
    gradients = [torch.randn_like(p) for p in reference]
    contenders = {
        "vaecollapse Adam (fused kernel)": lambda ps: Adam(ps, lr=1e-3),
        "torch.optim.Adam (foreach)": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
        "torch.optim.Adam (fused=True)": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
    }
    print(f"{sum(p.numel() for p in reference):,} parameters, {args.steps} steps, {device}")
    results, finals = {}, {}
    for name, make in contenders.items():
        params = [p.detach().clone().requires_grad_() for p in reference]
        results[name] = timed_steps(make, params, gradients, args.steps, device)
        finals[name] = params
    ours = results["vaecollapse Adam (fused kernel)"]
    for name, seconds in results.items():
        print(f"{name:34s} {seconds * 1e3:8.3f} ms/step  {seconds / ours:5.2f}x ours")
    base = finals["torch.optim.Adam (foreach)"]
    for name, params in finals.items():
        gap = max(float((a - b).detach().abs().max()) for a, b in zip(params, base, strict=True))
        print(f"max |param - foreach param| after the run, {name}: {gap:.2e}")


if __name__ == "__main__":
    main()
