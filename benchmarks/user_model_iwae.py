"""IWAE on a user's model: K = 1000 importance samples over the 10,000 MNIST test images for the
784-256-16 ReLU VAE built with this toolkit's classes, against the same weights in a VAE written
without it (its decoder a custom module whose forward calls its layers), diagnosed through the
adapter — with the decoder given (``decoder=``) and with a hand-written log-likelihood function
(``decoder_log_likelihood=``). Side by side in one process, threads fixed.

    VAECOLLAPSE_DATA=../shared/data python benchmarks/user_model_iwae.py [--threads 2]

The estimates must agree (same weights, same seed); the times are printed with their ratio to
our classes.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import vaecollapse
from vaecollapse.core.data import load_dataset
from vaecollapse.core.models import VAE, VAEConfig


class UserDecoder(nn.Module):
    def __init__(self, ours: nn.Sequential) -> None:
        super().__init__()
        self.fc1, self.fc2 = ours[0], ours[-1]

    def forward(self, z):
        return self.fc2(torch.relu(self.fc1(z)))


class UserVAE(nn.Module):
    """The same weights, as a user would have written the model."""

    def __init__(self, ours: VAE) -> None:
        super().__init__()
        self.body, self.mu, self.logvar = ours.encoder_body, ours.head.mean, ours.head.logvar
        self.decoder = UserDecoder(ours.decoder)

    def encode(self, x):
        features = self.body(x)
        return self.mu(features), self.logvar(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    torch.manual_seed(0)
    ours = VAE(VAEConfig(data_dim=784, latent_dim=16, backbone="mlp", hidden=256))
    optimizer = torch.optim.Adam(ours.parameters(), lr=1e-3)
    for index in torch.randperm(len(data.train)).split(128):  # one epoch: the cost is the same
        optimizer.zero_grad()
        ours(data.train.x[index]).loss().backward()
        optimizer.step()
    ours.eval()
    user = UserVAE(ours).eval()

    def log_likelihood(x, z):  # what a user writes by hand: the decoder's full output
        return torch.distributions.Normal(user.decoder(z), 1.0).log_prob(x).sum(-1)

    x = data.test.x
    cases = {
        "our VAE class": lambda: vaecollapse.diagnose(ours, x, iwae_k=args.k),
        "user's VAE, decoder=": lambda: vaecollapse.diagnose(
            user, x, iwae_k=args.k, decoder=user.decoder
        ),
        "user's VAE, decoder_log_likelihood=": lambda: vaecollapse.diagnose(
            user, x, iwae_k=args.k, decoder_log_likelihood=log_likelihood
        ),
    }
    times, estimates = {}, {}
    for name, run in cases.items():
        torch.manual_seed(1)
        started = time.perf_counter()
        estimates[name] = run().iwae.mean
        times[name] = time.perf_counter() - started
    base = times["our VAE class"]
    print(f"threads {args.threads}, K = {args.k}, {len(x)} MNIST test images")
    for name in cases:
        print(
            f"{name:<40} {times[name]:7.1f} s  {times[name] / base:5.2f}x  "
            f"IWAE {estimates[name]:.3f}"
        )


if __name__ == "__main__":
    main()
