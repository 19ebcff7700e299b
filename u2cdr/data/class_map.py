"""The one global class-name → id map of a dataset.

Loading each domain on its own (one ``imagefolder`` per domain, or a ``ClassLabel`` inferred
per file) gives the same class different ids whenever the domains' class folders differ in
order or membership. Every domain of a dataset is therefore labelled through one
``datasets.ClassLabel`` built from the dataset's class names, and every name read from disk
is checked against it first, so an unknown folder or label is reported by name (the HF error
does not say which one). ``ClassAliases`` maps the names a domain uses on disk to the global
names first (``hund`` → ``dog``), for data whose domains spell one class differently.
"""
from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, Mapping, Sequence

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


class ClassAliases:
    """Names found on disk (class folders, label names) → global class names.

    The same class is often named differently per domain (VLCS's caltech/hund, labelme/husky
    and sun/dog are all "dog"), and archives of one benchmark differ in spelling (``backpack``
    vs ``back_pack``). Two forms, told apart by whether the values are dicts:

        flat:        ``{'hund': 'dog', 'auto': 'car'}`` applies to every domain;
        per domain:  ``{'caltech': {'hund': 'dog'}, 'sun': {'flying': 'bird'}}``.

    A name without an alias keeps its own name. An alias wins over a class of the same name,
    so two folders of one domain can be merged into one class.
    """

    def __init__(self, table: Mapping[str, Any] | None,
                 domain_key: Callable[[str], str] = str, where: str = "class_aliases") -> None:
        """Check the form of ``table``; ``domain_key`` normalises per-domain keys to domain ids."""
        if table is not None and not isinstance(table, Mapping):
            raise ClassMapError(f"{where} must be a dict ({{'hund': 'dog'}} or {{'caltech': "
                                f"{{'hund': 'dog'}}}}), got {table!r}")
        table = dict(table or {})
        self.where = where
        nested = [key for key, value in table.items() if isinstance(value, Mapping)]
        flat = [key for key, value in table.items() if not isinstance(value, Mapping)]
        if nested and flat:
            raise ClassMapError(
                f"{where} mixes its two forms: {_quoted(nested)} map to dicts (per-domain "
                f"aliases) but {_quoted(flat)} map to names (aliases for every domain); use "
                f"either {{'hund': 'dog'}} for every domain or {{'caltech': {{'hund': 'dog'}}}}")
        self._flat: dict[str, str] | None = None
        self._by_domain: dict[str, dict[str, str]] | None = None
        if nested:
            self._by_domain = {}
            raw_keys: dict[str, str] = {}
            for key, aliases in table.items():
                domain = domain_key(_checked_name(key, f"{where} domain key {key!r}"))
                if domain in self._by_domain:
                    raise ClassMapError(f"{where}: keys {raw_keys[domain]!r} and {key!r} both "
                                        f"name domain {domain!r}")
                raw_keys[domain] = key
                self._by_domain[domain] = _checked_aliases(aliases, f"{where}[{key!r}]")
        else:
            self._flat = _checked_aliases(table, where)

    @property
    def per_domain(self) -> bool:
        return self._by_domain is not None

    def __bool__(self) -> bool:
        if self._by_domain is not None:
            return any(self._by_domain.values())
        return bool(self._flat)

    def for_domain(self, domain: str) -> dict[str, str]:
        """``{name on disk: class name}`` that applies in ``domain``."""
        if self._by_domain is not None:
            return dict(self._by_domain.get(domain, {}))
        return dict(self._flat or {})

    def resolve(self, domain: str, name: str) -> str:
        """The global class name of ``name`` as found in ``domain``."""
        return self.for_domain(domain).get(name, name)

    def entries(self) -> list[tuple[str, str, str]]:
        """``(location, name, target)`` of every alias, the location as written in config."""
        if self._by_domain is not None:
            return [(f"{self.where}[{domain!r}][{name!r}]", name, target)
                    for domain, aliases in self._by_domain.items()
                    for name, target in aliases.items()]
        return [(f"{self.where}[{name!r}]", name, target)
                for name, target in (self._flat or {}).items()]

    def check_targets(self, class_map: ClassMap, context: str = "") -> None:
        """Raise naming every alias whose target is not a class of ``class_map``."""
        class_map.check([(f"{location} → {target!r}", target)
                         for location, _, target in self.entries()], "alias target", context)

    def check_domains(self, domains: Sequence[str], context: str = "") -> None:
        """Raise naming every per-domain key that is not one of ``domains``."""
        unknown = sorted(set(self._by_domain or {}) - set(domains))
        if unknown:
            prefix = f"{context}: " if context else ""
            raise ClassMapError(f"{prefix}{self.where} names unknown domain(s) {_quoted(unknown)}; "
                                f"valid domains: {', '.join(domains)}")

    def describe(self, domains: Sequence[str]) -> str:
        """One line of the names aliased in ``domains``, for errors about unknown names."""
        if self._by_domain is not None:
            parts = [f"{domain}: {', '.join(sorted(self._by_domain[domain]))}"
                     for domain in domains if self._by_domain.get(domain)]
            return "; ".join(parts)
        return ", ".join(sorted(self._flat or {}))

    def identity(self) -> dict:
        """Plain data of the table (for cache keys): equal tables give equal data."""
        if self._by_domain is not None:
            return {"per_domain": {domain: aliases for domain, aliases in self._by_domain.items()
                                   if aliases}}
        return {"flat": dict(self._flat or {})}


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _checked_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ClassMapError(f"{what}: expected a non-empty string, got {value!r}")
    return value


def _checked_aliases(aliases: Mapping[str, Any], where: str) -> dict[str, str]:
    """``aliases`` as ``{str: str}``; a value that is not a name is named by its key."""
    checked = {}
    for name, target in aliases.items():
        _checked_name(name, f"{where}: alias key {name!r}")
        checked[name] = _checked_name(target, f"{where}[{name!r}]")
    return checked
