"""Loading a grid config and checking its top-level keys before anything runs.

A grid config is an mmengine ``Config`` (Python, YAML or JSON) with list-valued axes. Named
pieces inherited from ``_base_`` files (``digits = dict(type='digits', ...)``, a
``method_library``) may sit at top level too; any other unknown key is a typo and stops the run.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mmengine.config import Config

from u2cdr.registry import ConfigError, closest_name

if TYPE_CHECKING:
    from u2cdr.engine.slurm import SlurmSettings

GRID_KEYS = {
    "methods": "registered method names, names from `method_library`, or method config dicts",
    "datasets": "dataset config dicts (each with its `pairs`) or names of dataset configs",
    "scenarios": "any of 'closed', 'partial', 'open'",
    "seeds": "integer seeds (the paper's: 2024, 2025, 2026)",
    "evaluation": "the protocol config, e.g. dict(type='uem')",
    "work_dir": "where runs, splits and tables are written",
    "method_library": "named method configs that `methods` entries may refer to",
    "device": "'cpu' or 'cuda'",
    "exclude": "partial cell descriptions to leave out, e.g. [dict(method='uem', scenario='open')]",
    "custom_imports": "mmengine's dict(imports=[...]) to register your own components",
    "cell_timeout": "seconds a cell may run before it is stopped (None: no limit)",
    "checkpoint_every": "epochs between a training cell's resumable checkpoints (1: every epoch; "
                        "0: none); the last epoch is always saved unless 0",
    "slurm": "job settings for `--launcher slurm`: dict(partition=..., time=minutes, gpus=..., "
             "cpus_per_task=..., mem_gb=..., array_parallelism=..., sbatch_options=dict(...), "
             "log_dir=..., cluster='slurm' or 'local')",
}
# Axes and lists: a bare string here would be read letter by letter.
LIST_KEYS = ("methods", "datasets", "scenarios", "seeds", "exclude")
DEFAULTS: dict[str, Any] = {
    "scenarios": ["closed", "partial", "open"],
    "seeds": [2024, 2025, 2026],
    "evaluation": {"type": "uem"},
    "work_dir": "work_dirs/default",
    "method_library": {},
    "device": "cpu",
    "exclude": [],
    "cell_timeout": None,
    "checkpoint_every": 1,
    "slurm": {},
}


def load_grid_config(path: str | Path, cfg_options: dict | None = None) -> Config:
    """Read a grid config, apply ``--cfg-options`` overrides and check its keys.

    The config file's folder is put on ``sys.path`` first so that ``custom_imports`` can name a
    module that sits beside the config (a user's own method file outside this repository).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    config_dir = str(path.resolve().parent)
    if config_dir not in sys.path:
        sys.path.insert(0, config_dir)
    cfg = Config.fromfile(str(path))
    if cfg_options:
        for key in cfg_options:
            _check_top_level_key(key.split(".")[0], cfg)
        cfg.merge_from_dict(cfg_options)
    for key, value in DEFAULTS.items():
        if key not in cfg:
            cfg[key] = value
    for key in list(cfg.keys()):
        _check_top_level_key(key, cfg)
    for required in ("methods", "datasets"):
        if not cfg.get(required):
            raise ConfigError(f"{path}: the key `{required}` is missing or empty "
                              f"({GRID_KEYS[required]})")
    _check_grid_types(cfg)
    return cfg


def _check_grid_types(cfg: Config) -> None:
    """Top-level values of the wrong kind stop here, not letter by letter or hours later.

    ``scenarios='closed'`` would otherwise expand to the scenarios 'c', 'l', …, and
    ``cell_timeout='ten'`` would fail inside the runner after the first cell started.
    """
    for key in LIST_KEYS:
        value = cfg.get(key)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"`{key}` must be a list ({GRID_KEYS[key]}), got {value!r}")
    timeout = cfg.get("cell_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise ConfigError(f"cell_timeout: expected a number of seconds or None, got {timeout!r}")
    every = cfg.get("checkpoint_every")
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ConfigError(f"checkpoint_every: expected an int >= 0 "
                          f"({GRID_KEYS['checkpoint_every']}), got {every!r}")
    for key in ("device", "work_dir"):
        if not isinstance(cfg.get(key), str):
            raise ConfigError(f"{key}: expected a string ({GRID_KEYS[key]}), got {cfg.get(key)!r}")
    slurm_settings(cfg)


def slurm_settings(cfg: Config, overrides: dict | None = None) -> SlurmSettings:
    """The grid's ``slurm`` job settings with CLI ``overrides``; a bad key or value is named.

    Checked at load time even when another launcher runs the grid, so a typo in a cluster config
    is found on a laptop's dry run, not after queueing on the cluster.
    """
    from u2cdr.engine.slurm import parse_slurm_settings

    raw = cfg.get("slurm")
    if hasattr(raw, "to_dict"):
        raw = raw.to_dict()
    return parse_slurm_settings(raw, overrides)


def _check_top_level_key(key: str, cfg: Config) -> None:
    if key in GRID_KEYS or key.startswith("_"):
        return
    value = cfg.get(key)
    if isinstance(value, dict) and "type" in value:
        return  # a named component piece from a _base_ file, e.g. `digits = dict(type=...)`
    hint = closest_name(key, list(GRID_KEYS))
    suggestion = f" Did you mean {hint!r}?" if hint else ""
    raise ConfigError(f"unknown config key {key!r}.{suggestion} Valid keys: {', '.join(GRID_KEYS)}")


def custom_import_names(cfg: Config) -> list[str]:
    """The module names listed in ``custom_imports`` (child processes import them again)."""
    custom = cfg.get("custom_imports") or {}
    imports: Sequence[str] | str = custom.get("imports", [])
    return [imports] if isinstance(imports, str) else list(imports)
