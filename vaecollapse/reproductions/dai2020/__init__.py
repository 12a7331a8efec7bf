"""Dai, Wang & Wipf (ICML 2020): the decoder variance as a threshold, the soft-threshold decoder,
and autoencoders and VAEs of growing depth."""

from vaecollapse.reproductions.dai2020 import (  # noqa: F401  (register their entries)
    decoder_covariance,
    decoder_variance,
    depth,
    soft_threshold,
)
