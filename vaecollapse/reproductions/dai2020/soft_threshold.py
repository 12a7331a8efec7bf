"""Dai, Wang & Wipf (ICML 2020), Proposition 1: with a decoder mean π_α(W z) + b, the
soft-threshold π_α(u) = sign(u)(|u| − α)₊, even an arbitrarily small α > 0 makes the collapsed
point (q(z|x) = N(0, I), p(x) = N(x̄, γ̄I)) a local minimum of the VAE energy (6), though the
energy falls without bound along a path to perfect reconstruction; at α = 0 (an affine decoder)
the same point is a saddle. The paper's data: the points (1, 1) and (−1, −1), one latent
dimension, per-point encoder moments.

Everything here is exact: the expectations over ε ~ N(0, 1) are Gauss–Hermite sums, exact for
the piecewise-polynomial integrands at the points examined (at the collapsed point W z = 0 at every
node; along the path the residual is linear in ε), and the Hessian is autograd's, in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from vaecollapse.core.data import dai_two_points
from vaecollapse.core.diagnostics.plots import new_figure, save_figure
from vaecollapse.reproductions.claims import Claim
from vaecollapse.reproductions.dai2020.decoder_variance import DAI2020
from vaecollapse.reproductions.registry import Comparison, Context, EntryResult, register

NODES = 101  # Gauss–Hermite nodes of every expectation over ε
# parameter layout of the flat vector: W (d), b (d), γ, μ_z (n), σ_z (n)
BLOCKS = ("W", "b", "γ", "μ_z", "σ_z")


@cache  # every energy evaluation uses them, thousands of times in a descent
def _nodes() -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of E_{ε~N(0,1)}[f(ε)] ≈ Σ w_k f(ε_k)."""
    points, weights = np.polynomial.hermite_e.hermegauss(NODES)
    return torch.tensor(points), torch.tensor(weights / math.sqrt(2 * math.pi))


