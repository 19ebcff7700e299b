"""pretrained: the untrained floor embeds with the backbone as built."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from u2cdr.models.resnet import ResNet18
from u2cdr.registry import METHODS, ConfigError, build


def test_embeds_normalised_backbone_features_of_the_eval_view(tiny_pair, tmp_path) -> None:
    method = build(METHODS, dict(type="pretrained", backbone=dict(type="small_cnn", width=8)), "m")
    method.fit(tiny_pair, tmp_path)
    features = method.embed(tiny_pair.query)
    backbone = method.encoder.backbone.eval()
    images = torch.stack([tiny_pair.query.eval_transform(tiny_pair.query.hf_dataset[i]["image"])
                          for i in range(len(tiny_pair.query))])
    with torch.no_grad():
        expected = F.normalize(backbone(images), dim=1).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    assert not any(tmp_path.iterdir())  # nothing to train, nothing to save
    assert method.describe()["training"] == "none"


def test_head_embedding_needs_checkpoint_head_weights() -> None:
    with pytest.raises(ConfigError, match="embedding='head' needs a backbone checkpoint"):
        build(METHODS, dict(type="pretrained", backbone=dict(type="small_cnn"), embedding="head"), "m")


def test_head_embedding_with_a_moco_checkpoint(tiny_pair, tmp_path) -> None:
    torch.manual_seed(0)
    trunk = ResNet18().trunk.state_dict()
    head = {"fc.0.weight": torch.randn(512, 512), "fc.0.bias": torch.zeros(512),
            "fc.2.weight": torch.randn(128, 512), "fc.2.bias": torch.zeros(128)}
    checkpoint = tmp_path / "moco.pth.tar"
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in {**trunk, **head}.items()}},
               checkpoint)
    backbone = dict(type="resnet18", in_channels=1, checkpoint=str(checkpoint))
    method = build(METHODS, dict(type="pretrained", embedding="head", backbone=backbone), "m")
    features = method.embed(tiny_pair.gallery)
    assert features.shape == (len(tiny_pair.gallery), 128)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    info = method.describe()
    assert info["head_loaded_from_checkpoint"] and info["checkpoint"]["first_conv_adapted"]
