"""Readers for precomputed feature files: one domain's features ``[N, D]`` and class labels.

Feature-level benchmarks ship each domain as a file of CNN features and labels rather than
images, most often MATLAB ``.mat`` files (e.g. the DeCAF/ResNet features of Office-31 and
Office-Home), or ``.npz`` / ``.csv`` exports. Every reader returns one ``FeatureTable``, so the
checks below are made once, whatever the format:

    .mat       MATLAB v4/v5/v6 through ``scipy.io.loadmat``; v7.3 files are HDF5 and are read
               with ``h5py`` (imported only then). MATLAB writes column-major, so every 2-D
               array read through h5py is transposed back to the shape MATLAB shows.
    .npz       ``numpy.load(allow_pickle=False)``.
    .csv       ``pandas.read_csv`` with a header line: one label column, the rest features.
    .parquet / .arrow   the layout ``u2cdr convert`` writes: ``features`` (list of floats),
               ``label`` (int id or class name) and optionally ``domain`` (see
               ``read_feature_parquet``).

Arrays are found by name: an explicit ``features_key`` / ``labels_key``, else the first name
of ``FEATURE_KEYS`` / ``LABEL_KEYS`` (in that order, case-sensitive) that the file holds.

Shapes: labels may be ``[N]``, ``[N, 1]`` or ``[1, N]``. Features must be 2-D; MATLAB files
often store them ``D × N``, so an array whose rows do not match the label count but whose
columns do is transposed (a square ``N × N`` array is taken as rows = samples). Features
become C-contiguous float32; any NaN/inf, a fractional label or an empty file is a
``FeatureFileError`` that names the file. Labels are returned as stored (not yet shifted to
zero-based ids); ``resolve_label_base`` and ``to_zero_based`` do that over all domains at once.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from u2cdr.data.folder import domain_key

FEATURE_SUFFIXES: tuple[str, ...] = (".mat", ".npz", ".csv", ".parquet", ".arrow")
FEATURE_KEYS: tuple[str, ...] = ("fts", "feas", "features", "feats", "feat", "X", "x", "data")
LABEL_KEYS: tuple[str, ...] = ("labels", "label", "y", "Y", "gnd", "gt", "labels_")
# Schema metadata key under which ``u2cdr convert`` stores the class names (JSON list).
CLASS_NAMES_METADATA_KEY = b"u2cdr.class_names"
LABEL_BASES: tuple[str | int, ...] = ("auto", 0, 1)

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MATLAB_INTERNAL_GROUPS = ("#refs#", "#subsystem#")
_LISTED_KEYS = 20  # keys named in an error message before "... and N more"


class FeatureFileError(ValueError):
    """A feature file that cannot be used; the message names the file and the problem."""


@dataclasses.dataclass
class FeatureTable:
    """One domain's features and labels, as read from one file.

    Attributes:
        features: ``[N, D]`` float32, C-contiguous, all finite.
        labels: ``[N]`` int64 class ids as stored in the file (not yet shifted to zero-based),
            or an object array of ``str`` class names.
        source: the file the table came from (for messages).
        features_key, labels_key: the array / column names that held them; ``None`` where
            the format fixes them (parquet/arrow layout) or, for ``.csv`` features, where every
            non-label column was taken (else the column-name prefix).
    """

    features: np.ndarray
    labels: np.ndarray
    source: str
    features_key: str | None
    labels_key: str | None

    @property
    def num_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def labels_are_names(self) -> bool:
        """True when labels are class-name strings rather than integer ids."""
        return self.labels.dtype == object


@dataclasses.dataclass(frozen=True)
class _Variable:
    """A named array in a file, loaded only when asked for (feature files can be large)."""

    description: str | Callable[[], str]  # e.g. '100x4096 double', for error messages
    load: Callable[[], np.ndarray]


# --------------------------------------------------------------------------- public readers


def read_feature_file(path: str | Path, *, features_key: str | None = None,
                      labels_key: str | None = None) -> FeatureTable:
    """The features and labels in ``path`` (a file with one of ``FEATURE_SUFFIXES``).

    Args:
        path: the feature file.
        features_key: the array (``.mat``/``.npz``) holding the features, or for ``.csv`` the
            prefix of the feature columns (``'f'`` for ``f0, f1, ...``); default: the first of
            ``FEATURE_KEYS`` present (``.csv``: every column but the label column).
        labels_key: the array or column holding the labels; default: the first of
            ``LABEL_KEYS`` present.

    Returns:
        A ``FeatureTable``; for a parquet/arrow file with a ``domain`` column, every row of
        every domain (``read_feature_parquet`` splits them).
    """
    path = Path(path)
    suffix = _checked_suffix(path)
    if suffix in (".parquet", ".arrow"):
        if features_key is not None or labels_key is not None:
            raise FeatureFileError(
                f"{path}: features_key/labels_key do not apply to {suffix} files, whose "
                f"columns are fixed ('features', 'label', optional 'domain')")
        return _table_from_arrow(path, _read_arrow_table(path))
    if suffix == ".csv":
        return _read_csv(path, features_key, labels_key)
    with _open_variables(path, suffix) as variables:
        if not variables:
            raise FeatureFileError(f"{path}: the file holds no arrays")
        chosen_features = _pick_key(path, variables, features_key, FEATURE_KEYS, "features",
                                    "features_key")
        chosen_labels = _pick_key(path, variables, labels_key, LABEL_KEYS, "labels",
                                  "labels_key")
        if chosen_features == chosen_labels:
            raise FeatureFileError(f"{path}: features and labels cannot both come from "
                                   f"{chosen_features!r}; set features_key and labels_key")
        features = _load(path, variables, chosen_features)
        labels = _load(path, variables, chosen_labels)
    return _checked_table(path, features, labels, chosen_features, chosen_labels)


def read_feature_parquet(path: str | Path) -> dict[str, FeatureTable]:
    """``{domain: FeatureTable}`` from a file in the ``u2cdr convert`` layout.

    Domains come from the ``domain`` column in order of first appearance; a file without that
    column is one domain named after the file stem (normalised: ``'Real World'`` →
    ``'real_world'``).
    """
    path = Path(path)
    if _checked_suffix(path) not in (".parquet", ".arrow"):
        raise FeatureFileError(f"{path}: read_feature_parquet reads .parquet or .arrow files")
    arrow_table = _read_arrow_table(path)
    table = _table_from_arrow(path, arrow_table)
    if "domain" not in arrow_table.column_names:
        return {domain_key(path.stem): table}
    domain_column = arrow_table.column("domain")
    if domain_column.null_count:
        raise FeatureFileError(f"{path}: {domain_column.null_count} rows have no domain")
    domains = np.asarray(domain_column.to_pylist(), dtype=object)
    names, first_rows = np.unique(domains.astype(str), return_index=True)
    by_domain: dict[str, FeatureTable] = {}
    for name in names[np.argsort(first_rows)]:
        rows = domains == name
        by_domain[str(name)] = dataclasses.replace(
            table, features=np.ascontiguousarray(table.features[rows]),
            labels=table.labels[rows])
    return by_domain


def read_feature_class_names(path: str | Path) -> list[str] | None:
    """The class names stored in a parquet/arrow file's schema metadata, if any."""
    path = Path(path)
    if _checked_suffix(path) == ".parquet":
        metadata = pq.read_schema(path).metadata or {}
    else:
        metadata = _read_arrow_table(path).schema.metadata or {}
    if CLASS_NAMES_METADATA_KEY not in metadata:
        return None
    try:
        names = json.loads(metadata[CLASS_NAMES_METADATA_KEY])
    except ValueError as error:
        raise FeatureFileError(f"{path}: class names in the metadata are not JSON: "
                               f"{error}") from error
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise FeatureFileError(f"{path}: class names in the metadata must be a list of "
                               f"strings, got {type(names).__name__}")
    return names


