"""Fourier phase/amplitude augmentation across domains (DG-UCDIR: Hu, Zhang, Lee, ICCV 2023).

The amplitude spectrum of an image carries mostly style (colour, texture, contrast) and the
phase carries structure (edges, shape). DG-UCDIR therefore trains on two derived views:

- a *mixed* view: the image's amplitude interpolated with a random image's amplitude (any
  training domain), and its low-frequency phase nudged toward that image's phase, so style
  varies across domains while the object stays put (``amplitude_phase_mix``);
- a *phase* view: the grey image rebuilt from its phase alone with a constant amplitude, a
  style-free edge map (``phase_only``).

DG-UCDIR works on uint8 PIL images in its data loader; here both operate on batches of
normalised tensors (after the dataset's train transform), so they run on whatever device the
model uses and need no second image loader. Values are clipped to each image's own value range
(DG-UCDIR clips to the 0–255 pixel range, which normalised tensors no longer carry).
"""
from __future__ import annotations

import math

import torch
from torch import nn

# ITU-R 601 luma weights, as PIL's convert('L') used by DG-UCDIR for the phase view.
_LUMA = (0.299, 0.587, 0.114)
# DG-UCDIR rebuilds the phase view with amplitude 50000 on 224×224 images; by Parseval its
# pixels then have an RMS of 50000/224 ≈ 223 grey levels, i.e. 0.875 of the 0–255 range.
DGDIR_PHASE_GAIN = 50000 / 224 / 255
# DG-UCDIR mixes phase inside a centred 50×50 window of the 224×224 spectrum (--hpf_range 50).
DGDIR_PHASE_WINDOW = 50 / 224