def soft_threshold(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """π_α(u) = sign(u)·max(|u| − α, 0) = u − clamp(u, −α, α), elementwise; written so that
    autograd's derivative at u = 0 is π_α's own: 0 for α > 0, and 1 for α = 0, the identity
    (whose clamp to [0, 0] autograd would differentiate as 1 at 0)."""
    return u if alpha == 0 else u - torch.clamp(u, -alpha, alpha)


@dataclass(frozen=True)
class Layout:
    """Where each block of parameters sits in the flat vector, for data of n points in d
    dimensions and one latent dimension."""

    n: int
    d: int

    def slices(self) -> dict[str, slice]:
        sizes = {"W": self.d, "b": self.d, "γ": 1, "μ_z": self.n, "σ_z": self.n}
        out, start = {}, 0
        for name in BLOCKS:
            out[name] = slice(start, start + sizes[name])
            start += sizes[name]
        return out

    def flat(self, **blocks: torch.Tensor | float) -> torch.Tensor:
        parts = [torch.as_tensor(blocks[name], dtype=torch.float64).reshape(-1) for name in BLOCKS]
        return torch.cat(parts)


def squared_errors(
    params: torch.Tensor, x: torch.Tensor, alpha: float, layout: Layout
) -> torch.Tensor:
    """E_q ||x_i − π_α(W z) − b||² per point ``(n,)``, for ``x`` ``(n, d)``, one latent dim."""
    s = layout.slices()
    w, b = params[s["W"]], params[s["b"]]
    mu, sigma = params[s["μ_z"]], params[s["σ_z"]]
    eps, weights = _nodes()
    z = mu[:, None] + sigma[:, None] * eps[None, :]  # (n, nodes)
    decoded = soft_threshold(w[None, None, :] * z[:, :, None], alpha) + b  # (n, nodes, d)
    return (((x[:, None, :] - decoded) ** 2).sum(-1) * weights).sum(1)


def energy(params: torch.Tensor, x: torch.Tensor, alpha: float, layout: Layout) -> torch.Tensor:
    """The energy (6): Σ_i E_q[||x_i − π_α(W z) − b||²]/γ + d·log γ + σ_i² − log σ_i² + μ_i²."""
    s = layout.slices()
    gamma, mu, sigma = params[s["γ"]][0], params[s["μ_z"]], params[s["σ_z"]]
    kl_terms = sigma**2 - torch.log(sigma**2) + mu**2
    recon = squared_errors(params, x, alpha, layout) / gamma
    return (recon + layout.d * torch.log(gamma) + kl_terms).sum()


def collapsed_point(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """(7): W = 0, b = x̄, γ = γ̄ = (1/nd)Σ||x_i − x̄||², μ_z = 0, σ_z = 1."""
    mean = x.mean(0)
    gamma_bar = float(((x - mean) ** 2).sum() / (layout.n * layout.d))
    return layout.flat(
        W=torch.zeros(layout.d), b=mean, γ=gamma_bar, μ_z=torch.zeros(layout.n),
        σ_z=torch.ones(layout.n),
    )  # fmt: skip


def hessian_spectrum(x: torch.Tensor, alpha: float, layout: Layout) -> dict:
    """Gradient norm, Hessian eigenvalues and the eigenvalues of each block's own sub-matrix at
    the collapsed point."""
    point = collapsed_point(x, layout)
    grad = torch.autograd.functional.jacobian(lambda p: energy(p, x, alpha, layout), point)
    hessian = torch.autograd.functional.hessian(lambda p: energy(p, x, alpha, layout), point)
    blocks = {
        name: torch.linalg.eigvalsh(hessian[s, s]).tolist() for name, s in layout.slices().items()
    }
    return {
        "gradient_norm": float(grad.norm()),
        "eigenvalues": torch.linalg.eigvalsh(hessian).tolist(),
        "blocks": blocks,
    }


def path_energy(x: torch.Tensor, alpha: float, delta: float, layout: Layout) -> float:
    """The energy along the paper's path to perfect reconstruction: μ_z = ±1 (the points' signs),
    W = (α + 1)·1, b = 0, σ_z = δ, and γ at its optimum for the rest ((1/nd)·Σ E||x − μ_x||²)."""
    n, d = layout.n, layout.d
    params = layout.flat(
        W=torch.full((d,), alpha + 1.0, dtype=torch.float64), b=torch.zeros(d), γ=1.0,
        μ_z=torch.sign(x[:, 0]), σ_z=torch.full((n,), delta, dtype=torch.float64),
    )  # fmt: skip
    with torch.no_grad():
        params[layout.slices()["γ"]] = squared_errors(params, x, alpha, layout).sum() / (n * d)
        return float(energy(params, x, alpha, layout))


def w_gradient_alignment(
    x: torch.Tensor, alpha: float, layout: Layout, scale: float, seed: int
) -> float:
    """W·∇_W L at the collapsed point with W moved by ``scale`` along a random direction, all
    else as at (7): ≥ 0 when the gradient in W points back to (7) or is zero."""
    generator = torch.Generator().manual_seed(seed)
    params = collapsed_point(x, layout)
    s = layout.slices()
    direction = torch.randn(layout.d, generator=generator, dtype=torch.float64)
    params[s["W"]] = scale * direction / direction.norm()
    params.requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(params, x, alpha, layout), params)
    return float(params[s["W"]].detach() @ grad[s["W"]])


def descent_from_perturbation(
    x: torch.Tensor, alpha: float, layout: Layout, scale: float, seed: int, steps: int = 3000
) -> dict:
    """Gradient descent from (7) moved by ``scale`` along a random direction of every
    parameter: the distance to (7) off the W directions at the start and the end, and |W| at
    both (W, where the energy is flat, stays put or shrinks)."""
    generator = torch.Generator().manual_seed(seed)
    point = collapsed_point(x, layout)
    direction = torch.randn(point.shape, generator=generator, dtype=torch.float64)
    start = point + scale * direction / direction.norm()
    params = start.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([params], lr=0.02)
    for _ in range(steps):
        optimizer.zero_grad()
        energy(params, x, alpha, layout).backward()
        optimizer.step()
    end = params.detach()
    w = layout.slices()["W"]
    off_w = torch.ones_like(point, dtype=torch.bool)
    off_w[w] = False
    return {
        "start_off_w": float((start - point)[off_w].norm()),
        "end_off_w": float((end - point)[off_w].norm()),
        "w_start": float(start[w].norm()),
        "w_end": float(end[w].norm()),
    }


ALPHAS = (0.0, 0.1, 0.5, 1.0)
DELTAS = tuple(float(d) for d in np.geomspace(1.0, 1e-4, 9))
FLAT_TOLERANCE = 1e-9  # float64: a Hessian eigenvalue this small is exactly zero
W_PERTURBATIONS = (0.05, 0.5, 2.0)  # sizes of W-only moves away from (7)
PERTURBATION = 0.05  # size of a move of every parameter at once
RETURNED = 1e-6  # distance to (7) off W under which descent has returned


@register(
    "dai-prop1",
    "soft-threshold decoder: the collapsed point is a local minimum for α > 0, a saddle at α = 0, "
    "while the energy falls without bound elsewhere (Prop. 1)",
    "the paper's energy (6) exactly as printed (no constants dropped beyond its own), expectations "
    "by Gauss–Hermite quadrature, float64.",
    paper=DAI2020,
)
def dai_prop1(ctx: Context) -> EntryResult:
    x = torch.tensor(dai_two_points(), dtype=torch.float64)
    layout = Layout(*x.shape)
    collapsed_energy = float(energy(collapsed_point(x, layout), x, 0.5, layout))
    claim = Claim(
        "for every α > 0 the collapsed point is stationary, its Hessian positive semi-definite "
        "with zero eigenvalues only along W (where the gradient points back), and small "
        "perturbations of it return under gradient descent; at α = 0 the Hessian has a negative "
        "eigenvalue; and along the path to perfect reconstruction the energy falls below the "
        "collapsed point's, without bound"
    )
    rows, spectra = [], {}
    for alpha in ALPHAS:
        found = hessian_spectrum(x, alpha, layout)
        spectra[alpha] = found["eigenvalues"]
        smallest = min(found["eigenvalues"])
        flat = sum(abs(v) < FLAT_TOLERANCE for v in found["eigenvalues"])
        row = {
            "alpha": alpha,
            "gradient_norm": found["gradient_norm"],
            "smallest": smallest,
            "flat_directions": flat,
            "w_block_largest": max(abs(v) for v in found["blocks"]["W"]),
        }
        claim.less(
            f"α = {alpha:g}: gradient norm at the collapsed point",
            found["gradient_norm"],
            FLAT_TOLERANCE,
            "{:.2g}",
            scale=FLAT_TOLERANCE,
        )
        if alpha > 0:
            claim.greater(
                f"α = {alpha:g}: smallest Hessian eigenvalue (p.s.d.)",
                smallest,
                -FLAT_TOLERANCE,
                "{:.3g}",
                scale=FLAT_TOLERANCE,
            )
            claim.less(
                f"α = {alpha:g}: W block of the Hessian (largest |eigenvalue|)",
                row["w_block_largest"],
                FLAT_TOLERANCE,
                "{:.2g}",
                scale=FLAT_TOLERANCE,
            )
            # with W's block zero, the d smallest are W's directions: the rest must be positive
            rest = min(sorted(found["eigenvalues"])[layout.d :])
            claim.greater(
                f"α = {alpha:g}: smallest eigenvalue after W's {layout.d} zeros",
                rest,
                0.0,
                "{:.3g}",
                scale=rest,
            )
            for scale in W_PERTURBATIONS:  # W alone moved: the paper's proof, step 4
                alignment = w_gradient_alignment(x, alpha, layout, scale, seed=0)
                row[f"w_alignment_{scale:g}"] = alignment
                claim.greater(
                    f"α = {alpha:g}, W moved by {scale:g}: W·∇_W L (points back, or zero)",
                    alignment,
                    -FLAT_TOLERANCE,
                    "{:.3g}",
                    scale=abs(alignment) + FLAT_TOLERANCE,
                )
            moved = descent_from_perturbation(x, alpha, layout, PERTURBATION, seed=0)
            row |= moved
            claim.less(
                f"α = {alpha:g}, every parameter moved by {PERTURBATION:g}: distance to (7) off "
                "W after descent",
                moved["end_off_w"],
                RETURNED,
                "{:.3g}",
                scale=RETURNED,
            )
        else:
            claim.less(
                "α = 0: smallest Hessian eigenvalue (a saddle)",
                smallest,
                0.0,
                "{:.3g}",
                scale=abs(smallest),
            )
        rows.append(row)
    path = {alpha: [path_energy(x, alpha, delta, layout) for delta in DELTAS] for alpha in ALPHAS}
    for alpha, energies in path.items():
        claim.less(
            f"α = {alpha:g}: path energy at δ = {DELTAS[-1]:g}, against the collapsed point's",
            energies[-1],
            collapsed_energy,
            "{:.4g}",
        )
        claim.monotone(
            f"α = {alpha:g}: path energy as δ falls", energies, increasing=False, fmt="{:.3g}"
        )
    for alpha, energies in path.items():
        rows += [
            {"alpha": alpha, "delta": d, "path_energy": e}
            for d, e in zip(DELTAS, energies, strict=True)
        ]

    figure, (left, right) = new_figure((11, 4), 1, 2)
    for alpha, energies in path.items():
        left.plot(DELTAS, energies, marker="o", ms=3, label=f"α = {alpha:g}")
    left.axhline(collapsed_energy, color="grey", ls=":", label="collapsed point (7)")
    left.set(xscale="log", xlabel="δ (encoder std along the path)", ylabel="energy (6)")
    left.invert_xaxis()
    left.set_title("the path to perfect reconstruction")
    left.legend(fontsize=8)
    for alpha, values in spectra.items():
        right.plot(range(1, len(values) + 1), values, marker="o", ms=4, label=f"α = {alpha:g}")
    right.axhline(0.0, color="grey", lw=0.8)
    right.set(yscale="symlog", xlabel="eigenvalue index", ylabel="Hessian eigenvalue at (7)")
    right.set_title("Hessian at the collapsed point")
    right.legend(fontsize=8)
    path_figure = save_figure(figure, ctx.out / "dai-prop1.png")

    saddle = rows[0]["smallest"]
    below = all(energies[-1] < collapsed_energy for energies in path.values())
    comparisons = [
        Comparison(
            f"α = {row['alpha']:g}: gradient norm; smallest Hessian eigenvalue; zero eigenvalues",
            "stationary; a saddle at α = 0, else p.s.d. with W flat",
            f"{row['gradient_norm']:.1e}; {row['smallest']:.3g}; {row['flat_directions']}",
            "saddle" if row["smallest"] < -FLAT_TOLERANCE else "local minimum (p.s.d.)",
        )
        for row in rows[: len(ALPHAS)]
    ]
    comparisons.append(
        Comparison(
            f"energy along the path, δ = 1 → {DELTAS[-1]:g} (collapsed point: "
            f"{collapsed_energy:.3f})",
            "falls towards −∞",
            "; ".join(f"α = {a:g}: {e[0]:.2f} → {e[-1]:.2f}" for a, e in path.items()),
            ("below the collapsed point for every α" if below else "NOT below for every α")
            + f"; α = 0's smallest eigenvalue {saddle:.3g}",
        )
    )
    return EntryResult(
        **claim.fields(),
        rows=rows,
        comparisons=comparisons,
        figures=[path_figure],
    )
