"""The base class every registered dataset extends.

A dataset is config until ``load()``: the constructor only records its keyword arguments, so
the grid engine can build every dataset of a grid to read ``domains`` and check ``pairs``
without touching the disk. ``load()`` builds one HF ``Dataset`` per domain with the columns
``image`` (``datasets.Image``), ``label`` (``datasets.ClassLabel`` of the *global* class
names) and ``domain`` (string), saves them under the data cache and memory-maps them from
there on every later call.

A subclass provides ``domains``, ``class_names``, ``source_identity()`` (what the built
content depends on — never a path, so moved data finds its cache) and ``build_domains()``.
"""
from __future__ import annotations

import abc
import dataclasses
import hashlib
import io
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import datasets
import numpy as np
import pyarrow.compute as pc
from datasets import Dataset, Features, Image, Value
from datasets.table import embed_table_storage
from PIL import Image as PILImage

from u2cdr.data.cache import build_once, cache_root, quiet_datasets
from u2cdr.data.class_map import ClassMap
from u2cdr.data.hashing import stable_hash
from u2cdr.data.transforms import TransformConfig, build_transforms, fit_to_channels

Transform = Callable[[Any], Any]
logger = logging.getLogger("u2cdr")

# A few broken files in a large domain are skipped; more than this fraction per domain stops the
# build (a damaged copy or a wrong folder, which skipping would hide).
DEFAULT_MAX_BAD_FRACTION = 0.01
# Bump when the checks a build runs change: it enters the cache key (not the fingerprint), so
# caches built without the checks are rebuilt with them.
BUILD_CHECKS_VERSION = 1
_LISTED_BAD_IMAGES = 10


class DataNotFoundError(FileNotFoundError):
    """Data that is not where the config says; the message says where to put it."""


class UnreadableImageError(ValueError):
    """More of a domain's images fail to decode than ``max_bad_fraction`` allows; names them."""


def image_problem(blob: bytes | None) -> str | None:
    """Why ``blob`` is not a decodable image, or None when it is one.

    The image is decoded, not only identified: a truncated JPEG passes a header check and would
    fail only when a training batch reads it, hours into a cell. JPEGs decode at reduced scale
    (``draft``), which still reads every byte of the scan.
    """
    if not blob:
        return "no image bytes"
    try:
        with PILImage.open(io.BytesIO(blob)) as image:
            image.draft(None, (1, 1))
            image.load()
    except Exception as error:  # PIL reports bad data as OSError, SyntaxError, ValueError, …
        return f"{type(error).__name__}: {error}"
    return None


