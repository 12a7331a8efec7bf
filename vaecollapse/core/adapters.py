"""Users' models and data as the diagnostics need them.

:func:`as_latent_model` turns a VAE written without this toolkit into a :class:`LatentModel`:
an encoder (a function, an ``nn.Module``, or a module with an ``encode`` method or an ``encoder``
attribute) returning ``(mean, logvar)``, ``(loc, scale)`` or a ``torch.distributions.Normal``
— of a vector ``(B, d)`` or a grid ``(B, C, H, W)``, ``(B, T, d)`` — and, for the likelihood, a
decoder (Gaussian with η_dec, or Bernoulli logits or probabilities) or any function
log p(x | z); a diffusers ``AutoencoderKL`` (or any diffusers autoencoder with a
``latent_dist``) is read as it is. :func:`as_tensor_data` takes a tensor, a ``TensorDataset`` or any
``DataLoader``. Whatever is not recognised is a clear error naming what was found and what is
accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.distributions import Normal

from vaecollapse.core.errors import InputError
from vaecollapse.core.models.latent import reparameterise
from vaecollapse.core.objectives import (
    LOG_2PI,
    decoder_log_likelihood,
    linear_head_squared_error,
    rowwise,
)
from vaecollapse.core.protocol import LatentLevel, LatentModel

ENCODER_OUTPUTS = ("logvar", "scale")
LIKELIHOODS = ("gaussian", "bernoulli")
DECODER_OUTPUTS = ("logits", "probabilities")  # what a Bernoulli decoder returns
DATA_KEYS = ("x", "data", "image", "images", "input", "inputs", "pixel_values")
ACCEPTED_ENCODER = (
    "a tuple (mean, logvar) (or (loc, scale) with encoder_output='scale') of (B, ...) tensors, a "
    "torch.distributions.Normal of batch shape (B, ...), or a diagonal Gaussian with `mean` and "
    "`logvar` tensors (diffusers' latent_dist)"
)
DIFFUSERS_EXTRA = "pip install 'vaecollapse[diffusers]'  (or: pip install diffusers)"


def default_channel_axis(shape: tuple[int, ...]) -> int:
    """The channel axis of one row's latent shape: the features of a sequence (T, d), the first
    axis of an image or video grid (C, H, W), (C, T, H, W); a vector's dimensions are its own."""
    return 1 if len(shape) == 2 else 0


def _mean_and_second(out: Any) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
    """(mean, second output, whether it is a log-variance) of an encoder's output, or None."""
    if isinstance(out, Normal):
        return out.loc, out.scale, False
    if (
        isinstance(out, (tuple, list))
        and len(out) == 2
        and all(isinstance(t, torch.Tensor) for t in out)
    ):
        return out[0], out[1], None
    mean, logvar = getattr(out, "mean", None), getattr(out, "logvar", None)
    if isinstance(mean, torch.Tensor) and isinstance(logvar, torch.Tensor):
        return mean, logvar, True
    return None


def _find_encoder(model: Any) -> Callable[[torch.Tensor], Any]:
    for name in ("encode", "encoder"):
        candidate = getattr(model, name, None)
        if callable(candidate):
            return candidate
    if callable(model):
        return model
    raise InputError(
        f"a {type(model).__name__} is not an encoder: give a function or module that maps a "
        f"batch to {ACCEPTED_ENCODER}, or a module with an `encode` method or `encoder`."
    )


def _find_decoder(model: Any) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]] | None:
    """The model's ``decode`` method or ``decoder`` attribute, with its name, if any."""
    for name in ("decode", "decoder"):
        candidate = getattr(model, name, None)
        if callable(candidate):
            return f"{type(model).__name__}.{name}", candidate
    return None


