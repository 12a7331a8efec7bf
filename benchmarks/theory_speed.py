"""Theory engine speed on full MNIST (D = 784): closed form vs the numeric solver, one run.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/theory_speed.py [--latent-dim 64]

Times: moments + eigendecomposition + closed form (target < 2 s) and the numeric solver at
d = 64 (target < 60 s), both from the data already in memory; the numeric optimum's loss is
printed beside the closed form's as a correctness check.
"""

from __future__ import annotations

import argparse
import time

import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.theory import (
    SolverOptions,
    cvae_closed_form,
    cvae_spectrum_from_moments,
    moments,
    solve_cvae,
    solve_hierarchical,
    vae_closed_form,
    vae_spectrum_from_moment,
)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--restarts", type=int, default=SolverOptions().restarts)
    args = parser.parse_args()
    d = args.latent_dim
    options = SolverOptions(restarts=args.restarts)
    print(f"torch threads: {torch.get_num_threads()}")
    mnist = load_dataset("mnist")
    x = mnist.train.x.numpy()

    def closed_vae():
        a, _, _ = moments(x)
        return a, vae_closed_form(vae_spectrum_from_moment(a), d, beta=1.0)

    (a, closed), t_closed = timed(closed_vae)
    numeric, t_numeric = timed(lambda: solve_hierarchical(a, [d], [1.0], options=options))
    print(
        f"VAE  d={d}: closed form {t_closed:6.2f} s (loss {closed.loss:.8f}); numeric "
        f"{t_numeric:6.2f} s (loss {numeric.loss:.8f}); ratio {t_numeric / t_closed:.0f}x"
    )

    quadrant = load_dataset("mnist-quadrant")
    xq, yq = quadrant.train.x.numpy(), quadrant.train.y.numpy()

    def closed_cvae():
        m = moments(xq, yq)
        return m, cvae_closed_form(cvae_spectrum_from_moments(*m), d, beta=1.0)

    (m, closed_c), t_closed_c = timed(closed_cvae)
    numeric_c, t_numeric_c = timed(lambda: solve_cvae(*m, d, 1.0, options=options))
    print(
        f"CVAE d={d}: closed form {t_closed_c:6.2f} s (loss {closed_c.loss:.8f}); numeric "
        f"{t_numeric_c:6.2f} s (loss {numeric_c.loss:.8f}); ratio {t_numeric_c / t_closed_c:.0f}x"
    )


if __name__ == "__main__":
    main()
