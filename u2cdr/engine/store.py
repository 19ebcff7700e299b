"""The result store: one folder per cell, files written so no interruption corrupts them.

Done ⇔ ``result.json`` parses and carries the cell's key. ``status.json`` says running /
failed (with the error) and is advisory; ``lock`` claims a cell with ``O_EXCL`` so two
runners on one work dir never run the same cell.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
STATUS_FILE = "status.json"
LOCK_FILE = "lock"
FINISHED = ("done", "skipped")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=True, default=str)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def read_json(path: Path) -> Any | None:
    """Parsed JSON, or None when the file is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def finished_record(cell_dir: Path, key: str) -> dict | None:
    """The cell's record when it finished (done or skipped) under ``key``, else None."""
    record = read_json(cell_dir / RESULT_FILE)
    if isinstance(record, dict) and record.get("key") == key and record.get("status") in FINISHED:
        return record
    return None


def cell_state(cell_dir: Path, key: str) -> str:
    """'done' | 'skipped' | 'running' | 'failed' | 'pending' for display and scheduling."""
    record = finished_record(cell_dir, key)
    if record is not None:
        return record["status"]
    if (cell_dir / LOCK_FILE).exists() and not lock_is_stale(cell_dir / LOCK_FILE):
        return "running"
    status = read_json(cell_dir / STATUS_FILE)
    if isinstance(status, dict) and status.get("state") == "failed":
        return "failed"
    return "pending"


def write_status(cell_dir: Path, state: str, **details: Any) -> None:
    write_json_atomic(cell_dir / STATUS_FILE, {"state": state, "time": time.time(),
                                               "host": socket.gethostname(), **details})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_is_stale(lock_path: Path, stale_after: float = 3600.0) -> bool:
    """A lock whose process is gone (same host) or not refreshed for ``stale_after`` seconds."""
    info = read_json(lock_path)
    if not isinstance(info, dict):
        try:  # a lock being written right now is not stale
            return time.time() - lock_path.stat().st_mtime > 60
        except OSError:
            return True
    if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
        return True
    try:
        return time.time() - lock_path.stat().st_mtime > stale_after
    except OSError:
        return True


def claim(cell_dir: Path) -> bool:
    """Take the cell's lock atomically; False when another live runner holds it."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    lock_path = cell_dir / LOCK_FILE
    for _ in range(2):
        try:
            handle = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if lock_is_stale(lock_path):
                try:
                    lock_path.unlink()
                except FileNotFoundError:
                    pass
                continue
            return False
        with os.fdopen(handle, "w") as stream:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, stream)
        return True
    return False


def heartbeat(cell_dir: Path) -> None:
    """Refresh the lock's mtime so other hosts do not take it for stale."""
    try:
        os.utime(cell_dir / LOCK_FILE)
    except OSError:
        pass


def release(cell_dir: Path) -> None:
    try:
        (cell_dir / LOCK_FILE).unlink()
    except FileNotFoundError:
        pass