class EncoderModel(nn.Module):
    """A user's one-level VAE under the latent-model protocol: ``encoder`` gives q(z | x); the
    prior is N(0, η_enc² I); ``log_likelihood`` comes from ``decoder`` or is given outright."""

    def __init__(
        self,
        encoder: Callable[[torch.Tensor], Any],
        *,
        eta_enc: float = 1.0,
        encoder_output: str = "logvar",
        decoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        likelihood: str = "gaussian",
        eta_dec: float = 1.0,
        decoder_log_likelihood: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        decoder_output: str = "logits",
        channel_axis: int | None = None,
    ) -> None:
        super().__init__()
        if decoder_output not in DECODER_OUTPUTS:
            raise InputError(
                f"decoder_output must be one of {DECODER_OUTPUTS}; got {decoder_output!r}."
            )
        if decoder_output != "logits" and likelihood != "bernoulli":
            raise InputError(
                "decoder_output says what a Bernoulli decoder returns; a Gaussian decoder "
                "returns the mean."
            )
        if encoder_output not in ENCODER_OUTPUTS:
            raise InputError(
                f"encoder_output must be one of {ENCODER_OUTPUTS}; got {encoder_output!r}."
            )
        if likelihood not in LIKELIHOODS:
            raise InputError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}.")
        for name, value in (("eta_enc", eta_enc), ("eta_dec", eta_dec)):
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a finite number > 0; got {value}.")
        if decoder is not None and decoder_log_likelihood is not None:
            raise InputError("give a decoder or a decoder_log_likelihood, not both.")
        self.encoder, self.decoder = encoder, decoder
        # the modules behind the functions (model.encode, model.encoder): their mode and device
        self.owners = nn.ModuleList()
        self._own(encoder)
        self._own(decoder)
        self.found_decoder: tuple[str, Callable[[torch.Tensor], torch.Tensor]] | None = None
        self.eta_enc, self.eta_dec = eta_enc, eta_dec
        self.encoder_output, self.likelihood = encoder_output, likelihood
        self.decoder_output = decoder_output
        self._log_likelihood = decoder_log_likelihood
        self._head: Any = None
        self.latent_shape: tuple[int, ...] | None = None  # one row's, learnt from the encoder
        self._channel_axis = channel_axis

    def _own(self, function: Any) -> None:
        owner = function if isinstance(function, nn.Module) else getattr(function, "__self__", None)
        if isinstance(owner, nn.Module) and all(owner is not o for o in self.owners):
            self.owners.append(owner)

    def adopt_found_decoder(self, x: torch.Tensor, likelihood_given: bool) -> str | None:
        """Take the decoder found on the user's model (``found_decoder``: its name and
        function) if it maps codes of ``x`` to x's shape; without a stated likelihood, read its
        outputs as Bernoulli probabilities when they and the data all lie in [0, 1], else as a
        Gaussian mean with the stated (or default) η_dec. Returns what was done, for the report."""
        if self.found_decoder is None:
            return None
        name, decoder = self.found_decoder
        self.found_decoder = None
        self.eval()
        try:
            with torch.no_grad():
                mean, _ = self.posterior(x)
                output = decoder(self.as_grid(mean))
        except Exception as reason:  # a decoder of another signature (z, x), (z, lengths)...
            return (
                f"{name} found but not used: called on codes it raised "
                f"{type(reason).__name__}: {reason}; give decoder= or decoder_log_likelihood=."
            )
        if not (
            isinstance(output, torch.Tensor)
            and output.shape[:1] == x.shape[:1]
            and output[0].numel() == x[0].numel()
        ):
            found = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            return (
                f"{name} found but not used: it maps codes to {found}, not to the data's "
                f"{tuple(x.shape)}; give decoder= or decoder_log_likelihood=."
            )
        self.decoder = decoder
        self._own(decoder)
        if likelihood_given:
            return f"{name} (found on the model), read as the {self.likelihood} likelihood stated"
        bounded = bool(((output >= 0) & (output <= 1)).all() and ((x >= 0) & (x <= 1)).all())
        if bounded:
            self.likelihood, self.decoder_output = "bernoulli", "probabilities"
            return (
                f"{name} (found on the model), read as Bernoulli probabilities: its outputs and "
                "the data all lie in [0, 1] (pass likelihood= and decoder_output= to say otherwise)"
            )
        return (
            f"{name} (found on the model), read as the mean of a Gaussian with η_dec = "
            f"{self.eta_dec:g} (pass likelihood= and eta_dec= to say otherwise)"
        )

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q's mean and log-variance ``(B, d)`` from whatever the encoder returns, a grid
        ``(B, *shape)`` flattened (its ``shape`` kept in ``latent_shape``)."""
        out = self.encoder(x)
        read = _mean_and_second(out)
        if read is None:
            found = (
                f"a tensor of shape {tuple(out.shape)}"
                if isinstance(out, torch.Tensor)
                else f"a {type(out).__name__}"
            )
            raise InputError(f"the encoder returned {found}; accepted: {ACCEPTED_ENCODER}.")
        mean, second, is_logvar = read
        if is_logvar is None:
            is_logvar = self.encoder_output == "logvar"
        logvar = second if is_logvar else 2 * torch.log(second)
        if mean.shape != logvar.shape or mean.ndim < 2 or mean.shape[0] != x.shape[0]:
            raise InputError(
                f"the encoder's outputs must both be (B, d) — or a grid (B, C, H, W), (B, T, d) "
                f"— for a batch of {x.shape[0]}; got {tuple(mean.shape)} and "
                f"{tuple(logvar.shape)}."
            )
        if not bool(torch.isfinite(logvar).all()):
            raise InputError(
                "the encoder returned non-finite log-variances (a zero or negative scale?); with "
                "(loc, scale) outputs pass encoder_output='scale'."
            )
        shape = tuple(mean.shape[1:])
        if self._channel_axis is not None and not -len(shape) <= self._channel_axis < len(shape):
            raise InputError(
                f"channel_axis {self._channel_axis} is not an axis of one row's latent of shape "
                f"{shape} (count from 0 after the batch axis)."
            )
        self.latent_shape = shape
        return mean.reshape(x.shape[0], -1), logvar.reshape(x.shape[0], -1)

    @property
    def channel_axis(self) -> int:
        shape = self.latent_shape or (0,)
        if self._channel_axis is None:
            return default_channel_axis(shape)
        return self._channel_axis % len(shape)

    def latent_levels(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[LatentLevel]:
        mean, logvar = self.posterior(x)
        z = reparameterise(mean, logvar, n_samples, generator)
        prior_logvar = 2 * math.log(self.eta_enc)
        return [
            LatentLevel("z", mean, logvar, z, 0.0, prior_logvar, self.latent_shape,
                        self.channel_axis)
        ]  # fmt: skip

    def _grid(self, z: torch.Tensor) -> tuple[int, ...]:
        """One row's latent shape for codes ``z`` ``(K, B, d)``: the encoder's grid, if any."""
        shape = self.latent_shape
        return shape if shape is not None and math.prod(shape) == z.shape[-1] else (z.shape[-1],)

    def as_grid(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(..., d)`` in the shape the decoder takes: ``(..., *grid)`` of the encoder's
        grid, if any."""
        return codes.reshape(*codes.shape[:-1], *self._grid(codes))

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor:
        """log p(x | z) ``(K, B)`` for codes ``(K, B, d)``; the decoder (or
        ``decoder_log_likelihood``) receives them in the encoder's shape."""
        k, batch = z.shape[:2]
        grid = self._grid(z)
        if self._log_likelihood is not None:
            return self._log_likelihood(x, self.as_grid(z))
        if self.decoder is None:
            raise InputError(
                "the likelihood needs the decoder: pass decoder=... (its output the mean of a "
                "Gaussian with eta_dec, or Bernoulli logits with likelihood='bernoulli' — "
                "probabilities with decoder_output='probabilities'), or "
                "decoder_log_likelihood=f with f(x, z) -> log p(x | z) of shape (K, B)."
            )
        flat = len(grid) == 1
        if (
            self.likelihood == "gaussian" and x.ndim == 2 and flat
            and isinstance(self.decoder, nn.Module)
        ):  # fmt: skip
            eta = torch.tensor(self.eta_dec, dtype=x.dtype, device=x.device)
            if self._head is None:  # probed once: does the decoder end in a Linear layer?
                self._head = linear_head(self.decoder, z[0, :2]) or False
            if self._head:
                features, head = self._head
                squared = linear_head_squared_error(features(z), head, x)
                return -squared / (2 * eta**2) - x.shape[1] * (torch.log(eta) + LOG_2PI / 2)
            return decoder_log_likelihood(self.decoder, x, z, eta)
        output = self.decoder(self.as_grid(z.reshape(k * batch, -1)))
        output = output.reshape(k, batch, *x.shape[1:])
        target = x.expand(k, *x.shape)
        if self.likelihood == "bernoulli" and self.decoder_output == "probabilities":
            log_p = -nn.functional.binary_cross_entropy(output, target, reduction="none")
        elif self.likelihood == "bernoulli":
            log_p = -nn.functional.binary_cross_entropy_with_logits(
                output, target, reduction="none"
            )
        else:
            log_p = Normal(output, self.eta_dec).log_prob(target)
        return log_p.reshape(k, batch, -1).sum(-1)


