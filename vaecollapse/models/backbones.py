"""Backbones chosen by configuration: bias-free linear maps (the theory's model) or MLPs."""

from __future__ import annotations

from torch import nn

from ..errors import InputError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
BACKBONES = ("linear", "mlp")


def feature_extractor(
    backbone: str, in_dim: int, hidden: int, depth: int, activation: str
) -> tuple[nn.Module, int]:
    """The part of an encoder before its Gaussian head, and its output width. Linear: identity."""
    if backbone == "linear":
        return nn.Identity(), in_dim
    if backbone == "mlp":
        return _mlp_body(in_dim, hidden, depth, activation), hidden
    raise InputError(f"backbone '{backbone}' is not one of {BACKBONES}.")


def mean_network(
    backbone: str, in_dim: int, out_dim: int, hidden: int, depth: int, activation: str
) -> nn.Module:
    """A decoder mean: bias-free ``Linear`` for the linear backbone, else an MLP ending linearly."""
    if backbone == "linear":
        return nn.Linear(in_dim, out_dim, bias=False)
    if backbone == "mlp":
        return nn.Sequential(
            _mlp_body(in_dim, hidden, depth, activation), nn.Linear(hidden, out_dim)
        )
    raise InputError(f"backbone '{backbone}' is not one of {BACKBONES}.")


def _mlp_body(in_dim: int, hidden: int, depth: int, activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise InputError(f"activation '{activation}' is not one of {tuple(ACTIVATIONS)}.")
    if depth < 1 or hidden < 1:
        raise InputError(f"an MLP needs depth >= 1 and hidden >= 1; got {depth}, {hidden}.")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    return nn.Sequential(*layers)
