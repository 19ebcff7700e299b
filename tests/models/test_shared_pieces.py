"""Gradient reversal, the domain classifier, momentum copies, the feature queue, cluster counts."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from u2cdr.models.cluster_count import resolve_num_clusters
from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.feature_queue import FeatureQueue
from u2cdr.models.grl import GradientReversal, dann_coefficient, grad_reverse
from u2cdr.models.momentum import momentum_copy, momentum_update


def test_gradient_reversal_is_identity_forward_and_negated_scaled_backward() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.5, -1.0, -1.5]))
    z = torch.ones(2, requires_grad=True)
    GradientReversal(2.0)(z).sum().backward()
    assert torch.equal(z.grad, torch.tensor([-2.0, -2.0]))


def test_dann_coefficient_ramps_from_zero_towards_one() -> None:
    assert dann_coefficient(0.0) == 0.0
    assert dann_coefficient(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_coefficient(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.98661


def test_domain_classifier_gives_one_logit_per_sample() -> None:
    classifier = DomainClassifier(8, hidden_dim=4)
    assert classifier(torch.randn(5, 8)).shape == (5,)
    assert len([m for m in classifier.modules() if isinstance(m, torch.nn.Linear)]) == 2
    with pytest.raises(ValueError, match="in_dim"):
        DomainClassifier(0)


def test_momentum_update_is_an_exponential_moving_average() -> None:
    source = torch.nn.Linear(1, 1, bias=False)
    target = momentum_copy(source)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        source.weight.fill_(1.0)
        target.weight.fill_(0.0)
    momentum_update(target, source, 0.9)
    assert target.weight.item() == pytest.approx(0.1)  # 0.9·0 + 0.1·1
    momentum_update(target, source, 0.9)
    assert target.weight.item() == pytest.approx(0.19)  # 0.9·0.1 + 0.1·1
    with pytest.raises(ValueError, match="momentum"):
        momentum_update(target, source, 1.5)


def test_feature_queue_overwrites_the_oldest_slots_in_ring_order() -> None:
    queue = FeatureQueue(dim=2, size=3)
    assert torch.allclose(queue.entries.norm(dim=1), torch.ones(3))
    queue.enqueue(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    queue.enqueue(torch.tensor([[2.0, 0.0], [0.0, 2.0]]))  # wraps: slot 2, then slot 0
    assert queue.entries.tolist() == [[0.0, 2.0], [0.0, 1.0], [2.0, 0.0]]
    assert int(queue.pointer) == 1
    restored = FeatureQueue(dim=2, size=3)
    restored.load_state_dict(queue.state_dict())
    assert torch.equal(restored.entries, queue.entries)


def test_cluster_count_settings() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    features = np.concatenate([c + 0.3 * rng.standard_normal((40, 2)) for c in centres])
    labels = np.repeat([3, 5, 8, 9], 40)
    assert resolve_num_clusters(7, features, None, seed=0) == 7
    assert resolve_num_clusters("oracle", features, labels, seed=0) == 4
    assert resolve_num_clusters("elbow", features.astype(np.float32), None, seed=0, k_max=12) == 4
    with pytest.raises(ValueError, match="needs the domain's labels"):
        resolve_num_clusters("oracle", features, None, seed=0)
    with pytest.raises(ValueError, match="valid choices: oracle, elbow"):
        resolve_num_clusters("guess", features, None, seed=0)
    with pytest.raises(ValueError, match=">= 2"):
        resolve_num_clusters(1, features, None, seed=0)
