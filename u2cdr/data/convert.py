"""``u2cdr convert``: precomputed feature files → one parquet file in a single layout.

Feature-level benchmarks arrive as one file per domain in whatever format their authors used
(``feature_files.py`` reads them). Converting once gives every later run one self-describing
file with the columns of ``PARQUET_COLUMNS``:

    features   list<float32>, one fixed-length row per sample
    label      int64 zero-based class id, or the class-name string whenever names are known
               (a class names file, or labels stored as names)
    domain     string, the normalised domain name (the source file's stem)

Class names, when known, are also kept in the schema metadata under
``CLASS_NAMES_METADATA_KEY`` (a JSON list), so the class order survives classes that no
domain holds. The label base (0 or 1) is decided over all domains together
(``resolve_label_base``), since a domain may lack class 1 in a 1-based file set.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from u2cdr.data.feature_files import (CLASS_NAMES_METADATA_KEY, FEATURE_SUFFIXES,
                                      FeatureFileError, FeatureTable, read_feature_file,
                                      read_feature_parquet, resolve_label_base, to_zero_based)
from u2cdr.data.folder import domain_key

PARQUET_COLUMNS: tuple[str, ...] = ("features", "label", "domain")


def read_class_names(path: str | Path) -> list[str]:
    """Class names in id order: one per line (blank lines ignored), or a ``.json`` list."""
    path = Path(path)
    if not path.is_file():
        raise FeatureFileError(f"{path}: no such class names file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except ValueError as error:
            raise FeatureFileError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise FeatureFileError(f"{path}: a .json class names file must hold a list of "
                                   f"strings")
        names = [name.strip() for name in names]
        if any(not name for name in names):
            raise FeatureFileError(f"{path}: class names must not be empty")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise FeatureFileError(f"{path}: the class names file lists no names")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FeatureFileError(f"{path}: class names must be unique; repeated: "
                               f"{', '.join(repeated)}")
    return names


def write_feature_parquet(tables: Mapping[str, FeatureTable], out: str | Path,
                          class_names: Sequence[str] | None = None) -> Path:
    """Write ``{domain: table}`` as one parquet file (atomically: a temporary file, then
    ``os.replace``, so an interrupted write never leaves a partial file under ``out``).

    Labels must already be zero-based ids or class-name strings. With ``class_names``, id
    ``i`` is written as ``class_names[i]`` and names must be among them; names are written
    as they are, ids as int64. Returns ``out``.
    """
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise ValueError(f"the output must be a .parquet file path, got {str(out)!r}")
    if not tables:
        raise FeatureFileError(f"{out}: no domains to write")
    _check_same_dim(tables)
    names = None if class_names is None else [str(name) for name in class_names]
    label_values = _label_column(tables, names)
    dim = next(iter(tables.values())).dim
    flat = np.concatenate([table.features.reshape(-1) for table in tables.values()])
    features = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)
    domains = pa.array([domain for domain, table in tables.items()
                        for _ in range(table.num_rows)], type=pa.string())
    metadata = None if names is None else {CLASS_NAMES_METADATA_KEY: json.dumps(names).encode()}
    arrow_table = pa.Table.from_arrays([features, label_values, domains],
                                       names=list(PARQUET_COLUMNS)).replace_schema_metadata(
                                           metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    try:
        pq.write_table(arrow_table, temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return out


def convert_features(source: str | Path, out: str | Path, *, features_key: str | None = None,
                     labels_key: str | None = None, label_base: str | int = "auto",
                     class_names_file: str | Path | None = None,
                     domain: str | None = None) -> dict:
    """Read ``source`` (one feature file, or a folder of one file per domain) and write it to
    ``out`` in the layout of ``PARQUET_COLUMNS``.

    Args:
        source: a file with one of ``FEATURE_SUFFIXES``, or a folder of such files (not
            recursive; other files are ignored); each file's domain is its normalised stem.
        out: the ``.parquet`` file to write.
        features_key, labels_key: see ``read_feature_file``; the same for every file.
        label_base: 'auto', 0 or 1, see ``resolve_label_base``.
        class_names_file: class names in id order (``read_class_names``); labels are then
            written as names and their count bounds the ids.
        domain: the domain name for a single file (default: its stem); not for a folder.

    Returns:
        ``{"domains": {domain: {"rows", "dim", "source"}}, "label_base": int, "out": str,
        "num_classes": int | None}``.
    """
    source = Path(source)
    tables = _read_domains(source, features_key, labels_key, domain)
    class_names = None if class_names_file is None else read_class_names(class_names_file)
    base = resolve_label_base(list(tables.values()), label_base,
                              None if class_names is None else len(class_names))
    shifted = {name: FeatureTable(features=table.features,
                                  labels=to_zero_based(table.labels, base), source=table.source,
                                  features_key=table.features_key, labels_key=table.labels_key)
               for name, table in tables.items()}
    written = write_feature_parquet(shifted, out, class_names)
    return {"domains": {name: {"rows": table.num_rows, "dim": table.dim, "source": table.source}
                        for name, table in tables.items()},
            "label_base": base, "out": str(written),
            "num_classes": None if class_names is None else len(class_names)}


def _read_domains(source: Path, features_key: str | None, labels_key: str | None,
                  domain: str | None) -> dict[str, FeatureTable]:
    """``{domain: table}`` in sorted domain order, from a file or a folder of files."""
    if source.is_dir():
        if domain is not None:
            raise ValueError(f"domain={domain!r} names the domain of a single file, but "
                             f"{source} is a folder (its files' stems name the domains)")
        files = sorted(path for path in source.iterdir()
                       if path.is_file() and path.suffix.lower() in FEATURE_SUFFIXES
                       and not path.name.startswith("."))
        if not files:
            held = sorted(path.name for path in source.iterdir())
            raise FeatureFileError(
                f"{source}: no feature files (valid suffixes: {', '.join(FEATURE_SUFFIXES)}); "
                f"the folder holds: {', '.join(held[:20]) or '(nothing)'}"
                f"{', ...' if len(held) > 20 else ''}")
    elif source.exists():
        files = [source]
    else:
        raise FeatureFileError(f"{source}: no such file or folder")
    tables: dict[str, FeatureTable] = {}
    origins: dict[str, Path] = {}
    for path in files:
        for name, table in _read_one(path, features_key, labels_key, domain).items():
            if name in origins:
                raise FeatureFileError(f"domain {name!r} comes from both {origins[name]} and "
                                       f"{path}; keep one file per domain")
            tables[name], origins[name] = table, path
    return dict(sorted(tables.items()))


def _read_one(path: Path, features_key: str | None, labels_key: str | None,
              domain: str | None) -> dict[str, FeatureTable]:
    if path.suffix.lower() in (".parquet", ".arrow"):
        by_domain = read_feature_parquet(path)
        if domain is not None and len(by_domain) == 1:
            return {domain_key(domain): next(iter(by_domain.values()))}
        return by_domain
    name = domain_key(domain if domain is not None else path.stem)
    if not name:
        raise FeatureFileError(f"{path}: cannot name a domain after {path.stem!r}; set domain")
    return {name: read_feature_file(path, features_key=features_key, labels_key=labels_key)}


def _check_same_dim(tables: Mapping[str, FeatureTable]) -> None:
    dims = {table.dim for table in tables.values()}
    if len(dims) > 1:
        listed = ", ".join(f"{table.source} ({domain}): {table.dim}"
                           for domain, table in tables.items())
        raise FeatureFileError(f"feature dimensions differ across domains: {listed}")


def _label_column(tables: Mapping[str, FeatureTable], names: list[str] | None) -> pa.Array:
    """int64 ids, or class-name strings when names are known or the labels are names."""
    by_name = any(table.labels_are_names for table in tables.values())
    if by_name and names is None and not all(t.labels_are_names for t in tables.values()):
        listed = ", ".join(f"{t.source} ({'names' if t.labels_are_names else 'ids'})"
                           for t in tables.values())
        raise FeatureFileError(f"some files label by class name and some by id ({listed}); "
                               f"give a class names file so ids can be mapped to names")
    columns: list[np.ndarray] = []
    for table in tables.values():
        if table.labels_are_names:
            if names is not None:
                unknown = sorted(set(table.labels) - set(names))
                if unknown:
                    raise FeatureFileError(f"{table.source}: labels not in the class names "
                                           f"file: {', '.join(unknown[:20])}")
            columns.append(table.labels)
            continue
        ids = table.labels
        bound = None if names is None else len(names)
        out_of_range = ids < 0
        if bound is not None:
            out_of_range |= ids >= bound
        bad = np.flatnonzero(out_of_range)
        if bad.size:
            row = int(bad[0])
            valid = f"0..{bound - 1}" if bound is not None else "0 or more"
            raise FeatureFileError(f"{table.source}: zero-based label {int(ids[row])} at row "
                                   f"{row} is out of range (valid ids: {valid})")
        columns.append(ids if names is None
                       else np.array([names[i] for i in ids], dtype=object))
    if by_name or names is not None:
        return pa.array(np.concatenate(columns).tolist(), type=pa.string())
    return pa.array(np.concatenate(columns).astype(np.int64), type=pa.int64())
