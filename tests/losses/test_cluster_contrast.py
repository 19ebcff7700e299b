"""ClusterContrast (UCDIR's cluster-wise contrast) against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from u2cdr.losses.cluster_contrast import ClusterContrast

# Memory of three images: 0 and 1 in cluster 0, image 2 in cluster 1.
MEMORY = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
ASSIGNMENTS = torch.tensor([0, 0, 1])
PROTOTYPES = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
# A batch of images 0 and 2; keys equal queries.
QUERIES = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
INDICES = torch.tensor([0, 2])
# Image 0: logits (1, 0, -1), positives {0, 1} → ℓ = log(e + 1 + e⁻¹) − ½.
LOSS_0 = math.log(math.e + 1 + math.exp(-1)) - 0.5
# Image 2: logits (0, 1, 0), positives {2} → ℓ = log(2 + e).
LOSS_2 = math.log(2 + math.e)


def test_confident_sample_only() -> None:
    """Image 0's key sits at posterior e/(e+e⁻¹) ≈ 0.88 in its cluster; image 2's at exactly ½,
    which a threshold of ½ rejects (strict >)."""
    loss = ClusterContrast(temperature=1.0, filter_threshold=0.5)(
        QUERIES, QUERIES, INDICES, MEMORY, ASSIGNMENTS, PROTOTYPES)
    assert loss.item() == pytest.approx(LOSS_0 / (1 + 1e-8), rel=1e-6)


def test_both_samples_pass_a_lower_threshold() -> None:
    loss = ClusterContrast(temperature=1.0, filter_threshold=0.4)(
        QUERIES, QUERIES, INDICES, MEMORY, ASSIGNMENTS, PROTOTYPES)
    assert loss.item() == pytest.approx((LOSS_0 + LOSS_2) / (2 + 1e-8), rel=1e-6)


def test_no_confident_sample_gives_zero_loss() -> None:
    loss = ClusterContrast(temperature=1.0, filter_threshold=0.95)(
        QUERIES, QUERIES, INDICES, MEMORY, ASSIGNMENTS, PROTOTYPES)
    assert loss.item() == 0.0


def test_gradient_pulls_query_toward_its_cluster() -> None:
    query = torch.tensor([[0.6, 0.8]], requires_grad=True)
    ClusterContrast(temperature=0.5, filter_threshold=0.0)(
        query, torch.tensor([[1.0, 0.0]]), torch.tensor([0]), MEMORY, ASSIGNMENTS,
        PROTOTYPES).backward()
    # Positives (1,0) and (0,1) lie in the first quadrant, the negative (-1,0) opposite:
    # descending the gradient increases the first coordinate.
    assert query.grad[0, 0] < 0


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="temperature"):
        ClusterContrast(temperature=0.0)
    with pytest.raises(ValueError, match="filter_threshold"):
        ClusterContrast(filter_threshold=1.5)
