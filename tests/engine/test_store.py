"""The result store: atomic writes, done-ness by key, and cell claims."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from u2cdr.engine import store


def test_interrupted_write_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "result.json"
    store.write_json_atomic(path, {"key": "a", "status": "done"})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_json_atomic(path, {"key": "b", "status": "done"})
    assert json.loads(path.read_text()) == {"key": "a", "status": "done"}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left behind


def test_done_requires_parsable_result_with_the_same_key(tmp_path: Path) -> None:
    assert store.cell_state(tmp_path, "k1") == "pending"
    (tmp_path / "result.json").write_text('{"key": "k1", "status": "do')  # truncated
    assert store.finished_record(tmp_path, "k1") is None
    store.write_json_atomic(tmp_path / "result.json", {"key": "k1", "status": "done"})
    assert store.cell_state(tmp_path, "k1") == "done"
    assert store.cell_state(tmp_path, "other-key") == "pending"
    store.write_status(tmp_path, "failed", error="boom")
    assert store.cell_state(tmp_path, "other-key") == "failed"


def test_a_claimed_cell_cannot_be_claimed_twice(tmp_path: Path) -> None:
    assert store.claim(tmp_path)
    assert not store.claim(tmp_path)
    assert store.cell_state(tmp_path, "k") == "running"
    store.release(tmp_path)
    assert store.claim(tmp_path)


def test_lock_of_a_dead_process_is_reclaimed(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_pid = int(finished.stdout)
    (tmp_path / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid,
                                               "time": 0}))
    assert store.lock_is_stale(tmp_path / "lock")
    assert store.claim(tmp_path)
    assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