class DomainDataset(abc.ABC):
    """Domain-labelled images with one global class map (see module docstring).

    Class attributes a subclass sets:
        name: the registry id (``'digits'``, ``'office_home'``).
        builder_version: bump when the way data is built changes; it enters the cache key
            and the fingerprint, so old caches and results are not mistaken for new ones.
        default_transforms: image size, channels, normalisation and augmentation preset used
            when the config does not override them.
    """

    name: ClassVar[str] = ""
    builder_version: ClassVar[str] = "1"
    default_transforms: ClassVar[TransformConfig]
    # The column a method's input comes from: 'image' here, 'features' for datasets of vectors
    # (``feature_dataset.py``), whose cells train methods in frozen-feature mode.
    input_column: ClassVar[str] = "image"

    def __init__(self, *, cache_dir: str | None = None, image_size: int | None = None,
                 channels: int | None = None, mean: list[float] | None = None,
                 std: list[float] | None = None, augmentation: str | None = None,
                 max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION) -> None:
        if isinstance(max_bad_fraction, bool) or not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must lie in [0, 1] (the share of a domain's images "
                             f"that may be unreadable and skipped), got {max_bad_fraction!r}")
        self.max_bad_fraction = float(max_bad_fraction)
        self.cache_dir = cache_dir
        # True/False after ``load()``: whether the data came from the cache or was built now.
        self.loaded_from_cache: bool | None = None
        self._loaded: dict[str, Dataset] | None = None
        self._manifest: dict | None = None
        if self.input_column != "image":  # vectors: no image transforms (feature_dataset.py)
            return
        defaults = self.default_transforms
        channels = defaults.channels if channels is None else int(channels)
        mean = fit_to_channels(defaults.mean, channels) if mean is None else tuple(map(float, mean))
        std = fit_to_channels(defaults.std, channels) if std is None else tuple(map(float, std))
        self.transform_config = TransformConfig(
            image_size=defaults.image_size if image_size is None else int(image_size),
            channels=channels, mean=mean, std=std,
            augmentation=defaults.augmentation if augmentation is None else augmentation,
            center_crop=defaults.center_crop, background=defaults.background)

    # ----- what a subclass provides -------------------------------------------------------
    @property
    @abc.abstractmethod
    def domains(self) -> tuple[str, ...]:
        """Domain ids, known without loading (a class attribute or a cheap lookup)."""

    @property
    @abc.abstractmethod
    def class_names(self) -> list[str]:
        """The global class names in id order."""

    @abc.abstractmethod
    def source_identity(self) -> dict:
        """Plain data the built content depends on (no paths); it keys the cache."""

    @abc.abstractmethod
    def build_domains(self, scratch: Path) -> tuple[dict[str, Dataset], dict]:
        """``({domain: Dataset}, provenance)`` read from the source.

        Each Dataset has the columns of ``features()`` (an ``image`` column of another image
        storage is cast); ``scratch`` is an empty directory for intermediate files, deleted
        after the build.
        ``provenance`` (plain data) is recorded in the manifest.
        """

    def image_location(self, domain: str, path: str | None, row: int) -> str:
        """Where a row's image came from, for messages (a subclass may give the file's path)."""
        return f"{self.name}/{domain}: {path or f'row {row}'}"

    # ----- the contract used by the grid engine --------------------------------------------
    def class_map(self) -> ClassMap:
        return ClassMap(self.class_names)

    def features(self) -> Features:
        """The schema of every domain's Dataset."""
        return Features({"image": Image(), "label": self.class_map().class_label,
                         "domain": Value("string")})

    def cache_path(self) -> Path:
        """Where this dataset's built domains live (keyed by content, not by data path)."""
        identity = {"name": self.name, "builder_version": self.builder_version,
                    "build_checks": BUILD_CHECKS_VERSION,
                    "domains": list(self.domains), "class_names": self.class_names,
                    "source": self.source_identity()}
        return cache_root(self.cache_dir) / self.name / stable_hash(identity, 16)

    def load(self) -> dict[str, Dataset]:
        """One HF ``Dataset`` per domain, built on the first call, memory-mapped afterwards."""
        if self._loaded is None:
            directory = self.cache_path()
            manifest, built_now = build_once(directory, self._build_into)
            for domain in self.domains:  # a cached build may predate a stricter threshold
                self._check_unreadable(domain, manifest["domains"][domain])
                self._warn_skipped(domain, manifest["domains"][domain])
            self.loaded_from_cache = not built_now
            self._manifest = manifest
            self._loaded = {domain: datasets.load_from_disk(str(directory / domain))
                            for domain in self.domains}
        return dict(self._loaded)

    def fingerprint(self) -> str:
        """``name@version:hash`` of the class names and every domain's content (not paths)."""
        if self._manifest is None:
            self.load()
        return self._manifest["fingerprint"]

    def skipped_images(self) -> dict[str, int]:
        """How many unreadable images the build left out of each domain (``max_bad_fraction``)."""
        if self._manifest is None:
            self.load()
        return {domain: len(self._manifest["domains"][domain]["skipped_images"])
                for domain in self.domains}

    def transforms(self) -> tuple[Transform, Transform]:
        """``(train_transform, eval_transform)``: PIL image → normalised float tensor."""
        return build_transforms(self.transform_config)

    def domain_transforms(self, domain: Dataset) -> tuple[Transform, Transform]:
        """The transforms of one (scenario-filtered) domain; images need nothing domain-specific.

        Feature datasets override it: their normalisation and augmentations are fitted to the
        domain's own vectors (z-scoring, noise scaled to the domain's spread, within-domain mixup).
        """
        return self.transforms()

    def domain_inputs(self, domain: Dataset) -> Any:
        """What ``DomainData.images`` indexes per row; None = the ``image`` column."""
        return None

    def describe_inputs(self) -> dict:
        """What a method's inputs are, for records and table captions."""
        return {"kind": "image", "transform": dataclasses.asdict(self.transform_config)}

    # ----- building -------------------------------------------------------------------------
    def _build_into(self, staging: Path) -> dict:
        scratch = staging / "scratch"
        scratch.mkdir()
        with quiet_datasets():
            built, provenance = self.build_domains(scratch)
            missing = [domain for domain in self.domains if domain not in built]
            if missing:
                found = ", ".join(built) or "none"
                raise DataNotFoundError(f"{self.name}: the source has no images for domain(s) "
                                        f"{', '.join(missing)} (found: {found})")
            summary = {}
            for domain in self.domains:
                dataset, skipped = self._drop_unreadable(self._canonical(built[domain], domain), domain)
                summary[domain] = {"num_images": len(dataset), "skipped_images": skipped}
                self._check_unreadable(domain, summary[domain])  # before anything is saved
                if len(dataset) == 0:
                    raise DataNotFoundError(f"{self.name}: domain {domain!r} has no readable images")
                summary[domain]["content_sha256"] = self._content_hash(dataset)
                dataset.save_to_disk(str(staging / domain))
            del built
        shutil.rmtree(scratch)
        identity = {"name": self.name, "builder_version": self.builder_version,
                    "class_names": self.class_names,
                    "content": {domain: info["content_sha256"] for domain, info in summary.items()}}
        return {"name": self.name, "builder_version": self.builder_version,
                "fingerprint": f"{self.name}@{self.builder_version}:{stable_hash(identity, 12)}",
                "class_names": self.class_names, "domains": summary, "source": provenance,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def _drop_unreadable(self, dataset: Dataset, domain: str) -> tuple[Dataset, list[dict]]:
        """``dataset`` without rows whose input is unusable, and ``{row, path, error}`` of each."""
        return _without_unreadable_images(dataset)

    def _content_hash(self, dataset: Dataset) -> str:
        return content_hash(dataset)

    def _listed(self, domain: str, skipped: list[dict]) -> str:
        shown = "; ".join(f"{self.image_location(domain, bad['path'], bad['row'])} ({bad['error']})"
                          for bad in skipped[:_LISTED_BAD_IMAGES])
        more = len(skipped) - _LISTED_BAD_IMAGES
        return shown + (f"; and {more} more" if more > 0 else "")

    def _check_unreadable(self, domain: str, info: dict) -> None:
        """Raise when more of ``domain``'s images were unreadable than ``max_bad_fraction``."""
        skipped = info["skipped_images"]
        total = info["num_images"] + len(skipped)
        if skipped and len(skipped) > self.max_bad_fraction * total:
            raise UnreadableImageError(
                f"{self.name}: {len(skipped)} of {total} images ({100 * len(skipped) / total:.1f}%) "
                f"of domain {domain!r} are unreadable, more than max_bad_fraction="
                f"{self.max_bad_fraction} allows: {self._listed(domain, skipped)}. Replace or "
                f"remove them, or raise max_bad_fraction in the dataset config to skip them")

    def _warn_skipped(self, domain: str, info: dict) -> None:
        skipped = info["skipped_images"]
        if skipped:
            total = info["num_images"] + len(skipped)
            logger.warning("%s: skipped %d unreadable image(s) of %d in domain %r "
                           "(max_bad_fraction=%s): %s", self.name, len(skipped), total, domain,
                           self.max_bad_fraction, self._listed(domain, skipped))

    def _canonical(self, dataset: Dataset, domain: str) -> Dataset:
        """``dataset`` reduced to image/label/domain with the global schema, checked."""
        missing = {"image", "label", "domain"} - set(dataset.column_names)
        if missing:
            raise ValueError(f"{self.name}/{domain}: built data lacks column(s) {sorted(missing)}")
        dataset = dataset.select_columns(["image", "label", "domain"])
        labels = np.asarray(dataset["label"], dtype=np.int64)
        if len(labels) == 0:
            raise DataNotFoundError(f"{self.name}: domain {domain!r} has no images")
        if labels.min() < 0 or labels.max() >= len(self.class_names):
            raise ValueError(f"{self.name}/{domain}: label ids must lie in "
                             f"0..{len(self.class_names) - 1}")
        if set(np.unique(np.asarray(dataset["domain"]))) != {domain}:
            raise ValueError(f"{self.name}/{domain}: `domain` column must hold {domain!r} only")
        if not isinstance(dataset.features["image"], Image):
            dataset = dataset.cast_column("image", Image())  # a table cast, nothing rewritten
        if dataset.features != self.features():
            # Rewrites the rows; sources should hand over ``features()`` to avoid it.
            dataset = dataset.cast(self.features())
        return _embed_missing_image_bytes(dataset)


def content_hash(dataset: Dataset) -> str:
    """sha256 over every row's image bytes and label id, in order (paths ignored)."""
    digest = hashlib.sha256()
    for batch in dataset.with_format("arrow").iter(batch_size=1024):
        for blob in batch.column("image").combine_chunks().field("bytes").to_pylist():
            digest.update(len(blob).to_bytes(8, "little"))
            digest.update(blob)
        digest.update(batch.column("label").to_numpy().astype("<i8").tobytes())
    return digest.hexdigest()


def _without_unreadable_images(dataset: Dataset) -> tuple[Dataset, list[dict]]:
    """``dataset`` without the rows whose image does not decode, and ``{row, path, error}`` of each."""
    skipped: list[dict] = []
    row = 0
    for batch in dataset.with_format("arrow").iter(batch_size=256):
        images = batch.column("image").combine_chunks()
        for blob, path in zip(images.field("bytes").to_pylist(), images.field("path").to_pylist()):
            problem = image_problem(blob)
            if problem is not None:
                skipped.append({"row": row, "path": path, "error": problem})
            row += 1
    if not skipped:
        return dataset, []
    keep = np.setdiff1d(np.arange(len(dataset)), [bad["row"] for bad in skipped])
    return dataset.select(keep, keep_in_memory=True), skipped


def _embed_missing_image_bytes(dataset: Dataset) -> Dataset:
    """Copy file contents into rows that reference an image by path only.

    The cache must not depend on where the source files were (nor on them still existing).
    """
    needs_embedding = any(
        pc.any(pc.is_null(batch.column("image").combine_chunks().field("bytes"))).as_py()
        for batch in dataset.with_format("arrow").iter(batch_size=1024))
    if not needs_embedding:
        return dataset
    embedded = dataset.with_format("arrow").map(embed_table_storage, batched=True,
                                                keep_in_memory=True)
    return embedded.with_format(None).cast(dataset.features)