def _value_range(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel minimum and maximum, each ``[N, C, 1, 1]``."""
    return images.amin(dim=(2, 3), keepdim=True), images.amax(dim=(2, 3), keepdim=True)


def low_frequency_mask(height: int, width: int, window: float,
                       device: torch.device | None = None) -> torch.Tensor:
    """``[H, W]`` bool, True on the centred ``round(window·H) × round(window·W)`` block of the
    *shifted* spectrum (lowest frequencies), returned in unshifted ``fft2`` order."""
    if not 0.0 <= window <= 1.0:
        raise ValueError(f"phase window must be a fraction of the image side in [0, 1], got "
                         f"{window}")
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    rows, cols = round(window * height), round(window * width)
    top, left = round((height - rows) / 2), round((width - cols) / 2)
    mask[top:top + rows, left:left + cols] = True
    return torch.fft.ifftshift(mask, dim=(0, 1))


def amplitude_phase_mix(images: torch.Tensor, partners: torch.Tensor,
                        amplitude_ratio: torch.Tensor, phase_ratio: torch.Tensor,
                        phase_window: float = DGDIR_PHASE_WINDOW) -> torch.Tensor:
    r"""DG-UCDIR's ``colorful_spectrum_mix`` on ``[N, C, H, W]`` batches.

    .. math::
        |\hat x'| = (1-\lambda)|\hat x| + \lambda|\hat y|, \qquad
        \angle \hat x' = \begin{cases} (1-\mu)\angle\hat x + \mu\angle\hat y & \text{low freq.} \\
                                       \angle \hat x & \text{otherwise} \end{cases}

        x' = \operatorname{clip}(\operatorname{Re} \mathcal F^{-1}(|\hat x'| e^{i\angle\hat x'}))

    per channel, with ``λ = amplitude_ratio`` and ``μ = phase_ratio`` per image (``[N]``), the
    low frequencies a centred block of side ``phase_window`` × the image side, and the clip to
    the union of both images' value ranges. Phases are interpolated as plain numbers, as
    DG-UCDIR does (no wrap-around).
    """
    if images.shape != partners.shape or images.ndim != 4:
        raise ValueError(f"images and partners must both be [N, C, H, W] of one shape, got "
                         f"{tuple(images.shape)} and {tuple(partners.shape)}")
    spectrum, partner_spectrum = torch.fft.fft2(images), torch.fft.fft2(partners)
    lam = amplitude_ratio.to(images).view(-1, 1, 1, 1)
    mu = phase_ratio.to(images).view(-1, 1, 1, 1)
    amplitude = (1 - lam) * spectrum.abs() + lam * partner_spectrum.abs()
    phase, partner_phase = spectrum.angle(), partner_spectrum.angle()
    low = low_frequency_mask(images.shape[2], images.shape[3], phase_window, images.device)
    mixed_phase = torch.where(low, (1 - mu) * phase + mu * partner_phase, phase)
    mixed = torch.fft.ifft2(torch.polar(amplitude, mixed_phase)).real
    low_a, high_a = _value_range(images)
    low_b, high_b = _value_range(partners)
    return torch.minimum(torch.maximum(mixed, torch.minimum(low_a, low_b)),
                         torch.maximum(high_a, high_b))


def phase_only(images: torch.Tensor, gain: float = DGDIR_PHASE_GAIN) -> torch.Tensor:
    r"""DG-UCDIR's phase view: the grey image rebuilt from its Fourier phase alone.

    .. math::
        z = \sqrt{HW}\, \operatorname{Re}\, \mathcal F^{-1}\!\big(e^{i\angle \hat g}\big), \qquad
        x' = \ell + (h-\ell)\operatorname{clip}_{[0,1]}(\text{gain}\cdot z)

    ``g`` is the luma of each image shifted to a zero minimum (so its mean is non-negative, as
    for uint8 pixels), ``z`` has unit RMS (Parseval), and ``ℓ, h`` are the image's own value
    range per channel; the grey result is repeated over the channels. ``gain`` 0.875
    reproduces DG-UCDIR's constant amplitude of 50000 at 224×224, clipped to 0–255.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1 or 3, H, W], got {tuple(images.shape)}")
    if gain <= 0:
        raise ValueError(f"phase gain must be > 0, got {gain}")
    if images.shape[1] == 3:
        grey = sum(weight * images[:, channel] for channel, weight in enumerate(_LUMA))
    else:
        grey = images[:, 0]
    grey = grey - grey.amin(dim=(1, 2), keepdim=True)
    height, width = grey.shape[1:]
    unit_amplitude = torch.polar(torch.ones_like(grey), torch.fft.fft2(grey).angle())
    structure = torch.fft.ifft2(unit_amplitude).real * math.sqrt(height * width)
    low, high = _value_range(images)
    return low + (high - low) * (gain * structure).clamp(0.0, 1.0).unsqueeze(1)


class FourierMix(nn.Module):
    """Draws DG-UCDIR's random mixing partners and ratios for a batch.

    Partners come from the same batch, which holds both training domains (DG-UCDIR draws
    them from the whole training set of all domains; in-batch draws avoid a second loader).
    Random numbers come from torch's global generator, which the trainer checkpoints.

    Args:
        amplitude_alpha: λ ~ U(0, amplitude_alpha) (``--aug_alpha``, 1.0).
        phase_alpha: μ ~ U(0, phase_alpha) (``--hpf_alpha``, 0.4 in the script).
        phase_window: side of the mixed low-frequency block as a fraction of the image side
            (``--hpf_range`` 50 of 224).
        phase_gain: contrast of the phase view (see ``phase_only``).
    """

    def __init__(self, amplitude_alpha: float = 1.0, phase_alpha: float = 0.4,
                 phase_window: float = DGDIR_PHASE_WINDOW,
                 phase_gain: float = DGDIR_PHASE_GAIN) -> None:
        super().__init__()
        for name, value in (("amplitude_alpha", amplitude_alpha), ("phase_alpha", phase_alpha)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        low_frequency_mask(4, 4, phase_window)  # validates the window
        if phase_gain <= 0:
            raise ValueError(f"phase_gain must be > 0, got {phase_gain}")
        self.amplitude_alpha = amplitude_alpha
        self.phase_alpha = phase_alpha
        self.phase_window = phase_window
        self.phase_gain = phase_gain

    def mix(self, images: torch.Tensor) -> torch.Tensor:
        """The mixed view of every image of ``images`` ``[N, C, H, W]``."""
        count = len(images)
        partners = images[torch.randint(count, (count,)).to(images.device)]
        amplitude_ratio = torch.rand(count) * self.amplitude_alpha
        phase_ratio = torch.rand(count) * self.phase_alpha
        return amplitude_phase_mix(images, partners, amplitude_ratio, phase_ratio,
                                   self.phase_window)

    def phase(self, images: torch.Tensor) -> torch.Tensor:
        """The phase view of every image of ``images``."""
        return phase_only(images, self.phase_gain)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixed, phase)`` views of ``images``."""
        return self.mix(images), self.phase(images)
