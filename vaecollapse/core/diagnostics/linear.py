"""Theory vs learned for linear models: the singular values of the learned maps and the encoder
stds, beside the theory engine's optimum for the same data and hyper-parameters, with D_MA.

Maps (docs/theory.md): VAE U and V = W·A^{1/2} (V's singular values are those of W·P_A·Φ^{1/2});
CVAE U1 (the decoder from z) and the encoder std; MHVAE V1 = W1·A^{1/2}, U1, W2, U2 and the stds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vaecollapse.core.data import Dataset
from vaecollapse.core.diagnostics.metrics import sorted_mean_abs_difference
from vaecollapse.core.errors import InputError
from vaecollapse.core.theory import moments, predict_for_config


def root_second_moment(a: np.ndarray) -> torch.Tensor:
    """A^{1/2} (float64) of a PSD second moment A: W·A^{1/2} has the singular values of
    W·P_A·Φ^{1/2}."""
    evals, evecs = np.linalg.eigh(a)
    return torch.from_numpy((evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T)


def singular_values(matrix: torch.Tensor) -> np.ndarray:
    return torch.linalg.svdvals(matrix.detach().double().cpu()).numpy()


def learned_spectra(model: nn.Module, dataset: Dataset) -> dict[str, dict[str, np.ndarray]]:
    """``{"singular_values": {map: values}, "encoder_std": {level: stds}}`` of a linear model
    that names its theory maps (``linear_maps``, ``encoder_stds``: this toolkit's models)."""
    config = getattr(model, "config", None)
    if getattr(config, "backbone", None) != "linear" or not hasattr(model, "linear_maps"):
        raise InputError(
            "theory vs learned needs a model with the linear backbone that names its maps."
        )
    root = root_second_moment(moments(dataset.train.x.cpu())[0])
    return {
        "singular_values": {
            name: singular_values(matrix) for name, matrix in model.linear_maps(root).items()
        },
        "encoder_std": {
            name: np.sort(std.double().cpu().numpy()) for name, std in model.encoder_stds().items()
        },
    }


def theory_prediction(model: nn.Module, dataset: Dataset):
    """The theory engine's optimum for this model's family, data and hyper-parameters."""
    return predict_for_config(model.config, dataset)


def theory_comparison(model: nn.Module, dataset: Dataset) -> dict:
    """Learned vs predicted singular values and encoder stds, each with its D_MA; the predicted
    active dimensions per level. Where the model's objective has no unique optimum (``status``
    "unbounded" or "non-unique", e.g. an MHVAE whose lower level has the larger β with both
    variances learned) there is nothing to compare with: the maps are left empty and
    ``degeneracy`` says why."""
    optimum = theory_prediction(model, dataset).optimum
    out: dict = {
        "status": optimum.status,
        "maps": {},
        "encoder_std": {},
        "predicted_active": dict(optimum.active_dims),
    }
    if optimum.degeneracy is not None:
        out["degeneracy"] = optimum.degeneracy.direction
        return out
    learned = learned_spectra(model, dataset)
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
