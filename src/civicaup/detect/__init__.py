"""Content detectors: lexicons and patterns that turn text into :class:`Hit` s.

The decision engine maps hit categories to the clauses of a city's acceptable-use
policy; this package only detects. Entry points: :func:`scan_text`,
:func:`normalise`, :data:`DETECTORS`, :func:`has_disclaimer`;
:func:`scan_all` and :func:`select` split :func:`scan_text` in two (all hits, then the ones that count);
:func:`scan_many` is :func:`scan_text` for many texts at once (posts and comments in bulk), and
:func:`prepared` lets code that judges texts one at a time have them scanned in one batch first.
"""

from __future__ import annotations

from .hit import CATEGORIES, Detector, Hit
from .normalise import Normalised, normalise, normalise_text
from .prepared import prepared
from .registry import (DEFAULT_DETECTION, DETECTORS, Setting, scan_all, scan_all_many, scan_many, scan_text, select,
                       warm_up)
from .statements import has_disclaimer

__all__ = [
    "CATEGORIES",
    "DEFAULT_DETECTION",
    "DETECTORS",
    "Detector",
    "Hit",
    "Normalised",
    "has_disclaimer",
    "normalise",
    "normalise_text",
    "prepared",
    "scan_all",
    "scan_all_many",
    "scan_many",
    "scan_text",
    "select",
    "Setting",
    "warm_up",
]
