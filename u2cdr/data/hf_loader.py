"""Domain-labelled image datasets from the HF hub, local parquet/arrow files, or a folder.

One loader for data with the columns ``image`` / ``label`` / ``domain`` (the layout of the
hub's ``flwrlabs/office-home`` and ``flwrlabs/pacs``) or the folder layout
``ROOT/<domain>/<class>/<image>``. The first of ``root``, ``data_files``, ``hub_id`` that is
given is read (local data wins over the hub). Labels always go through the dataset's one
global class map (``class_map.py``), after an optional alias table (``class_aliases``) has
mapped the names a domain uses (``hund``) to the global ones (``dog``); domain names are
normalised (``'Real World'`` → ``'real_world'``).

Registered: ``hf_domains`` (any such data; domains and classes from config or discovered)
and benchmarks with their fixed domains and classes: those of the UEM paper, ``office31``,
``office_home``, ``domainnet7``, and ``office_caltech10``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar, Sequence

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import ClassLabel, Dataset, Features, Value

from u2cdr.data.base import DEFAULT_MAX_BAD_FRACTION, DataNotFoundError, DomainDataset
from u2cdr.data.class_map import ClassAliases, ClassMap, ClassMapError
from u2cdr.data.folder import (FolderImage, class_folders, domain_key, find_domain_dirs,
                               folder_domain_dataset, list_domain_images)
from u2cdr.data.hashing import stable_hash
from u2cdr.data.transforms import IMAGENET_MEAN, IMAGENET_STD, TransformConfig
from u2cdr.registry import DATASETS

PHOTO_TRANSFORMS = TransformConfig(image_size=224, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                   augmentation="moco_v2", center_crop=True, background=255)
FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}


@DATASETS.register_module(name="hf_domains")
class HFDomainsDataset(DomainDataset):
    """Images with a domain and a class each, from a folder, parquet/arrow files or the hub.

    Args:
        hub_id: a hub dataset with ``image``/``label``/``domain`` columns (online users).
        data_files: local ``.parquet`` or ``.arrow`` file(s) with those columns; ``label`` may
            be a ``ClassLabel``, class-name strings, or ints indexing ``class_names``.
        root: a folder ``ROOT/<domain>/<class>/<image>``.
        domains: domain ids to use (normalised); default: every domain found. Required with
            ``hub_id`` alone, so the grid can be checked without downloading.
        class_names: the global class names in id order; default: discovered (the sorted
            union of class folders, or the labels' names; with ``class_aliases``, the sorted
            union of the names they resolve to).
        class_aliases: names as found on disk (class folders, label names) → global class
            names, either for every domain (``{'hund': 'dog'}``) or per domain id
            (``{'caltech': {'hund': 'dog'}}``); see ``class_map.ClassAliases``. Folders of one
            domain aliased to one class are merged. Given, it replaces the class's built-in
            table (``default_class_aliases``); ``{}`` turns that off.
        ignore_unlisted_classes: skip classes outside ``class_names`` instead of raising.
        max_bad_fraction: the share of a domain's images that may be unreadable (skipped with
            a warning, counted in each record); more stops the build (default 0.01).
        hub_config, hub_revision, hub_split: passed to ``datasets.load_dataset``; no split
            means all splits, concatenated.
        cache_dir, image_size, channels, mean, std, augmentation: see ``DomainDataset``.
    """

    name: ClassVar[str] = "hf_domains"
    default_transforms: ClassVar[TransformConfig] = PHOTO_TRANSFORMS
    # Set by the benchmark subclasses below.
    default_hub_id: ClassVar[str | None] = None
    domain_aliases: ClassVar[dict[str, str]] = {}
    default_class_aliases: ClassVar[dict] = {}

    def __init__(self, hub_id: str | None = None, data_files: str | list[str] | None = None,
                 root: str | None = None, domains: list[str] | None = None,
                 class_names: list[str] | None = None, class_aliases: dict | None = None,
                 ignore_unlisted_classes: bool = False, hub_config: str | None = None,
                 hub_revision: str | None = None,
                 hub_split: str | None = None, cache_dir: str | None = None,
                 image_size: int | None = None, channels: int | None = None,
                 mean: list[float] | None = None, std: list[float] | None = None,
                 augmentation: str | None = None,
                 max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION) -> None:
        super().__init__(cache_dir=cache_dir, image_size=image_size, channels=channels, mean=mean,
                         std=std, augmentation=augmentation, max_bad_fraction=max_bad_fraction)
        self.hub_id = hub_id
        self.data_files = [data_files] if isinstance(data_files, (str, Path)) else data_files
        self.root = root
        self.hub_config, self.hub_revision, self.hub_split = hub_config, hub_revision, hub_split
        self.ignore_unlisted_classes = bool(ignore_unlisted_classes)
        self._configured_domains = (tuple(domain_key(d, self.domain_aliases) for d in domains)
                                    if domains else None)
        self._configured_class_names = list(class_names) if class_names else None
        if self._configured_class_names is not None:
            ClassMap(self._configured_class_names)  # unique, non-empty
        self.class_aliases = ClassAliases(
            self.default_class_aliases if class_aliases is None else class_aliases,
            domain_key=lambda raw: domain_key(raw, self.domain_aliases))
        if self._configured_class_names is not None:
            self.class_aliases.check_targets(ClassMap(self._configured_class_names), self.name)
        if self._configured_domains is not None:
            self.class_aliases.check_domains(self._configured_domains, self.name)
        if self.source_kind == "hub" and self._configured_domains is None:
            raise ValueError(f"{self.name}: with hub_id={self.hub_id!r} give `domains` too (the "
                             f"domain names of its `domain` column, e.g. domains=['art', 'photo'])")
        if (self.source_kind == "hub" and self.class_aliases.per_domain
                and self._configured_class_names is None):
            raise ValueError(f"{self.name}: per-domain class_aliases on hub_id="
                             f"{self.resolved_hub_id!r} need class_names= too (which names occur "
                             f"in which domain is not known without downloading)")
        if self.data_files is not None:
            unknown = [f for f in self.data_files if Path(f).suffix.lower() not in FILE_BUILDERS]
            if unknown or len({Path(f).suffix.lower() for f in self.data_files}) > 1:
                raise ValueError(f"{self.name}: data_files must all be .parquet or all .arrow, "
                                 f"got {self.data_files!r}")

    # ----- where the data comes from ------------------------------------------------------
    @property
    def source_kind(self) -> str | None:
        """'folder', 'files' or 'hub' — the first of root, data_files, hub_id given."""
        if self.root is not None:
            return "folder"
        if self.data_files:
            return "files"
        if self.resolved_hub_id is not None:
            return "hub"
        return None

    @property
    def resolved_hub_id(self) -> str | None:
        return self.hub_id or self.default_hub_id

    def missing_data_error(self, problem: str) -> DataNotFoundError:
        """An error that says what is missing, where to put the data and which hub id works."""
        domains = ", ".join(self._configured_domains or ("<domain>",))
        hub = (f"or, online, hub_id={self.resolved_hub_id!r}" if self.resolved_hub_id else
               "or hub_id=<a hub dataset with image/label/domain columns>")
        return DataNotFoundError(
            f"{self.name}: {problem}.\nPut the images at ROOT/<domain>/<class>/<image> (domain "
            f"folders: {domains}) and set root=ROOT in the dataset config; or give "
            f"data_files=[...] (.parquet/.arrow with image, label, domain columns); {hub}.")

    # ----- domains and classes -------------------------------------------------------------
    @functools.cached_property
    def domains(self) -> tuple[str, ...]:
        if self._configured_domains is not None:
            return self._configured_domains
        if self.source_kind == "folder":
            return tuple(sorted(self._domain_dirs))
        if self.source_kind == "files":
            raw = {value for path in self._checked_files()
                   for value in _unique_values(path, "domain")}
            return tuple(sorted({domain_key(value, self.domain_aliases) for value in raw}))
        raise self.missing_data_error("no root, data_files or hub_id is set")

    @functools.cached_property
    def class_names(self) -> list[str]:
        if self._configured_class_names is not None:
            return list(self._configured_class_names)
        if self.source_kind == "folder":
            return ClassMap.from_found(self.class_aliases.resolve(domain, name)
                                       for domain in self.domains
                                       for name in class_folders(self._domain_dir(domain))).names
        if self.source_kind == "files" and self.class_aliases:
            self.class_aliases.check_domains(self.domains, self.name)
            return ClassMap.from_found(
                self.class_aliases.resolve(domain_key(domain, self.domain_aliases), name)
                for domain, name in _file_domain_label_pairs(self._checked_files())).names
        if self.source_kind == "files":
            return _file_class_names(self._checked_files())
        if self.source_kind == "hub":
            names = _hub_class_names(self._hub_features(), self.resolved_hub_id)
            if self.class_aliases:  # flat ones (per-domain ones need class_names, see __init__)
                return ClassMap.from_found(self.class_aliases.resolve(domain, name)
                                           for domain in self.domains for name in names).names
            return names
        raise self.missing_data_error("no root, data_files or hub_id is set")

    # ----- cache identity and building ------------------------------------------------------
    def source_identity(self) -> dict:
        identity: dict = {"kind": self.source_kind, "aliases": self.domain_aliases,
                          "ignore_unlisted_classes": self.ignore_unlisted_classes}
        if self.class_aliases:  # absent otherwise, so caches built before aliases stay valid
            identity["class_aliases"] = self.class_aliases.identity()
        if self.source_kind == "folder":
            identity["listing"] = stable_hash([
                [domain, image.class_name, image.relative_path, image.size, image.mtime_ns]
                for domain, images in self._folder_listing.items() for image in images])
        elif self.source_kind == "files":
            identity["files"] = [[path.suffix.lower(), path.stat().st_size, path.stat().st_mtime_ns]
                                 for path in self._checked_files()]
        elif self.source_kind == "hub":
            identity.update(hub_id=self.resolved_hub_id, hub_config=self.hub_config,
                            hub_revision=self.hub_revision, hub_split=self.hub_split)
        else:
            raise self.missing_data_error("no root, data_files or hub_id is set")
        return identity

    def build_domains(self, scratch: Path) -> tuple[dict[str, Dataset], dict]:
        if self.source_kind == "folder":
            built = {domain: folder_domain_dataset(
                        self._domain_dir(domain), domain, images, self.features(), scratch / domain,
                        fingerprint=stable_hash([self.source_identity(), domain], 32))
                     for domain, images in self._folder_listing.items()}
            return built, {"kind": "folder", "layout": "ROOT/<domain>/<class>/<image>"}
        if self.source_kind == "files":
            files = self._checked_files()
            raw = datasets.load_dataset(FILE_BUILDERS[Path(files[0]).suffix.lower()],
                                        data_files=[str(f) for f in files], split="train",
                                        cache_dir=str(scratch / "files"))
            provenance = {"kind": "files", "files": [path.name for path in files]}
            return self._rows_by_domain(raw, "data_files"), provenance
        raw = self._load_hub()
        return self._rows_by_domain(raw, self.resolved_hub_id), {
            "kind": "hub", "hub_id": self.resolved_hub_id, "hub_config": self.hub_config,
            "hub_revision": self.hub_revision, "hub_split": self.hub_split}

    def image_location(self, domain: str, path: str | None, row: int) -> str:
        if self.source_kind == "folder" and path:
            return str(self._domain_dir(domain) / path)
        return super().image_location(domain, path, row)

    # ----- folder source ----------------------------------------------------------------------
    @functools.cached_property
    def _domain_dirs(self) -> dict[str, Path]:
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise self.missing_data_error(f"root {str(root)!r} does not exist")
        found = find_domain_dirs(root, self.domain_aliases)
        if not found:
            raise self.missing_data_error(f"root {str(root)!r} has no domain folders")
        return found

    def _domain_dir(self, domain: str) -> Path:
        if domain not in self._domain_dirs:
            raise self.missing_data_error(
                f"root {str(self.root)!r} has no folder for domain {domain!r} (domain folders "
                f"found: {', '.join(sorted(self._domain_dirs))})")
        return self._domain_dirs[domain]

    @functools.cached_property
    def _folder_listing(self) -> dict[str, list[FolderImage]]:
        """Every domain's images; class folders are checked against the map first."""
        class_map = self.class_map()
        self.class_aliases.check_domains(self.domains, self.name)
        if not self.ignore_unlisted_classes:
            self._check_names(class_map, [
                (str(self._domain_dir(domain) / name), self.class_aliases.resolve(domain, name))
                for domain in self.domains for name in class_folders(self._domain_dir(domain))],
                "class folder")
        listing = {domain: list_domain_images(self._domain_dir(domain), class_map,
                                              self.class_aliases.for_domain(domain))
                   for domain in self.domains}
        for domain, images in listing.items():
            if not images:
                raise DataNotFoundError(
                    f"{self.name}: domain folder {str(self._domain_dir(domain))!r} (domain "
                    f"{domain!r}) holds no images in class folders of the class map "
                    f"(<domain>/<class>/<image>); a retrieval domain needs images")
        return listing

    def _check_names(self, class_map: ClassMap, found: list[tuple[str, str]], what: str) -> None:
        """``class_map.check`` of resolved names; the error lists the aliased names too."""
        try:
            class_map.check(found, what, context=self.name)
        except ClassMapError as error:
            if not self.class_aliases:
                raise
            raise ClassMapError(f"{error}\nNames class_aliases maps: "
                                f"{self.class_aliases.describe(self.domains)}") from None

    # ----- file and hub sources ------------------------------------------------------------
    def _checked_files(self) -> list[Path]:
        files = [Path(f).expanduser() for f in self.data_files]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise self.missing_data_error(f"data file(s) not found: {', '.join(missing)}")
        return files

    def _hub_arguments(self) -> dict:
        return {"path": self.resolved_hub_id, "name": self.hub_config,
                "revision": self.hub_revision}

    def _hub_error(self, error: Exception) -> DataNotFoundError:
        return self.missing_data_error(
            f"could not load {self.resolved_hub_id!r} from the Hugging Face hub "
            f"({type(error).__name__}: {error}); offline, use a local copy instead")

    def _hub_features(self) -> Features:
        try:
            return datasets.load_dataset_builder(**self._hub_arguments()).info.features
        except Exception as error:  # offline, unknown id, auth: the user needs the same advice
            raise self._hub_error(error) from error

    def _load_hub(self) -> Dataset:
        try:
            loaded = datasets.load_dataset(**self._hub_arguments(), split=self.hub_split)
        except Exception as error:  # offline, unknown id, auth: the user needs the same advice
            raise self._hub_error(error) from error
        if isinstance(loaded, datasets.DatasetDict):
            loaded = datasets.concatenate_datasets([loaded[split] for split in loaded])
        return loaded

    def _rows_by_domain(self, raw: Dataset, where: str) -> dict[str, Dataset]:
        """Split a table with image/label/domain columns into one Dataset per domain."""
        missing = {"image", "label", "domain"} - set(raw.column_names)
        if missing:
            raise ValueError(f"{self.name}: {where} lacks column(s) {sorted(missing)}; it has "
                             f"{raw.column_names} (expected image, label, domain)")
        class_map = self.class_map()
        names = _label_names(raw, self.class_names, where).astype(str)
        unique_array, name_index = np.unique(names, return_inverse=True)
        unique_names: list[str] = unique_array.tolist()
        raw_domains, domain_index = np.unique(np.asarray(raw["domain"]).astype(str),
                                              return_inverse=True)
        domain_keys = [domain_key(d, self.domain_aliases) for d in raw_domains]
        keys = np.array(domain_keys)[domain_index]
        self.class_aliases.check_domains(self.domains, self.name)
        # Aliases may depend on the domain: resolve each (domain, name) pair that occurs once.
        stride = max(len(unique_names), 1)
        pairs, pair_index = np.unique(domain_index * stride + name_index, return_inverse=True)
        pair_domains = [domain_keys[i] for i in (pairs // stride).tolist()]
        pair_names = [unique_names[i] for i in (pairs % stride).tolist()]
        resolved = [self.class_aliases.resolve(domain, name)
                    for domain, name in zip(pair_domains, pair_names)]
        if not self.ignore_unlisted_classes:
            located = {}  # one entry per unknown label (per domain with per-domain aliases)
            for domain, name, target in zip(pair_domains, pair_names, resolved):
                suffix = f" (domain {domain!r})" if self.class_aliases.per_domain else ""
                located.setdefault(f"{where}: label {name!r}{suffix}", target)
            self._check_names(class_map, sorted(located.items()), "label")
        # -1 marks rows of classes outside the map (skipped with ignore_unlisted_classes).
        ids = np.array([class_map.id_of(n) if n in class_map else -1 for n in resolved],
                       dtype=np.int64)[pair_index]
        features = self.features()
        table = (raw.select_columns(["image"])
                 .add_column("label", np.maximum(ids, 0), feature=features["label"])
                 .add_column("domain", keys.tolist(), feature=features["domain"]))
        by_domain = {}
        for domain in self.domains:
            rows = np.flatnonzero((keys == domain) & (ids >= 0))
            if len(rows) == 0:
                raise self.missing_data_error(
                    f"{where} has no images of domain {domain!r} (domains found: "
                    f"{', '.join(sorted(set(keys.tolist())))})")
            by_domain[domain] = table.select(rows, keep_in_memory=True)
        return by_domain


def _arrow_reader(source: pa.MemoryMappedFile) -> pa.ipc.RecordBatchStreamReader:
    """A reader for an arrow IPC stream (what ``datasets`` writes) or IPC file."""
    try:
        return pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_file(source)


def _unique_values(path: Path, column: str) -> list:
    """The distinct values of one column of a parquet or arrow table (only that column is read)."""
    if path.suffix.lower() == ".parquet":
        table = pq.read_table(path, columns=[column])
    else:
        with pa.memory_map(str(path)) as source:
            table = _arrow_reader(source).read_all().select([column])
    return table.column(column).unique().to_pylist()


def _schema(path: Path) -> pa.Schema:
    if path.suffix.lower() == ".parquet":
        return pq.read_schema(path)
    with pa.memory_map(str(path)) as source:
        return _arrow_reader(source).schema


def _file_class_names(files: Sequence[Path]) -> list[str]:
    """Class names of label columns: ClassLabel names (equal in every file) or sorted strings."""
    label_names: list[str] | None = None
    strings: set[str] = set()
    for path in files:
        feature = Features.from_arrow_schema(_schema(path)).get("label")
        if isinstance(feature, ClassLabel):
            if label_names is not None and label_names != feature.names:
                raise ClassMapError(f"{path}: its label names differ from another data file's; "
                                    f"give class_names= to fix one global order")
            label_names = list(feature.names)
        elif isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            strings.update(_unique_values(path, "label"))
        else:
            raise ClassMapError(f"{path}: integer labels need class_names= in the dataset config "
                                f"(label id i is class_names[i])")
    if label_names is not None and strings - set(label_names):
        raise ClassMapError(f"data_files mix ClassLabel and string labels; give class_names=")
    return label_names if label_names is not None else sorted(strings)


def _file_domain_label_pairs(files: Sequence[Path]) -> set[tuple[str, str]]:
    """Every distinct ``(raw domain, class name)`` of the files (only those two columns read)."""
    pairs: set[tuple[str, str]] = set()
    for path in files:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path, columns=["domain", "label"])
        else:
            with pa.memory_map(str(path)) as source:
                table = _arrow_reader(source).read_all().select(["domain", "label"])
        feature = Features.from_arrow_schema(table.schema).get("label")
        unique = table.group_by(["domain", "label"]).aggregate([])
        domains, labels = unique.column("domain").to_pylist(), unique.column("label").to_pylist()
        if isinstance(feature, ClassLabel):
            labels = [feature.names[label] for label in labels]
        elif not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
            raise ClassMapError(f"{path}: integer labels need class_names= in the dataset config "
                                f"(label id i is class_names[i])")
        pairs.update((str(domain), str(label)) for domain, label in zip(domains, labels))
    return pairs


def _hub_class_names(features: Features | None, hub_id: str) -> list[str]:
    feature = (features or {}).get("label")
    if not isinstance(feature, ClassLabel):
        raise ClassMapError(f"{hub_id}: its label column is not a ClassLabel; give class_names= "
                            f"in the dataset config")
    return list(feature.names)


def _label_names(raw: Dataset, class_names: list[str], where: str) -> np.ndarray:
    """The class name of every row, whatever the label column's type."""
    feature = raw.features["label"]
    values = np.asarray(raw["label"])
    if isinstance(feature, ClassLabel):
        if values.size and values.min() < 0:
            raise ClassMapError(f"{where}: {int((values < 0).sum())} row(s) have no label (-1)")
        return np.asarray(feature.names, dtype=object)[values]
    if values.dtype.kind in "iu":
        if values.size and (values.min() < 0 or values.max() >= len(class_names)):
            raise ClassMapError(f"{where}: integer labels must lie in 0..{len(class_names) - 1} "
                                f"(ids into class_names); found {values.min()}..{values.max()}")
        return np.asarray(class_names, dtype=object)[values]
    return values.astype(object)


class _BenchmarkDataset(HFDomainsDataset):
    """A benchmark with fixed domains and classes; the data's location is config, and so is
    ``class_aliases`` for copies whose folders spell a class differently (it replaces the
    benchmark's ``default_class_aliases``)."""

    known_domains: ClassVar[tuple[str, ...]] = ()
    known_class_names: ClassVar[tuple[str, ...]] = ()
    ignore_unlisted: ClassVar[bool] = False

    def __init__(self, root: str | None = None, data_files: str | list[str] | None = None,
                 hub_id: str | None = None, hub_revision: str | None = None,
                 class_aliases: dict | None = None,
                 cache_dir: str | None = None, image_size: int | None = None,
                 channels: int | None = None, mean: list[float] | None = None,
                 std: list[float] | None = None, augmentation: str | None = None,
                 max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION) -> None:
        super().__init__(hub_id=hub_id, data_files=data_files, root=root,
                         domains=list(self.known_domains), class_names=list(self.known_class_names),
                         class_aliases=class_aliases,
                         ignore_unlisted_classes=self.ignore_unlisted, hub_revision=hub_revision,
                         cache_dir=cache_dir, image_size=image_size, channels=channels, mean=mean,
                         std=std, augmentation=augmentation, max_bad_fraction=max_bad_fraction)


OFFICE31_CLASSES = (
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair",
    "desk_lamp", "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer",
    "letter_tray", "mobile_phone", "monitor", "mouse", "mug", "paper_notebook", "pen", "phone",
    "printer", "projector", "punchers", "ring_binder", "ruler", "scissors", "speaker", "stapler",
    "tape_dispenser", "trash_can")

OFFICE_HOME_CLASSES = (
    "Alarm_Clock", "Backpack", "Batteries", "Bed", "Bike", "Bottle", "Bucket", "Calculator",
    "Calendar", "Candles", "Chair", "Clipboards", "Computer", "Couch", "Curtains", "Desk_Lamp",
    "Drill", "Eraser", "Exit_Sign", "Fan", "File_Cabinet", "Flipflops", "Flowers", "Folder", "Fork",
    "Glasses", "Hammer", "Helmet", "Kettle", "Keyboard", "Knives", "Lamp_Shade", "Laptop", "Marker",
    "Monitor", "Mop", "Mouse", "Mug", "Notebook", "Oven", "Pan", "Paper_Clip", "Pen", "Pencil",
    "Postit_Notes", "Printer", "Push_Pin", "Radio", "Refrigerator", "Ruler", "Scissors",
    "Screwdriver", "Shelf", "Sink", "Sneakers", "Soda", "Speaker", "Spoon", "TV", "Table",
    "Telephone", "ToothBrush", "Toys", "Trash_Can", "Webcam")

# Office-Caltech10 (Gong et al. 2012, GFK): the ten classes Office-31 shares with Caltech-256,
# named as in Office-31's folders.
OFFICE_CALTECH10_CLASSES = (
    "back_pack", "bike", "calculator", "headphones", "keyboard", "laptop_computer", "monitor",
    "mouse", "mug", "projector")

# UCDIR's 7 DomainNet classes with more than 200 images per domain; the names are the ones
# ProtoOT (built on UCDIR's code) hard-codes (see spec/uem.md §4.1).
DOMAINNET7_CLASSES = ("bird", "feather", "teapot", "tiger", "whale", "windmill", "zebra")


@DATASETS.register_module(name="office31")
class Office31(_BenchmarkDataset):
    """Office-31 (Saenko et al. 2010): Amazon, DSLR, Webcam; 31 office object classes."""

    name: ClassVar[str] = "office31"
    known_domains = ("amazon", "dslr", "webcam")
    known_class_names = OFFICE31_CLASSES


@DATASETS.register_module(name="office_home")
class OfficeHome(_BenchmarkDataset):
    """Office-Home (Venkateswara et al. 2017): Art, Clipart, Product, Real World; 65 classes.

    The hub copy ``flwrlabs/office-home`` names its domains 'Art', 'Clipart', 'Product',
    'Real World'; they normalise to the ids below, as do the original archive's folders.
    """

    name: ClassVar[str] = "office_home"
    default_hub_id = "flwrlabs/office-home"
    known_domains = ("art", "clipart", "product", "real_world")
    known_class_names = OFFICE_HOME_CLASSES
    domain_aliases = {"real": "real_world", "realworld": "real_world"}


@DATASETS.register_module(name="domainnet7")
class DomainNet7(_BenchmarkDataset):
    """DomainNet (Peng et al. 2019) restricted to UCDIR's 7 classes; other classes are skipped."""

    name: ClassVar[str] = "domainnet7"
    known_domains = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
    known_class_names = DOMAINNET7_CLASSES
    ignore_unlisted = True


@DATASETS.register_module(name="office_caltech10")
class OfficeCaltech10(_BenchmarkDataset):
    """Office-Caltech10 (Gong et al. 2012): Amazon, Caltech-256, DSLR, Webcam; 10 classes.

    The ten classes Office-31 shares with Caltech-256 (Gong et al. 2012, "Geodesic Flow Kernel
    for Unsupervised Domain Adaptation"). No hub copy is known: set ``root`` to a folder
    ``ROOT/<domain>/<class>/<image>``. Copies name classes as Office-31 does (``back_pack``,
    ``laptop_computer``) or plainly (``backpack``, ``laptop``); both are read, through the
    built-in alias table.
    """

    name: ClassVar[str] = "office_caltech10"
    known_domains = ("amazon", "caltech", "dslr", "webcam")
    known_class_names = OFFICE_CALTECH10_CLASSES
    default_class_aliases = {"backpack": "back_pack", "laptop": "laptop_computer"}
