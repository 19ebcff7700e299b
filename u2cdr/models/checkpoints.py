"""Reading backbone weights from local checkpoint files, whatever trainer wrote them.

UEM and UCDIR start from the MoCo-v2 ImageNet checkpoint (``moco_v2_800ep_pretrain.pth.tar``),
whose weights sit under ``state_dict`` with the prefix ``module.encoder_q.`` and whose ``fc``
holds the MLP projection head (``fc.0`` Linear, ``fc.2`` Linear). A torchvision state dict has
bare keys and a 1000-way classifier in ``fc``. This module turns either into two plain state
dicts: the trunk's, and the ``fc`` keys (the head candidate) with ``fc.`` stripped. Files are read
with ``torch.load(weights_only=True)`` only, so a checkpoint cannot run code; nothing downloads.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

# MoCo wraps the query encoder in DistributedDataParallel; the key encoder and the queue
# (``module.encoder_k.*``, ``module.queue``) are training state, not weights to reuse.
_MOCO_QUERY_PREFIX = "encoder_q."
_DATA_PARALLEL_PREFIX = "module."
_HEAD_PREFIX = "fc."


@dataclass
class CheckpointWeights:
    """A checkpoint split into trunk weights and the weights found in its ``fc`` slot.

    Attributes:
        path: the file read.
        source_format: 'moco' (``encoder_q`` keys) or 'plain' (torchvision-style keys).
        trunk: backbone weights, keys as torchvision's ResNet names them.
        head: the ``fc.*`` weights with ``fc.`` removed (a MoCo MLP head is ``0.weight`` …
            ``2.bias``; a torchvision classifier is ``weight``/``bias``); empty if none.
        dropped: keys left out (MoCo key encoder, queue, other prefixes).
    """

    path: str
    source_format: str
    trunk: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


def read_checkpoint(path: str | Path) -> CheckpointWeights:
    """Load ``path`` and split its weights into trunk and head (see ``CheckpointWeights``).

    Accepts a bare state dict, a dict holding one under ``state_dict`` (MoCo, many trainers)
    or ``model``, with or without the ``module.`` / ``module.encoder_q.`` prefixes.

    Raises:
        FileNotFoundError: ``path`` does not exist (nothing is ever downloaded).
        ValueError: the file holds no tensors where a state dict should be.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"backbone checkpoint {str(path)!r} not found (resolved to {file.resolve()}). "
            "u2cdr never downloads weights: put the file there or set checkpoint=None.")
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"backbone checkpoint {str(file)!r} cannot be read with torch.load(weights_only=True) "
            f"({reason}). u2cdr loads only tensors and plain containers, because unpickling "
            "anything else can run code; re-save the file's state dict alone, or fix the file "
            "if it is damaged.") from error
    state = _find_state_dict(loaded, file)

    stripped = {_strip(key, _DATA_PARALLEL_PREFIX): value for key, value in state.items()}
    dropped: list[str] = []
    if any(key.startswith(_MOCO_QUERY_PREFIX) for key in stripped):
        source_format = "moco"
        dropped = [key for key in stripped if not key.startswith(_MOCO_QUERY_PREFIX)]
        stripped = {key[len(_MOCO_QUERY_PREFIX):]: value for key, value in stripped.items()
                    if key.startswith(_MOCO_QUERY_PREFIX)}
    else:
        source_format = "plain"
    trunk = {key: value for key, value in stripped.items() if not key.startswith(_HEAD_PREFIX)}
    head = {key[len(_HEAD_PREFIX):]: value for key, value in stripped.items()
            if key.startswith(_HEAD_PREFIX)}
    return CheckpointWeights(str(file), source_format, trunk, head, dropped)


def _find_state_dict(loaded: object, file: Path) -> Mapping[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint object."""
    if isinstance(loaded, Mapping):
        for container in ("state_dict", "model"):
            if isinstance(loaded.get(container), Mapping):
                loaded = loaded[container]
                break
    if not isinstance(loaded, Mapping) or not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        kind = type(loaded).__name__
        keys = list(loaded)[:5] if isinstance(loaded, Mapping) else []
        raise ValueError(f"checkpoint {str(file)!r} holds no state dict of tensors "
                         f"(got {kind} with keys {keys}); expected a state dict or a dict with "
                         "'state_dict'")
    return {key: value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """An RGB first-layer kernel ``[O, 3, k, k]`` made to take ``in_channels`` inputs.

    For one channel the RGB kernels are summed, so a grey image replicated to RGB and the same
    grey image fed once give the same response.
    """
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    raise ValueError(f"cannot adapt a first convolution with {weight.shape[1]} input channels "
                     f"to in_channels={in_channels}; valid: {weight.shape[1]} or 1")
