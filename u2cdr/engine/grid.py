"""Expanding a grid config into cells, and checking every cell can be built before any runs.

A cell is one (method, dataset, query→gallery pair, scenario, seed) under one protocol. Its key
hashes only what the cell *means* — the resolved method config (class defaults included, so a
changed default is a new cell), the dataset's identity without its location, the pair, the
scenario, the seed and the resolved protocol — never paths, work dir, launcher or device, so
moving data or the work dir orphans no finished cell.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config

from u2cdr.engine.frozen_mode import with_frozen_backbone
from u2cdr.evaluation.protocols import protocol_cell_identity
from u2cdr.methods.base import SCENARIOS
from u2cdr.registry import (BACKBONES, DATASETS, METHODS, PROTOCOLS, ConfigError, build,
                            check_arguments, closest_name, lookup)

# Config keys that say where data lives, how memory is spent or how much unreadable data is
# tolerated, not what a cell computes (left out of cell keys). ``max_bad_fraction`` only decides
# whether a build with skipped images may be used; the skipping itself does not depend on it.
LOCATION_KEYS = frozenset({"root", "data_files", "cache_dir", "num_workers", "chunk_size",
                           "max_bad_fraction"})
# Grid-level keys of a dataset config, consumed by the engine (not passed to the class).
DATASET_GRID_KEYS = ("pairs", "name")
NESTED_REGISTRIES = {"backbone": BACKBONES}


@dataclass(frozen=True)
class Cell:
    """One unit of work of a grid, identified by ``key``."""

    method: str
    method_cfg: dict
    dataset: str
    dataset_cfg: dict
    query: str
    gallery: str
    scenario: str
    seed: int
    protocol_cfg: dict
    key: str = field(default="")

    @property
    def relative_dir(self) -> Path:
        """``runs/<dataset>/<scenario>/<query>__<gallery>/<method>/seed<seed>-<key8>``."""
        return (Path("runs") / self.dataset / self.scenario / f"{self.query}__{self.gallery}"
                / _path_safe(self.method) / f"seed{self.seed}-{self.key[:8]}")

    @property
    def label(self) -> str:
        return (f"{self.method} | {self.dataset} {self.query}→{self.gallery} | "
                f"{self.scenario} | seed {self.seed}")

    def spec(self) -> dict:
        """Plain-data description written into the cell folder for the cell process."""
        return {"method": self.method, "method_cfg": self.method_cfg, "dataset": self.dataset,
                "dataset_cfg": self.dataset_cfg, "query": self.query, "gallery": self.gallery,
                "scenario": self.scenario, "seed": self.seed, "protocol_cfg": self.protocol_cfg,
                "key": self.key}


def _path_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_") or "method"


def plain(value: Any) -> Any:
    """ConfigDicts, tuples and the like as plain JSON-able Python."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def resolve_methods(cfg: Config) -> list[tuple[str, dict]]:
    """``(display name, method config)`` for every entry of ``methods``."""
    library = plain(cfg.get("method_library") or {})
    resolved = []
    for index, entry in enumerate(plain(cfg.methods)):
        path = f"methods[{index}]"
        if isinstance(entry, str):
            method_cfg = copy.deepcopy(library[entry]) if entry in library else {"type": entry}
            name = method_cfg.pop("name", entry)
        elif isinstance(entry, dict):
            method_cfg = copy.deepcopy(entry)
            name = method_cfg.pop("name", None) or str(method_cfg.get("type"))
        else:
            raise ConfigError(f"{path}: expected a method name or a dict with `type`, got {entry!r}")
        if "type" not in method_cfg:
            raise ConfigError(f"{path}: method config {method_cfg!r} has no `type`")
        lookup(METHODS, method_cfg["type"], path)
        for key, nested_registry in NESTED_REGISTRIES.items():  # named here, not deep in a key
            nested = method_cfg.get(key)
            if isinstance(nested, dict) and "type" in nested:
                lookup(nested_registry, nested["type"], f"{path}.{key}")
        resolved.append((name, method_cfg))
    names = [name for name, _ in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"methods: the name(s) {duplicates} appear twice; give each variant "
                          f"its own `name=` so their results do not mix")
    return resolved


