"""Exact negative β-ELBOs of the linear models, written in second moments (float64 torch).

Every function returns L per sample in nats with all constants (docs/conventions.md): the
paper's objectives are 2·L with constants dropped, so the minimisers are the same. The cost does not
grow with the number of samples.

Hierarchical model with L levels (z_0 = x): q(z_l | z_{l-1}) = N(W_l z_{l-1}, Σ_l),
p(z_{l-1} | z_l) = N(U_l z_l, η_dec² I), p(z_L) = N(0, η_enc² I); the KL weight of level l is β_l.
Level l < L contributes β_l E_q[log q(z_l|z_{l-1}) − log p(z_l|z_{l+1})] (Dang et al. Sec. 4.2);
the top level β_L E_q KL(q(z_L|z_{L-1}) || p(z_L)). One level is the standard VAE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

LOG_2PI = math.log(2 * math.pi)


def gaussian_fit_term(
    residual_moment_trace: torch.Tensor, dim: int, log_eta: torch.Tensor
) -> torch.Tensor:
    """E[−log N(v; mean, η² I)] given E||v − mean||² and the dimension of v."""
    return residual_moment_trace / (2 * torch.exp(2 * log_eta)) + dim * (LOG_2PI / 2 + log_eta)


def kl_to_isotropic(
    mean_moment_trace: torch.Tensor, var: torch.Tensor, log_eta_enc: float
) -> torch.Tensor:
    """E_x KL(N(m(x), diag var) || N(0, η² I)) given E||m||² (sum over dimensions)."""
    eta2 = math.exp(2 * log_eta_enc)
    d = var.numel()
    return 0.5 * (
        (var.sum() + mean_moment_trace) / eta2 - d - torch.log(var).sum() + d * 2 * log_eta_enc
    )


def times_moment(w: torch.Tensor, moment: torch.Tensor) -> torch.Tensor:
    """``w @ M`` for a moment given as a full matrix ``(n, n)`` or as its diagonal ``(n,)``."""
    return w * moment if moment.ndim == 1 else w @ moment


def moment_trace(moment: torch.Tensor) -> torch.Tensor:
    return moment.sum() if moment.ndim == 1 else torch.trace(moment)


def hierarchical_loss(
    a: torch.Tensor,
    encoders: Sequence[torch.Tensor],
    decoders: Sequence[torch.Tensor],
    variances: Sequence[torch.Tensor],
    betas: Sequence[float],
    eta_enc: float,
    log_eta_dec: torch.Tensor,
) -> torch.Tensor:
    """L for the L-level linear model.

    ``a``: E[x xᵀ] ``(D, D)`` or its diagonal ``(D,)``; ``encoders[l]``: W_{l+1} ``(d_{l+1}, d_l)``;
    ``decoders[l]``: U_{l+1} ``(d_l, d_{l+1})``; ``variances[l]``: diag Σ_{l+1} ``(d_{l+1},)``.
    """
    moment = a  # E[z_l z_lᵀ] of the level being reconstructed, starting from x
    total = torch.zeros((), dtype=a.dtype)
    top = len(encoders) - 1
    for level, (w, u, var) in enumerate(zip(encoders, decoders, variances, strict=True)):
        weight = 1.0 if level == 0 else betas[level - 1]
        wm = times_moment(w, moment)  # (d_{l+1}, d_l)
        mean_moment = wm @ w.T  # E[(W z_l)(W z_l)ᵀ]
        utu = u.T @ u
        # E||z_l − U z_{l+1}||² with z_{l+1} = W z_l + ξ, expanded so that no (d_l, d_l) product
        # of parameters is formed: tr M − 2 tr(U W M) + tr(W M Wᵀ UᵀU) + tr(UᵀU Σ).
        fit = (
            moment_trace(moment)
            - 2 * torch.sum(u * wm.T)
            + torch.sum(mean_moment * utu)
            + torch.sum(torch.diagonal(utu) * var)
        )
        total = total + weight * gaussian_fit_term(fit, u.shape[0], log_eta_dec)
        if level > 0:  # minus the entropy of q(z_l | z_{l-1}), the other half of that level's KL
            below = variances[level - 1]
            total = total - weight * 0.5 * (torch.log(below).sum() + below.numel() * (1 + LOG_2PI))
        if level == top:
            total = total + betas[-1] * kl_to_isotropic(
                torch.trace(mean_moment), var, math.log(eta_enc)
            )
        moment = mean_moment + torch.diag(var)
    return total


def cvae_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    u1: torch.Tensor,
    u2: torch.Tensor,
    var: torch.Tensor,
    beta: float,
    eta_enc: float,
    log_eta_dec: torch.Tensor,
) -> torch.Tensor:
    """L for the linear CVAE: q(z|x,y) = N(W1 x + W2 y, Σ), p(y|z,x) = N(U1 z + U2 x, η_dec² I),
    p(z) = N(0, η_enc² I). ``a`` = E[x xᵀ], ``b`` = E[y yᵀ] (full or diagonals), ``c`` = E[y xᵀ].
    """
    s_zx = times_moment(w1, a) + w2 @ c  # E[m(x, y) xᵀ], m = W1 x + W2 y: (d, D0)
    s_zy = w1 @ c.T + times_moment(w2, b)  # E[m yᵀ]: (d, D2)
    s_zz = s_zx @ w1.T + s_zy @ w2.T  # E[m mᵀ]: (d, d)
    u1tu1 = u1.T @ u1
    # E||U1 m + U2 x − y||² + tr(U1 Σ U1ᵀ), expanded so that no (D2, D2) product is formed.
    fit = (
        torch.sum(s_zz * u1tu1)
        + 2 * torch.sum((u1 @ s_zx) * u2)
        - 2 * torch.sum(u1 * s_zy.T)
        + torch.sum(times_moment(u2, a) * u2)
        - 2 * torch.sum(u2 * c)
        + moment_trace(b)
        + torch.sum(torch.diagonal(u1tu1) * var)
    )
    return gaussian_fit_term(fit, b.shape[0], log_eta_dec) + beta * kl_to_isotropic(
        torch.trace(s_zz), var, math.log(eta_enc)
    )
