"""Features of an image dataset through a frozen backbone, extracted once and cached.

``frozen_features`` wraps any registered image dataset: its build runs the backbone over
every image under the eval transform, and over ``views`` augmented copies of it (the image
dataset's train transform, drawn with a fixed seed), and stores the vectors like any other
feature dataset. Every method, every cell and every later run of the grid then reads the
vectors from the data cache instead of running the backbone again (one implementation for
the feature cache of the frozen-backbone, scale and feature-dataset issues).

The cache key holds the image dataset's identity and transform, the backbone config, the
weights it loads, ``views`` and ``view_seed``: a changed transform or backbone never reuses
stale vectors. The image transform is set from the backbone's own input spec (size, channels,
normalisation) when the backbone declares one (``input_spec``), so an EfficientNet never sees
images normalised for another network.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from u2cdr.data.base import DomainDataset
from u2cdr.data.feature_dataset import BadFeaturesError, DomainVectors, FeatureDomainDataset
from u2cdr.data.pair import ImageColumn, IndexedImages
from u2cdr.registry import BACKBONES, DATASETS, ConfigError, build, lookup

logger = logging.getLogger("u2cdr")
EXTRACTOR_VERSION = 1
_SPEC_KEYS = ("image_size", "channels", "mean", "std")


@DATASETS.register_module(name="frozen_features")
class FrozenFeatures(FeatureDomainDataset):
    """The vectors of ``backbone`` (frozen, eval mode) on the images of ``images``.

    Args:
        images: the image dataset's config, e.g. ``dict(type='pacs_mini')``.
        backbone: the frozen network, e.g. ``dict(type='efficientnet_lite0', image_size=160)``.
        views: augmented views cached per image (training draws one per step); 0 = none, the
            feature-level ``augmentation`` alone makes the views.
        view_seed: seed of the view augmentations (part of the cache key).
        batch_size: images per forward pass while extracting.
        device: where extraction runs ('cpu' or 'cuda').
        augmentation: feature-level augmentation on top of the cached views (default: l2
            normalisation and none, the views being real image augmentations).
        source_name: caption name; default e.g. 'efficientnet_lite0 (frozen, 160 px) features'.
        cache_dir: the data cache (the image dataset uses it too unless it sets its own).
    """

    name: ClassVar[str] = "frozen_features"
    default_augmentation: ClassVar[dict] = {"normalize": "l2", "noise_std": 0.0, "dropout": 0.0}

    def __init__(self, images: dict, backbone: dict, views: int = 4, view_seed: int = 0,
                 batch_size: int = 64, device: str = "cpu", augmentation: dict | None = None,
                 source_name: str | None = None, cache_dir: str | None = None) -> None:
        super().__init__(augmentation=augmentation, source_name=source_name, cache_dir=cache_dir)
        if isinstance(views, bool) or not isinstance(views, int) or views < 0:
            raise ConfigError(f"frozen_features.views must be an int >= 0, got {views!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"frozen_features.batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(images, dict) or not isinstance(backbone, dict):
            raise ConfigError("frozen_features needs `images` (an image dataset config) and "
                              "`backbone` (a backbone config), both dicts with a `type`")
        self.backbone_cfg = dict(backbone)
        backbone_cls = lookup(BACKBONES, self.backbone_cfg.get("type"), "frozen_features.backbone")
        arguments = {key: value for key, value in self.backbone_cfg.items() if key != "type"}
        spec_of = getattr(backbone_cls, "input_spec", None)
        self.input_spec: dict = dict(spec_of(**arguments)) if spec_of is not None else {}
        weights_of = getattr(backbone_cls, "weights_identity", None)
        self.weights_identity: dict = dict(weights_of(**arguments)) if weights_of else {}
        self.images_cfg = dict(images)
        image_arguments = {"cache_dir": cache_dir} if "cache_dir" not in images else {}
        for key, value in self.input_spec.items():
            if key in images and _normalised(images[key]) != _normalised(value):
                raise ConfigError(
                    f"frozen_features.images.{key}={images[key]!r} but {backbone['type']} expects "
                    f"{key}={value!r}; drop images.{key} (it is set from the backbone) or change "
                    "the backbone config")
            image_arguments.setdefault(key, value)
        self.images: DomainDataset = build(DATASETS, {**self.images_cfg, **image_arguments},
                                           "frozen_features.images")
        if self.images.input_column != "image":
            raise ConfigError(f"frozen_features.images must be an image dataset; "
                              f"{self.images_cfg['type']!r} already gives feature vectors")
        self.views = views
        self.view_seed = int(view_seed)
        self.batch_size = batch_size
        self.device = device

    # ----- DomainDataset contract --------------------------------------------------------------
    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.images.domains)

    @property
    def class_names(self) -> list[str]:
        return list(self.images.class_names)

    def source_identity(self) -> dict:
        images = self.images
        return {"images": {"name": images.name, "builder_version": images.builder_version,
                           "source": images.source_identity(),
                           "transform": dataclasses.asdict(images.transform_config)},
                "backbone": self.backbone_cfg, "weights": self.weights_identity,
                "views": self.views, "view_seed": self.view_seed,
                "extractor_version": EXTRACTOR_VERSION}

    def default_source_name(self) -> str:
        size = self.images.transform_config.image_size
        return f"{self.backbone_cfg['type']} (frozen, {size} px) features"

    def image_location(self, domain: str, path: str | None, row: int) -> str:
        return self.images.image_location(domain, path, row)

    def build_vectors(self, scratch: Path) -> tuple[dict[str, DomainVectors], dict]:
        from u2cdr.methods._trainer import resolve_device

        device = resolve_device(self.device)
        loaded = self.images.load()
        train_transform, eval_transform = self.images.transforms()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.view_seed)  # a randomly initialised backbone is seeded too
            network = build(BACKBONES, self.backbone_cfg, "frozen_features.backbone").to(device)
        network.eval()
        built = {}
        for index, domain in enumerate(self.domains):
            rows = loaded[domain]
            labels = np.asarray(rows["label"], dtype=np.int64)
            logger.info("frozen_features: %s %s/%s, %d images × (1 + %d views)",
                        self.backbone_cfg["type"], self.images.name, domain, len(rows), self.views)
            vectors = self._extract(network, rows, eval_transform, device, f"{domain} eval")
            views = None
            if self.views:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.view_seed * 1000 + index)
                    views = np.stack([self._extract(network, rows, train_transform, device,
                                                    f"{domain} view {view + 1}/{self.views}")
                                      for view in range(self.views)], axis=1)
            built[domain] = DomainVectors(vectors=vectors, labels=labels, views=views)
        provenance = {"images_fingerprint": self.images.fingerprint(),
                      "images_skipped": self.images.skipped_images(),
                      "backbone": self.backbone_cfg, "weights": self.weights_identity,
                      "transform": dataclasses.asdict(self.images.transform_config)}
        return built, provenance

    @torch.no_grad()
    def _extract(self, network: torch.nn.Module, rows: Any, transform: Any, device: torch.device,
                 what: str) -> np.ndarray:
        loader = DataLoader(IndexedImages(ImageColumn(rows), transform), batch_size=self.batch_size,
                            shuffle=False)
        chunks = []
        bar = tqdm(loader, desc=f"features {what}", leave=False,
                   disable=os.environ.get("U2CDR_NO_PROGRESS") == "1" or not sys.stderr.isatty())
        for images, _ in bar:
            chunks.append(network(images.to(device)).float().cpu())
        vectors = torch.cat(chunks).numpy()
        if not np.isfinite(vectors).all():
            raise BadFeaturesError(f"frozen_features: {self.backbone_cfg['type']} produced NaN or "
                                   f"inf features for {self.images.name} ({what})")
        return vectors

    def describe_inputs(self) -> dict:
        return {**super().describe_inputs(), "backbone": self.backbone_cfg,
                "weights": self.weights_identity, "images": self.images_cfg,
                "image_transform": dataclasses.asdict(self.images.transform_config)}


def _normalised(value: Any) -> Any:
    """Lists and tuples of numbers compare equal when their values do (config vs spec)."""
    if isinstance(value, (list, tuple)):
        return tuple(round(float(item), 6) for item in value)
    return value