# pythae models whose prior is N(0, I) and whose encoder gives a Gaussian posterior
PYTHAE_MODELS = (
    "VAE", "BetaVAE", "DisentangledBetaVAE", "BetaTCVAE", "FactorVAE", "InfoVAE_MMD",
    "IWAE", "MIWAE", "PIWAE", "CIWAE", "MSSSIM_VAE",
)  # fmt: skip
PYTHAE_EXTRA = "pip install 'vaecollapse[pythae]'  (or: pip install pythae)"


class PythaeModel(nn.Module):
    """A pythae model under the latent-model protocol: its encoder's ``embedding`` and
    ``log_covariance`` are q(z | x), the prior is N(0, I), and log p(x | z) is the one pythae's
    own ``get_nll`` uses — N(reconstruction, I) for ``reconstruction_loss="mse"``, Bernoulli
    with probabilities ``reconstruction`` for ``"bce"``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        name = type(model).__name__
        if name not in PYTHAE_MODELS:
            raise InputError(
                f"pythae's {name} has no Gaussian posterior against a N(0, I) prior that "
                f"vaecollapse can read; supported: {', '.join(PYTHAE_MODELS)}."
            )
        self.owner = model
        self.reconstruction_loss = model.model_config.reconstruction_loss

    def latent_levels(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[LatentLevel]:
        out = self.owner.encoder(x)
        mean, logvar = out.embedding, out.log_covariance
        z = reparameterise(mean, logvar, n_samples, generator)
        return [LatentLevel("z", mean, logvar, z, 0.0, 0.0)]

    def log_likelihood(
        self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor:
        k, batch = z.shape[:2]
        recon = self.owner.decoder(z.reshape(k * batch, -1))["reconstruction"]
        recon = recon.reshape(k, batch, -1)
        target = x.reshape(1, batch, -1).expand_as(recon)
        if self.reconstruction_loss == "bce":
            log_p = -nn.functional.binary_cross_entropy(recon, target, reduction="none")
            return log_p.sum(-1)
        dim = recon.shape[-1]
        return -0.5 * (recon - target).square().sum(-1) - dim / 2 * math.log(2 * math.pi)


def _is_pythae(model: Any) -> bool:
    return type(model).__module__.startswith("pythae.")


class DiffusersAutoencoder(nn.Module):
    """A diffusers autoencoder (``AutoencoderKL`` and its video and audio kin) as an encoder
    and a decoder: ``encode(x).latent_dist`` is q(z | x) over the unscaled latent grid, and
    ``decode(z).sample`` the mean of the Gaussian likelihood (η_dec as stated)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        for method in ("encode", "decode"):
            if not callable(getattr(model, method, None)):
                raise InputError(
                    f"diffusers' {type(model).__name__} has no `{method}` method; vaecollapse "
                    "reads diffusers autoencoders whose encode(x).latent_dist is a diagonal "
                    "Gaussian (AutoencoderKL and its kin)."
                )
        self.model = model

    def encode(self, x: torch.Tensor) -> Any:
        out = self.model.encode(x)
        dist = getattr(out, "latent_dist", None)
        if dist is None:
            raise InputError(
                f"diffusers' {type(self.model).__name__}.encode returned no latent_dist: it is "
                "not a Gaussian autoencoder (a VQ model's codes are discrete)."
            )
        return dist

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z).sample

    @property
    def scaling_factor(self) -> float | None:
        """The latent scaling factor the model's config states (what its pipelines multiply
        the latents by), if any."""
        config = getattr(self.model, "config", None)
        value = getattr(config, "scaling_factor", None)
        return float(value) if isinstance(value, (int, float)) else None


