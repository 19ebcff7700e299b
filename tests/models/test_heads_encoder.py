"""Projection heads, the encoder and the shared embedding helper."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from u2cdr.models.encoder import Encoder, describe_encoder, embed_loader
from u2cdr.models.heads import ProjectionHead
from u2cdr.models.small_cnn import SmallCNN


def test_mlp_head_follows_moco_layout_and_normalises() -> None:
    head = ProjectionHead(in_dim=12, kind="mlp", low_dim=5)
    assert [type(layer) for layer in head.layers] == [nn.Linear, nn.ReLU, nn.Linear]
    assert head.layers[0].weight.shape == (12, 12) and head.layers[2].weight.shape == (5, 12)
    output = head(torch.randn(7, 12) * 10)
    assert output.shape == (7, 5)
    assert torch.allclose(output.norm(dim=1), torch.ones(7), atol=1e-6)


def test_linear_and_identity_heads() -> None:
    features = torch.tensor([[3.0, 4.0]])
    identity = ProjectionHead(in_dim=2, kind="none")
    assert identity.out_dim == 2
    assert torch.allclose(identity(features), torch.tensor([[0.6, 0.8]]))
    assert torch.equal(ProjectionHead(in_dim=2, kind="none", normalize=False)(features), features)
    linear = ProjectionHead(in_dim=2, kind="linear", low_dim=3, normalize=False)
    assert linear(features).shape == (1, 3)


def test_linear_head_loads_a_moco_v1_fc() -> None:
    linear = ProjectionHead(in_dim=2, kind="linear", low_dim=3)
    weight, bias = torch.arange(6.0).reshape(3, 2), torch.ones(3)
    assert linear.load_pretrained({"weight": weight, "bias": bias})
    assert torch.equal(linear.layers[0].weight, weight)


def test_unknown_head_kind_lists_choices() -> None:
    with pytest.raises(ValueError, match="'deep'.*mlp, linear, none"):
        ProjectionHead(in_dim=4, kind="deep")


def test_encoder_embedding_modules() -> None:
    encoder = Encoder(SmallCNN(width=4), head="mlp", low_dim=6)
    assert encoder.out_dim == 6 and not encoder.head_loaded
    assert encoder.embedding_module("head") is encoder
    assert encoder.embedding_module("backbone") is encoder.backbone
    with pytest.raises(ValueError, match="'pooled'.*head, backbone"):
        encoder.embedding_module("pooled")


def test_embed_loader_uses_eval_mode_keeps_order_and_restores_mode() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        model(torch.randn(64, 3) * 5 + 2)
    images = torch.randn(10, 3)
    loader = DataLoader(TensorDataset(images, torch.arange(10)), batch_size=3, shuffle=False)
    features = embed_loader(model, loader, "cpu")
    assert model.training  # restored
    model.eval()
    expected = model(images).detach().numpy()
    assert features.dtype == np.float32 and features.shape == (10, 4)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    normalized = embed_loader(model, loader, "cpu", normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), np.ones(10), rtol=1e-5)


def test_describe_encoder_reports_the_width_of_the_retrieved_layer() -> None:
    encoder = Encoder(SmallCNN(in_channels=1, width=8), head="mlp", low_dim=16)
    head = describe_encoder(encoder, {"type": "small_cnn"}, "head")
    backbone = describe_encoder(encoder, {"type": "small_cnn"}, "backbone")
    assert head["feature_dim"] == 16 and head["embedding"] == "head"
    assert backbone["feature_dim"] == encoder.backbone.out_dim != 16
    assert head["checkpoint"] == {"checkpoint": None} and head["head"] == "mlp"
