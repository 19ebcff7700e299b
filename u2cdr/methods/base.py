"""The contract every retrieval method fulfils.

A method owns its training loop (no Runner): ``fit`` trains on the two unlabelled domains of a
``DomainPair``, ``embed`` turns a domain's images into features, and an optional
``detect_private`` flags open-set queries that must return nothing. The harness seeds torch,
numpy and random before building a method, and passes ``device``.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from u2cdr.data.pair import DomainData, DomainPair

SCENARIOS = ("closed", "partial", "open")


class Method:
    """Base class of registered methods.

    Class attributes a subclass may set:
        supports: scenarios the method can run; other cells are skipped with a reason.
        uses_labels: True only for oracles that read ``DomainData.labels`` in ``fit``;
            such rows are marked and left out of "best" highlighting.
        family: the group a table lists the method under.
        distance: the distance ``embed``'s features are meant to be ranked with
            ('euclidean' or 'cosine'); the generic open-set rule uses it.
        trains: False only for methods with nothing to learn (e.g. ``pretrained``); the
            conformance test checks that every other method changes its parameters.
        needs_images: why the method cannot run on feature vectors (frozen-feature mode,
            ``u2cdr.engine.frozen_mode``), or None when it can; such cells are skipped.
        supports_ddp: True when ``fit`` trains correctly as one of several ``torchrun``
            processes (sharded batches, DDP, replicated state kept in sync; see
            ``u2cdr.engine.distributed``); a cell launched with ``WORLD_SIZE > 1`` for any other
            method fails with a message. It belongs to a training loop, so a subclass that
            defines its own ``fit`` does not inherit it and must declare it again.
        neutral_defaults: options added after results existed, each with the value that
            reproduces the behaviour from before it existed. At that value an option stays
            out of the cell key (``u2cdr.engine.grid.cell_key``), so adding it does not orphan
            every finished cell of the method; any other value is a new cell as usual.
    """

    supports: ClassVar[frozenset[str]] = frozenset(SCENARIOS)
    uses_labels: ClassVar[bool] = False
    family: ClassVar[str] = "other"
    distance: ClassVar[str] = "euclidean"
    trains: ClassVar[bool] = True
    needs_images: ClassVar[str | None] = None
    supports_ddp: ClassVar[bool] = False
    neutral_defaults: ClassVar[dict[str, object]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "fit" in vars(cls) and "supports_ddp" not in vars(cls):
            cls.supports_ddp = False  # a new loop is not distributed until it says so

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        """Train on ``pair`` (labels unseen). ``work_dir`` holds logs and checkpoints."""
        raise NotImplementedError

    def embed(self, domain: DomainData) -> np.ndarray:
        """Features ``[N, D]`` float32 of ``domain``'s images in dataset order."""
        raise NotImplementedError

    def detect_private(self, query_features: np.ndarray,
                       gallery_features: np.ndarray) -> np.ndarray | None:
        """``[N_query]`` bool, True = private (return nothing); None = use the generic rule."""
        return None

    def describe(self) -> dict:
        """Plain-data facts written into the result record (e.g. GAP decisions)."""
        return {}
