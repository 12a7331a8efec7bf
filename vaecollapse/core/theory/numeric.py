"""Exact numeric optimum of the linear objectives, for any configuration.

Minimises the second-moment objectives of :mod:`objective` in float64 with L-BFGS (strong Wolfe line
search) from several random starts and keeps the best. Fixed or learnable variance at every level,
any number of levels, learnable decoder std (pPCA), CVAE with fixed or learnable Σ. The data are
first rotated into the eigenbasis of their second moment and its null space dropped; this change
of variables is exact (the dropped part's constant is added back), and it makes V = W P_A Φ^{1/2}
read off directly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vaecollapse.core.errors import InputError
from vaecollapse.core.theory.checks import check_latent_dim, check_positive, fixed_stds
from vaecollapse.core.theory.degeneracy import (
    CHAIN,
    NON_UNIQUE,
    OBSERVED,
    UNBOUNDED,
    Degeneracy,
    classify,
    path_losses,
)
from vaecollapse.core.theory.objective import LOG_2PI, cvae_loss, hierarchical_loss
from vaecollapse.core.theory.report import Optimum, descending, numerical_rank
from vaecollapse.core.theory.spectra import (
    PositiveEigenspace,
    descending_eigenvalues,
    residual_moment,
)

DTYPE = torch.float64


@dataclass(frozen=True)
class SolverOptions:
    """``restarts``: at most this many random starts (stops once the two best agree to 1e-9
    relative; the best is kept); ``max_iter``: L-BFGS iterations per round;
    ``rounds``: for problems too large for the Newton polish, at most this many L-BFGS runs with
    fresh curvature memory, continued while a run still lowers the loss by more than 1e-12
    relative (smaller problems take 3 runs, then Newton); ``seed``: of the first start.
    Starts are Gaussian with std ``init_scale / √fan_in`` per matrix."""

    restarts: int = 4
    max_iter: int = 600
    rounds: int = 25
    seed: int = 0
    init_scale: float = 1.0


def _dropped_constant(space: PositiveEigenspace, log_eta_dec: torch.Tensor) -> torch.Tensor:
    """What the dropped null directions add to E[−log p]: nothing to fit, only the normaliser."""
    n_dropped = space.full_dim - space.values.size
    return space.dropped_trace / (2 * torch.exp(2 * log_eta_dec)) + n_dropped * (
        LOG_2PI / 2 + log_eta_dec
    )


# Above this many parameters torch's L-BFGS (vectorised two-loop recursion) is the faster one;
# below it SciPy's compiled L-BFGS-B is (measured: 8 ms vs 2.6 ms per iteration at 91k parameters,
# the MNIST VAE with d = 64; 0.1 s vs 0.3 s per solve on problems of a few dozen parameters).
TORCH_LBFGS_ABOVE = 20_000
# Up to this many parameters the exact Hessian is cheap enough for the Newton polish.
NEWTON_MAX_PARAMS = 1000


def minimise(
    loss_of: Callable[..., torch.Tensor],
    params: list[torch.Tensor],
    options: SolverOptions,
    polish: bool = True,
) -> float:
    """Minimise ``loss_of(*params)`` over ``params`` in place and return the final loss: L-BFGS,
    then, for small problems, damped Newton steps with the exact Hessian (the L-BFGS iterates
    crawl along the near-symmetries of the hierarchical models; Newton finishes in a few steps).
    ``polish=False``: one L-BFGS round only (an objective known to have no minimum)."""
    n = sum(p.numel() for p in params)
    loss_fn = lambda: loss_of(*params)  # noqa: E731
    if not polish:
        return _minimise_scipy(loss_fn, params, options, rounds=1)
    if n > TORCH_LBFGS_ABOVE:
        return minimise_torch(loss_fn, params, options)
    if n <= NEWTON_MAX_PARAMS:
        _minimise_scipy(loss_fn, params, options, rounds=3)
        return _newton_polish(loss_of, params)
    return _minimise_scipy(loss_fn, params, options, rounds=options.rounds)


def _newton_polish(
    loss_of: Callable[..., torch.Tensor], params: list[torch.Tensor], max_steps: int = 60
) -> float:
    """Levenberg-Marquardt-damped Newton steps on the flattened parameters, each accepted only if
    it lowers the loss; stops when no damping gives a decrease."""
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def flat_loss(vector: torch.Tensor) -> torch.Tensor:
        parts = torch.split(vector, sizes)
        return loss_of(*(part.reshape(shape) for part, shape in zip(parts, shapes, strict=True)))

    vector = torch.cat([p.detach().reshape(-1) for p in params])
    value = float(flat_loss(vector))
    eye = torch.eye(vector.numel(), dtype=DTYPE)
    damping = 1e-9
    for _ in range(max_steps):
        with warnings.catch_warnings():
            # torch.func's own internals still call the deprecated torch.jit.script (torch 2.13).
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.script.*", category=DeprecationWarning
            )
            grad = torch.func.grad(flat_loss)(vector)
            hess = torch.func.hessian(flat_loss)(vector)
        hess = (hess + hess.T) / 2
        scale = float(hess.diagonal().abs().max()) or 1.0
        for _ in range(20):
            step = torch.linalg.solve(hess + damping * scale * eye, -grad)
            trial = float(flat_loss(vector + step))
            if trial < value:
                vector, value = vector + step, trial
                damping = max(damping / 10, 1e-15)
                break
            damping *= 10
        else:
            break
    with torch.no_grad():
        for p, part in zip(params, torch.split(vector, sizes), strict=True):
            p.copy_(part.reshape(p.shape))
    return value


def minimise_torch(
    loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor], options: SolverOptions
) -> float:
    """torch's L-BFGS (strong Wolfe) on ``loss_fn()`` over ``params`` in place, at most
    ``10 · options.max_iter`` iterations, until the gradient's largest entry is under 1e-9;
    returns the final loss. Its two-loop recursion is vectorised, so it suits problems with many
    parameters."""
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=options.max_iter * 10,
        max_eval=options.max_iter * 12,
        tolerance_grad=1e-9,
        tolerance_change=1e-16,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss_fn()
        value.backward()
        return value

    optimizer.step(closure)
    with torch.no_grad():
        return float(loss_fn())


def _minimise_scipy(
    loss_fn: Callable[[], torch.Tensor],
    params: list[torch.Tensor],
    options: SolverOptions,
    rounds: int,
) -> float:
    """SciPy's L-BFGS-B on the flattened parameters; torch supplies the exact gradient. Several
    rounds restart its curvature memory until the loss stops moving."""
    import scipy.optimize  # here, not at module level: it costs ~0.3 s of every CLI start

    sizes = [p.numel() for p in params]

    def assign(vector: np.ndarray) -> None:
        with torch.no_grad():
            for p, chunk in zip(params, np.split(vector, np.cumsum(sizes)[:-1]), strict=True):
                p.copy_(torch.from_numpy(chunk).reshape(p.shape))

    def value_and_grad(vector: np.ndarray) -> tuple[float, np.ndarray]:
        assign(vector)
        for p in params:
            p.grad = None
        value = loss_fn()
        value.backward()
        grad = np.concatenate([p.grad.reshape(-1).numpy() for p in params])
        return float(value.detach()), grad

    vector = np.concatenate([p.detach().reshape(-1).numpy() for p in params])
    previous = math.inf
    for _ in range(rounds):
        result = scipy.optimize.minimize(
            value_and_grad,
            vector,
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": options.max_iter,
                "maxfun": 2 * options.max_iter,
                "maxcor": 30,
                "ftol": 1e-16,
                "gtol": 1e-11,
            },
        )
        vector = result.x
        if previous - result.fun <= 1e-12 * max(1.0, abs(result.fun)):
            break
        previous = result.fun
    assign(vector)
    return float(result.fun)


def _random_start(
    generator: torch.Generator, options: SolverOptions, rows: int, cols: int
) -> torch.Tensor:
    scale = options.init_scale / math.sqrt(cols)
    return (scale * torch.randn(rows, cols, generator=generator, dtype=DTYPE)).requires_grad_()


AGREEMENT_RTOL = 1e-9
# Two starts at the same loss whose identified quantities differ by more than this have found two
# points of a continuum of optima; a unique optimum is reached to 1e-4 (tests), and an optimum
# flat to fourth order near a collapse threshold still pins them to about 1e-3.
DISTINCT_POINTS_ATOL = 1e-2


@dataclass
class Starts:
    """The outcome of several random starts: the best loss and parameters, every start's loss,
    and the second-best start's parameters (to see whether two equal losses are one point)."""

    loss: float
    params: list[torch.Tensor]
    values: list[float]
    runner_up: list[torch.Tensor] | None

    def equal_losses(self) -> bool:
        if len(self.values) < 2:
            return False
        first, second = sorted(self.values)[:2]
        return second - first <= AGREEMENT_RTOL * max(1.0, abs(first))


