"""Frozen-feature mode: a method on a dataset of vectors trains only what sits on the vectors.

When a cell's dataset gives feature vectors (``input_column == 'features'``: a file of
precomputed features, or a frozen backbone's cached features), the method's configured image
backbone is replaced by ``identity`` of the vectors' width. The method class needs no change:
its projection head, domain classifier, prototypes and banks train on the vectors, and its
augmentations are the dataset's feature-level ones. A method whose idea lives in pixel space
declares ``needs_images`` and its cells are skipped with that reason (n/a in tables).

A method config may also ask for it on an image dataset: ``backbone=dict(type=...,
frozen=True, views=4)`` runs that method's cells on ``frozen_features`` of the dataset with
that backbone (``with_frozen_backbone``), so one grid can hold fine-tuned and frozen variants.
"""
from __future__ import annotations

import inspect

from u2cdr.registry import ConfigError


def needs_images_reason(method_cls: type, method_name: str) -> str | None:
    """Why ``method_cls`` cannot run on feature vectors, or None when it can."""
    reason = getattr(method_cls, "needs_images", None)
    if reason:
        return f"{method_name} needs images, the dataset gives feature vectors: {reason}"
    return None


def feature_method_cfg(method_cfg: dict, method_cls: type, method_name: str,
                       feature_dim: int) -> dict:
    """``method_cfg`` with its backbone replaced by ``identity(in_dim=feature_dim)``.

    A method that trains and retrieves the backbone output (``embedding='backbone'``) would
    retrieve the given vectors unchanged, its training thrown away; that is refused by name.
    """
    if "backbone" not in inspect.signature(method_cls.__init__).parameters:
        raise ConfigError(f"method {method_name} ({method_cls.__name__}) takes no `backbone`, so it "
                          "cannot run in frozen-feature mode")
    embedding = method_cfg.get("embedding", _default(method_cls, "embedding"))
    if getattr(method_cls, "trains", True) and embedding == "backbone":
        raise ConfigError(f"method {method_name}: embedding='backbone' on a feature dataset retrieves "
                          "the given vectors unchanged (the backbone is frozen to identity), so "
                          "training would not count; set embedding='head' for this dataset")
    return {**method_cfg, "backbone": {"type": "identity", "in_dim": int(feature_dim)}}


def _default(method_cls: type, argument: str) -> object:
    parameter = inspect.signature(method_cls.__init__).parameters.get(argument)
    return None if parameter is None else parameter.default


FROZEN_KEYS = ("frozen", "views", "view_seed")


def with_frozen_backbone(method_cfg: dict, dataset_cfg: dict) -> tuple[dict, dict]:
    """``(method_cfg, dataset_cfg)`` of a cell whose method asks for ``backbone.frozen=True``.

    The backbone (without the frozen-mode keys) moves into a ``frozen_features`` wrapper of the
    dataset, whose build extracts and caches its features once for every cell and method
    sharing it; the method keeps its configured backbone only as a record (the cell replaces it
    by ``identity``). Other configs are returned unchanged.
    """
    backbone = method_cfg.get("backbone")
    if not isinstance(backbone, dict) or not backbone.get("frozen"):
        return method_cfg, dataset_cfg
    if backbone["frozen"] is not True:
        raise ConfigError(f"backbone.frozen must be True or False, got {backbone['frozen']!r}")
    if dataset_cfg.get("type") == "frozen_features":
        raise ConfigError("backbone.frozen=True on a frozen_features dataset: the dataset already "
                          "holds a frozen backbone's features; drop one of them")
    network = {key: value for key, value in backbone.items() if key not in FROZEN_KEYS}
    wrapper = {"type": "frozen_features", "images": dataset_cfg, "backbone": network,
               **{key: backbone[key] for key in ("views", "view_seed") if key in backbone}}
    return {**method_cfg, "backbone": network}, wrapper
