"""IWAE speed: K = 1000 importance samples over the 10,000 MNIST test images for the paper's
ReLU-MLP VAE (784-256-16), vectorised over rows and samples, against a per-example loop (one
image at a time with its K samples in one batch, as the paper's code does).

    VAECOLLAPSE_DATA=../shared/data python benchmarks/iwae_speed.py [--loop-images 300]

The model is trained for 3 epochs first (its weights do not change the cost). The per-example
loop is timed on ``--loop-images`` images and scaled to 10,000; both estimates are printed on the
same images as a correctness check.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from vaecollapse.core.data import load_dataset
from vaecollapse.core.diagnostics import importance_log_likelihood, model_log_weights
from vaecollapse.core.models import VAE, VAEConfig


def per_example(model: VAE, row: torch.Tensor, k: int) -> torch.Tensor:
    """One image, its K samples in one batch, the decoder's full output and Normal densities."""
    with torch.no_grad():
        mean, logvar = model.encode(row[None])
        q = torch.distributions.Normal(mean[0], torch.exp(0.5 * logvar[0]))
        z = q.sample((k,))  # (K, d)
        log_px = torch.distributions.Normal(model.decoder(z), 1.0).log_prob(row).sum(-1)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_w = log_px + log_pz - q.log_prob(z).sum(-1)
        return torch.logsumexp(log_w, 0) - math.log(k)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--loop-images", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--sample-chunk", type=int, default=100)
    args = parser.parse_args()
    data = load_dataset("mnist")
    torch.manual_seed(0)
    model = VAE(VAEConfig(data_dim=784, latent_dim=16, backbone="mlp", hidden=256))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        for index in torch.randperm(len(data.train)).split(128):
            optimizer.zero_grad()
            model(data.train.x[index]).loss().backward()
            optimizer.step()
    model.eval()
    weights = model_log_weights(model)
    x = data.test.x

    torch.manual_seed(1)
    start = time.perf_counter()
    vectorised = importance_log_likelihood(
        weights, x, k=args.k, batch_size=args.batch_size, sample_chunk=args.sample_chunk
    )
    fast = time.perf_counter() - start

    subset = x[: args.loop_images]
    start = time.perf_counter()
    looped = torch.stack([per_example(model, row, args.k) for row in subset])
    slow = (time.perf_counter() - start) * len(x) / len(subset)

    print(f"threads: {torch.get_num_threads()}")
    print(f"vectorised: {fast:.1f} s for {len(x)} images, K = {args.k}")
    print(f"per-example loop: {slow:.1f} s (scaled from {len(subset)} images)")
    print(f"speed-up: {slow / fast:.1f}x")
    head = float(vectorised.values[: len(subset)].mean())
    print(
        f"IWAE log-likelihood: {vectorised.mean:.3f} ± {vectorised.standard_error:.3f} nats; "
        f"first {len(subset)} images: vectorised {head:.3f}, loop {float(looped.mean()):.3f}"
    )


if __name__ == "__main__":
    main()
