"""Every registered method fits one tiny epoch on real digits (CPU) and embeds to [N, D] float32.

Each method is built from its digits-sized entry in ``benchmarks/_base_/methods/digits.py``
(every method needs one), shrunk further: one epoch per stage, batches of 16, a narrow CNN.
"""
from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch import nn

from u2cdr.data.pair import DomainPair
from u2cdr.registry import METHODS, accepted_parameters, build, lookup, registered_names

DIGITS_LIBRARY = Path(__file__).resolve().parents[2] / "benchmarks" / "_base_" / "methods" / "digits.py"


def tiny_config(name: str) -> dict:
    """The method's digits config with every ``*epochs`` at 1, batches of 16 and a width-8 CNN."""
    library = Config.fromfile(str(DIGITS_LIBRARY)).to_dict()["method_library"]
    entries = [cfg for cfg in library.values() if cfg["type"] == name]
    assert entries, f"method {name!r} has no entry in {DIGITS_LIBRARY}; add its digits-sized config"
    cfg = copy.deepcopy(entries[0])
    for key in accepted_parameters(lookup(METHODS, name, name)) or []:
        if key.endswith("epochs"):
            cfg[key] = 1
    if "batch_size" in cfg:
        cfg["batch_size"] = 16
    if isinstance(cfg.get("backbone"), dict) and cfg["backbone"]["type"] == "small_cnn":
        cfg["backbone"]["width"] = 8
    return cfg


class SealedLabels:
    """Stands in for ``DomainData.labels``: has a length, and fails on any read of a label."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def _refuse(self, *args, **kwargs):
        raise AssertionError("a method with uses_labels=False read DomainData.labels")

    __getitem__ = __iter__ = __array__ = __eq__ = _refuse

    def __getattr__(self, name: str):
        self._refuse()


def sealed(pair: DomainPair) -> DomainPair:
    return replace(pair, query=replace(pair.query, labels=SealedLabels(len(pair.query))),
                   gallery=replace(pair.gallery, labels=SealedLabels(len(pair.gallery))))


def parameter_snapshot(method: object) -> dict[str, torch.Tensor]:
    """Every parameter of every ``nn.Module`` the method holds as an attribute."""
    return {f"{attribute}.{name}": parameter.detach().clone()
            for attribute, module in vars(method).items() if isinstance(module, nn.Module)
            for name, parameter in module.named_parameters()}


@pytest.mark.parametrize("name", registered_names(METHODS))
def test_method_fits_and_embeds(name: str, tiny_pair: DomainPair, tmp_path: Path) -> None:
    method = build(METHODS, tiny_config(name), f"methods[{name}]", device="cpu")
    before = parameter_snapshot(method)
    pair = tiny_pair if method.uses_labels else sealed(tiny_pair)

    method.fit(pair, tmp_path)

    after = parameter_snapshot(method)
    changed = [key for key in before if not torch.equal(before[key], after[key])]
    if getattr(method, "trains", True):
        assert before, f"{name} trains but holds no nn.Module attribute with parameters"
        assert changed, f"{name}: fit changed no parameter"
    else:
        assert not changed, f"{name} declares trains=False but fit changed {changed[:3]}"

    query = method.embed(pair.query)
    gallery = method.embed(pair.gallery)
    for features, domain in ((query, pair.query), (gallery, pair.gallery)):
        assert isinstance(features, np.ndarray) and features.dtype == np.float32
        assert features.ndim == 2 and features.shape[0] == len(domain)
        assert np.isfinite(features).all()
        assert np.ptp(features, axis=0).max() > 0, "every image got the same feature"
    assert query.shape[1] == gallery.shape[1]
    json.dumps(method.describe())  # plain data for the result record
    assert method.family != "other", f"{name} must declare its table family"
