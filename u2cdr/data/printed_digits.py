"""A SynDigits-style synthetic domain: digits 0–9 rendered from fonts that ship with matplotlib.

Like SynDigits (Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by
Backpropagation"), printed digits differ from handwriting in style while sharing the classes,
which makes a third, offline digit domain. Each image follows MNIST's framing (LeCun et al.
1998): the glyph is scaled so its longer side is 20 px and centred by centre of mass in a
28×28 frame, white on black; a random affine (font, rotation, shear, scale, shift), drawn from
a seeded ``numpy`` Generator, varies every sample. Rendering is done at 4× resolution and
box-filtered down, which anti-aliases the strokes like MNIST's grey edges.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Fonts with plain Arabic-numeral glyphs (cmmi10 has old-style figures, cmex10/cmsy10 and the
# STIX size variants have no digits, the Display faces are empty), covering sans, serif, mono,
# bold and italic styles.
PRINTED_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf",
)
IMAGE_SIDE = 28
GLYPH_BOX = 20  # MNIST: the digit's bounding box is normalised to 20×20 inside 28×28
SUPERSAMPLE = 4
MAX_ROTATION_DEG = 15.0
MAX_SHEAR = 0.25
SCALE_RANGE = (0.8, 1.05)
MAX_SHIFT_PX = 2.0  # at 28 px


def font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def available_fonts() -> list[str]:
    """The members of ``PRINTED_FONTS`` present in this matplotlib install."""
    fonts = [name for name in PRINTED_FONTS if (font_dir() / name).is_file()]
    if not fonts:
        raise FileNotFoundError(f"none of the fonts {', '.join(PRINTED_FONTS)} is in {font_dir()}; "
                                f"the printed digits domain needs matplotlib's bundled fonts")
    return fonts


@functools.lru_cache(maxsize=None)
def _glyph(font_name: str, digit: int) -> tuple[Image.Image, float, float]:
    """The digit rendered large, cropped to its ink, with its centre of mass ``(x, y)``."""
    font = ImageFont.truetype(os.fspath(font_dir() / font_name), size=GLYPH_BOX * SUPERSAMPLE * 2)
    canvas = Image.new("L", (GLYPH_BOX * SUPERSAMPLE * 4,) * 2, 0)
    ImageDraw.Draw(canvas).text((GLYPH_BOX * SUPERSAMPLE, GLYPH_BOX * SUPERSAMPLE // 2), str(digit),
                                fill=255, font=font)
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"font {font_name} has no glyph for {digit}")
    glyph = canvas.crop(box)
    ink = np.asarray(glyph, dtype=np.float64)
    rows, cols = np.indices(ink.shape)
    return glyph, float((cols * ink).sum() / ink.sum()), float((rows * ink).sum() / ink.sum())


def render_digit(digit: int, font_name: str, rotation_deg: float, shear: float, scale: float,
                 shift: tuple[float, float]) -> np.ndarray:
    """One ``[28, 28]`` uint8 image: the glyph under the given affine, MNIST-framed."""
    glyph, centre_x, centre_y = _glyph(font_name, digit)
    side = IMAGE_SIDE * SUPERSAMPLE
    size = scale * GLYPH_BOX * SUPERSAMPLE / max(glyph.size)
    angle = np.deg2rad(rotation_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = rotation @ np.array([[1.0, shear], [0.0, 1.0]]) * size  # glyph px → output px
    target_centre = np.array([side / 2 + shift[0] * SUPERSAMPLE, side / 2 + shift[1] * SUPERSAMPLE])
    inverse = np.linalg.inv(forward)
    # PIL's AFFINE maps each output pixel back to the input: x_in = A⁻¹(x_out − c_out) + c_in.
    offset = np.array([centre_x, centre_y]) - inverse @ target_centre
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0],
                    inverse[1, 0], inverse[1, 1], offset[1])
    large = glyph.transform((side, side), Image.Transform.AFFINE, coefficients,
                            resample=Image.Resampling.BILINEAR, fillcolor=0)
    return np.asarray(large.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX), dtype=np.uint8)


def render_printed_digits(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images [10·per_class, 28, 28] uint8, labels [10·per_class] int64)``, class-major.

    Deterministic for ``seed``: every random choice comes from one ``default_rng(seed)`` in a
    fixed order.
    """
    if per_class < 1:
        raise ValueError(f"printed_per_class must be >= 1, got {per_class}")
    fonts = available_fonts()
    rng = np.random.default_rng(seed)
    images = np.empty((10 * per_class, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.int64), per_class)
    for index, digit in enumerate(labels):
        images[index] = render_digit(
            int(digit), fonts[rng.integers(len(fonts))],
            rotation_deg=rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG),
            shear=rng.uniform(-MAX_SHEAR, MAX_SHEAR),
            scale=rng.uniform(*SCALE_RANGE),
            shift=(rng.uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX),
                   rng.uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX)))
    return images, labels
