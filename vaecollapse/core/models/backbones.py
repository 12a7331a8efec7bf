"""Backbones chosen by configuration: bias-free linear maps (the theory's model), MLPs, small CNNs
(stride-2 convolutions / transposed convolutions) and a CIFAR-style ResNet-18 encoder.

Models see flat rows. Convolutional backbones place a row on its image canvas ``(C, H, W)``
through ``pixels`` (the canvas position of every column; None = the whole image in raster order),
so the CVAE's quadrant halves x and y can be convolved as the one image they come from.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from vaecollapse.core.errors import InputError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
BACKBONES = ("linear", "mlp", "cnn", "resnet18")
IMAGE_BACKBONES = ("cnn", "resnet18")


def encoder_body(
    settings, in_dim: int, pixels: torch.Tensor | None = None
) -> tuple[nn.Module, int]:
    """The part of an encoder before its Gaussian head, and its output width. Linear: identity.

    ``settings``: a ``GaussianModelSettings`` (backbone, hidden, depth, activation, channels,
    image_shape). ``pixels``: canvas positions of the ``in_dim`` inputs (image backbones only)."""
    s = settings
    if s.backbone == "linear":
        return nn.Identity(), in_dim
    if s.backbone == "mlp":
        return mlp_body(in_dim, s.hidden, s.depth, s.activation), s.hidden
    canvas = Canvas(_image_shape(s), in_dim, pixels)
    if s.backbone == "cnn":
        trunk = conv_stack(canvas.image_shape[0], s.channels, s.activation, s.conv_depth)
    elif s.backbone == "resnet18":
        trunk = ResNet18Trunk(canvas.image_shape[0])
    else:
        raise InputError(f"backbone '{s.backbone}' is not one of {BACKBONES}.")
    body = nn.Sequential(canvas, trunk, nn.Flatten())
    with torch.no_grad():
        width = body.eval()(torch.zeros(2, in_dim)).shape[1]
    return body.train(), width


def decoder_mean(
    settings, in_dim: int, out_dim: int, pixels: torch.Tensor | None = None
) -> nn.Module:
    """A decoder mean ``(..., in_dim) -> (..., out_dim)``: bias-free ``Linear`` for the linear
    backbone, an MLP ending linearly, or (image backbones) a linear map to a coarse feature map
    followed by stride-2 transposed convolutions, read out at ``pixels`` of the canvas; then tanh
    where ``settings.bounded_means``."""
    s = settings
    if s.backbone == "linear":
        return nn.Linear(in_dim, out_dim, bias=False)
    if s.backbone == "mlp":
        mean = nn.Sequential(
            mlp_body(in_dim, s.hidden, s.depth, s.activation), nn.Linear(s.hidden, out_dim)
        )
    elif s.backbone in IMAGE_BACKBONES:
        mean = TransposedConvDecoder(
            in_dim, _image_shape(s), s.channels, s.activation, pixels, s.conv_depth
        )
    else:
        raise InputError(f"backbone '{s.backbone}' is not one of {BACKBONES}.")
    return nn.Sequential(mean, nn.Tanh()) if s.bounded_means else mean


def latent_map_settings(settings):
    """The backbone of maps between latent levels: image backbones use an MLP there."""
    if settings.backbone in IMAGE_BACKBONES:
        return replace(settings, backbone="mlp", hidden=settings.latent_hidden or settings.hidden)
    if settings.latent_hidden:
        return replace(settings, hidden=settings.latent_hidden)
    return settings


def mlp_body(in_dim: int, hidden: int, depth: int, activation: str) -> nn.Sequential:
    if depth < 1 or hidden < 1:
        raise InputError(f"an MLP needs depth >= 1 and hidden >= 1; got {depth}, {hidden}.")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), _activation(activation)]
        width = hidden
    return nn.Sequential(*layers)


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise InputError(f"activation '{name}' is not one of {tuple(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def _image_shape(settings) -> tuple[int, int, int]:
    if settings.image_shape is None:
        raise InputError(
            f"the {settings.backbone} backbone needs images, but the data have no image shape "
            "(use --backbone linear or mlp, or a data set of images)."
        )
    return tuple(settings.image_shape)


class Canvas(nn.Module):
    """Flat rows ``(B, n)`` -> images ``(B, C, H, W)``; columns go to ``pixels``, the rest is 0."""

    def __init__(
        self, image_shape: tuple[int, int, int], in_dim: int, pixels: torch.Tensor | None
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        size = image_shape[0] * image_shape[1] * image_shape[2]
        if pixels is None:
            pixels = torch.arange(size)
        if pixels.numel() != in_dim or int(pixels.max()) >= size:
            raise InputError(f"{in_dim} input columns do not fit an image of shape {image_shape}.")
        self.register_buffer("pixels", pixels.long(), persistent=False)
        self.size = size

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        canvas = rows.new_zeros(rows.shape[0], self.size)
        canvas = canvas.index_copy(1, self.pixels, rows)
        return canvas.view(-1, *self.image_shape)


def conv_stack(
    in_channels: int, channels: tuple[int, ...], activation: str, per_scale: int = 1
) -> nn.Sequential:
    """3x3 stride-2 convolutions with the given widths (Dang et al.'s CNN encoders), each
    followed by ``per_scale`` − 1 stride-1 3x3 convolutions at its scale (Dai et al.'s depth)."""
    layers: list[nn.Module] = []
    width = in_channels
    for out in channels:
        layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), _activation(activation)]
        layers += _same_scale(out, per_scale - 1, activation)
        width = out
    return nn.Sequential(*layers)