def _is_diffusers(model: Any) -> bool:
    return type(model).__module__.startswith("diffusers.")


def linear_head(
    decoder: nn.Module, probe: torch.Tensor
) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Linear] | None:
    """If ``decoder`` returns the output of its last ``nn.Linear`` layer unchanged (checked on
    ``probe`` codes ``(n, d)``) and that layer narrows nothing it widens (H < D): a function
    giving the layer's input features ``(K, B, H)`` for codes ``(K, B, d)``, and the layer —
    so the Gaussian likelihood can skip forming the ``(K, B, D)`` outputs. Otherwise None."""
    linears = [m for m in decoder.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None
    calls: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, _, out: calls.append((m, out))) for m in linears]
    try:
        with torch.no_grad():
            output = decoder(probe)
    finally:
        for hook in hooks:
            hook.remove()
    if not calls or calls[-1][1] is not output:
        return None
    head = calls[-1][0]
    if head.in_features >= head.out_features:
        return None

    def features(codes: torch.Tensor) -> torch.Tensor:
        head.forward = lambda inputs: inputs  # the decoder up to its head
        try:
            return rowwise(decoder, codes)
        finally:
            del head.forward

    with torch.no_grad():
        if not torch.allclose(head(features(probe[None]))[0], output, rtol=1e-5, atol=1e-6):
            return None
    return features, head


