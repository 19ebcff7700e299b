"""What produced a result: package, code revision and library versions (answers "can't reproduce")."""
from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import u2cdr

_LIBRARIES = ("torch", "torchvision", "faiss-cpu", "datasets", "numpy", "mmengine", "scipy")


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout the package runs from (with '+dirty' if modified), or None."""
    root = Path(u2cdr.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def environment() -> dict:
    """Python, platform, host and the versions of the libraries results depend on."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "host": socket.gethostname(), "versions": versions}


def provenance() -> dict:
    return {"version": u2cdr.__version__, "git_commit": git_commit(), "env": environment()}
