"""Finished cells as a report reads them: the record, the saved features, the images behind rows.

Figures are drawn from what a cell left on disk, never by retraining: ``result.json`` (the
record) and ``features.npz`` (``u2cdr.engine.cell.save_features``: float16 retrieval features,
global class ids, each row's index in the dataset's full domain, and the open-set flags). The
images behind those rows come from rebuilding the dataset from the record's ``dataset_cfg``;
the data cache makes that a read, not a build.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from u2cdr.engine.cell import FEATURES_FILE

BASELINE_METHOD = "pretrained"
# Which protocol knob says how the top of a ranking is read, in order of preference: P@k's
# similarity is the protocol's own reading of a top-k list (UEM, UCDIR), mAP's distance the
# reading of the whole ranking (CoDA). Cosine is the field's default when a record names none.
RANKING_KNOBS = ("pk_similarity", "distance")
DEFAULT_RANKING = "cosine"


@dataclass(frozen=True)
class CellFeatures:
    """One cell's ``features.npz``: ``[N_q, D]`` / ``[N_g, D]`` float32 features and their labels.

    ``*_rows`` index the dataset's full domain (None when the file predates them, i.e. the
    domain was not filtered); ``private_pred`` is the open-set flags, None outside ``open``.
    """

    query: np.ndarray
    gallery: np.ndarray
    query_labels: np.ndarray
    gallery_labels: np.ndarray
    query_rows: np.ndarray | None
    gallery_rows: np.ndarray | None
    private_pred: np.ndarray | None


@dataclass(frozen=True)
class ReportCell:
    """A finished cell: its record and its folder."""

    record: dict
    directory: Path

    @property
    def method(self) -> str:
        return str(self.record["method"])

    @property
    def method_type(self) -> str:
        """The registered class behind the grid name (a grid may rename, e.g. uem_dn → uem)."""
        method_cfg = self.record.get("method_cfg")
        method_type = method_cfg.get("type") if isinstance(method_cfg, dict) else None
        return method_type if isinstance(method_type, str) else self.method

    @property
    def split_identity(self) -> tuple:
        """What cells that saw the same data share: (dataset, scenario, query, gallery, seed)."""
        record = self.record
        return (record["dataset"], record["scenario"], record["query"], record["gallery"],
                record["seed"])

    @property
    def label(self) -> str:
        record = self.record
        return (f"{self.method} {record['dataset']}/{record['scenario']} "
                f"{record['query']}→{record['gallery']} seed {record['seed']}")

    @property
    def features_path(self) -> Path:
        return self.directory / FEATURES_FILE

    def load_features(self) -> CellFeatures:
        """Read ``features.npz``; a clear error when the cell finished before features were kept."""
        if not self.features_path.is_file():
            raise FileNotFoundError(
                f"{self.label}: no {FEATURES_FILE} in {self.directory} (the cell finished before "
                f"cells kept their features); delete that folder and rerun the grid to draw its "
                f"figures")
        with np.load(self.features_path) as stored:
            arrays = {name: stored[name] for name in stored.files}
        return CellFeatures(
            query=arrays["query_features"].astype(np.float32),
            gallery=arrays["gallery_features"].astype(np.float32),
            query_labels=arrays["query_labels"].astype(np.int64),
            gallery_labels=arrays["gallery_labels"].astype(np.int64),
            query_rows=arrays.get("query_rows"),
            gallery_rows=arrays.get("gallery_rows"),
            private_pred=(arrays["private_pred"].astype(bool) if "private_pred" in arrays
                          else None))


def load_cells(records: pd.DataFrame, statuses: tuple[str, ...] = ("done",)) -> list[ReportCell]:
    """The cells behind a ``load_records`` frame whose status is in ``statuses``, in path order.

    ``load_records`` already dropped unreadable and superseded records, so the report draws
    and describes exactly the cells its tables count.
    """
    chosen = records[records["status"].isin(statuses)]
    cells = []
    for path in dict.fromkeys(chosen["path"]):
        record = json.loads(Path(path).read_text())
        cells.append(ReportCell(record, Path(path).parent))
    return cells


def find_baseline(cells: list[ReportCell], cell: ReportCell,
                  baseline: str = BASELINE_METHOD) -> ReportCell | None:
    """The ``baseline`` cell (untrained backbone features) on the same split and seed, if any.

    A cell joins by grid name first, then by registered type, so a renamed ``pretrained``
    entry still serves as the "before training" picture.
    """
    same_split = [other for other in cells
                  if other.split_identity == cell.split_identity and other is not cell]
    for matches in ([c for c in same_split if c.method == baseline],
                    [c for c in same_split if c.method_type == baseline]):
        if matches:
            return matches[0]
    return None


def ranking_distance(record: dict) -> str:
    """How the cell's protocol ranks a gallery for a top-k list: 'cosine' or 'euclidean'.

    UEM's protocol scores mAP@All with Euclidean distance and P@k with cosine similarity
    (``u2cdr.evaluation.protocols``); a top-k figure is P@k's reading, so ``pk_similarity``
    wins when recorded.
    """
    protocol = record.get("protocol")
    if isinstance(protocol, dict):
        for knob in RANKING_KNOBS:
            if protocol.get(knob) in ("cosine", "euclidean"):
                return str(protocol[knob])
    return DEFAULT_RANKING


class CellImages:
    """The images and class names of a record's dataset, rebuilt from its ``dataset_cfg``.

    ``reason`` says why there are no images (a dataset of feature vectors without an image
    dataset behind it); ``image`` then raises. Frozen-backbone features keep the row order of
    the image dataset they were computed from, so their rows index its images directly.
    """

    def __init__(self, dataset_cfg: dict) -> None:
        from u2cdr.registry import DATASETS, build, import_all_components

        import_all_components()
        self.dataset = build(DATASETS, dataset_cfg, "record dataset_cfg")
        self.reason: str | None = None
        self._image_dataset = self.dataset
        if self.dataset.input_column != "image":
            wrapped = getattr(self.dataset, "images", None)
            if wrapped is not None and getattr(wrapped, "input_column", None) == "image":
                self._image_dataset = wrapped
            else:
                self._image_dataset = None
                self.reason = (f"{self.dataset.name} holds feature vectors only (no images), "
                               f"so retrievals are not drawn")
        self._domains: dict[str, Any] | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.dataset.class_names)

    def class_name(self, label: int) -> str:
        names = self.class_names
        return str(names[label]) if 0 <= label < len(names) else str(label)

    def image(self, domain: str, row: int) -> Image.Image:
        """The image of ``row`` (an index into the dataset's full ``domain``)."""
        if self._image_dataset is None:
            raise ValueError(self.reason)
        if self._domains is None:
            self._domains = self._image_dataset.load()
        if domain not in self._domains:
            raise ValueError(f"domain {domain!r} is not in {self._image_dataset.name}; valid "
                             f"domains: {', '.join(self._domains)}")
        return self._domains[domain][int(row)]["image"]


class ImageLibrary:
    """One ``CellImages`` per distinct dataset config, so a report builds each dataset once."""

    def __init__(self) -> None:
        self._by_config: dict[str, CellImages] = {}

    def for_record(self, record: dict) -> CellImages:
        dataset_cfg = record.get("dataset_cfg")
        if not isinstance(dataset_cfg, dict):
            raise ValueError(f"record of {record.get('method')} on {record.get('dataset')} has no "
                             f"dataset_cfg, so its images cannot be found")
        key = json.dumps(dataset_cfg, sort_keys=True)
        if key not in self._by_config:
            self._by_config[key] = CellImages(dataset_cfg)
        return self._by_config[key]