def _best_of(
    starts: int,
    build: Callable[[torch.Generator], tuple[Callable, list[torch.Tensor]]],
    options: SolverOptions,
    polish: bool = True,
) -> Starts:
    """Run random starts until the two best agree to AGREEMENT_RTOL (at least two, at most
    ``starts``)."""
    ranked: list[tuple[float, list[torch.Tensor]]] = []
    values = []
    for start in range(starts):
        generator = torch.Generator().manual_seed(options.seed + start)
        loss_of, params = build(generator)
        value = minimise(loss_of, params, options, polish)
        values.append(value)
        ranked = sorted(
            [*ranked, (value, [p.detach().clone() for p in params])], key=lambda r: r[0]
        )
        ranked = ranked[:2]
        result = Starts(
            ranked[0][0], ranked[0][1], values, ranked[1][1] if len(ranked) > 1 else None
        )
        if result.equal_losses():
            break
    return result


def _restart_note(values: list[float]) -> str:
    first, second = sorted(values)[:2] if len(values) > 1 else (values[0], math.nan)
    return (
        f"numeric: best of {len(values)} L-BFGS starts; the two best losses differ by "
        f"{second - first:.2e}"
    )


def _sv(matrix: torch.Tensor, length: int) -> np.ndarray:
    return descending(torch.linalg.svdvals(matrix).numpy(), length)


