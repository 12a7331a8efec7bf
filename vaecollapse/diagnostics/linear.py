"""Theory vs learned for linear models: the singular values of the learned maps and the encoder
stds, beside the theory engine's optimum for the same data and hyper-parameters, with D_MA.

Maps (docs/theory.md): VAE U and V = W·A^{1/2} (V's singular values are those of W·P_A·Φ^{1/2});
CVAE U1 (the decoder from z) and the encoder std; MHVAE V1 = W1·A^{1/2}, U1, W2, U2 and the stds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data import Dataset
from ..errors import InputError
from ..models.latent import AMORTIZED_MODES
from ..theory import moments, predict_for_config
from .metrics import sorted_mean_abs_difference


def root_second_moment(a: np.ndarray) -> torch.Tensor:
    """A^{1/2} (float64) of a PSD second moment A: W·A^{1/2} has the singular values of
    W·P_A·Φ^{1/2}."""
    evals, evecs = np.linalg.eigh(a)
    return torch.from_numpy((evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T)


def _stds(head) -> np.ndarray:
    if head.variance in AMORTIZED_MODES:
        raise InputError(
            "the theory compares data-independent encoder variances (shared or fixed), but this "
            "model's variance is amortized."
        )
    logvar = head.shared_logvar if head.variance == "shared" else head.fixed_logvar
    return np.sort(torch.exp(0.5 * logvar.detach().double()).cpu().numpy())


def fixed_sigma(head) -> float | list[float] | None:
    if head.variance != "fixed":
        return None
    stds = torch.exp(0.5 * head.fixed_logvar.double()).cpu().numpy()
    return float(stds[0]) if np.allclose(stds, stds[0]) else stds.tolist()


def singular_values(matrix: torch.Tensor) -> np.ndarray:
    return torch.linalg.svdvals(matrix.detach().double().cpu()).numpy()


def learned_spectra(model: nn.Module, dataset: Dataset) -> dict[str, dict[str, np.ndarray]]:
    """``{"singular_values": {map: values}, "encoder_std": {level: stds}}`` of a linear model."""
    from ..models import CVAE, MHVAE, VAE

    if getattr(model.config, "backbone", None) != "linear":
        raise InputError("theory vs learned needs a model with the linear backbone.")
    x = dataset.train.x.cpu()
    if isinstance(model, VAE):
        root = root_second_moment(moments(x)[0])
        return {
            "singular_values": {
                "U": singular_values(model.decoder.weight),
                "V": singular_values(model.head.mean.weight.double().cpu() @ root),
            },
            "encoder_std": {"z": _stds(model.head)},
        }
    if isinstance(model, CVAE):
        u1 = model.decoder.weight[:, : model.config.latent_dim]
        return {
            "singular_values": {"U1": singular_values(u1)},
            "encoder_std": {"z": _stds(model.head)},
        }
    if isinstance(model, MHVAE):
        if model.config.levels != 2:
            raise InputError("the theory covers the two-level MHVAE.")
        root = root_second_moment(moments(x)[0])
        w1, w2 = (e.head.mean.weight for e in model.encoders)
        u1, u2 = (d.weight for d in model.decoders)
        return {
            "singular_values": {
                "V1": singular_values(w1.double().cpu() @ root),
                "U1": singular_values(u1),
                "W2": singular_values(w2),
                "U2": singular_values(u2),
            },
            "encoder_std": {f"z{i + 1}": _stds(e.head) for i, e in enumerate(model.encoders)},
        }
    raise InputError(f"no linear theory covers a {type(model).__name__}.")


def theory_prediction(model: nn.Module, dataset: Dataset):
    """The theory engine's optimum for this model's family, data and hyper-parameters."""
    return predict_for_config(model.config, dataset)


def theory_comparison(model: nn.Module, dataset: Dataset) -> dict:
    """Learned vs predicted singular values and encoder stds, each with its D_MA; the predicted
    active dimensions per level."""
    learned = learned_spectra(model, dataset)
    optimum = theory_prediction(model, dataset).optimum
    out: dict = {"maps": {}, "encoder_std": {}, "predicted_active": dict(optimum.active_dims)}
    for kind in ("singular_values", "encoder_std"):
        target = out["maps"] if kind == "singular_values" else out["encoder_std"]
        theory = getattr(optimum, kind)
        for name, values in learned[kind].items():
            if name not in theory:
                continue
            target[name] = {
                "learned": np.sort(values)[::-1].tolist(),
                "theory": np.sort(np.asarray(theory[name]))[::-1].tolist(),
                "d_ma": sorted_mean_abs_difference(values, theory[name]),
            }
    return out
