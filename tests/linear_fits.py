"""Linear models trained to their optimum, for tests that compare them with a prediction."""

from __future__ import annotations

from pathlib import Path

import torch

from vaecollapse.core.data import Dataset
from vaecollapse.core.models import VAE, VAEConfig
from vaecollapse.training.config import TrainConfig
from vaecollapse.training.trainer import train


def train_to_optimum(
    dataset: Dataset, config: VAEConfig, out: Path, epochs: int, **train_settings
) -> VAE:
    """A VAE (seed 0) trained full-batch with the analytic ELBO and its learning rate annealed
    to zero (cosine), so that it settles on the optimum instead of oscillating around it (free
    bits' hinge would otherwise keep a KL moving around its target). Returned in eval mode."""
    torch.manual_seed(0)
    model = VAE(config)
    training = TrainConfig(
        epochs=epochs, batch_size=len(dataset.train), lr=3e-2, analytic=True,
        lr_scheduler="CosineAnnealingLR", lr_scheduler_args={"T_max": epochs}, **train_settings,
    )  # fmt: skip
    train(model, dataset, training, out, progress=False)
    return model.eval()