def _identified(params: list[torch.Tensor], levels: int) -> np.ndarray:
    """What does not change under the model's exact symmetries (rotations and sign flips of a
    latent space that preserve its Σ): each map's singular values, each level's sorted variances
    and η_dec."""
    maps = [torch.linalg.svdvals(p).numpy() for p in params[: 2 * levels]]
    rest = [np.sort(torch.exp(p).reshape(-1).numpy()) for p in params[2 * levels :]]
    return np.concatenate(maps + rest)


def _distinct_optima(
    best: list[torch.Tensor], runner_up: list[torch.Tensor], levels: int
) -> Degeneracy | None:
    """A continuum seen by the solver: two starts at the same loss, at different points."""
    gap = float(np.max(np.abs(_identified(best, levels) - _identified(runner_up, levels))))
    if gap <= DISTINCT_POINTS_ATOL:
        return None
    return Degeneracy(
        NON_UNIQUE, OBSERVED,
        f"two solver starts reached the same loss (to {AGREEMENT_RTOL:g} relative) at points "
        f"whose singular values or stds differ by up to {gap:.3g}",
        0.0, identified=("loss",),
    )  # fmt: skip


def solve_hierarchical(
    a: np.ndarray,
    latent_dims: Sequence[int],
    betas: Sequence[float],
    *,
    eta_enc: float = 1.0,
    eta_dec: float | None = 1.0,
    sigmas: Sequence[float | Sequence[float] | None] | None = None,
    options: SolverOptions = SolverOptions(),
) -> Optimum:
    """Numeric optimum of the linear VAE (one level) or Markovian hierarchical VAE (several).

    ``a``: E[x xᵀ] ``(D, D)``. ``latent_dims``: d_1..d_L. ``betas``: one KL weight per level.
    ``sigmas[l]``: None (learnable diagonal Σ_l) or the fixed std (one value or one per dimension).
    ``eta_dec``: None learns the decoder std (then the optimum is pPCA's for one level and β = 1).
    """
    levels = len(latent_dims)
    sigmas = [None] * levels if sigmas is None else list(sigmas)
    if levels == 0 or len(betas) != levels or len(sigmas) != levels:
        raise InputError("give one latent dimension, one β and one σ (or None) per level.")
    latent_dims = [check_latent_dim(d) for d in latent_dims]
    check_positive(
        eta_enc=eta_enc, eta_dec=eta_dec, **{f"beta{i + 1}": b for i, b in enumerate(betas)}
    )
    fixed = [
        None if s is None else fixed_stds(s, d, f"sigma{i + 1}") ** 2
        for i, (s, d) in enumerate(zip(sigmas, latent_dims, strict=True))
    ]
    basis = PositiveEigenspace.of(a)
    if basis.values.size == 0:
        raise InputError("the data's second moment is zero: there is nothing to model.")
    a_rot = torch.tensor(basis.values, dtype=DTYPE)  # diagonal in its eigenbasis
    # The first encoder is searched as V1 = W1 Φ^{1/2} (whitened input): an exact change of
    # variables that makes the problem well conditioned when A has small eigenvalues.
    unwhiten = torch.tensor(basis.values**-0.5, dtype=DTYPE)
    dims = [basis.values.size, *map(int, latent_dims)]

    def build(generator: torch.Generator):
        encoders = [_random_start(generator, options, dims[i + 1], dims[i]) for i in range(levels)]
        decoders = [_random_start(generator, options, dims[i], dims[i + 1]) for i in range(levels)]
        log_vars = [
            torch.zeros(dims[i + 1], dtype=DTYPE, requires_grad=True) if fixed[i] is None else None
            for i in range(levels)
        ]
        params = encoders + decoders + [lv for lv in log_vars if lv is not None]
        if eta_dec is None:
            params.append(torch.zeros((), dtype=DTYPE, requires_grad=True))
        return loss_of, params

    fixed_log_eta = None if eta_dec is None else torch.tensor(math.log(eta_dec), dtype=DTYPE)

    def loss_of(*tensors: torch.Tensor) -> torch.Tensor:
        """The objective as a function of (W_1..W_L, U_1..U_L, learnable log-variances, log η)."""
        rest = list(tensors[2 * levels :])
        variances = [
            torch.exp(rest.pop(0)) if f is None else torch.tensor(f, dtype=DTYPE) for f in fixed
        ]
        log_eta = rest.pop(0) if eta_dec is None else fixed_log_eta
        maps = [tensors[0] * unwhiten, *tensors[1:levels]]
        return hierarchical_loss(
            a_rot, maps, tensors[levels : 2 * levels], variances, betas, eta_enc, log_eta
        ) + _dropped_constant(basis, log_eta)

    degeneracy = classify(
        latent_dims, betas, [f is None for f in fixed], eta_dec is None, basis.values.size,
        basis.full_dim,
    )  # fmt: skip
    unbounded = degeneracy is not None and degeneracy.status == UNBOUNDED
    # no minimum to polish towards: one start, one L-BFGS round, to show where it goes
    found = _best_of(1 if unbounded else options.restarts, build, options, polish=not unbounded)
    loss, params, values = found.loss, found.params, found.values
    if degeneracy is None and found.equal_losses():
        degeneracy = _distinct_optima(params, found.runner_up, levels)
    encoders, decoders = params[:levels], params[levels : 2 * levels]
    rest = params[2 * levels :]
    variances, stds = [], {}
    for i in range(levels):
        if fixed[i] is None:
            variances.append(torch.exp(rest.pop(0)))
        else:
            variances.append(torch.tensor(fixed[i], dtype=DTYPE))
    learned_eta = float(torch.exp(rest.pop(0))) if eta_dec is None else None
    names = ["z"] if levels == 1 else [f"z{i + 1}" for i in range(levels)]
    singular: dict[str, np.ndarray] = {}
    active: dict[str, int] = {}
    for i in range(levels):
        d = dims[i + 1]
        enc_map = encoders[i]  # level 1 holds V1 = W1 P_A Φ^{1/2} already
        suffix = "" if levels == 1 else str(i + 1)
        enc_name = ("V" if i == 0 else "W") + suffix
        singular["U" + suffix] = _sv(decoders[i], d)
        singular[enc_name] = _sv(enc_map, d)
        active[names[i]] = numerical_rank(singular[enc_name])
        stds[names[i]] = np.sort(np.sqrt(variances[i].numpy()))
    hyper = {
        "latent_dims": [int(d) for d in latent_dims],
        "betas": [float(b) for b in betas],
        "eta_enc": eta_enc,
        "eta_dec": eta_dec if eta_dec is not None else learned_eta,
        "eta_dec_learnable": eta_dec is None,
        "sigmas": [None if s is None else np.atleast_1d(s).tolist() for s in sigmas],
    }
    optimum = Optimum(
        model="vae" if levels == 1 else "mhvae",
        method="numeric",
        theta=descending(np.sqrt(basis.values), basis.full_dim),
        singular_values=singular,
        encoder_std=stds,
        learnable={n: f is None for n, f in zip(names, fixed, strict=True)},
        active_dims=active,
        loss=loss,
        hyper=hyper,
        notes=[_restart_note(values)],
    )
    if degeneracy is None:
        return optimum

    def objective(encoders, decoders, variances, log_eta):
        return hierarchical_loss(
            a_rot, encoders, decoders, variances, betas, eta_enc, log_eta
        ) + _dropped_constant(basis, log_eta)

    optimum.degeneracy = degeneracy
    if degeneracy.path != OBSERVED:
        optimum.path_losses = path_losses(
            degeneracy, objective, basis.values.size, latent_dims,
            [None if f is None else torch.tensor(f, dtype=DTYPE) for f in fixed], eta_enc,
            1.0 if eta_dec is None else eta_dec,
        )  # fmt: skip
    optimum.active_dims = dict.fromkeys(active)
    if degeneracy.status == NON_UNIQUE and degeneracy.path == CHAIN:
        # the map from the data to their reconstruction, U1 V1 (V1 acts on whitened data)
        optimum.invariants["U1V1"] = _sv(decoders[0] @ encoders[0], dims[1])
    return optimum


