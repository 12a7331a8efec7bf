"""What a training command or a sweep point trains, from one flat table of settings: the model
family, that family's settings, the training configuration and the data specification."""

from __future__ import annotations

from typing import Any

from vaecollapse.core.data import DataSpec
from vaecollapse.core.models.factory import Family, family_settings
from vaecollapse.core.options import split_settings
from vaecollapse.training.config import TrainConfig


def training_settings(
    settings: dict[str, Any],
) -> tuple[str, dict[str, Any], TrainConfig, DataSpec]:
    """The model family, that family's settings, the training configuration and the data
    specification of ``settings`` (each value checked against its declaration)."""
    family = Family(**split_settings(settings, Family)).model
    return (
        family,
        family_settings(family, settings),
        TrainConfig(**split_settings(settings, TrainConfig)),
        DataSpec(**split_settings(settings, DataSpec)),
    )
