"""Scenario class splits (U²CDR, UEM §3.1 / spec/uem.md §1), drawn once and saved to a file.

    closed:  both domains keep every class they have.
    partial: the query domain keeps a random ⌊C_B/2⌋ of the gallery's C_B classes
             ("the query domain contains only half of the label space of the retrieval
             domain"), so Y_A ⊂ Y_B.
    open:    the gallery keeps a random ⌊C_A/2⌋ of the query's C_A classes ("the label space
             of the retrieval domain is half of the query label space"); queries of the other
             classes are private and must return nothing.

The paper gives neither the rounding nor the seed; we take the floor and seed a numpy
Generator from a sha256 of (seed, dataset, query, gallery, scenario), so every method of a
cell sees the same split. The split is written to a JSON file and reused from it, so it
survives changes in numpy's sampling code.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from u2cdr.data.hashing import stable_hash, stable_seed

SCENARIOS = ("closed", "partial", "open")
SPLIT_VERSION = 1
IDENTITY_KEYS = ("dataset", "query", "gallery", "scenario", "seed")


def check_scenario(scenario: str) -> None:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid choices: {', '.join(SCENARIOS)}")


def draw_split(query_classes: Sequence[int], gallery_classes: Sequence[int], scenario: str,
               seed: int, *, dataset: str, query: str, gallery: str) -> dict:
    """The classes each domain keeps under ``scenario``.

    Args:
        query_classes, gallery_classes: global class ids present in each domain.
        scenario: 'closed', 'partial' or 'open'.
        seed, dataset, query, gallery: together with ``scenario`` they seed the draw.

    Returns:
        ``{dataset, query, gallery, scenario, seed, split_version, query_classes,
        gallery_classes, shared_classes, private_query_classes, fingerprint}``; class lists
        are sorted ints, ``fingerprint`` is the sha256 of the canonical JSON of the rest.
    """
    check_scenario(scenario)
    query_set = sorted({int(c) for c in query_classes})
    gallery_set = sorted({int(c) for c in gallery_classes})
    common = sorted(set(query_set) & set(gallery_set))
    rng = np.random.default_rng(stable_seed([int(seed), dataset, query, gallery, scenario]))
    if scenario == "partial":
        half = len(gallery_set) // 2
        _check_enough(common, half, f"partial: the query domain {query!r} must keep "
                                    f"⌊{len(gallery_set)}/2⌋ of the gallery's classes")
        query_set = sorted(int(c) for c in rng.choice(common, size=half, replace=False))
    elif scenario == "open":
        half = len(query_set) // 2
        _check_enough(common, half, f"open: the gallery domain {gallery!r} must keep "
                                    f"⌊{len(query_set)}/2⌋ of the query's classes")
        gallery_set = sorted(int(c) for c in rng.choice(common, size=half, replace=False))
    for role, name, kept in (("query", query, query_set), ("gallery", gallery, gallery_set)):
        if len(kept) < 2:
            raise ValueError(f"{scenario} split of {dataset} {query}→{gallery} (seed {seed}) "
                             f"leaves the {role} domain {name!r} with {len(kept)} class(es) "
                             f"{kept}; a retrieval split needs at least 2 per domain")
    split = {"dataset": dataset, "query": query, "gallery": gallery, "scenario": scenario,
             "seed": int(seed), "split_version": SPLIT_VERSION,
             "query_classes": query_set, "gallery_classes": gallery_set,
             "shared_classes": sorted(set(query_set) & set(gallery_set)),
             "private_query_classes": sorted(set(query_set) - set(gallery_set))}
    split["fingerprint"] = split_fingerprint(split)
    return split


def _check_enough(common: list[int], needed: int, what: str) -> None:
    if len(common) < needed:
        raise ValueError(f"{what}, but the domains share only {len(common)} class(es)")


def split_fingerprint(split: dict) -> str:
    """sha256 of the split's canonical JSON without its ``fingerprint`` key."""
    return stable_hash({key: value for key, value in split.items() if key != "fingerprint"})


def load_or_draw_split(path: str | os.PathLike, query_classes: Sequence[int],
                       gallery_classes: Sequence[int], scenario: str, seed: int, *, dataset: str,
                       query: str, gallery: str) -> dict:
    """The split saved at ``path``, or a new one drawn and saved there atomically.

    A saved split must be for the same (dataset, query, gallery, scenario, seed), be intact
    (fingerprint), and keep only classes the domains still have; anything else is an error
    naming the file, never a silent redraw.
    """
    check_scenario(scenario)
    path = Path(path)
    expected = {"dataset": dataset, "query": query, "gallery": gallery, "scenario": scenario,
                "seed": int(seed)}
    if path.exists():
        return _checked_saved_split(path, expected, query_classes, gallery_classes)
    split = draw_split(query_classes, gallery_classes, scenario, seed, dataset=dataset,
                       query=query, gallery=gallery)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps(split, indent=1, sort_keys=True))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return split


def _checked_saved_split(path: Path, expected: dict, query_classes: Sequence[int],
                         gallery_classes: Sequence[int]) -> dict:
    try:
        split = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"split file {path} is not valid JSON ({error}); delete it to "
                         f"redraw") from error
    mismatched = {key: split.get(key) for key in IDENTITY_KEYS if split.get(key) != expected[key]}
    if mismatched:
        wanted = {key: expected[key] for key in mismatched}
        raise ValueError(f"split file {path} is for {mismatched}, not {wanted}; it belongs to "
                         f"another cell")
    if split.get("fingerprint") != split_fingerprint(split):
        raise ValueError(f"split file {path} was edited (its fingerprint does not match its "
                         f"content); restore it or delete it to redraw")
    for role, present in (("query", query_classes), ("gallery", gallery_classes)):
        absent = sorted(set(split[f"{role}_classes"]) - {int(c) for c in present})
        if absent:
            raise ValueError(f"split file {path} keeps {role} class(es) {absent} that the "
                             f"{role} domain {expected[role]!r} no longer has; the data "
                             f"changed — delete the file to redraw")
    return split