def resolve_datasets(cfg: Config) -> list[tuple[str, dict, list[tuple[str, str]]]]:
    """``(display name, dataset config without grid keys, pairs)`` for every dataset."""
    resolved = []
    for index, entry in enumerate(plain(cfg.datasets)):
        path = f"datasets[{index}]"
        variable = None
        if isinstance(entry, str):
            named = cfg.get(entry)
            variable = entry if isinstance(named, Mapping) else None
            entry = plain(named) if isinstance(named, Mapping) else {"type": entry}
        if not isinstance(entry, dict) or "type" not in entry:
            raise ConfigError(f"{path}: expected a dataset config dict with `type`, got {entry!r}")
        dataset_cfg = copy.deepcopy(entry)
        pairs = dataset_cfg.pop("pairs", None)
        # The display name: `name=`, else the config variable that holds the entry (two
        # `features` datasets in one grid stay apart), else the registered type.
        name = dataset_cfg.pop("name", None) or variable or str(dataset_cfg["type"])
        dataset = build(DATASETS, dataset_cfg, path)
        domains = list(dataset.domains)
        if pairs is None:
            pairs = [(a, b) for a, b in itertools.permutations(domains, 2)]
        checked_pairs = []
        for pair_index, pair in enumerate(pairs):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ConfigError(f"{path}.pairs[{pair_index}]: expected (query, gallery), got {pair!r}")
            for role, domain in zip(("query", "gallery"), pair):
                if domain not in domains:
                    hint = closest_name(str(domain), domains)
                    suggestion = f" Did you mean {hint!r}?" if hint else ""
                    raise ConfigError(f"{path}.pairs[{pair_index}]: {role} domain {domain!r} is not "
                                      f"a domain of {name}.{suggestion} Valid domains: {', '.join(domains)}")
            if pair[0] == pair[1]:
                raise ConfigError(f"{path}.pairs[{pair_index}]: query and gallery are both {pair[0]!r}")
            checked_pairs.append((str(pair[0]), str(pair[1])))
        resolved.append((name, dataset_cfg, checked_pairs))
    names = [name for name, _, _ in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"datasets: the name(s) {duplicates} appear twice; give each entry its "
                          f"own `name=` so their results do not mix")
    return resolved


def _with_defaults(cfg: dict, registry) -> dict:
    """``cfg`` with the class's signature defaults filled in (nested components too).

    Options a class lists in ``neutral_defaults`` are left out while they hold that value
    (options added later, at the value that reproduces the earlier behaviour).
    """
    cls = lookup(registry, cfg["type"], "cell")
    resolved: dict[str, Any] = {}
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.default is not inspect.Parameter.empty and parameter.name != "device":
            resolved[parameter.name] = parameter.default
    resolved.update(cfg)
    for name, value in getattr(cls, "neutral_defaults", {}).items():
        if name in resolved and resolved[name] == value:
            del resolved[name]
    for key, nested_registry in NESTED_REGISTRIES.items():
        if isinstance(resolved.get(key), dict) and "type" in resolved[key]:
            resolved[key] = _with_defaults(resolved[key], nested_registry)
    return plain(resolved)


def _identity(value: Any) -> Any:
    """A value as it enters a cell key: locations reduced to their file names."""
    if isinstance(value, dict):
        return {k: (os.path.basename(str(v)) if k == "checkpoint" and v else _identity(v))
                for k, v in value.items() if k not in LOCATION_KEYS}
    if isinstance(value, list):
        return [_identity(v) for v in value]
    return value


