"""``features``: precomputed feature vectors as a dataset (Office-Caltech SURF/DeCAF files,
ResNet-50 ``.mat``/``.npz`` exports, CLIP or DINO embeddings a user computed).

Three sources, the first given wins: ``root``, a folder with one file per domain
(``.mat`` v5 or v7.3, ``.npz``, ``.csv``, ``.parquet``/``.arrow``; domain = the file stem,
normalised), ``data_files``, parquet/arrow file(s) in the ``u2cdr convert`` layout
(``features`` / ``label`` / ``domain`` columns), or ``hub_id``, a hub dataset with those
columns. Files are read by ``feature_files.py``; 1-based labels are detected over all domains
together (``label_base``). Class names come from ``class_names``, a ``class_names_file``, the
parquet metadata, or the string labels; otherwise they stay integer ids ('0', '1', …). Either
way they go through the one global class map.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import datasets
import numpy as np

from u2cdr.data.base import DataNotFoundError
from u2cdr.data.class_map import ClassMap
from u2cdr.data.convert import read_class_names
from u2cdr.data.feature_dataset import DomainVectors, FeatureDomainDataset
from u2cdr.data.feature_files import (FEATURE_SUFFIXES, FeatureFileError, FeatureTable,
                                      read_feature_class_names, read_feature_file,
                                      read_feature_parquet, resolve_label_base, to_zero_based)
from u2cdr.data.folder import domain_key
from u2cdr.registry import DATASETS, ConfigError


@DATASETS.register_module(name="features")
class FeatureFiles(FeatureDomainDataset):
    """Feature vectors with a domain and a class per row (see module docstring).

    Args:
        root: a folder with one feature file per domain.
        domain_files: ``{domain: file name in root}`` when the file stems are not the domain
            ids (Office-Caltech's ``amazon_SURF_L10.mat``); default: domain = normalised stem.
        data_files: parquet/arrow file(s) in the ``u2cdr convert`` layout.
        hub_id, hub_revision: a hub dataset with ``features``/``label``/``domain`` columns.
        domains: the domain ids to use, in order; default: every domain found (required with
            ``hub_id``, so a grid can be checked without downloading).
        class_names: the global class names in id order.
        class_names_file: one class name per line (or a JSON list), id order.
        features_key, labels_key: which array/column holds features and labels in ``.mat``,
            ``.npz`` and ``.csv`` files (default: the common names, see ``feature_files.py``).
        label_base: 'auto', 0 or 1 (MATLAB files usually count classes from 1).
        source_name: what the vectors are, for captions (e.g. 'DeCAF6 features').
        augmentation: feature-level augmentation (``feature_transforms.FeatureAugmentation``).
        cache_dir: the data cache.
    """

    name: ClassVar[str] = "features"
    default_augmentation: ClassVar[dict] = {"normalize": "l2", "noise_std": 0.1, "dropout": 0.1}

    def __init__(self, root: str | None = None, domain_files: dict[str, str] | None = None,
                 data_files: str | list[str] | None = None, hub_id: str | None = None, hub_revision: str | None = None,
                 domains: list[str] | None = None, class_names: list[str] | None = None,
                 class_names_file: str | None = None, features_key: str | None = None,
                 labels_key: str | None = None, label_base: str | int = "auto",
                 source_name: str | None = None, augmentation: dict | None = None,
                 cache_dir: str | None = None) -> None:
        super().__init__(augmentation=augmentation, source_name=source_name, cache_dir=cache_dir)
        if root is None and data_files is None and hub_id is None:
            raise ConfigError("features: give `root` (a folder with one feature file per domain), "
                              "`data_files` (parquet/arrow in the `u2cdr convert` layout) or "
                              "`hub_id`")
        self.root = None if root is None else Path(root).expanduser()
        if domain_files is not None and (root is None or not isinstance(domain_files, dict)):
            raise ConfigError("features.domain_files must be a dict {domain: file name} and needs "
                              "`root`, the folder holding the files")
        self.domain_files = None if domain_files is None else {
            domain_key(domain): str(name) for domain, name in domain_files.items()}
        files = [data_files] if isinstance(data_files, str) else list(data_files or [])
        self.data_files = [Path(path).expanduser() for path in files]
        self.hub_id, self.hub_revision = hub_id, hub_revision
        if hub_id is not None and root is None and not files and not domains:
            raise ConfigError(f"features: hub_id={hub_id!r} needs `domains` (the domain ids to "
                              "use), so the grid can be checked without downloading")
        self.wanted_domains = None if domains is None else [domain_key(d) for d in domains]
        self.configured_class_names = None if class_names is None else [str(n) for n in class_names]
        self.class_names_file = class_names_file
        self.features_key, self.labels_key, self.label_base = features_key, labels_key, label_base
        self._tables: dict[str, FeatureTable] | None = None
        self._names: list[str] | None = None

    # ----- what the grid needs without building ------------------------------------------------
    @property
    def domains(self) -> tuple[str, ...]:
        if self.wanted_domains is not None:
            return tuple(self.wanted_domains)
        if self.domain_files is not None:
            return tuple(self.domain_files)
        if self.root is not None:
            return tuple(self._domain_files())
        return tuple(self._read_tables())

    @property
    def class_names(self) -> list[str]:
        if self._names is None:
            self._names = self._resolve_class_names()
        return self._names

    def source_identity(self) -> dict:
        if self.root is not None or self.data_files:
            files = (self._domain_files() if self.root is not None
                     else {path.name: path for path in self._checked_data_files()})
            content = {name: _file_sha256(path) for name, path in files.items()}
        else:
            content = {"hub_id": self.hub_id, "revision": self.hub_revision}
        return {"content": content, "features_key": self.features_key,
                "labels_key": self.labels_key, "label_base": self.label_base}

    def default_source_name(self) -> str:
        return f"precomputed features ({self.hub_id or (self.root or self.data_files[0]).name})"

    # ----- building ------------------------------------------------------------------------------
    def build_vectors(self, scratch: Path) -> tuple[dict[str, DomainVectors], dict]:
        tables = self._read_tables()
        class_map = ClassMap(self.class_names)
        base = resolve_label_base([tables[d] for d in self.domains], self.label_base,
                                  num_classes=len(class_map))
        built = {}
        for domain in self.domains:
            table = tables[domain]
            if table.labels_are_names:
                labels = class_map.ids_of(list(table.labels), where=table.source)
            else:
                labels = to_zero_based(table.labels, base)
            built[domain] = DomainVectors(vectors=table.features, labels=np.asarray(labels, np.int64))
        return built, {"label_base": base, "files": {d: Path(tables[d].source).name
                                                     for d in self.domains}}

    # ----- helpers -------------------------------------------------------------------------------
    def _domain_files(self) -> dict[str, Path]:
        if not self.root.is_dir():
            raise DataNotFoundError(f"features: root {str(self.root)!r} is not a folder; it must "
                                    f"hold one feature file per domain ({', '.join(FEATURE_SUFFIXES)})")
        if self.domain_files is not None:
            missing = [f"{domain} ({name})" for domain, name in self.domain_files.items()
                       if not (self.root / name).is_file()]
            if missing:
                held = ", ".join(sorted(p.name for p in self.root.iterdir())[:20]) or "nothing"
                raise DataNotFoundError(f"features: domain_files missing in {self.root}: "
                                        f"{', '.join(missing)}; the folder holds {held}")
            found = {domain: self.root / name for domain, name in self.domain_files.items()}
            if self.wanted_domains is not None:
                unknown = [d for d in self.wanted_domains if d not in found]
                if unknown:
                    raise ConfigError(f"features: domains {unknown} have no entry in domain_files "
                                      f"({', '.join(found)})")
                found = {d: found[d] for d in self.wanted_domains}
            return found
        found: dict[str, Path] = {}
        for path in sorted(self.root.iterdir()):
            if path.is_file() and path.suffix.lower() in FEATURE_SUFFIXES:
                domain = domain_key(path.stem)
                if domain in found:
                    raise ConfigError(f"features: {found[domain].name} and {path.name} in "
                                      f"{self.root} both name domain {domain!r}")
                found[domain] = path
        if not found:
            held = ", ".join(sorted(p.name for p in self.root.iterdir())[:10]) or "nothing"
            raise DataNotFoundError(f"features: {self.root} holds no feature file "
                                    f"({', '.join(FEATURE_SUFFIXES)}); it holds {held}")
        if self.wanted_domains is not None:
            missing = [d for d in self.wanted_domains if d not in found]
            if missing:
                raise DataNotFoundError(f"features: no file for domain(s) {', '.join(missing)} in "
                                        f"{self.root}; found: {', '.join(found)}")
            found = {d: found[d] for d in self.wanted_domains}
        return found

    def _checked_data_files(self) -> list[Path]:
        missing = [str(path) for path in self.data_files if not path.is_file()]
        if missing:
            raise DataNotFoundError(f"features: data file(s) not found: {', '.join(missing)}")
        return self.data_files

    def _read_tables(self) -> dict[str, FeatureTable]:
        """Every domain's table, read once (also what ``domains`` lists for file sources)."""
        if self._tables is not None:
            return self._tables
        tables: dict[str, FeatureTable] = {}
        if self.root is not None:
            for domain, path in self._domain_files().items():
                if path.suffix.lower() in (".parquet", ".arrow"):
                    parts = read_feature_parquet(path)
                    if len(parts) != 1:
                        raise FeatureFileError(f"{path}: holds domains {', '.join(parts)}; a file "
                                               "in a domain folder must hold one domain")
                    tables[domain] = next(iter(parts.values()))
                else:
                    tables[domain] = read_feature_file(path, features_key=self.features_key,
                                                       labels_key=self.labels_key)
        elif self.data_files:
            for path in self._checked_data_files():
                for domain, table in read_feature_parquet(path).items():
                    key = domain_key(domain)
                    if key in tables:
                        raise FeatureFileError(f"{path}: domain {key!r} appears in more than one "
                                               "data file")
                    tables[key] = table
        else:
            tables = self._hub_tables()
        if self.wanted_domains is not None:
            missing = [d for d in self.wanted_domains if d not in tables]
            if missing:
                raise DataNotFoundError(f"features: no rows for domain(s) {', '.join(missing)}; "
                                        f"found: {', '.join(tables)}")
            tables = {d: tables[d] for d in self.wanted_domains}
        self._tables = tables
        return tables

    def _hub_tables(self) -> dict[str, FeatureTable]:
        try:
            raw = datasets.load_dataset(self.hub_id, revision=self.hub_revision)
        except Exception as error:
            raise DataNotFoundError(f"features: could not load {self.hub_id!r} from the hub "
                                    f"({error}); convert your files with `u2cdr convert` and use "
                                    "data_files instead") from error
        rows = datasets.concatenate_datasets(list(raw.values()))
        missing = {"features", "label", "domain"} - set(rows.column_names)
        if missing:
            raise FeatureFileError(f"{self.hub_id}: lacks column(s) {sorted(missing)}")
        label_feature = rows.features["label"]
        labels = np.asarray(rows["label"])
        if isinstance(label_feature, datasets.ClassLabel):
            labels = np.asarray([label_feature.names[i] for i in labels], dtype=object)
        domains = np.asarray([domain_key(d) for d in rows["domain"]], dtype=object)
        vectors = np.asarray(rows.with_format("numpy")["features"], dtype=np.float32)
        return {str(d): FeatureTable(vectors[domains == d], labels[domains == d], self.hub_id,
                                     "features", "label") for d in dict.fromkeys(domains)}

    def _resolve_class_names(self) -> list[str]:
        if self.configured_class_names is not None:
            return self.configured_class_names
        if self.class_names_file is not None:
            return read_class_names(self.class_names_file)
        stored = next((names for path in self._parquet_files()
                       if (names := read_feature_class_names(path))), None)
        if stored:
            return stored
        tables = list(self._read_tables().values())
        named = [table for table in tables if table.labels_are_names]
        if named:
            if len(named) != len(tables):
                raise FeatureFileError("features: some domains label rows by class name and others "
                                       "by id; give class_names (id order) to map the ids")
            return ClassMap.from_found(str(n) for t in named for n in t.labels).names
        base = resolve_label_base(tables, self.label_base)
        count = max(int(table.labels.max()) for table in tables) - base + 1
        return [str(index) for index in range(count)]

    def _parquet_files(self) -> list[Path]:
        if self.root is not None:
            return [p for p in self._domain_files().values()
                    if p.suffix.lower() in (".parquet", ".arrow")]
        return self._checked_data_files() if self.data_files else []


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
