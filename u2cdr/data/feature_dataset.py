"""Datasets of feature vectors: the base of the frozen-feature mode of every method.

A row holds a float vector ``features`` (and, for features of a frozen image backbone, the
vectors of ``V`` augmented views flattened into ``views``) with ``label`` and ``domain``. The
build, cache and fingerprint machinery is ``DomainDataset``'s; what differs is that a method's
input is a vector: ``domain_inputs`` hands ``FeatureRows`` to ``DomainData`` and
``domain_transforms`` fits the feature-level transforms (``feature_transforms.py``) to each
domain. A cell on such a dataset swaps the method's backbone for ``identity`` (see
``u2cdr.engine.frozen_mode``), so only heads, classifiers and prototypes train.

Subclasses provide ``build_vectors`` (``{domain: DomainVectors}``) instead of
``build_domains``: ``features.py`` reads files users have, ``frozen_features.py`` runs a frozen
backbone over an image dataset once.
"""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from datasets import Dataset, Features, Sequence, Value

from u2cdr.data.base import DomainDataset
from u2cdr.data.feature_transforms import (FeatureAugmentation, FeatureRows, FeatureTransform,
                                           feature_transforms)


class BadFeaturesError(ValueError):
    """Feature vectors that cannot be used (non-finite values, ragged rows); names where."""


@dataclass
class DomainVectors:
    """One domain as built: ``vectors [N, D]``, optional ``views [N, V, D]``, ``labels [N]`` ids."""

    vectors: np.ndarray
    labels: np.ndarray
    views: np.ndarray | None = None


