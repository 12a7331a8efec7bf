"""Lucas, Tucker, Grosse & Norouzi (NeurIPS 2019): the linear VAE as probabilistic PCA, and a deep
VAE under fixed and learned observation noise."""

from vaecollapse.reproductions.lucas2019 import (  # noqa: F401  (register their entries)
    observation_noise,
    ppca_equivalence,
)
