"""What one table cell shows: formatted numbers, their emphasis and footnote markers.

Emphasis is decided on the *rounded* means, the numbers a reader sees: two methods shown as
50.1 tie for best even when their raw means are 50.06 and 50.11 (pandas ``highlight_max``
compares the raw floats and would bold only one; harness-lessons §G).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Literal, Mapping, TypeVar

Emphasis = Literal["best", "second"]
MISSING = "–"
NOT_RUN = "n/a"
DECIMALS = 1
Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Part:
    """One number (or placeholder) of a cell; open-set cells hold two: mAP and Acc."""

    text: str
    emphasis: Emphasis | None = None


@dataclass(frozen=True)
class Cell:
    """A cell's parts (joined by " / ") and the letters of the footnotes it carries."""

    parts: tuple[Part, ...]
    markers: tuple[str, ...] = ()

    @classmethod
    def of(cls, text: str, markers: tuple[str, ...] = ()) -> "Cell":
        return cls((Part(text),), markers)

    def plain(self) -> str:
        """The cell as plain text, markers as ``^a,b``."""
        text = " / ".join(part.text for part in self.parts)
        return f"{text}^{','.join(self.markers)}" if self.markers else text


def _present(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def format_number(value: float, decimals: int = DECIMALS) -> str:
    """``value`` with ``decimals`` places; ``-0.0`` prints as ``0.0``."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def format_mean_std(mean: float | None, std: float | None = None,
                    decimals: int = DECIMALS) -> str:
    """``mean±std``; the mean alone when there is no std (one seed); ``–`` when no mean."""
    if not _present(mean):
        return MISSING
    if not _present(std):
        return format_number(mean, decimals)
    return f"{format_number(mean, decimals)}±{format_number(std, decimals)}"


def format_delta(delta: float | None, decimals: int = DECIMALS) -> str:
    """A signed difference, ``+1.3`` / ``−0.4`` (Unicode minus), ``–`` when absent."""
    if not _present(delta):
        return MISSING
    text = format_number(abs(delta), decimals)
    if float(text) == 0:
        return text
    return f"+{text}" if delta > 0 else f"−{text}"


def rounded(value: float, decimals: int = DECIMALS) -> float:
    """The number a reader sees: ``value`` rounded exactly as ``format_number`` prints it."""
    return float(format_number(value, decimals))


def rank_emphasis(means: Mapping[Key, float | None], *, lower_is_better: bool = False,
                  decimals: int = DECIMALS) -> dict[Key, Emphasis]:
    """Best and second-best entries of one column, compared on rounded means.

    Every entry equal to the best rounded value is "best"; every entry equal to the next
    distinct rounded value is "second". Nothing is marked when fewer than two entries
    compete, since a lone number is not a ranking.
    """
    shown = {key: rounded(value, decimals) for key, value in means.items() if _present(value)}
    if len(shown) < 2:
        return {}
    levels = sorted(set(shown.values()), reverse=not lower_is_better)
    emphasis: dict[Key, Emphasis] = {}
    for key, value in shown.items():
        if value == levels[0]:
            emphasis[key] = "best"
        elif len(levels) > 1 and value == levels[1]:
            emphasis[key] = "second"
    return emphasis