class FeatureDomainDataset(DomainDataset):
    """Domain-labelled feature vectors with one global class map (see module docstring).

    Args:
        augmentation: feature-level augmentation, ``dict(normalize=, noise_std=, dropout=,
            mixup_alpha=)`` (``FeatureAugmentation``); a subclass sets the defaults.
        source_name: what the vectors are, for table captions (e.g. 'GoogleNet-1024 features').
        cache_dir: the data cache (see ``cache.py``).
    """

    input_column: ClassVar[str] = "features"
    builder_version: ClassVar[str] = "1"
    default_augmentation: ClassVar[dict] = {}

    def __init__(self, *, augmentation: dict | None = None, source_name: str | None = None,
                 cache_dir: str | None = None) -> None:
        super().__init__(cache_dir=cache_dir, max_bad_fraction=0.0)
        self.augmentation = FeatureAugmentation.from_config(augmentation, self.default_augmentation)
        if source_name is not None and (not isinstance(source_name, str) or not source_name.strip()):
            raise ValueError(f"source_name must be a non-empty string, got {source_name!r}")
        self.source_name = source_name
        self._matrices: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    # ----- what a subclass provides -------------------------------------------------------
    @abc.abstractmethod
    def build_vectors(self, scratch: Path) -> tuple[dict[str, DomainVectors], dict]:
        """``({domain: DomainVectors}, provenance)``; labels are global class ids."""

    def default_source_name(self) -> str:
        """The caption's name of the vectors when the config gives no ``source_name``."""
        return "precomputed features"

    # ----- DomainDataset hooks --------------------------------------------------------------
    def features(self) -> Features:
        return Features({"features": Sequence(Value("float32")), "views": Sequence(Value("float32")),
                         "label": self.class_map().class_label, "domain": Value("string")})

    def build_domains(self, scratch: Path) -> tuple[dict[str, Dataset], dict]:
        vectors_by_domain, provenance = self.build_vectors(scratch)
        built = {}
        for domain, data in vectors_by_domain.items():
            built[domain] = self._to_dataset(domain, data)
        dims = {domain: int(data.vectors.shape[1]) for domain, data in vectors_by_domain.items()}
        if len(set(dims.values())) > 1:
            raise BadFeaturesError(f"{self.name}: the domains' feature widths differ ({dims}); "
                                   "both domains of a cell must live in one feature space")
        views = {int(0 if data.views is None else data.views.shape[1])
                 for data in vectors_by_domain.values()}
        return built, {**provenance, "feature_dim": next(iter(dims.values()), 0),
                       "views": max(views, default=0)}

    def _to_dataset(self, domain: str, data: DomainVectors) -> Dataset:
        vectors = np.asarray(data.vectors)
        labels = np.asarray(data.labels)
        if vectors.ndim != 2 or len(vectors) != len(labels):
            raise BadFeaturesError(f"{self.name}/{domain}: {vectors.shape} features for "
                                   f"{len(labels)} labels; need [N, D] with N = number of labels")
        views = data.views
        if views is not None and (views.ndim != 3 or views.shape[0] != len(vectors)
                                  or views.shape[2] != vectors.shape[1]):
            raise BadFeaturesError(f"{self.name}/{domain}: views of shape {views.shape} do not fit "
                                   f"features of shape {vectors.shape}")
        flat_views = (np.zeros((len(vectors), 0), np.float32) if views is None
                      else views.reshape(len(vectors), -1))
        return Dataset.from_dict(
            {"features": vectors.astype(np.float32), "views": flat_views.astype(np.float32),
             "label": labels.astype(np.int64), "domain": [domain] * len(vectors)},
            features=self.features())

    def _canonical(self, dataset: Dataset, domain: str) -> Dataset:
        labels = np.asarray(dataset["label"], dtype=np.int64)
        if len(labels) == 0:
            raise BadFeaturesError(f"{self.name}: domain {domain!r} has no rows")
        if labels.min() < 0 or labels.max() >= len(self.class_names):
            raise BadFeaturesError(f"{self.name}/{domain}: label ids must lie in "
                                   f"0..{len(self.class_names) - 1}, found {labels.min()}..{labels.max()}")
        return dataset

    def _drop_unreadable(self, dataset: Dataset, domain: str) -> tuple[Dataset, list[dict]]:
        """Non-finite vectors are refused, never skipped: they mean a broken extraction."""
        vectors, views = self._arrays(dataset)
        for what, values in (("features", vectors), ("views", views)):
            if values is None:
                continue
            bad_rows = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
            if len(bad_rows):
                raise BadFeaturesError(f"{self.name}/{domain}: {len(bad_rows)} row(s) of {what} hold "
                                       f"NaN or inf values (first: row {int(bad_rows[0])})")
        return dataset, []

    def _content_hash(self, dataset: Dataset) -> str:
        vectors, views = self._arrays(dataset)
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
        if views is not None:
            digest.update(np.ascontiguousarray(views, dtype="<f4").tobytes())
        digest.update(np.asarray(dataset["label"], dtype="<i8").tobytes())
        return digest.hexdigest()

    def domain_inputs(self, domain: Dataset) -> FeatureRows:
        return FeatureRows(*self._arrays(domain))

    def domain_transforms(self, domain: Dataset) -> tuple[FeatureTransform, FeatureTransform]:
        return feature_transforms(self._arrays(domain)[0], self.augmentation)

    def describe_inputs(self) -> dict:
        provenance = (self._manifest or {}).get("source", {})
        return {"kind": "features", "source": self.feature_source(),
                "feature_dim": provenance.get("feature_dim"), "views": provenance.get("views"),
                "augmentation": self.augmentation.describe()}

    def feature_source(self) -> str:
        return self.source_name or self.default_source_name()

    def feature_dim(self) -> int:
        """The vectors' width (loads the data when needed)."""
        if self._manifest is None:
            self.load()
        return int(self._manifest["source"]["feature_dim"])

    # ----- helpers ----------------------------------------------------------------------------
    def _arrays(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
        """``(vectors [N, D], views [N, V, D] or None)`` of ``dataset`` (memoised per content)."""
        key = getattr(dataset, "_fingerprint", None)
        if key is not None and key in self._matrices:
            return self._matrices[key]
        table = dataset.with_format("numpy", columns=["features", "views"])
        vectors = _matrix(table["features"], "features", self.name)
        flat_views = _matrix(table["views"], "views", self.name)
        views = None
        if flat_views.shape[1]:
            views = flat_views.reshape(len(vectors), flat_views.shape[1] // vectors.shape[1],
                                       vectors.shape[1])
        if key is not None:
            self._matrices = {key: (vectors, views)}  # the last one: build_pair asks twice in a row
        return vectors, views


def _matrix(column: Any, what: str, name: str) -> np.ndarray:
    """A list column of equal-length vectors as one float32 matrix; ragged rows are refused."""
    if isinstance(column, np.ndarray) and column.dtype != object:
        return column.astype(np.float32, copy=False).reshape(len(column), -1)
    lengths = {len(row) for row in column}
    if len(lengths) > 1:
        raise BadFeaturesError(f"{name}: the {what} column holds vectors of different lengths "
                               f"{sorted(lengths)}")
    width = lengths.pop() if lengths else 0
    return np.asarray([np.asarray(row, dtype=np.float32) for row in column],
                      dtype=np.float32).reshape(len(column), width)