# --------------------------------------------------------------------------- label ids


def resolve_label_base(tables: Sequence[FeatureTable], label_base: str | int = "auto",
                       num_classes: int | None = None) -> int:
    """The id of the first class in ``tables``' integer labels: 0 or 1.

    MATLAB benchmarks usually number classes from 1, numpy exports from 0, and a domain may
    lack some classes (a partial split), so the base is decided over every domain together.
    ``'auto'`` chooses 1 when no label is 0, the smallest label is 1 and, given
    ``num_classes``, the largest is ``num_classes``; otherwise 0. The chosen base (explicit or
    not) is then checked: no label below it and, given ``num_classes``, none above the last
    class. String labels take no part; with no integer labels at all the result is 0.

    Raises:
        ValueError: ``label_base`` is not one of ``'auto'``, 0, 1 (the strings ``'0'`` and
            ``'1'`` are accepted too, as a command line gives them).
        FeatureFileError: a label outside the chosen base's range; names the file.
    """
    requested = _checked_label_base(label_base)
    numbered = [table for table in tables if not table.labels_are_names and table.labels.size]
    if not numbered:
        return 0
    smallest = min(int(table.labels.min()) for table in numbered)
    largest = max(int(table.labels.max()) for table in numbered)
    if requested == "auto":
        one_based = smallest == 1 and (num_classes is None or largest == num_classes)
        base = 1 if one_based else 0
        reason = (f" (label_base='auto' chose {base}: labels run from {smallest} to {largest}"
                  f"{'' if num_classes is None else f' for {num_classes} classes'})")
    else:
        base, reason = int(requested), ""
    for table in numbered:
        low, high = int(table.labels.min()), int(table.labels.max())
        if low < base:
            hint = "; use label_base=0 or 'auto'" if base == 1 and low == 0 else ""
            raise FeatureFileError(
                f"{table.source}: label {low} is below the first class id {base}"
                f"{reason}{hint}")
        if num_classes is not None and high - base >= num_classes:
            raise FeatureFileError(
                f"{table.source}: label {high} is beyond the last of {num_classes} classes "
                f"(ids {base}..{base + num_classes - 1} with label_base={base}){reason}")
    return base


