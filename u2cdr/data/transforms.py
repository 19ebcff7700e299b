"""Image transforms: PIL image of any mode → normalised float tensor ``[C, H, W]``.

Presets:
    ``digits``: a small random affine (±10°, ±10 % shift, scale 0.9–1.1) — digits must stay
        legible, so no crops, flips or colour changes.
    ``moco_v2``: the MoCo-v2 "aug-plus" recipe UCDIR trains with (RandomResizedCrop scale
        0.2–1, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, RandomGrayscale p=0.2, GaussianBlur
        σ∈[0.1, 2] p=0.5, horizontal flip); Chen et al. 2020, "Improved Baselines with Momentum
        Contrastive Learning".
    ``none``: the eval transform for training too.
Eval transforms are deterministic: ``Resize(256) → CenterCrop(224)`` scaled to ``image_size``
(``center_crop=True``, photos) or a plain resize to ``image_size`` (digits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

Transform = Callable[[Image.Image], torch.Tensor]
AUGMENTATIONS = ("digits", "moco_v2", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# MoCo-v2 / UCDIR evaluate with Resize(256) → CenterCrop(224); other sizes keep that ratio.
EVAL_RESIZE_RATIO = 256 / 224


class ToChannels:
    """Convert any PIL mode (L, LA, P, RGBA, CMYK, I;16, F, …) to 1-channel ``L`` or ``RGB``.

    Transparent pixels are composited onto ``background`` (0–255 grey level) rather than
    keeping whatever colour they happen to store.
    """

    def __init__(self, channels: int, background: int = 0) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        self.channels = channels
        self.background = background

    def __call__(self, image: Image.Image) -> Image.Image:
        target = "L" if self.channels == 1 else "RGB"
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            image = _high_depth_to_l(image)
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = image.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (self.background,) * 3 + (255,))
            image = Image.alpha_composite(canvas, rgba)
        return image if image.mode == target else image.convert(target)

    def __repr__(self) -> str:
        return f"ToChannels(channels={self.channels}, background={self.background})"


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit or float images rescaled by their own range (PIL's ``convert('L')`` clips)."""
    values = np.asarray(image, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = np.zeros_like(values) if high == low else (values - low) / (high - low) * 255.0
    return Image.fromarray(scaled.round().astype(np.uint8), mode="L")


@dataclass(frozen=True)
class TransformConfig:
    """What a dataset's transforms are built from (part of the dataset config).

    ``center_crop`` picks the photo eval transform (resize then centre crop) over a plain
    resize (digits are already framed); ``background`` is the grey level transparent pixels
    and affine fill become (0 for white-on-black digits, 255 for product photos).
    """

    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augmentation: str
    center_crop: bool = True
    background: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 8:
            raise ValueError(f"image_size must be an int >= 8, got {self.image_size!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {self.augmentation!r}; valid choices: "
                             f"{', '.join(AUGMENTATIONS)}")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if len(values) != self.channels:
                raise ValueError(f"{key} has {len(values)} value(s) for {self.channels} "
                                 f"channel(s): {values!r}")
        if any(value <= 0 for value in self.std):
            raise ValueError(f"std must be positive, got {self.std!r}")


def fit_to_channels(values: Sequence[float], channels: int) -> tuple[float, ...]:
    """A default mean/std adapted to ``channels``: one value repeated, or three averaged to one."""
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    if channels == 1:
        return (sum(values) / len(values),)
    raise ValueError(f"cannot adapt {values!r} to {channels} channels")


def build_transforms(config: TransformConfig) -> tuple[Transform, Transform]:
    """``(train_transform, eval_transform)`` for ``config``."""
    to_channels = ToChannels(config.channels, config.background)
    to_tensor = [T.ToTensor(), T.Normalize(config.mean, config.std)]
    size = config.image_size
    if config.center_crop:
        eval_transform = T.Compose([to_channels, T.Resize(round(size * EVAL_RESIZE_RATIO)),
                                    T.CenterCrop(size), *to_tensor])
    else:
        eval_transform = T.Compose([to_channels, T.Resize((size, size)), *to_tensor])
    if config.augmentation == "none":
        return eval_transform, eval_transform
    if config.augmentation == "digits":
        train_transform = T.Compose([
            to_channels, T.Resize((size, size)),
            T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1),
                           fill=config.background),
            *to_tensor])
        return train_transform, eval_transform
    blur_kernel = max(3, int(0.1 * size) // 2 * 2 + 1)  # ~10 % of the side, odd (SimCLR's rule)
    train_transform = T.Compose([
        to_channels,
        T.RandomResizedCrop(size, scale=(0.2, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        # RandomGrayscale keeps the channel count, so it is a no-op for 1-channel input.
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(blur_kernel, sigma=(0.1, 2.0))], p=0.5),
        T.RandomHorizontalFlip(),
        *to_tensor])
    return train_transform, eval_transform
