"""The two domains of one grid cell, as a method sees them.

A ``DomainPair`` is what ``Method.fit`` receives: the query domain (A) and the gallery domain
(B) with the scenario's classes already removed, one global class-name → id map, the
dataset's train/eval transforms, and a sampler of paired (A, B) batches with instance indices
(memory banks are indexed by them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

Transform = Callable[[Any], torch.Tensor]


class ImageColumn:
    """Row ``i``'s ``image`` of an HF dataset (decoded to PIL on access)."""

    def __init__(self, hf_dataset: Any) -> None:
        self.hf_dataset = hf_dataset

    def __len__(self) -> int:
        return len(self.hf_dataset)

    def __getitem__(self, index: int) -> Any:
        return self.hf_dataset[int(index)]["image"]


class IndexedImages(Dataset):
    """``(input_tensor, index)`` pairs of one domain under one transform.

    ``inputs`` is anything indexable by row: an ``ImageColumn`` for image domains, the rows of
    a feature matrix for feature domains (``feature_dataset.FeatureRows``).
    """

    def __init__(self, inputs: Any, transform: Transform) -> None:
        self.inputs = inputs
        self.transform = transform

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.inputs[int(index)]), int(index)


@dataclass
class DomainData:
    """One domain of a cell: its images (an HF ``Dataset``), global labels and transforms.

    ``labels`` are ids in the dataset's global class map; they are for evaluation only — a
    method that reads them must declare ``uses_labels = True``. ``inputs`` replaces the
    ``image`` column as what the transforms receive per row (feature domains set it);
    ``source_rows`` are the rows' indices in the dataset's full domain (before the scenario's
    class filter), so a report can show the image behind a retrieved feature.
    """

    name: str
    hf_dataset: Any
    labels: np.ndarray
    train_transform: Transform
    eval_transform: Transform
    inputs: Any = None
    source_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, train: bool = False) -> IndexedImages:
        """The domain's images (or vectors) under the train (augmenting) or eval transform."""
        inputs = self.inputs if self.inputs is not None else ImageColumn(self.hf_dataset)
        return IndexedImages(inputs, self.train_transform if train else self.eval_transform)

    def eval_loader(self, batch_size: int = 256, num_workers: int = 0) -> DataLoader:
        """Images in dataset order under the eval transform, for ``Method.embed``."""
        return DataLoader(self.images(train=False), batch_size=batch_size, shuffle=False,
                          num_workers=num_workers)


@dataclass
class DomainPair:
    """Query domain A and gallery domain B of one (dataset, query, gallery, scenario, seed)."""

    dataset: str
    query: DomainData
    gallery: DomainData
    class_names: list[str]
    scenario: str
    split: dict = field(default_factory=dict)

    def paired_batches(self, batch_size: int, generator: torch.Generator, train: bool = True,
                       num_workers: int = 0, rank: int = 0, world_size: int = 1
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch of ``(x_a, idx_a, x_b, idx_b)`` batches, ``batch_size`` from each domain.

        UCDIR's convention: an epoch covers the larger domain once; the smaller one is drawn
        again at random to fill the epoch, so both domains appear in every step.

        With ``world_size > 1`` (one cell trained by several processes) ``batch_size`` is the
        *global* per-domain batch: every rank draws the same epoch order from ``generator``
        (seeded alike on every rank) and keeps the contiguous slice ``rank`` of each global
        batch, ``batch_size // world_size`` images per domain. The slices of ranks 0..N-1,
        concatenated, are exactly the one-process batch, so gathering in rank order
        reconstructs it. ``batch_size`` must be divisible by ``world_size``.
        """
        rank_batch = rank_batch_size(batch_size, world_size)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} is outside 0..{world_size - 1} (world_size={world_size})")
        steps = math.ceil(max(len(self.query), len(self.gallery)) / batch_size)
        order_a = _epoch_order(len(self.query), steps * batch_size, generator)
        order_b = _epoch_order(len(self.gallery), steps * batch_size, generator)
        if world_size > 1:
            order_a = order_a.reshape(steps, world_size, rank_batch)[:, rank].reshape(-1)
            order_b = order_b.reshape(steps, world_size, rank_batch)[:, rank].reshape(-1)
        loader_a = DataLoader(self.query.images(train), batch_size=rank_batch,
                              sampler=order_a.tolist(), num_workers=num_workers)
        loader_b = DataLoader(self.gallery.images(train), batch_size=rank_batch,
                              sampler=order_b.tolist(), num_workers=num_workers)
        for (x_a, idx_a), (x_b, idx_b) in zip(loader_a, loader_b):
            yield x_a, idx_a, x_b, idx_b

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(max(len(self.query), len(self.gallery)) / batch_size)


def rank_batch_size(batch_size: int, world_size: int) -> int:
    """Images per domain one rank takes from a global batch of ``batch_size`` (see ``paired_batches``)."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if batch_size < 1 or batch_size % world_size:
        below = max(batch_size // world_size, 1) * world_size
        raise ValueError(f"batch_size={batch_size} is the global per-domain batch and must be a positive "
                         f"multiple of the number of processes ({world_size}); valid nearby: "
                         f"{below}, {below + world_size}")
    return batch_size // world_size


def _epoch_order(size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Shuffled permutations of ``range(size)`` concatenated and cut to ``length``."""
    repeats = math.ceil(length / size)
    return torch.cat([torch.randperm(size, generator=generator) for _ in range(repeats)])[:length]
