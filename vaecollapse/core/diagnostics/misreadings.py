"""Guards against reading a user's model wrongly: outputs whose values say they are not what the
adapter's options take them for. Each misreading would give a confident, wrong number (a KL or
a likelihood), so each is a warning in the report and a Python warning that names the fix."""

from __future__ import annotations

import math
import warnings

import torch

from vaecollapse.core.adapters import EncoderModel
from vaecollapse.core.errors import MisreadingWarning
from vaecollapse.core.protocol import LatentModel

RESIDUAL_FACTOR = 2.0  # an assumed η_dec this many times off the residuals' rms is a misreading


def misreadings(
    latent: LatentModel, x: torch.Tensor, residual_std: float | None, eta_stated: bool
) -> list[dict]:
    """``[{"code", "message"}]`` for the rows ``x`` (a probe subset): an encoder scale read as a
    log-variance, Bernoulli probabilities read as logits, an η_dec assumed (not stated:
    ``eta_stated``) far from the residuals' rms (``residual_std``, from the decoder-usage
    probe)."""
    if not isinstance(latent, EncoderModel):
        return []
    found = []
    with torch.no_grad():
        out = latent.encoder(x)
        if latent.encoder_output == "logvar" and isinstance(out, (tuple, list)):
            smallest = float(out[1].min())
            if smallest > 0:
                found.append({
                    "code": "scale-read-as-logvar",
                    "message": (
                        "the encoder's second output is positive for every row and dimension "
                        f"(smallest {smallest:.3g}), as a scale (std) is, but it is read as a "
                        "log-variance, which makes every σ > 1 and the KL wrong; if it is a "
                        "scale, pass encoder_output='scale'."
                    ),
                })  # fmt: skip
        if (
            latent.likelihood == "bernoulli"
            and latent.decoder_output == "logits"
            and (latent.decoder is not None)
        ):
            mean, _ = latent.posterior(x)
            output = latent.decoder(latent.as_grid(mean))
            low, high = float(output.min()), float(output.max())
            if low >= 0 and high <= 1:
                found.append({
                    "code": "probabilities-read-as-logits",
                    "message": (
                        f"every decoder output lies in [0, 1] ({low:.3g} to {high:.3g}), as "
                        "Bernoulli probabilities do, but they are read as logits, which puts "
                        "every pixel's probability between 0.5 and 0.73 and the likelihood far "
                        "too low; if the decoder ends in a sigmoid, pass "
                        "decoder_output='probabilities'."
                    ),
                })  # fmt: skip
    if residual_std is not None and residual_std > 0 and not eta_stated:
        ratio = latent.eta_dec / residual_std
        if abs(math.log(ratio)) > math.log(RESIDUAL_FACTOR):
            found.append({
                "code": "eta-dec-far-from-residuals",
                "message": (
                    f"the Gaussian likelihood assumes η_dec = {latent.eta_dec:g} (the default), "
                    "but the "
                    f"decoder's residuals have an rms of {residual_std:.3g} per value, "
                    f"{ratio:.3g}× off: the likelihood (and IWAE) figures hold for η_dec = "
                    f"{latent.eta_dec:g} only; if the model was trained with another or a "
                    f"learned η_dec, pass it (eta_dec={residual_std:.3g} is what a learned one "
                    "would reach)."
                ),
            })  # fmt: skip
    return found


def warn(found: list[dict]) -> None:
    """Each misreading as a MisreadingWarning, attributed to the caller of ``diagnose``."""
    for item in found:
        warnings.warn(f"[{item['code']}] {item['message']}", MisreadingWarning, stacklevel=3)