def _same_scale(width: int, count: int, activation: str) -> list[nn.Module]:
    """``count`` stride-1 3x3 convolutions keeping ``width`` channels, each with its activation."""
    layers: list[nn.Module] = []
    for _ in range(count):
        layers += [nn.Conv2d(width, width, 3, stride=1, padding=1), _activation(activation)]
    return layers


class TransposedConvDecoder(nn.Module):
    """``(..., in_dim)`` -> linear -> ``(channels[-1], h, w)`` -> one 3x3 stride-2 transposed conv
    per width in ``channels``, in order, each followed by ``per_scale`` − 1 stride-1 convolutions
    -> a 3x3 stride-1 transposed conv to the image's C channels -> cropped to ``(C, H, W)`` -> the
    values at ``pixels``. ``h = ceil(H / 2^len(channels))``, so the upsampling lands on (or just
    past) H. The layout mirrors the encoder (it starts at the encoder's last width), as Dang et
    al.'s CNN decoders do."""

    def __init__(
        self,
        in_dim: int,
        image_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        activation: str,
        pixels: torch.Tensor | None,
        per_scale: int = 1,
    ) -> None:
        super().__init__()
        c, height, width = image_shape
        scale = 2 ** len(channels)
        self.start = (channels[-1], -(-height // scale), -(-width // scale))
        self.image_shape = image_shape
        self.project = nn.Sequential(
            nn.Linear(in_dim, channels[-1] * self.start[1] * self.start[2]), _activation(activation)
        )
        layers: list[nn.Module] = []
        for before, after in zip((channels[-1], *channels[:-1]), channels, strict=True):
            layers += [
                nn.ConvTranspose2d(before, after, 3, stride=2, padding=1, output_padding=1),
                _activation(activation),
                *_same_scale(after, per_scale - 1, activation),
            ]
        layers.append(nn.ConvTranspose2d(channels[-1], c, 3, stride=1, padding=1))
        self.deconv = nn.Sequential(*layers)
        self.register_buffer("pixels", None if pixels is None else pixels.long(), persistent=False)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        lead = codes.shape[:-1]
        maps = self.project(codes.reshape(-1, codes.shape[-1])).view(-1, *self.start)
        c, height, width = self.image_shape
        images = self.deconv(maps)[:, :, :height, :width].reshape(-1, c * height * width)
        if self.pixels is not None:
            images = images[:, self.pixels]
        return images.view(*lead, images.shape[-1])


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Trunk(nn.Module):
    """ResNet-18 for 32x32 inputs (3x3 stem, no max-pool; stages 64-128-256-512, two basic blocks
    each), global average pooled to 512 features."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        ]
        width = 64
        for stage, out in enumerate((64, 128, 256, 512)):
            stride = 1 if stage == 0 else 2
            layers += [BasicBlock(width, out, stride), BasicBlock(out, out, 1)]
            width = out
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
