"""The one global class-name → id map of a dataset.

Loading each domain on its own (one ``imagefolder`` per domain, or a ``ClassLabel`` inferred
per file) gives the same class different ids whenever the domains' class folders differ in
order or membership. Every domain of a dataset is therefore labelled through one
``datasets.ClassLabel`` built from the dataset's class names, and every name read from disk
is checked against it first, so an unknown folder or label is reported by name (the HF error
does not say which one).
"""
from __future__ import annotations

import difflib
from typing import Iterable, Sequence

import numpy as np
from datasets import ClassLabel


class ClassMapError(ValueError):
    """A class name that is not in the dataset's class map; the message names it."""


class ClassMap:
    """Global class names in a fixed order; ``id`` = position in that order."""

    def __init__(self, names: Sequence[str]) -> None:
        names = [str(name) for name in names]
        if not names:
            raise ClassMapError("a class map needs at least one class name")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ClassMapError(f"class names must be unique; repeated: {', '.join(duplicates)}")
        if any(not name.strip() for name in names):
            raise ClassMapError(f"class names must not be empty: {names!r}")
        self.class_label = ClassLabel(names=names)
        self._ids = {name: index for index, name in enumerate(names)}

    @classmethod
    def from_found(cls, names: Iterable[str]) -> "ClassMap":
        """The map of the sorted union of ``names`` (for data whose classes are discovered)."""
        return cls(sorted({str(name) for name in names}))

    @property
    def names(self) -> list[str]:
        return list(self.class_label.names)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def id_of(self, name: str) -> int:
        """The id of ``name``; a ``ClassMapError`` listing the valid names otherwise."""
        if name not in self._ids:
            raise self.unknown_error([(repr(name), name)], "class name")
        return self._ids[name]

    def ids_of(self, names: Sequence[str], where: str) -> np.ndarray:
        """``int64`` ids of ``names``; every unknown name is listed, located by ``where``."""
        unknown = sorted({name for name in names if name not in self._ids})
        if unknown:
            raise self.unknown_error([(f"{where}: {name!r}", name) for name in unknown], "label")
        return np.fromiter((self._ids[name] for name in names), dtype=np.int64, count=len(names))

    def check(self, found: Sequence[tuple[str, str]], what: str, context: str = "") -> None:
        """Raise one error naming every ``(location, name)`` whose name is not in the map.

        Args:
            found: pairs such as ``("ROOT/art/Bikez", "Bikez")``.
            what: what the names are, for the message ("class folder", "label").
            context: a prefix for the message, e.g. the dataset name.
        """
        offending = [(location, name) for location, name in found if name not in self._ids]
        if offending:
            raise self.unknown_error(offending, what, context)

    def closest(self, name: str) -> str | None:
        """The valid name ``name`` most likely meant (case-insensitive), or None."""
        by_folded = {valid.casefold(): valid for valid in self.names}
        match = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=0.6)
        return by_folded[match[0]] if match else None

    def unknown_error(self, offending: Sequence[tuple[str, str]], what: str,
                      context: str = "") -> ClassMapError:
        """An error listing each offending location, its closest valid name, and all valid names."""
        lines = []
        for location, name in offending:
            hint = self.closest(name)
            lines.append(f"  {location}" + (f"  (did you mean {hint!r}?)" if hint else ""))
        prefix = f"{context}: " if context else ""
        return ClassMapError(
            f"{prefix}{len(offending)} {what}(s) not in the class map:\n" + "\n".join(lines)
            + f"\nValid class names ({len(self)}): {', '.join(self.names)}")
