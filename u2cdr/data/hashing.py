"""Stable hashes of plain data, for cache keys, fingerprints and split seeds.

Python's ``hash()`` is salted per process, so anything that must agree across runs and
machines (a cache directory name, a dataset fingerprint, the seed of a class split) is a
sha256 of canonical JSON instead.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal data gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def stable_hash(value: Any, length: int = 64) -> str:
    """Hex sha256 of ``canonical_json(value)``, cut to ``length`` characters."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def stable_seed(value: Any) -> int:
    """A 64-bit integer seed derived from ``value`` (for ``numpy.random.default_rng``)."""
    return int(stable_hash(value, 16), 16)
