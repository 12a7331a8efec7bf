"""The model families, and what the rest of the package asks of each: one registry, so that no
module tells families apart by their names."""

from __future__ import annotations

from dataclasses import dataclass

from vaecollapse.core.errors import InputError


@dataclass(frozen=True)
class ModelFamily:
    """``conditional``: models y given x and needs paired data. ``hierarchical``: a stack of
    latent levels, level 1 nearest the data, whose top level z2 is the one the papers sweep.
    ``default_dataset``: the embedded data set a command uses when none is named."""

    name: str
    conditional: bool
    hierarchical: bool
    default_dataset: str

    @property
    def swept_level(self) -> str:
        """The level whose collapse a β sweep follows."""
        return "z2" if self.hierarchical else "z"

    @property
    def swept_beta(self) -> str:
        """The setting of that level's β (the MHVAE's β1 stays a setting of its own)."""
        return "beta2" if self.hierarchical else "beta"

    @property
    def swept_beta_symbol(self) -> str:
        return "β2" if self.hierarchical else "β"


MODEL_FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily("vae", conditional=False, hierarchical=False, default_dataset="digits"),
        ModelFamily(
            "cvae", conditional=True, hierarchical=False, default_dataset="digits-quadrant"
        ),
        ModelFamily("mhvae", conditional=False, hierarchical=True, default_dataset="digits"),
    )
}
FAMILY_NAMES = tuple(MODEL_FAMILIES)


def model_family(name: str) -> ModelFamily:
    """The family called ``name``; an unknown name is an :class:`InputError` listing the known."""
    try:
        return MODEL_FAMILIES[name]
    except (KeyError, TypeError):
        raise InputError(f"model {name!r} is not one of {', '.join(FAMILY_NAMES)}.") from None
