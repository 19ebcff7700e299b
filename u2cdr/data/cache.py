"""Where built datasets live on disk, and building each one exactly once.

A built dataset is a directory ``<cache root>/<dataset name>/<key>/`` holding one
``save_to_disk`` folder per domain and ``manifest.json``. It is built in a staging directory
beside it and renamed into place, so a crash never leaves a half-built directory that looks
finished; a file lock makes concurrent grid cells wait for one build instead of racing.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import datasets
from filelock import FileLock

CACHE_ENV = "U2CDR_CACHE"
MANIFEST = "manifest.json"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else ``$U2CDR_CACHE``, else ``~/.cache/u2cdr``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path.home() / ".cache" / "u2cdr"


def read_manifest(directory: Path) -> dict | None:
    """The manifest of a finished build, or None when ``directory`` is not one."""
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def build_once(directory: Path, build: Callable[[Path], dict]) -> tuple[dict, bool]:
    """Return ``(manifest, built_now)``; run ``build(staging_dir) -> manifest`` if needed.

    ``build`` writes the domain folders into ``staging_dir`` and returns the manifest; the
    manifest is written last and the staging directory renamed to ``directory``.
    """
    manifest = read_manifest(directory)
    if manifest is not None:
        return manifest, False
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        manifest = read_manifest(directory)
        if manifest is not None:  # another process finished it while we waited
            return manifest, False
        staging = directory.parent / f".{directory.name}.building-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            manifest = build(staging)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            if directory.exists():  # leftover of an interrupted build without a manifest
                shutil.rmtree(directory)
            os.replace(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return manifest, True


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Silence HF ``datasets`` progress bars while building (restored afterwards)."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