def to_zero_based(labels: np.ndarray, base: int) -> np.ndarray:
    """Integer labels shifted so the first class is 0; class-name strings pass through."""
    if base not in (0, 1):
        raise ValueError(f"label base must be 0 or 1, got {base!r}")
    if labels.dtype == object:
        return labels
    shifted = labels.astype(np.int64) - base
    if shifted.size and shifted.min() < 0:
        raise ValueError(f"label {int(labels.min())} is below the base {base}")
    return shifted


# --------------------------------------------------------------------------- formats


def _checked_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FEATURE_SUFFIXES:
        raise FeatureFileError(f"{path}: unsupported file type {suffix or '(no suffix)'!r}; "
                               f"valid choices: {', '.join(FEATURE_SUFFIXES)}")
    if not path.is_file():
        raise FeatureFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FeatureFileError(f"{path}: the file is empty")
    return suffix


@contextlib.contextmanager
def _open_variables(path: Path, suffix: str) -> Iterator[dict[str, _Variable]]:
    """The named arrays of a ``.mat`` or ``.npz`` file, loadable while the context is open."""
    if suffix == ".npz":
        try:
            archive = np.load(path, allow_pickle=False)
        except Exception as error:  # noqa: BLE001 - any unreadable archive, named below
            raise FeatureFileError(f"{path}: not a readable .npz file ({error})") from error
        if not isinstance(archive, Mapping):
            raise FeatureFileError(f"{path}: holds one unnamed array (.npy format); save "
                                   f"features and labels with numpy.savez(path, fts=..., "
                                   f"labels=...)")
        with archive:
            yield {name: _Variable(_npz_description(archive, name),
                                   functools.partial(archive.__getitem__, name))
                   for name in archive.files}
    elif _is_hdf5(path):
        with _open_hdf5(path) as variables:
            yield variables
    else:
        yield _mat_v5_variables(path)


