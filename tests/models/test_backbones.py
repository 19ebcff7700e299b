"""Backbones: output shapes, channel adaptation and checkpoint loading (MoCo-v2, torchvision)."""
from __future__ import annotations

import logging

import pytest
import torch

from u2cdr.models.encoder import Encoder
from u2cdr.models.resnet import ResNet18, ResNet50
from u2cdr.registry import BACKBONES, ConfigError, build, registered_names


def test_registered_backbone_names() -> None:
    assert {"small_cnn", "resnet18", "resnet50"} <= set(registered_names(BACKBONES))


@pytest.mark.parametrize("in_channels", [1, 3])
def test_small_cnn_pools_to_four_times_width(in_channels: int) -> None:
    backbone = build(BACKBONES, dict(type="small_cnn", in_channels=in_channels, width=8), "b")
    features = backbone(torch.randn(5, in_channels, 28, 28))
    assert backbone.out_dim == 32
    assert features.shape == (5, 32)


@pytest.mark.parametrize("cls, in_channels, out_dim", [(ResNet18, 1, 512), (ResNet18, 3, 512),
                                                       (ResNet50, 1, 2048), (ResNet50, 3, 2048)])
def test_resnet_returns_pooled_features(cls: type, in_channels: int, out_dim: int) -> None:
    backbone = cls(in_channels=in_channels).eval()
    assert backbone.trunk.conv1.in_channels == in_channels
    assert backbone.out_dim == out_dim
    assert backbone(torch.randn(2, in_channels, 32, 32)).shape == (2, out_dim)


def test_bad_in_channels_is_named() -> None:
    with pytest.raises(ConfigError, match=r"in_channels=2 .*valid: \(1, 3\)"):
        build(BACKBONES, dict(type="resnet18", in_channels=2), "method.backbone")


def _moco_checkpoint(path, query_trunk: dict, low_dim: int = 16) -> dict:
    """A MoCo-v2-shaped file: query and key encoders under ``module.``, MLP head in ``fc``."""
    generator = torch.Generator().manual_seed(0)
    shapes = {"fc.0.weight": (512, 512), "fc.0.bias": (512,), "fc.2.weight": (low_dim, 512),
              "fc.2.bias": (low_dim,)}
    head = {key: torch.randn(shape, generator=generator) for key, shape in shapes.items()}
    state = {f"module.encoder_q.{key}": value for key, value in {**query_trunk, **head}.items()}
    state.update({f"module.encoder_k.{key}": torch.zeros_like(value) for key, value in query_trunk.items()})
    state["module.queue"] = torch.randn(low_dim, 64)
    torch.save({"epoch": 800, "arch": "resnet18", "state_dict": state, "optimizer": {}}, path)
    return head


def _random_trunk_state(seed: int) -> dict:
    torch.manual_seed(seed)
    return {key: value.clone() for key, value in ResNet18().trunk.state_dict().items()}


def test_moco_checkpoint_strips_prefix_and_loads_mlp_head(tmp_path, caplog) -> None:
    path = tmp_path / "moco_v2.pth.tar"
    query_trunk = _random_trunk_state(seed=1)
    head = _moco_checkpoint(path, query_trunk)
    torch.manual_seed(2)
    with caplog.at_level(logging.INFO, logger="u2cdr"):
        backbone = build(BACKBONES, dict(type="resnet18", checkpoint=str(path)), "b")
    loaded = backbone.trunk.state_dict()
    for key in ("conv1.weight", "layer4.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        assert torch.equal(loaded[key], query_trunk[key]), key  # encoder_q, not the zero encoder_k
    assert backbone.checkpoint_report["format"] == "moco"
    assert backbone.checkpoint_report["missing_keys"] == []
    assert backbone.checkpoint_report["unexpected_keys"] == []
    assert "missing keys: none" in caplog.text and "unexpected keys: none" in caplog.text

    encoder = Encoder(backbone, head="mlp", low_dim=16)
    assert encoder.head_loaded
    assert torch.equal(encoder.head.layers[0].weight, head["fc.0.weight"])
    assert torch.equal(encoder.head.layers[2].bias, head["fc.2.bias"])
    # A head of another width must not be half-loaded.
    assert not Encoder(backbone, head="mlp", low_dim=128).head_loaded
    assert not Encoder(backbone, head="linear", low_dim=16).head_loaded


def test_torchvision_state_dict_drops_classifier_and_adapts_first_conv(tmp_path) -> None:
    trunk = _random_trunk_state(seed=3)
    plain = {**trunk, "fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}
    path = tmp_path / "resnet18.pth"
    torch.save(plain, path)
    backbone = ResNet18(in_channels=1, checkpoint=str(path))
    assert backbone.checkpoint_report["format"] == "plain"
    assert backbone.checkpoint_report["first_conv_adapted"]
    # One grey channel = the sum of the RGB kernels: same response as the grey image as RGB.
    assert torch.allclose(backbone.trunk.conv1.weight, trunk["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(backbone.trunk.layer3[0].conv2.weight, trunk["layer3.0.conv2.weight"])
    assert not Encoder(backbone, head="mlp").head_loaded  # a 1000-way classifier is not a head

    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": plain, "epoch": 3}, wrapped)
    assert torch.equal(ResNet18(checkpoint=str(wrapped)).trunk.conv1.weight, trunk["conv1.weight"])


def test_partial_checkpoint_reports_missing_keys(tmp_path, caplog) -> None:
    trunk = _random_trunk_state(seed=4)
    del trunk["layer4.1.conv2.weight"]
    path = tmp_path / "partial.pth"
    torch.save(trunk, path)
    with caplog.at_level(logging.INFO, logger="u2cdr"):
        backbone = ResNet18(checkpoint=str(path))
    assert backbone.checkpoint_report["missing_keys"] == ["layer4.1.conv2.weight"]
    assert "layer4.1.conv2.weight" in caplog.text


def test_missing_checkpoint_file_is_a_clear_error(tmp_path) -> None:
    missing = tmp_path / "nowhere" / "moco.pth.tar"
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ResNet50(checkpoint=str(missing))


def test_checkpoint_of_another_model_is_refused(tmp_path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="has no key of this ResNet"):
        ResNet18(checkpoint=str(path))
    resnet50_state = tmp_path / "r50.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)},
               resnet50_state)
    with pytest.raises(ValueError, match="shape mismatch"):
        ResNet18(checkpoint=str(resnet50_state))
