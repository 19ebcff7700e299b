"""Fourier phase/amplitude views of DG-UCDIR: hand-computed cases and invariants."""
from __future__ import annotations

import pytest
import torch

from u2cdr.models.fourier_mix import (DGDIR_PHASE_GAIN, FourierMix, amplitude_phase_mix,
                                      low_frequency_mask, phase_only)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _images(count: int = 3, channels: int = 1, size: int = 8) -> torch.Tensor:
    return torch.rand(count, channels, size, size) * 2 - 1


def test_low_frequency_block_is_centred_on_dc() -> None:
    mask = low_frequency_mask(28, 28, 50 / 224)          # round(6.25) = 6 → a 6×6 block
    assert int(mask.sum()) == 36
    assert bool(mask[0, 0])                               # DC (unshifted index 0)
    assert bool(mask[1, 1]) and bool(mask[-3, -3]) and not bool(mask[3, 0])
    assert not low_frequency_mask(8, 8, 0.0).any()
    assert low_frequency_mask(8, 8, 1.0).all()
    with pytest.raises(ValueError, match="fraction of the image side"):
        low_frequency_mask(8, 8, 1.5)


def test_zero_ratios_give_the_image_back() -> None:
    images, partners = _images(), _images()
    mixed = amplitude_phase_mix(images, partners, torch.zeros(3), torch.zeros(3), 0.5)
    assert torch.allclose(mixed, images, atol=1e-5)


def test_full_ratios_over_the_whole_spectrum_give_the_partner() -> None:
    images, partners = _images(channels=3), _images(channels=3)
    mixed = amplitude_phase_mix(images, partners, torch.ones(3), torch.ones(3), 1.0)
    assert torch.allclose(mixed, partners, atol=1e-5)


def test_amplitude_only_mix_keeps_the_phase() -> None:
    images, partners = _images(), _images()
    ratio = torch.full((3,), 0.5)
    mixed = amplitude_phase_mix(images, partners, ratio, torch.zeros(3), 0.5)
    # Before clipping the spectrum is ½|x̂|+½|ŷ| with x̂'s phase; compare where no clip happened.
    expected = torch.fft.ifft2(torch.polar(0.5 * torch.fft.fft2(images).abs()
                                           + 0.5 * torch.fft.fft2(partners).abs(),
                                           torch.fft.fft2(images).angle())).real
    inside = (expected > torch.minimum(images.amin((2, 3), True), partners.amin((2, 3), True))) & \
             (expected < torch.maximum(images.amax((2, 3), True), partners.amax((2, 3), True)))
    assert inside.float().mean() > 0.5
    assert torch.allclose(mixed[inside], expected[inside], atol=1e-5)


def test_phase_view_of_hand_computed_signals() -> None:
    # A delta has a flat spectrum with zero phase: it stays a delta (clipped to the range).
    delta = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 1, 4)
    assert torch.allclose(phase_only(delta), delta, atol=1e-6)
    # The symmetric bump (2, 1, 0, 1) has spectrum (4, 2, 0, 2): all phases 0, so the
    # unit-amplitude rebuild is the delta 2·(1, 0, 0, 0), clipped to 1 and mapped onto [0, 2].
    bump = torch.tensor([2.0, 1.0, 0.0, 1.0]).view(1, 1, 1, 4)
    assert torch.allclose(phase_only(bump), torch.tensor([2.0, 0.0, 0.0, 0.0]).view(1, 1, 1, 4),
                          atol=1e-6)


def test_phase_view_ignores_contrast() -> None:
    images = _images(size=12)
    low = images.amin((2, 3), True)
    stretched = low + 3.0 * (images - low)                # same phase, 3× the amplitude
    views = phase_only(images), phase_only(stretched)
    spans = images.amax((2, 3), True) - low, stretched.amax((2, 3), True) - low
    assert torch.allclose((views[0] - low) / spans[0], (views[1] - low) / spans[1], atol=1e-5)


def test_phase_view_repeats_the_grey_result_over_colour_channels() -> None:
    view = phase_only(_images(channels=3), DGDIR_PHASE_GAIN)
    assert view.shape == (3, 3, 8, 8)
    normalised = (view - view.amin((2, 3), True)) / (view.amax((2, 3), True)
                                                     - view.amin((2, 3), True))
    assert torch.allclose(normalised[:, 0], normalised[:, 2], atol=1e-5)
    with pytest.raises(ValueError, match="gain must be > 0"):
        phase_only(_images(), gain=0.0)


def test_fourier_mix_is_reproducible_and_validates() -> None:
    images = _images(count=4)
    torch.manual_seed(3)
    first = FourierMix()(images)
    torch.manual_seed(3)
    second = FourierMix()(images)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert first[0].shape == first[1].shape == images.shape
    with pytest.raises(ValueError, match="amplitude_alpha"):
        FourierMix(amplitude_alpha=2.0)