def cell_key(method_cfg: dict, dataset_cfg: dict, query: str, gallery: str, scenario: str,
             seed: int, protocol_cfg: dict) -> str:
    """sha256 of the canonical JSON of what the cell means (see module docstring)."""
    identity = {
        "method": _identity(_with_defaults(method_cfg, METHODS)),
        "dataset": _identity(_with_defaults(dataset_cfg, DATASETS)),
        "query": query, "gallery": gallery, "scenario": scenario, "seed": int(seed),
        # Search settings that cannot change an exact evaluation stay out of the key, so
        # adding such a knob does not orphan every finished cell.
        "protocol": _identity(protocol_cell_identity(_with_defaults(protocol_cfg, PROTOCOLS))),
    }
    canonical = json.dumps(identity, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _excluded(cell: Cell, exclude: list[dict]) -> bool:
    facts = {"method": cell.method, "dataset": cell.dataset, "query": cell.query,
             "gallery": cell.gallery, "scenario": cell.scenario, "seed": cell.seed}
    return any(all(facts.get(k) == v for k, v in rule.items()) for rule in exclude)


def expand_grid(cfg: Config) -> list[Cell]:
    """Every cell of the grid, in a stable order (dataset, pair, scenario, method, seed).

    Raises ``ConfigError`` naming the key for any bad axis value, before anything runs.
    """
    scenarios = plain(cfg.scenarios)
    for index, scenario in enumerate(scenarios):
        if scenario not in SCENARIOS:
            hint = closest_name(str(scenario), list(SCENARIOS))
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(f"scenarios[{index}]: unknown scenario {scenario!r}.{suggestion} "
                              f"Valid choices: {', '.join(SCENARIOS)}")
    seeds = plain(cfg.seeds)
    for index, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seeds[{index}]: seeds must be integers, got {seed!r}")
    protocol_cfg = plain(cfg.evaluation)
    if isinstance(protocol_cfg, str):
        protocol_cfg = {"type": protocol_cfg}
    build(PROTOCOLS, protocol_cfg, "evaluation")
    exclude = plain(cfg.get("exclude") or [])
    valid_rule_keys = {"method", "dataset", "query", "gallery", "scenario", "seed"}
    for index, rule in enumerate(exclude):
        if not isinstance(rule, dict) or not set(rule) <= valid_rule_keys:
            raise ConfigError(f"exclude[{index}]: expected a dict with keys among "
                              f"{sorted(valid_rule_keys)}, got {rule!r}")
    methods = resolve_methods(cfg)
    datasets = resolve_datasets(cfg)
    cells = []
    for dataset_name, dataset_cfg, pairs in datasets:
        for (query, gallery), scenario, (method_name, method_cfg), seed in itertools.product(
                pairs, scenarios, methods, seeds):
            cell_method, cell_dataset = with_frozen_backbone(method_cfg, dataset_cfg)
            key = cell_key(cell_method, cell_dataset, query, gallery, scenario, seed, protocol_cfg)
            cell = Cell(method_name, cell_method, dataset_name, cell_dataset, query, gallery,
                        scenario, int(seed), protocol_cfg, key)
            if not _excluded(cell, exclude):
                cells.append(cell)
    return cells


def check_methods_build(cfg: Config, device: str, instantiate: bool = True) -> None:
    """Check every method config before training, so a bad nested key fails at once.

    With ``instantiate`` each method is built (cheap: no data), which also opens checkpoint
    files; without it (``--dry-run`` on a machine without the weights) only the keys of the
    method and of its nested components are checked against their signatures.
    """
    for index, (name, method_cfg) in enumerate(resolve_methods(cfg)):
        path = f"methods[{index}] ({name})"
        method_cfg, _ = with_frozen_backbone(method_cfg, {"type": "any"})
        if instantiate:
            build(METHODS, method_cfg, path, device=device)
            continue
        check_arguments(lookup(METHODS, method_cfg["type"], path), {**method_cfg, "device": device},
                        path)
        for key, nested_registry in NESTED_REGISTRIES.items():
            nested = method_cfg.get(key)
            if isinstance(nested, dict) and "type" in nested:
                check_arguments(lookup(nested_registry, nested["type"], f"{path}.{key}"),
                                nested, f"{path}.{key}")
