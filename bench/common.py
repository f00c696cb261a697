"""Shared pieces of the benchmarks: figures, medians, percentiles."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One measured number, with what it is compared to and how it was made."""

    id: str
    name: str
    value: float | None
    unit: str
    command: str
    runs: list[float] = field(default_factory=list)
    target: str | None = None  # e.g. ">= 100000", "<= 24576"
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def meets_target(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        op, _, limit = self.target.partition(" ")
        bound = float(limit)
        return {
            ">=": self.value >= bound,
            ">": self.value > bound,
            "<=": self.value <= bound,
            "<": self.value < bound,
        }[op]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["meets_target"] = self.meets_target
        d["median_of"] = len(self.runs)
        return d


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), nearest-rank on the sorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def repeat(fn: Callable[[], float], times: int) -> list[float]:
    return [fn() for _ in range(times)]


def bench_command(name: str, quick: bool = False) -> str:
    return f"python -m bench --only {name}" + (" --quick" if quick else "")
