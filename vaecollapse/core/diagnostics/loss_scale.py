"""The KL weight a user's own loss function applies, measured from its gradients.

A loss written as c_r·(−Σ log p(x | z)) + c_k·Σ KL(q ‖ p) weights the KL by β_eff = c_k / c_r in
the summed-ELBO convention (docs/conventions.md). While ``loss_fn(model, batch)`` runs, the
encoder's output is replaced by posteriors whose means are chosen here and whose std is tiny, so
the decoder sees z ≈ the mean; the loss's gradient with respect to those means is then
c_r·∂(−log p(x | z))/∂z + c_k·(z − μ_p)/σ_p², and a least-squares fit of the two coefficients
gives β_eff — 784·β for a reconstruction averaged over 784 pixels, 0 for a KL that never reaches
the gradient (a detached or forgotten term). B = rows, d = latent dimensions.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributions import Normal

from vaecollapse.core.adapters import EncoderModel, PythaeModel
from vaecollapse.core.errors import InputError
from vaecollapse.core.protocol import LatentModel

PROBE_STD = 1e-3  # the replaced posteriors' std, as a share of the prior's: z is the mean
LOSS_ROWS = 200  # rows of the batch given to loss_fn: not a common width, so B is recognisable


@dataclass
class LossScale:
    """β_eff = ``kl_coefficient`` / ``reconstruction_coefficient`` (coefficients of the summed
    −log p(x | z) and KL over the batch of ``rows``); ``misfit``: the share of the loss's
    gradient that the two terms leave unexplained (0 when the loss is exactly such a sum)."""

    kl_coefficient: float
    reconstruction_coefficient: float
    misfit: float
    rows: int

    @property
    def kl_weight(self) -> float:
        return self.kl_coefficient / self.reconstruction_coefficient

    def to_dict(self) -> dict:
        return {
            "kl_weight": self.kl_weight,
            "kl_coefficient": self.kl_coefficient,
            "reconstruction_coefficient": self.reconstruction_coefficient,
            "misfit": self.misfit,
            "rows": self.rows,
        }


def _scalar_loss(value: Any) -> torch.Tensor:
    """The loss tensor of what a loss function returned: a scalar, a dict with "loss" or an
    object with ``.loss`` (pythae's ModelOutput, a Lightning step's dict)."""
    if isinstance(value, Mapping) and "loss" in value:
        value = value["loss"]
    elif not isinstance(value, torch.Tensor) and hasattr(value, "loss"):
        value = value.loss
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        found = (
            f"a tensor of shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}"
        )
        raise InputError(
            f"loss_fn returned {found}; it must return the loss as a scalar tensor (or a dict "
            "with 'loss', or an object with .loss)."
        )
    return value


class _Replacement:
    """The posteriors that stand in for the encoder's output: means drawn around the encoder's
    own (so they are not proportional to the decoder's pull), log-variances at PROBE_STD."""

    def __init__(self, prior_std: float, generator: torch.Generator) -> None:
        self.prior_std, self.generator = prior_std, generator
        self.mean: torch.Tensor | None = None
        self.logvar: torch.Tensor | None = None

    def leaves(self, encoder_mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean is None:
            noise = torch.randn(encoder_mean.shape, dtype=encoder_mean.dtype,
                                generator=self.generator).to(encoder_mean.device)  # fmt: skip
            mean = encoder_mean.detach() + self.prior_std * noise
            self.mean = mean.requires_grad_(True)
            log_std = math.log(PROBE_STD * self.prior_std)
            self.logvar = torch.full_like(mean, 2 * log_std)
        elif self.mean.shape != encoder_mean.shape:
            raise InputError(
                "loss_fn called the encoder on batches of different shapes "
                f"({tuple(self.mean.shape)}, then {tuple(encoder_mean.shape)}); measuring its "
                "KL weight needs one batch through the encoder."
            )
        return self.mean, self.logvar


def _replaced_encoder_output(latent: LatentModel, replacement: _Replacement) -> Any:
    """The encoder to intercept and a function turning its output into the replacement's."""
    if isinstance(latent, PythaeModel):

        def replace(out):
            mean, logvar = replacement.leaves(out.embedding)
            return type(out)(**{**out, "embedding": mean, "log_covariance": logvar})

        return latent.owner.encoder, replace
    if not isinstance(latent, EncoderModel):
        raise InputError(
            f"loss_fn is measured on a user's model read by vaecollapse's adapters; a "
            f"{type(latent).__name__} states its β in its own settings."
        )

    def replace(out):
        if isinstance(out, Normal):
            mean, logvar = replacement.leaves(out.loc)
            return Normal(mean, torch.exp(0.5 * logvar))
        mean, logvar = replacement.leaves(out[0])
        second = logvar if latent.encoder_output == "logvar" else torch.exp(0.5 * logvar)
        return type(out)((mean, second))

    return latent.encoder, replace


@contextlib.contextmanager
def _intercepted(encoder: Callable, replace: Callable[[Any], Any]) -> Iterator[list[int]]:
    """While inside: every call of ``encoder`` (a module, or a module's bound method) returns
    ``replace(its output)``; yields a list that counts the calls."""
    calls: list[int] = []
    if isinstance(encoder, nn.Module):

        def hook(module, inputs, out):
            calls.append(1)
            return replace(out)

        handle = encoder.register_forward_hook(hook)
        try:
            yield calls
        finally:
            handle.remove()
        return
    owner, name = getattr(encoder, "__self__", None), getattr(encoder, "__name__", None)
    if not isinstance(owner, nn.Module) or name is None:
        raise InputError(
            "measuring loss_fn's KL weight needs an encoder vaecollapse can intercept inside "
            "your model: pass the model itself (a module with an `encode` method or an "
            "`encoder` module), not a bare function."
        )

    def patched(*args, **kwargs):
        calls.append(1)
        return replace(encoder(*args, **kwargs))

    setattr(owner, name, patched)
    try:
        yield calls
    finally:
        delattr(owner, name)


def loss_scale(
    latent: LatentModel,
    loss_fn: Callable[[Any, torch.Tensor], Any],
    model: Any,
    x: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> LossScale:
    """β_eff of ``loss_fn(model, batch)`` for a batch of the first ``LOSS_ROWS`` rows of ``x``:
    ``latent`` is ``model`` as the diagnostics read it (its likelihood is the −log p(x | z) the
    KL weight is relative to). Raises an InputError when the loss does not reach the encoder's
    output or the fit is impossible (no decoder to compare with)."""
    generator = generator or torch.Generator().manual_seed(0)
    batch = x[:LOSS_ROWS]
    with torch.no_grad():
        level = latent.latent_levels(batch, None, n_samples=1, generator=generator)[0]
    prior_std = float(level.prior.scale.mean())
    replacement = _Replacement(prior_std, generator)
    encoder, replace = _replaced_encoder_output(latent, replacement)
    with _intercepted(encoder, replace) as calls:
        loss = _scalar_loss(loss_fn(model, batch))
    if not calls or replacement.mean is None:
        raise InputError(
            "loss_fn never called the encoder vaecollapse reads (its `encode` method or "
            "`encoder` module); give a loss_fn(model, batch) that runs the model on the batch."
        )
    (pull,) = torch.autograd.grad(loss, [replacement.mean], allow_unused=True)
    if pull is None:
        raise InputError("loss_fn's value does not depend on the encoder's output.")
    means = replacement.mean.detach().requires_grad_(True)
    negative_log_likelihood = -latent.log_likelihood(batch, None, means[None]).sum()
    (reconstruction,) = torch.autograd.grad(negative_log_likelihood, [means])
    prior_mean = torch.as_tensor(level.prior.loc, dtype=means.dtype).expand_as(means)
    prior_var = torch.as_tensor(level.prior.scale, dtype=means.dtype).expand_as(means) ** 2
    kl_pull = (means.detach() - prior_mean) / prior_var
    design = torch.stack([reconstruction.flatten(), kl_pull.flatten()], 1).double()
    target = pull.detach().flatten().double()
    solution = torch.linalg.lstsq(design, target[:, None]).solution[:, 0]
    residual = target - design @ solution
    misfit = float(residual.norm() / target.norm().clamp_min(1e-300))
    if float(solution[0]) <= 0:
        raise InputError(
            "loss_fn's gradient does not follow the model's likelihood (no positive multiple of "
            "−log p(x | z)); is the likelihood stated right (likelihood=, eta_dec=)?"
        )
    return LossScale(float(solution[1]), float(solution[0]), misfit, int(batch.shape[0]))