def _npz_description(archive: Mapping[str, np.ndarray], name: str) -> Callable[[], str]:
    """Shapes of .npz members are known only by loading them, so only an error message does."""
    def describe() -> str:
        try:
            array = archive[name]
        except ValueError:
            return "Python objects"
        return f"{'x'.join(map(str, array.shape)) or 'scalar'} {array.dtype}"
    return describe


def _is_hdf5(path: Path) -> bool:
    """MATLAB v7.3 files are HDF5 behind a 512-byte text header; HDF5 puts its signature at
    offset 0, 512, 1024, ... (the user block), so both plain and MATLAB files are found."""
    with path.open("rb") as file:
        for offset in (0, 512, 1024, 2048):
            file.seek(offset)
            if file.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return True
    return False


def _mat_v5_variables(path: Path) -> dict[str, _Variable]:
    import scipy.io

    try:
        listing = scipy.io.whosmat(str(path))
    except NotImplementedError:  # a v7.3 header without the HDF5 signature where we looked
        raise FeatureFileError(f"{path}: a MATLAB v7.3 file that h5py cannot find the HDF5 "
                               f"data of") from None
    except Exception as error:  # noqa: BLE001 - any unreadable file, named below
        raise FeatureFileError(f"{path}: not a readable MATLAB file ({error})") from error

    def loader(name: str) -> Callable[[], np.ndarray]:
        return lambda: scipy.io.loadmat(str(path), variable_names=[name])[name]

    return {name: _Variable(f"{'x'.join(map(str, shape))} {matlab_class}", loader(name))
            for name, shape, matlab_class in listing if not name.startswith("__")}


@contextlib.contextmanager
def _open_hdf5(path: Path) -> Iterator[dict[str, _Variable]]:
    """Top-level datasets of a MATLAB v7.3 (HDF5) file, in MATLAB's orientation."""
    try:
        import h5py
    except ImportError:
        raise FeatureFileError(f"{path}: a MATLAB v7.3 (HDF5) file; reading it needs the "
                               f"'h5py' package (pip install h5py)") from None
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise FeatureFileError(f"{path}: not a readable HDF5/MATLAB v7.3 file "
                               f"({error})") from error
    with handle:
        variables: dict[str, _Variable] = {}
        for name, item in handle.items():
            if name in _MATLAB_INTERNAL_GROUPS:
                continue
            if not isinstance(item, h5py.Dataset):
                variables[name] = _Variable("group", _not_an_array(path, name))
                continue
            matlab_class = _attr_text(item.attrs.get("MATLAB_class")) or str(item.dtype)
            shape = tuple(reversed(item.shape))
            variables[name] = _Variable(f"{'x'.join(map(str, shape)) or 'scalar'} {matlab_class}",
                                        _hdf5_loader(path, handle, item, matlab_class))
        yield variables


def _not_an_array(path: Path, name: str) -> Callable[[], np.ndarray]:
    def fail() -> np.ndarray:
        raise FeatureFileError(f"{path}: {name!r} is a group (a MATLAB struct), not an array")
    return fail


