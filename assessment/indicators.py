"""The indicators of the assessment, each defined once as data (``data/indicators.json``): code,
names, a formula over the counters of ``assessment.facts`` and the definition shown in the UI.

``evaluate`` turns the counters' totals for a unit and period into values with numerator and
denominator; a rate or average without a denominator is None (shown "—"), never 0 or 100%.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assessment.facts import AMOUNTS, COUNTERS, MOMENT_COUNTERS

DATA = Path(__file__).parent / "data" / "indicators.json"
KNOWN_COUNTERS = (*COUNTERS, *AMOUNTS, *MOMENT_COUNTERS)


@dataclass(frozen=True)
class IndicatorDef:
    """One indicator: ``rate`` = numerator / denominator, ``count`` = numerator, ``average`` = the sum
    of an amount over the subjects that have it."""

    code: str
    name_zh: str
    name_en: str
    kind: Literal["rate", "count", "average"]
    numerator: str
    denominator: str | None
    better: Literal["higher", "lower"]
    definition_zh: str
    definition_en: str

    def name(self, lang: str) -> str:
        """The name in ``lang``."""
        return self.name_en if lang == "en" else self.name_zh

    def definition(self, lang: str) -> str:
        """The definition in ``lang``."""
        return self.definition_en if lang == "en" else self.definition_zh


@dataclass(frozen=True)
class Value:
    """An indicator's value for a unit and period, with what it is made of."""

    value: float | None
    numerator: float
    denominator: float | None


@dataclass(frozen=True)
class Total:
    """A counter's total over a unit and period: how many subjects count, and the sum of their amounts."""

    n: int = 0
    amount: float = 0.0


def load(path: Path = DATA) -> tuple[IndicatorDef, ...]:
    """The indicators of ``path``, checked: known kinds and counters, unique codes."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    defs = tuple(IndicatorDef(**item) for item in raw["indicators"])
    problems = []
    seen: set[str] = set()
    for d in defs:
        if d.code in seen:
            problems.append(f"{d.code}: defined twice")
        seen.add(d.code)
        if d.kind not in ("rate", "count", "average"):
            problems.append(f"{d.code}: unknown kind {d.kind!r}")
        for counter in (d.numerator, d.denominator):
            if counter is not None and counter not in KNOWN_COUNTERS:
                problems.append(f"{d.code}: unknown counter {counter!r}")
        if (d.kind == "rate") != (d.denominator is not None):
            problems.append(f"{d.code}: a rate, and only a rate, has a denominator")
        if d.kind == "average" and d.numerator not in AMOUNTS:
            problems.append(f"{d.code}: an average is over an amount ({', '.join(AMOUNTS)})")
    if problems:
        raise ValueError("; ".join(problems))
    return defs


INDICATORS: tuple[IndicatorDef, ...] = load()
BY_CODE: dict[str, IndicatorDef] = {d.code: d for d in INDICATORS}
#: Every counter some indicator reads (the drill-down lists exist for these).
USED_COUNTERS: tuple[str, ...] = tuple(dict.fromkeys(
    c for d in INDICATORS for c in (d.numerator, d.denominator) if c is not None))


def counters_for(codes: Iterable[str]) -> tuple[str, ...]:
    """The counters the indicators ``codes`` read."""
    return tuple(dict.fromkeys(c for code in codes for c in (BY_CODE[code].numerator, BY_CODE[code].denominator)
                               if c is not None))


def evaluate(totals: Mapping[str, Total], codes: Iterable[str] | None = None) -> dict[str, Value]:
    """Every indicator (or those of ``codes``) from the counters' ``totals`` (missing counters are zero)."""
    out: dict[str, Value] = {}
    wanted = None if codes is None else set(codes)
    for d in INDICATORS:
        if wanted is not None and d.code not in wanted:
            continue
        num = totals.get(d.numerator, Total())
        if d.kind == "count":
            out[d.code] = Value(value=float(num.n), numerator=float(num.n), denominator=None)
        elif d.kind == "average":
            out[d.code] = Value(value=round(num.amount / num.n, 4) if num.n else None, numerator=round(num.amount, 4),
                                denominator=float(num.n))
        else:
            den = totals.get(d.denominator or "", Total()).n
            out[d.code] = Value(value=num.n / den if den else None, numerator=float(num.n), denominator=float(den))
    return out
