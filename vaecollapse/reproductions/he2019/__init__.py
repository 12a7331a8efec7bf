"""He et al. (ICLR 2019): lagging inference networks and aggressive encoder training."""

from vaecollapse.reproductions.he2019 import (  # noqa: F401  (register their entries)
    lagging_inference,
)