def _attr_text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _hdf5_loader(path: Path, handle: object, dataset: object,
                 matlab_class: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        if matlab_class == "char":
            return _matlab_chars(dataset[()])
        if matlab_class == "cell":
            return _matlab_cellstr(path, handle, dataset)
        if dataset.dtype.kind not in "biuf":
            raise FeatureFileError(f"{path}: {dataset.name.lstrip('/')!r} holds "
                                   f"{matlab_class} data, not numbers or text")
        return np.asarray(dataset[()]).T  # column-major on disk → MATLAB's shape
    return load


def _matlab_chars(codes: np.ndarray) -> np.ndarray:
    """A v7.3 char matrix (uint16 codes, stored transposed) → one string per MATLAB row."""
    rows = np.atleast_2d(np.asarray(codes)).T
    return np.array(["".join(map(chr, row)).rstrip(" \x00") for row in rows], dtype=object)


def _matlab_cellstr(path: Path, handle: object, dataset: object) -> np.ndarray:
    """A v7.3 cell array of strings: each cell is a reference to a char dataset."""
    references = np.asarray(dataset[()]).T.reshape(-1)
    names = []
    for reference in references:
        target = handle[reference]
        if _attr_text(target.attrs.get("MATLAB_class")) != "char":
            raise FeatureFileError(f"{path}: {dataset.name.lstrip('/')!r} is a cell array "
                                   f"whose cells are not strings")
        names.append(_matlab_chars(target[()])[0] if target.size else "")
    return np.array(names, dtype=object)


def _pick_key(path: Path, variables: dict[str, _Variable], explicit: str | None,
              candidates: Sequence[str], what: str, parameter: str) -> str:
    if explicit is not None:
        if explicit in variables:
            return explicit
        raise FeatureFileError(f"{path}: {parameter}={explicit!r} is not in the file; keys in "
                               f"the file: {_listing(_descriptions(variables))}")
    for candidate in candidates:
        if candidate in variables:
            return candidate
    raise FeatureFileError(f"{path}: no {what} array found; keys in the file: "
                           f"{_listing(_descriptions(variables))}; set {parameter}=... "
                           f"(tried {', '.join(candidates)})")


def _listing(descriptions: Mapping[str, str | Callable[[], str]]) -> str:
    """``'a (100x4096 double), b (100x1 uint8)'``: what a file holds, for error messages."""
    if not descriptions:
        return "(none)"
    names = list(descriptions)
    described = []
    for name in names[:_LISTED_KEYS]:
        description = descriptions[name]
        described.append(f"{name} ({description() if callable(description) else description})")
    more = len(names) - _LISTED_KEYS
    return ", ".join(described) + (f", ... and {more} more" if more > 0 else "")


def _descriptions(variables: Mapping[str, _Variable]) -> dict[str, str | Callable[[], str]]:
    return {name: variable.description for name, variable in variables.items()}


def _load(path: Path, variables: dict[str, _Variable], name: str) -> np.ndarray:
    try:
        return np.asarray(variables[name].load())
    except FeatureFileError:
        raise
    except ValueError as error:  # e.g. pickled objects in an .npz
        raise FeatureFileError(f"{path}: cannot load {name!r} ({error})") from error


def _read_csv(path: Path, features_prefix: str | None, labels_key: str | None) -> FeatureTable:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise FeatureFileError(f"{path}: not a readable CSV file ({error})") from error
    frame.columns = [str(name) for name in frame.columns]
    if frame.empty:
        raise FeatureFileError(f"{path}: the file holds no samples (a header and no rows)")
    columns = {name: str(frame[name].dtype) for name in frame.columns}
    if labels_key is not None:
        if labels_key not in columns:
            raise FeatureFileError(f"{path}: labels_key={labels_key!r} is not a column; "
                                   f"columns: {_listing(columns)}")
        label_column = labels_key
    else:
        found = [name for name in LABEL_KEYS if name in columns]
        if not found:
            raise FeatureFileError(
                f"{path}: no labels column found; columns: {_listing(columns)}; set "
                f"labels_key=... (tried {', '.join(LABEL_KEYS)}; the first line must be a "
                f"header)")
        label_column = found[0]
    if features_prefix is None:
        feature_columns = [name for name in columns if name != label_column]
    else:
        feature_columns = [name for name in columns
                           if name.startswith(features_prefix) and name != label_column]
        if not feature_columns:
            raise FeatureFileError(f"{path}: no column starts with features_key="
                                   f"{features_prefix!r}; columns: {_listing(columns)}")
    if not feature_columns:
        raise FeatureFileError(f"{path}: no feature columns besides {label_column!r}")
    not_numeric = [name for name in feature_columns
                   if not pd.api.types.is_numeric_dtype(frame[name])
                   or pd.api.types.is_bool_dtype(frame[name])]
    if not_numeric:
        listed = ", ".join(f"{name} ({frame[name].dtype})" for name in not_numeric[:_LISTED_KEYS])
        raise FeatureFileError(f"{path}: feature columns must be numbers; not numeric: {listed}; "
                               f"set features_key=PREFIX to choose the feature columns")
    labels = frame[label_column].to_numpy()
    if labels.dtype == object and any(not isinstance(value, str) for value in labels):
        missing = int(frame[label_column].isna().sum())
        raise FeatureFileError(f"{path}: {missing} rows have no label in column "
                               f"{label_column!r}" if missing else
                               f"{path}: labels in {label_column!r} mix text and other values")
    features = frame[feature_columns].to_numpy(dtype=np.float64)
    return _checked_table(path, features, labels, features_prefix, label_column)


def _read_arrow_table(path: Path) -> pa.Table:
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        with pa.OSFile(str(path), "rb") as source:
            try:
                return pa.ipc.open_file(source).read_all()
            except pa.ArrowInvalid:  # HF `datasets` writes the stream format
                source.seek(0)
                return pa.ipc.open_stream(source).read_all()
    except (pa.ArrowInvalid, OSError) as error:
        raise FeatureFileError(f"{path}: not a readable {path.suffix} file ({error})") from error


def _table_from_arrow(path: Path, table: pa.Table) -> FeatureTable:
    missing = [name for name in ("features", "label") if name not in table.column_names]
    if missing:
        raise FeatureFileError(f"{path}: missing column(s) {', '.join(missing)}; columns: "
                               f"{', '.join(table.column_names) or '(none)'} (expected "
                               f"'features' (list of floats), 'label', optional 'domain')")
    features = _arrow_features(path, table.column("features"))
    label_column = table.column("label").combine_chunks()
    if label_column.null_count:
        raise FeatureFileError(f"{path}: {label_column.null_count} rows have no label")
    if pa.types.is_dictionary(label_column.type):
        label_column = label_column.dictionary_decode()
    if pa.types.is_string(label_column.type) or pa.types.is_large_string(label_column.type):
        labels = np.array(label_column.to_pylist(), dtype=object)
    elif pa.types.is_integer(label_column.type) or pa.types.is_floating(label_column.type):
        labels = label_column.to_numpy(zero_copy_only=False)
    else:
        raise FeatureFileError(f"{path}: column 'label' must hold ints or class names, not "
                               f"{label_column.type}")
    return _checked_table(path, features, labels, None, None)


def _arrow_features(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    rows = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    if not (pa.types.is_list(rows.type) or pa.types.is_large_list(rows.type)
            or pa.types.is_fixed_size_list(rows.type)):
        raise FeatureFileError(f"{path}: column 'features' must be a list of floats per row, "
                               f"not {rows.type}")
    if rows.null_count:
        raise FeatureFileError(f"{path}: {rows.null_count} rows have no features")
    lengths = np.unique(pc.list_value_length(rows).to_numpy(zero_copy_only=False))
    if len(lengths) > 1:
        raise FeatureFileError(f"{path}: feature rows differ in length "
                               f"({', '.join(map(str, lengths[:5]))}, ...)")
    values = rows.flatten()
    if values.null_count:
        raise FeatureFileError(f"{path}: {values.null_count} feature values are missing")
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise FeatureFileError(f"{path}: column 'features' must hold numbers, not {values.type}")
    dim = int(lengths[0]) if len(lengths) else 0
    return values.to_numpy(zero_copy_only=False).reshape(len(rows), dim)


# --------------------------------------------------------------------------- checks


def _checked_table(path: Path, features: np.ndarray, labels: np.ndarray,
                   features_key: str | None, labels_key: str | None) -> FeatureTable:
    """Shapes, orientation, finiteness and label types, shared by every format."""
    labels = _label_vector(path, labels)
    count = labels.shape[0]
    if count == 0:
        raise FeatureFileError(f"{path}: the file holds no samples (0 labels)")
    features = np.asarray(features)
    if features.dtype.kind not in "biuf":
        raise FeatureFileError(f"{path}: features must be numbers, not {features.dtype}")
    if features.ndim != 2:
        raise FeatureFileError(f"{path}: features must be a 2-D array [N, D], got shape "
                               f"{features.shape}")
    if features.shape[0] != count:
        if features.shape[1] != count:
            raise FeatureFileError(f"{path}: {features.shape[0]} feature rows but {count} labels"
                                   f" (features have shape {features.shape})")
        features = features.T  # stored D x N, as MATLAB files often are
    if features.shape[1] == 0:
        raise FeatureFileError(f"{path}: features have 0 columns")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
        converted = np.ascontiguousarray(features, dtype=np.float32)
    _check_finite(path, converted, features)
    return FeatureTable(features=converted, labels=_label_values(path, labels), source=str(path),
                        features_key=features_key, labels_key=labels_key)


def _label_vector(path: Path, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise FeatureFileError(f"{path}: labels must be a vector [N], [N, 1] or [1, N], got "
                               f"shape {labels.shape}")
    return labels


def _check_finite(path: Path, converted: np.ndarray, original: np.ndarray) -> None:
    finite = np.isfinite(converted)
    if finite.all():
        return
    bad_rows = np.flatnonzero(~finite.all(axis=1))
    row = int(bad_rows[0])
    column = int(np.flatnonzero(~finite[row])[0])
    raise FeatureFileError(
        f"{path}: {len(bad_rows)} of {converted.shape[0]} feature rows hold NaN or inf "
        f"(first: row {row}, column {column}, value {original[row, column]!r}; rows are "
        f"samples counted from 0; float32 overflows to inf)")


def _label_values(path: Path, labels: np.ndarray) -> np.ndarray:
    """int64 ids, or an object array of stripped, non-empty class-name strings."""
    if labels.dtype.kind in "US" or labels.dtype == object:
        names = np.array([_cell_text(path, index, value) for index, value in enumerate(labels)],
                         dtype=object)
        empty = np.flatnonzero(names == "")
        if empty.size:
            raise FeatureFileError(f"{path}: {empty.size} labels are empty class names (first: "
                                   f"row {int(empty[0])})")
        return names
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        not_finite = np.flatnonzero(~np.isfinite(labels))
        if not_finite.size:
            raise FeatureFileError(f"{path}: {not_finite.size} labels are NaN or inf (first: "
                                   f"row {int(not_finite[0])})")
        fractional = np.flatnonzero(labels != np.round(labels))
        if fractional.size:
            index = int(fractional[0])
            raise FeatureFileError(f"{path}: labels must be whole numbers; labels[{index}] = "
                                   f"{labels[index]!r} ({fractional.size} such labels)")
        return labels.astype(np.int64)
    raise FeatureFileError(f"{path}: labels must be integers or class names, not {labels.dtype}")


def _text(value: str | bytes) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).strip()


def _cell_text(path: Path, index: int, value: object) -> str:
    """A label cell: a str, or (MATLAB cellstr through scipy) a 0/1-element string array."""
    if isinstance(value, (str, bytes, np.str_, np.bytes_)):
        return _text(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "US" and value.size <= 1:
        return _text(value.reshape(-1)[0]) if value.size else ""
    raise FeatureFileError(f"{path}: labels must be integers or class names; labels[{index}] "
                           f"is {type(value).__name__}")


def _checked_label_base(label_base: str | int) -> str | int:
    if isinstance(label_base, str) and label_base.strip() in ("auto", "0", "1"):
        text = label_base.strip()
        return text if text == "auto" else int(text)
    if isinstance(label_base, (int, np.integer)) and not isinstance(label_base, bool) \
            and int(label_base) in (0, 1):
        return int(label_base)
    raise ValueError(f"unknown label_base {label_base!r}; valid choices: "
                     f"{', '.join(map(repr, LABEL_BASES))}")