def solve_cvae(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    latent_dim: int,
    beta: float,
    *,
    eta_enc: float = 1.0,
    eta_dec: float = 1.0,
    sigma: float | Sequence[float] | None = None,
    options: SolverOptions = SolverOptions(),
) -> Optimum:
    """Numeric optimum of the linear CVAE (Eq. 5) with learnable (``sigma=None``) or fixed Σ.
    ``a`` = E[x xᵀ] ``(D0, D0)``, ``b`` = E[y yᵀ] ``(D2, D2)``, ``c`` = E[y xᵀ] ``(D2, D0)``."""
    latent_dim = check_latent_dim(latent_dim)
    check_positive(beta=beta, eta_enc=eta_enc, eta_dec=eta_dec)
    fixed = None if sigma is None else fixed_stds(sigma, latent_dim) ** 2
    bx, by = PositiveEigenspace.of(a), PositiveEigenspace.of(b)
    if by.values.size == 0:
        raise InputError("the targets y are all zero: there is nothing to model.")
    a_rot = torch.tensor(bx.values, dtype=DTYPE)  # diagonals in their eigenbases
    b_rot = torch.tensor(by.values, dtype=DTYPE)
    c_rot = torch.tensor(by.basis.T @ np.asarray(c, np.float64) @ bx.basis, dtype=DTYPE)
    d, d0, d2 = int(latent_dim), bx.values.size, by.values.size
    # Maps out of x and y are searched in whitened coordinates (exact; better conditioned).
    unwhiten_x = torch.tensor(bx.values**-0.5, dtype=DTYPE)
    unwhiten_y = torch.tensor(by.values**-0.5, dtype=DTYPE)
    log_eta = torch.tensor(math.log(eta_dec), dtype=DTYPE)

    def build(generator: torch.Generator):
        w1, w2, u1, u2 = (
            _random_start(generator, options, *shape)
            for shape in ((d, d0), (d, d2), (d2, d), (d2, d0))
        )
        log_var = [torch.zeros(d, dtype=DTYPE, requires_grad=True)] if fixed is None else []
        return loss_of, [w1, w2, u1, u2, *log_var]

    def loss_of(*tensors: torch.Tensor) -> torch.Tensor:
        """The objective as a function of (W1, W2, U1, U2[, log-variance]), whitened."""
        w1, w2, u1, u2 = tensors[:4]
        var = torch.exp(tensors[4]) if fixed is None else torch.tensor(fixed, dtype=DTYPE)
        return cvae_loss(
            a_rot,
            b_rot,
            c_rot,
            w1 * unwhiten_x,
            w2 * unwhiten_y,
            u1,
            u2 * unwhiten_x,
            var,
            beta,
            eta_enc,
            log_eta,
        ) + _dropped_constant(by, log_eta)

    found = _best_of(options.restarts, build, options)
    loss, params, values = found.loss, found.params, found.values
    w2, u1 = params[1], params[2]
    var = torch.exp(params[4]) if fixed is None else torch.tensor(fixed, dtype=DTYPE)
    # W2 alone is not identifiable (W1 can cancel its action on the part of y that x predicts); what
    # is: the map from the whitened residual e = y − C A⁺ x, the information z carries beyond x.
    singular = {"U1": _sv(u1, d)}
    e_moment = residual_moment(a, b, c)
    e_basis = PositiveEigenspace.of(e_moment)
    e_map = torch.tensor(e_basis.basis.T @ by.basis, dtype=DTYPE)  # rotated y → E's eigenbasis
    w2 = w2 * unwhiten_y
    residual_encoder = w2 @ e_map.T * torch.sqrt(torch.tensor(e_basis.values, dtype=DTYPE))
    singular["V"] = _sv(residual_encoder, d)
    return Optimum(
        model="cvae",
        method="numeric",
        theta=descending_eigenvalues(e_moment),
        singular_values=singular,
        encoder_std={"z": np.sort(np.sqrt(var.numpy()))},
        learnable={"z": fixed is None},
        active_dims={"z": numerical_rank(singular["V"])},
        loss=loss,
        hyper={
            "latent_dims": [d],
            "betas": [float(beta)],
            "eta_enc": eta_enc,
            "eta_dec": eta_dec,
            "sigmas": [None if sigma is None else np.atleast_1d(sigma).tolist()],
        },
        notes=[_restart_note(values)],
    )
