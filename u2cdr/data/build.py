"""From a dataset and a cell (query, gallery, scenario, seed) to a method's ``DomainPair``.

The scenario's removed classes are removed from each domain entirely — training data
included — since "the label space of a domain" is what the scenario restricts
(spec/uem.md §1, [INFERRED]).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import Dataset

from u2cdr.data.base import DomainDataset
from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.data.splits import check_scenario, load_or_draw_split


def build_pair(dataset: DomainDataset, query: str, gallery: str, scenario: str, seed: int,
               split_path: Path) -> DomainPair:
    """Load ``dataset``, apply the (saved or newly drawn) class split, attach transforms.

    Args:
        dataset: a built (not yet loaded) registered dataset.
        query, gallery: two different ids from ``dataset.domains``.
        scenario: 'closed', 'partial' or 'open'.
        seed: the cell's seed; with the rest it fixes the class split.
        split_path: the JSON file the split is read from or written to.
    """
    for role, domain in (("query", query), ("gallery", gallery)):
        if domain not in dataset.domains:
            raise ValueError(f"unknown {role} domain {domain!r} for {dataset.name}; valid domains: "
                             f"{', '.join(dataset.domains)}")
    if query == gallery:
        raise ValueError(f"query and gallery are both {query!r}; cross-domain retrieval needs two "
                         f"different domains of {dataset.name} ({', '.join(dataset.domains)})")
    check_scenario(scenario)
    loaded = dataset.load()
    labels = {domain: np.asarray(loaded[domain]["label"], dtype=np.int64)
              for domain in (query, gallery)}
    split = load_or_draw_split(split_path, np.unique(labels[query]), np.unique(labels[gallery]),
                               scenario, seed, dataset=dataset.name, query=query, gallery=gallery)

    def kept(domain: str, classes: list[int]) -> DomainData:
        rows = np.flatnonzero(np.isin(labels[domain], classes))
        subset: Dataset = loaded[domain].select(rows, keep_in_memory=True)
        train_transform, eval_transform = dataset.domain_transforms(subset)
        return DomainData(name=domain, hf_dataset=subset, labels=labels[domain][rows],
                          train_transform=train_transform, eval_transform=eval_transform,
                          inputs=dataset.domain_inputs(subset), source_rows=rows)

    return DomainPair(dataset=dataset.name, query=kept(query, split["query_classes"]),
                      gallery=kept(gallery, split["gallery_classes"]),
                      class_names=list(dataset.class_names), scenario=scenario, split=split)