def as_latent_model(model: Any, **options: Any) -> LatentModel:
    """``model`` as a :class:`LatentModel`: returned as it is when it already is one (this
    toolkit's models), a pythae model through :class:`PythaeModel`, a diffusers autoencoder
    through :class:`DiffusersAutoencoder`, anything else wrapped as an :class:`EncoderModel`
    (``options``: its arguments)."""
    if _is_pythae(model) or (isinstance(model, LatentModel) and not isinstance(model, type)):
        given = sorted(
            k for k, v in options.items() if v is not None and (k, v) != ("eta_enc", 1.0)
        )
        if given:
            raise InputError(
                f"a {type(model).__name__} brings its own prior and likelihood; leave out "
                f"{', '.join(given)}."
            )
        return PythaeModel(model) if _is_pythae(model) else model
    if _is_diffusers(model):
        wrapped = DiffusersAutoencoder(model)
        if options.get("decoder_log_likelihood") is None:
            options.setdefault("decoder", wrapped.decode)
        return EncoderModel(wrapped.encode, **options)
    encoder = _find_encoder(model)
    latent = EncoderModel(encoder, **options)
    given = options.get("decoder") is not None or options.get("decoder_log_likelihood") is not None
    if encoder is not model and not given:
        latent.found_decoder = _find_decoder(model)
    return latent


def _rows(item: Any) -> torch.Tensor:
    """The input tensor of one batch of a DataLoader or one TensorDataset row set."""
    if isinstance(item, torch.Tensor):
        return item
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
        return item[0]  # (x, label, ...) as most data sets yield
    if isinstance(item, dict):
        for key in DATA_KEYS:
            if isinstance(item.get(key), torch.Tensor):
                return item[key]
        raise InputError(
            f"a batch is a dict with keys {sorted(item)}, none of which vaecollapse knows as the "
            f"input; accepted keys: {', '.join(DATA_KEYS)}. Pass the tensor itself instead."
        )
    raise InputError(
        f"a batch is a {type(item).__name__}; accepted: a tensor, a (x, ...) tuple or a dict with "
        f"one of the keys {', '.join(DATA_KEYS)}."
    )


def as_tensor_data(data: Any) -> torch.Tensor:
    """Every row of ``data`` — a tensor or array ``(N, ...)``, a ``TensorDataset`` or any
    iterable of batches such as a ``DataLoader`` — as one tensor, checked: non-empty, finite."""
    if isinstance(data, torch.utils.data.TensorDataset):
        tensor = data.tensors[0]
    elif isinstance(data, torch.utils.data.DataLoader) or (
        isinstance(data, Iterable) and not isinstance(data, (torch.Tensor, list, tuple))
        and not hasattr(data, "__array__")
    ):  # fmt: skip
        batches = [_rows(item) for item in data]
        if not batches:
            raise InputError("the data loader yielded no batches.")
        tensor = torch.cat(batches)
    else:
        try:
            tensor = torch.as_tensor(data)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(
                f"data of type {type(data).__name__} is not understood; give a tensor or array "
                "(N, ...), a TensorDataset or a DataLoader."
            ) from None
    if tensor.ndim < 2 or tensor.shape[0] == 0:
        raise InputError(
            f"data must be a non-empty batch (N, ...); got shape {tuple(tensor.shape)}."
        )
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise InputError("the data hold NaN or infinite values.")
    return tensor
