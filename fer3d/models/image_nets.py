"""2D models on (B, 1, 48, 48) standardised gray crops: cnn, vgg, resnet."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .registry import classifier_head, init_weights, positive_int, probability, register

IMAGE_NORMS = ("dataset", "per_image")


class PerImageStandardise(nn.Module):
    """Each crop to zero mean and unit variance over its own pixels: a camera's exposure and
    contrast (an affine change of the gray levels) no longer reach the net. The dataset
    standardisation before it is affine too, so this sees the same input whatever it was."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=(2, 3), keepdim=True)
        # mean of squares, not Tensor.var: plain ops every ONNX opset has
        return centred / torch.sqrt(centred.square().mean(dim=(2, 3), keepdim=True) + self.eps)


def image_norm_layer(name: str, image_norm: Any) -> nn.Module:
    """`image_norm` option: dataset (the stored mean/std only) | per_image (then each crop's own)."""
    if image_norm not in IMAGE_NORMS:
        raise ValueError(f"model {name!r}: image_norm must be one of {IMAGE_NORMS}, got {image_norm!r}")
    # Identity has no weights and draws no random numbers: dataset-normalised nets stay bit for bit
    return PerImageStandardise() if image_norm == "per_image" else nn.Identity()


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    # no conv bias: BatchNorm's shift makes it redundant
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ConvNet2d(nn.Module):
    """Stages of 3x3 conv-BN-ReLU with max-pooling between stages, global average pool, linear."""

    def __init__(
        self,
        num_classes: int,
        widths: list[int],
        convs: list[int],
        dropout: float,
        hidden: int = 0,
        *,
        input_norm: nn.Module,
    ):
        super().__init__()
        self.input_norm = input_norm
        layers: list[nn.Module] = []
        cin = 1
        for i, (w, n) in enumerate(zip(widths, convs)):
            if i:
                layers.append(nn.MaxPool2d(2))
            for _ in range(n):
                layers += _conv_bn(cin, w)
                cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        if hidden:
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(cin, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.classifier = classifier_head(cin, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.input_norm(x))))


def _widths(name: str, widths: Any, stages: int) -> list[int]:
    if (
        not isinstance(widths, (list, tuple))
        or len(widths) != stages
        or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in widths)
    ):
        raise ValueError(f"model {name!r}: widths must be a list of {stages} positive ints, got {widths!r}")
    return list(widths)


# Widths: stage 1 runs at the full 48x48 where every channel is expensive, so it stays narrow;
# later stages are cheap per channel and carry the capacity. Multiples of 16 suit oneDNN's blocking.
@register("cnn", "2d", "image")
def _cnn(
    num_classes: int, *, widths: list[int] = (16, 48, 128), dropout: float = 0.3, image_norm: str = "dataset"
) -> nn.Module:
    """The reference's "6-conv BN net": 3 stages x 2 convs, max-pool between stages."""
    return ConvNet2d(
        num_classes,
        _widths("cnn", widths, 3),
        [2, 2, 2],
        probability("cnn", "dropout", dropout),
        input_norm=image_norm_layer("cnn", image_norm),
    )


@register("vgg", "2d", "image")
def _vgg(
    num_classes: int,
    *,
    widths: list[int] = (16, 48, 128, 256),
    dropout: float = 0.4,
    pretrained: str = "",
    image_norm: str = "dataset",
) -> nn.Module:
    """VGG-style 2-2-3-3 convs and a 2-layer classifier; `pretrained` = a local state_dict to start from."""
    w = _widths("vgg", widths, 4)
    model = ConvNet2d(
        num_classes,
        w,
        [2, 2, 3, 3],
        probability("vgg", "dropout", dropout),
        hidden=w[-1],
        input_norm=image_norm_layer("vgg", image_norm),
    )
    model.pretrained_from = None
    if pretrained:
        load_pretrained(model, str(pretrained))
    return model


def load_pretrained(model: nn.Module, path: str) -> list[str]:
    """Load the keys of a local state_dict that fit `model`; returns the keys loaded.

    Tensors whose shape does not fit (e.g. a classifier for another number of classes) are
    skipped; an RGB first conv is summed over its colour channels to fit the gray input.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    own = model.state_dict()
    fitting = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key not in own or not torch.is_tensor(value):
            continue
        if (
            value.shape != own[key].shape
            and value.dim() == 4
            and own[key].shape[1] == 1
            and value.shape[1] == 3
            and value.shape[0] == own[key].shape[0]
        ):
            value = value.sum(1, keepdim=True)
        if value.shape == own[key].shape:
            fitting[key] = value
    if not fitting:
        raise ValueError(f"{path}: no tensor in it fits model {getattr(model, 'model_name', type(model).__name__)}")
    model.load_state_dict(fitting, strict=False)
    model.pretrained_from = path
    model.pretrained_keys = sorted(fitting)
    return model.pretrained_keys


class BasicBlock(nn.Module):
    """Pre-activation basic block (BN-ReLU-conv x2) with a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(x))
        # the projection sees the normalised input, as in the pre-activation ResNet paper
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class ResNet(nn.Module):
    def __init__(self, num_classes: int, widths: list[int], blocks: int, dropout: float, *, input_norm: nn.Module):
        super().__init__()
        self.input_norm = input_norm
        stem = widths[0] // 2
        # the stem runs at full 48x48 but narrow; the stages then halve the side: 24, 12, 6
        self.stem = nn.Sequential(*_conv_bn(1, stem))
        layers: list[nn.Module] = []
        cin = stem
        for w in widths:
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if b == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.post = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.classifier = classifier_head(cin, num_classes, dropout)
        init_weights(self)
        for m in self.modules():
            # start every residual branch small so the net begins close to its shortcut path
            if isinstance(m, BasicBlock):
                m.conv2.weight.data.mul_(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.post(self.layers(self.stem(self.input_norm(x)))))


@register("resnet", "2d", "image")
def _resnet(
    num_classes: int,
    *,
    widths: list[int] = (32, 96, 192),
    blocks: int = 2,
    dropout: float = 0.2,
    image_norm: str = "dataset",
) -> nn.Module:
    """Pre-activation ResNet for 48x48: narrow stem, 3 stages of `blocks` basic blocks (sides 24, 12, 6)."""
    return ResNet(
        num_classes,
        _widths("resnet", widths, 3),
        positive_int("resnet", "blocks", blocks),
        probability("resnet", "dropout", dropout),
        input_norm=image_norm_layer("resnet", image_norm),
    )
