"""Reading the folder layout ``ROOT/<domain>/<class>/<image>`` into HF Datasets.

Domain folder names are normalised (``'Real World'`` → ``'real_world'``) so the original
archives' folder names work as they are; Office-31's extra level
(``amazon/images/<class>``) is accepted too. Class folders are checked against the
dataset's global class map before any image is read, and every offending folder is named;
a folder may carry an alias of its class instead (``hund`` → ``dog``, ``ClassAliases``).
Rows are sorted by class folder and file name, so row order does not depend on the file
system.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from datasets import Dataset, Features

from u2cdr.data.base import UnreadableImageError  # noqa: F401  (raised for bad files; re-exported)
from u2cdr.data.class_map import ClassMap

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def domain_key(raw: str, aliases: Mapping[str, str] | None = None) -> str:
    """``'Real World'`` → ``'real_world'``: lower case, runs of other characters → ``_``."""
    key = re.sub(r"[^0-9a-z]+", "_", str(raw).strip().lower()).strip("_")
    return (aliases or {}).get(key, key)


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def find_domain_dirs(root: Path, aliases: Mapping[str, str] | None = None) -> dict[str, Path]:
    """``{domain key: folder holding that domain's class folders}`` under ``root``."""
    found: dict[str, Path] = {}
    folder_names: dict[str, str] = {}
    for folder in _visible_dirs(root):
        key = domain_key(folder.name, aliases)
        if key in found:
            raise ValueError(f"{root}: folders {folder_names[key]!r} and {folder.name!r} both name "
                             f"domain {key!r}")
        folder_names[key] = folder.name
        subfolders = _visible_dirs(folder)
        # Office-31 ships as <domain>/images/<class>/…
        found[key] = subfolders[0] if [sub.name for sub in subfolders] == ["images"] else folder
    return found


def class_folders(domain_dir: Path) -> list[str]:
    return [folder.name for folder in _visible_dirs(domain_dir)]


@dataclass(frozen=True)
class FolderImage:
    """One image file: its (global, aliased) class name and its path relative to the domain
    folder (which starts with the class folder's own name)."""

    class_name: str
    relative_path: str
    size: int
    mtime_ns: int


def list_domain_images(domain_dir: Path, class_map: ClassMap,
                       class_aliases: Mapping[str, str] | None = None) -> list[FolderImage]:
    """Images of one domain's class folders that are in ``class_map`` (others are skipped).

    ``class_aliases`` maps a folder name to its class name (``{'hund': 'dog'}``); each image
    gets the class its folder resolves to, so two folders aliased to one class are merged.
    """
    aliases = class_aliases or {}
    names = class_folders(domain_dir)
    stray = sorted(p.name for p in domain_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if stray:
        raise ValueError(f"{domain_dir}: images must sit inside a class folder "
                         f"(<domain>/<class>/<image>); found {', '.join(stray[:5])}"
                         + (" …" if len(stray) > 5 else ""))
    images = []
    for name in names:
        class_name = aliases.get(name, name)
        if class_name not in class_map:
            continue
        for path in sorted((domain_dir / name).rglob("*")):
            if (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
                    and not path.name.startswith(".")):
                stat = path.stat()
                images.append(FolderImage(class_name, path.relative_to(domain_dir).as_posix(),
                                          stat.st_size, stat.st_mtime_ns))
    return images


def _records(domain_dir: str, domain: str, images: list[tuple[str, str]],
             ids: Mapping[str, int]) -> Iterator[dict]:
    """Rows with the files' bytes as they are; ``DomainDataset`` decodes each and skips bad ones."""
    for class_name, relative_path in images:
        data = (Path(domain_dir) / relative_path).read_bytes()
        yield {"image": {"bytes": data, "path": relative_path}, "label": ids[class_name],
               "domain": domain}


def folder_domain_dataset(domain_dir: Path, domain: str, images: list[FolderImage],
                          features: Features, scratch: Path, fingerprint: str) -> Dataset:
    """The domain's images as a Dataset written under ``scratch`` (file bytes embedded).

    ``features['label']`` is the dataset's global ClassLabel; it gives each class its id.
    """
    ids = {name: index for index, name in enumerate(features["label"].names)}
    return Dataset.from_generator(
        _records, features=features, cache_dir=str(scratch), fingerprint=fingerprint,
        gen_kwargs={"domain_dir": str(domain_dir), "domain": domain,
                    "images": [(image.class_name, image.relative_path) for image in images],
                    "ids": ids})
