"""Transforms: any PIL mode in, normalised float tensors of the configured shape out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from u2cdr.data.digits import DigitsDataset
from u2cdr.data.hf_loader import OfficeHome
from u2cdr.data.transforms import ToChannels, TransformConfig, build_transforms


def images_of_every_mode() -> dict[str, Image.Image]:
    rgb = Image.fromarray(np.arange(40 * 30 * 3, dtype=np.uint8).reshape(30, 40, 3))
    return {"L": rgb.convert("L"), "RGB": rgb, "RGBA": rgb.convert("RGBA"),
            "CMYK": rgb.convert("CMYK"), "P": rgb.convert("P"), "LA": rgb.convert("LA"),
            "1": rgb.convert("1"),
            "I;16": Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)}


@pytest.mark.parametrize("mode", list(images_of_every_mode()))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_becomes_the_configured_channels(mode: str, channels: int) -> None:
    torch.manual_seed(0)
    config = TransformConfig(image_size=16, channels=channels, mean=(0.5,) * channels,
                             std=(0.5,) * channels, augmentation="moco_v2")
    image = images_of_every_mode()[mode]
    for transform in build_transforms(config):
        tensor = transform(image)
        assert tensor.dtype == torch.float32 and tensor.shape == (channels, 16, 16)
        assert tensor.min() >= -1.0 and tensor.max() <= 1.0


def test_transparent_pixels_become_the_background() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert np.asarray(ToChannels(3, background=255)(rgba)).tolist() == [[[255] * 3] * 4] * 4
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([0, 255, 0] + [0] * 765)
    palette.info["transparency"] = 0
    assert np.asarray(ToChannels(1, background=0)(palette)).max() == 0


def test_sixteen_bit_images_are_rescaled_not_clipped() -> None:
    image = Image.fromarray(np.array([[0, 30000], [60000, 65535]], dtype=np.uint16))
    assert np.asarray(ToChannels(1)(image)).tolist() == [[0, 117], [233, 255]]


def test_digits_eval_transform_is_resize_and_normalise_with_mean_std_half() -> None:
    _, eval_transform = DigitsDataset().transforms()
    image = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).resize((28, 28))
    tensor = eval_transform(image)
    assert tensor.shape == (1, 28, 28)
    assert tensor[0, 0, 0].item() == -1.0 and tensor[0, 0, 27].item() == 1.0  # (x − 0.5) / 0.5


def test_photo_eval_is_resize_then_center_crop_and_train_augments() -> None:
    train, eval_transform = OfficeHome(image_size=32).transforms()
    # A 64×40 image with a bright band only in the outer 8 columns of each side.
    pixels = np.zeros((40, 64, 3), dtype=np.uint8)
    pixels[:, :8] = pixels[:, -8:] = 255
    image = Image.fromarray(pixels)
    crop = eval_transform(image)
    assert crop.shape == (3, 32, 32)
    # Resize(round(32·256/224)=37) gives 59×37; the centre 32 columns exclude the bands.
    assert torch.allclose(crop, eval_transform(image))
    assert crop.max().item() < 0  # all black after ImageNet normalisation
    torch.manual_seed(0)
    assert not torch.allclose(train(image), train(image))


def test_transform_config_refuses_bad_values_with_valid_choices() -> None:
    with pytest.raises(ValueError,
                       match="unknown augmentation 'simclr'; valid choices: digits, moco_v2, none"):
        DigitsDataset(augmentation="simclr")
    with pytest.raises(ValueError, match="mean has 3 value"):
        DigitsDataset(mean=[0.1, 0.2, 0.3])
    assert DigitsDataset(channels=3).transform_config.mean == (0.5, 0.5, 0.5)
    grey_std = OfficeHome(channels=1).transform_config.std
    assert grey_std == (pytest.approx((0.229 + 0.224 + 0.225) / 3),)
