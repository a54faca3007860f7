"""Small summaries of timing samples."""

from __future__ import annotations

import statistics

import numpy as np


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated; NaN for no samples."""
    return float(np.percentile(values, q)) if values else float("nan")
