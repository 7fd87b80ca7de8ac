"""Benchmark of the routing engine (rules.engine.RoutingEngine): latency, throughput and memory.

Run from the repository root::

    .venv/bin/python bench/rules_bench.py [--decisions N] [--reloads M] [--check]

Phases (progress on stderr, results as tables on stdout):

1. ``RoutingEngine(shipped list).decide`` over N pre-generated, varied facts, each call timed with
   ``time.perf_counter_ns``.
2. A baseline in the same run: a plain dict lookup category code -> precomputed decision, copied.
3. M reloads (a new engine from the same list serves a few decisions, the old one is released and
   ``gc.collect()`` runs), RSS after each. "As shipped" releases the old engine the way the engine
   allows: ``close()`` if it has one, otherwise by dropping the last reference.
4. Two diagnostic series that free the old engine's native durable-rules memory from outside
   (``delete_ruleset`` only; ``delete_state`` + ``delete_ruleset``), to show what a fix must do.
   Skipped when the engine has its own ``close()`` (freeing twice would be unsafe).

It is a measurement, not a test: the exit code is 0 unless the bench crashes, or, with ``--check``,
1 when a target fails (decide p99 >= 1000 us, or RSS grows by > 20 MB over the as-shipped reloads).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import random
import sys
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: make the repository importable
    sys.path.insert(0, str(ROOT))

from rules import engine as engine_module  # noqa: E402
from rules.engine import RoutingEngine  # noqa: E402
from rules.responsibility_list import DEFAULT_LIST_PATH, ResponsibilityList, load  # noqa: E402

#: The demo organisation's city command centre (the engine assumes none; the routing activity names it).
CITY_CENTRE = "CC-JS"

ORGANISATION = ROOT / "store" / "demo" / "organisation.json"
#: How the engine names the fact of a department's stationed cadre (rules.engine.cadre_fact).
cadre_fact: Callable[[str], str] = getattr(engine_module, "cadre_fact", lambda department: f"cadre_{department}")

#: Targets.
P99_TARGET_US = 1000.0
GROWTH_LIMIT_MB = 20.0
#: Share of facts with a category code that is not in the list (goes to the catch-all rule).
UNKNOWN_SHARE = 0.05
#: Share of facts without any location, and with the street only (located by address to a street).
NO_LOCATION_SHARE = 0.08
STREET_ONLY_SHARE = 0.04
SOURCES = ("portal", "hotline", "camera")
#: Weights of severity 1, 2, 3 (most reports are ordinary; the top of a category's scale raises it a tier).
SEVERITY_WEIGHTS = (70, 22, 8)
#: Weights of 0, 1, 2, ... earlier reports in the grid (repeat), returns and escalations.
REPEAT_WEIGHTS = (60, 20, 10, 6, 4)
RETURNED_WEIGHTS = (94, 4, 2)
ESCALATED_WEIGHTS = (96, 3, 1)
ENFORCEMENT_SHARE = 0.05
#: RSS is printed after these reloads (those <= M, plus the last one).
RELOAD_CHECKPOINTS = (1, 10, 25, 50)
WARMUP_CALLS = 500
#: The durable-rules session id RoutingEngine posts with (rules/engine.py ``sid="routing"``);
#: the diagnostic release must delete this session's state.
ENGINE_SIDS = ("routing",)

Facts = dict[str, Any]
Decision = dict[str, Any]


# ------------------------------------------------------------------ memory
def rss_mb() -> float:
    """Current resident set size in MB (VmRSS of /proc/self/status; peak RSS if /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # fallback: ru_maxrss is the PEAK in kB on Linux, not the current RSS

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        func = libc.mallinfo2  # glibc >= 2.33
    except (OSError, AttributeError):
        return None
    func.restype = _MallInfo2
    return func


_MALLINFO2 = _mallinfo2()


def heap_mb() -> float | None:
    """Bytes malloc() has handed out and not yet got back (glibc mallinfo2), in MB; None elsewhere.

    Unlike RSS this does not include memory the allocator keeps after ``free``: if it grows with RSS,
    memory is really held (a leak), not merely retained by the allocator.
    """
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return (info.uordblks + info.hblkhd) / 2**20


def mb(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if sign else f"{value:.1f}"


def loadavg() -> str:
    """The 1-minute load average, or '?' where /proc/loadavg is missing."""
    try:
        with open("/proc/loadavg", encoding="ascii") as file:
            return file.read().split()[0]
    except (OSError, IndexError):
        return "?"


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


# ------------------------------------------------------------------ progress
class Progress:
    """Prints ``phase:  10% ...`` lines on stderr, about every 10% of ``total`` steps."""

    def __init__(self, phase: str, total: int) -> None:
        self.phase = phase
        self.total = max(total, 1)
        self.step = max(self.total // 10, 1)
        self.started = time.perf_counter()
        self.last = 0
        print(f"[bench] {phase} ...", file=sys.stderr, flush=True)

    def tick(self, done: int) -> None:
        if done == self.last or (done % self.step and done != self.total):
            return
        self.last = done
        elapsed = time.perf_counter() - self.started
        pct = 100 * done // self.total
        print(
            f"[bench]   {self.phase}: {pct:3d}% ({done:,}/{self.total:,}, {elapsed:.1f}s)", file=sys.stderr, flush=True
        )


# ------------------------------------------------------------------ facts
@dataclass(frozen=True)
class Place:
    grid: str | None
    community: str | None
    street: str | None
    located_by: str


def grid_places(organisation_path: Path = ORGANISATION) -> list[Place]:
    """Every grid of the demo organisation with its community and street (consistent parents)."""
    units = json.loads(organisation_path.read_text(encoding="utf-8"))["units"]
    by_code = {u["code"]: u for u in units}
    places = []
    for unit in units:
        if unit["kind"] != "grid":
            continue
        community = by_code[unit["parent"]]
        street = by_code[community["parent"]]
        if community["kind"] != "community" or street["kind"] != "street":
            raise SystemExit(f"{organisation_path}: grid {unit['code']} is not under a community under a street")
        places.append(Place(unit["code"], community["code"], street["code"], "grid"))
    if not places:
        raise SystemExit(f"no grids in {organisation_path}")
    return places


def cadres_by_street(organisation_path: Path = ORGANISATION) -> dict[str, dict[str, str]]:
    """The "1+X" cadres stationed at each street as facts (``cadre_<department>`` -> username)."""
    users = json.loads(organisation_path.read_text(encoding="utf-8")).get("users", [])
    out: dict[str, dict[str, str]] = {}
    for user in users:
        street = user.get("stationed_street")
        if user.get("role") == "dispatched_cadre" and street:
            out.setdefault(street, {})[cadre_fact(str(user["unit"]).removeprefix("D-"))] = user["username"]
    return out


def make_facts(
    n: int, codes: list[str], places: list[Place], cadres: dict[str, dict[str, str]], rng: random.Random
) -> list[Facts]:
    """``n`` fact dicts shaped like the routing activity's (activities/lifecycle.py ``route_event``):
    known codes with ~5% unknown ones, consistent grid/community/street (~8% without a location, ~4%
    with the street only), the cadres stationed at the street, source portal/hotline/camera, severity
    1-3, repeat 0-4 (skewed to 0), and a few returned, escalated or law-enforcement cases."""
    streets = sorted({p.street for p in places if p.street})
    out: list[Facts] = []
    for _ in range(n):
        if rng.random() < UNKNOWN_SHARE:
            category = f"XX-{rng.randint(1, 99):02d}"
        else:
            category = rng.choice(codes)
        draw = rng.random()
        if draw < NO_LOCATION_SHARE:
            place = Place(None, None, None, "unknown")
        elif draw < NO_LOCATION_SHARE + STREET_ONLY_SHARE:
            place = Place(None, None, rng.choice(streets), "address")
        else:
            place = rng.choice(places)
        facts: Facts = {
            "category": category,
            "grid": place.grid,
            "community": place.community,
            "street": place.street,
            "located_by": place.located_by,
            "source": rng.choice(SOURCES),
            "severity": rng.choices((1, 2, 3), SEVERITY_WEIGHTS)[0],
            "needs_enforcement": rng.random() < ENFORCEMENT_SHARE,
            "repeat": rng.choices(range(len(REPEAT_WEIGHTS)), REPEAT_WEIGHTS)[0],
            "returned": rng.choices(range(len(RETURNED_WEIGHTS)), RETURNED_WEIGHTS)[0],
            "escalated": rng.choices(range(len(ESCALATED_WEIGHTS)), ESCALATED_WEIGHTS)[0],
        }
        if place.street:
            facts.update(cadres.get(place.street, {}))
        out.append(facts)
    return out


# ------------------------------------------------------------------ baseline
def baseline_decider(responsibility_list: ResponsibilityList) -> Callable[[Facts], Decision]:
    """A plain dict lookup code -> precomputed decision, returning a fresh copy like ``decide``."""
    table: dict[str, Decision] = {}
    for category in responsibility_list.categories:
        handling = category.deadlines.handling
        table[category.code] = {
            "placed": True,
            "tier": category.tier,
            "unit": None,
            "department": category.department,
            "co_departments": list(category.co_departments),
            "category_name": category.name_zh,
            "reason": f"{category.code} {category.name_zh}",
            "deadline_hours": category.deadlines.model_dump(),
            "priority": 1 if handling <= 4 else 2 if handling <= 16 else 3,
            "rule": f"category:{category.code}",
        }
    unplaced: Decision = {"placed": False, "tier": "city", "unit": "CC-JS", "rule": "catch-all"}

    def decide(facts: Facts) -> Decision:
        return dict(table.get(facts.get("category") or "", unplaced))

    return decide


# ------------------------------------------------------------------ timing
@dataclass
class Timing:
    name: str
    latencies_ns: list[int]
    wall_s: float
    cpu_s: float  # process CPU time of the timed loop: well below wall_s means the CPU was contended
    placed: int
    rules: Counter[str]  # which kind of rule decided ("category", "severity", "catch-all", ...)
    gc_collections: tuple[int, int, int]

    @cached_property
    def sorted(self) -> list[int]:
        return sorted(self.latencies_ns)

    def percentile_us(self, pct: float) -> float:
        """Nearest-rank percentile in microseconds."""
        ordered = self.sorted
        index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
        return ordered[index] / 1000

    @property
    def per_second(self) -> float:
        return len(self.latencies_ns) / self.wall_s if self.wall_s else float("inf")

    @property
    def mean_us(self) -> float:
        return sum(self.latencies_ns) / len(self.latencies_ns) / 1000


def _gc_counts() -> tuple[int, int, int]:
    stats = gc.get_stats()
    return (stats[0]["collections"], stats[1]["collections"], stats[2]["collections"])


def time_calls(name: str, decide: Callable[[Facts], Decision], facts: list[Facts]) -> Timing:
    """Call ``decide`` on each fact dict, timing each call with perf_counter_ns (GC left enabled)."""
    for one in facts[:WARMUP_CALLS]:  # warm caches and lazy paths (the first post creates native state)
        decide(one)
    n = len(facts)
    latencies = [0] * n
    placed = 0
    rules: Counter[str] = Counter()
    progress = Progress(name, n)
    step = progress.step
    clock = time.perf_counter_ns
    gc_before = _gc_counts()
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for i, one in enumerate(facts):
        t0 = clock()
        decision = decide(one)
        latencies[i] = clock() - t0
        placed += bool(decision.get("placed"))
        rules[str(decision.get("rule", "?")).split(":", 1)[0]] += 1
        if (i + 1) % step == 0:
            progress.tick(i + 1)
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    gc_after = _gc_counts()
    progress.tick(n)
    collections = (gc_after[0] - gc_before[0], gc_after[1] - gc_before[1], gc_after[2] - gc_before[2])
    return Timing(name, latencies, wall, cpu, placed, rules, collections)


def timer_overhead_ns(samples: int = 100_000) -> float:
    """Median cost of two back-to-back perf_counter_ns calls (included in every latency)."""
    clock = time.perf_counter_ns
    values = []
    for _ in range(samples):
        t0 = clock()
        values.append(clock() - t0)
    values.sort()
    return float(values[len(values) // 2])


# ------------------------------------------------------------------ reloads
@dataclass
class ReloadSeries:
    name: str
    how: str
    rss_after: list[float] = field(default_factory=list)  # RSS after reload 1..M
    heap_after: list[float | None] = field(default_factory=list)
    build_ms: list[float] = field(default_factory=list)
    still_alive: int = 0  # released engines whose Python object was not collected

    def at(self, reload_no: int) -> float:
        return self.rss_after[reload_no - 1]

    @staticmethod
    def _slope(ys: list[float]) -> float:
        n = len(ys)
        if n < 2:
            return 0.0
        mx, my = (n + 1) / 2, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in range(1, n + 1))
        return sum((x - mx) * (y - my) for x, y in zip(range(1, n + 1), ys, strict=True)) / sxx

    @property
    def slope_mb(self) -> float:
        """Least-squares RSS growth per reload (MB)."""
        return self._slope(self.rss_after)

    @property
    def heap_slope_mb(self) -> float | None:
        heap = [h for h in self.heap_after if h is not None]
        return self._slope(heap) if len(heap) == len(self.heap_after) else None

    @property
    def per_reload_mb(self) -> float:
        """(last - first) / (M - 1)."""
        ys = self.rss_after
        return (ys[-1] - ys[0]) / (len(ys) - 1) if len(ys) > 1 else 0.0

    @property
    def reference(self) -> int:
        return min(10, len(self.rss_after))

    @property
    def growth_mb(self) -> float:
        """RSS after the last reload minus RSS after reload 10 (or after the last one if M < 10)."""
        return self.rss_after[-1] - self.at(self.reference)

    @property
    def verdict(self) -> str:
        return "GROWS" if self.growth_mb > GROWTH_LIMIT_MB else "FLAT"


def _native_rulesets(engine: RoutingEngine) -> list[Any]:
    """The durable Ruleset objects of an engine's Host (private attributes; [] if they changed)."""
    host = getattr(engine, "_host", None)
    return list(getattr(host, "_ruleset_list", None) or [])


def release_as_shipped(engine: RoutingEngine) -> str:
    close = getattr(engine, "close", None)
    if callable(close):
        close()
        return "engine.close()"
    return "dropped (engine has no close())"


def release_delete_ruleset(engine: RoutingEngine) -> str:
    import durable_rules_engine

    rulesets = _native_rulesets(engine)
    for ruleset in rulesets:
        durable_rules_engine.delete_ruleset(ruleset._handle)
    return f"durable_rules_engine.delete_ruleset(handle) on {len(rulesets)} ruleset(s)"


def release_state_and_ruleset(engine: RoutingEngine) -> str:
    import durable_rules_engine

    rulesets = _native_rulesets(engine)
    for ruleset in rulesets:
        for sid in ENGINE_SIDS:
            try:
                durable_rules_engine.delete_state(ruleset._handle, sid)
            except Exception as exc:  # a session that never posted has no state to delete
                print(f"[bench] delete_state({sid!r}) failed: {exc}", file=sys.stderr)
        durable_rules_engine.delete_ruleset(ruleset._handle)
    return f"delete_state(handle, {'/'.join(ENGINE_SIDS)}) + delete_ruleset(handle) on {len(rulesets)} ruleset(s)"


def reload_series(
    name: str,
    responsibility_list: ResponsibilityList,
    reloads: int,
    facts: list[Facts],
    release: Callable[[RoutingEngine], str],
) -> ReloadSeries:
    """``reloads`` times: build a new engine, let it serve ``facts``, release the old one, collect."""
    engine = RoutingEngine(responsibility_list, city_centre=CITY_CENTRE)
    for one in facts:
        engine.decide(one)
    series = ReloadSeries(name, how="")
    released: list[weakref.ref[RoutingEngine]] = []
    progress = Progress(name, reloads)
    for i in range(1, reloads + 1):
        t0 = time.perf_counter()
        new = RoutingEngine(responsibility_list, city_centre=CITY_CENTRE)  # an administrator activates a new version
        series.build_ms.append((time.perf_counter() - t0) * 1000)
        old, engine = engine, new
        for one in facts:  # the new version serves traffic
            engine.decide(one)
        series.how = release(old)
        released.append(weakref.ref(old))
        del old, new
        gc.collect()  # engines sit in reference cycles (engine -> host -> ruleset -> actions -> engine)
        series.rss_after.append(rss_mb())
        series.heap_after.append(heap_mb())
        progress.tick(i)
    gc.collect()
    series.still_alive = sum(ref() is not None for ref in released)
    release(engine)
    del engine
    gc.collect()
    return series


# ------------------------------------------------------------------ report
def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"

    def fmt(row: list[str]) -> str:
        cells = [v.ljust(w) if c == 0 else v.rjust(w) for c, (v, w) in enumerate(zip(row, widths, strict=True))]
        return "| " + " | ".join(cells) + " |"

    return "\n".join([title, line, fmt(header), line, *(fmt(r) for r in rows), line])


def us(value: float) -> str:
    return f"{value:,.1f}"


def latency_table(engine: Timing, baseline: Timing, overhead_ns: float) -> str:
    rows = [
        ["decisions/s (wall clock of the timed loop)", f"{engine.per_second:,.0f}", f"{baseline.per_second:,.0f}"],
        ["mean (us)", us(engine.mean_us), us(baseline.mean_us)],
        *[[f"p{p:g} (us)", us(engine.percentile_us(p)), us(baseline.percentile_us(p))] for p in (50, 90, 99, 99.9)],
        ["max (us)", us(engine.sorted[-1] / 1000), us(baseline.sorted[-1] / 1000)],
        [
            "placed (of all decisions)",
            f"{engine.placed / len(engine.latencies_ns):.1%}",
            f"{baseline.placed / len(baseline.latencies_ns):.1%}",
        ],
        [
            "gc collections gen0/1/2",
            "/".join(map(str, engine.gc_collections)),
            "/".join(map(str, baseline.gc_collections)),
        ],
        [
            "CPU time / wall time of the loop",
            f"{engine.cpu_s / engine.wall_s:.0%}",
            f"{baseline.cpu_s / baseline.wall_s:.0%}",
        ],
    ]
    ratio = engine.percentile_us(50) / max(baseline.percentile_us(50), 1e-9)
    note = (
        f"(engine p50 = {ratio:,.0f}x baseline p50; every latency includes ~{overhead_ns:.0f} ns of timer overhead; "
        f"{WARMUP_CALLS} warm-up calls not counted; Python GC enabled)"
    )
    total = sum(engine.rules.values())
    fired = ", ".join(f"{kind} {count / total:.1%}" for kind, count in engine.rules.most_common())
    note += f"\n(rules that decided, engine: {fired})"
    return (
        table("Latency per call (time.perf_counter_ns)", ["", "RoutingEngine.decide", "dict baseline"], rows)
        + "\n"
        + note
    )


def reload_table(series: list[ReloadSeries], reloads: int, per_reload: int) -> str:
    checkpoints = sorted({c for c in RELOAD_CHECKPOINTS if c <= reloads} | {reloads})
    rows = [[f"RSS after reload {c} (MB)", *(mb(s.at(c)) for s in series)] for c in checkpoints]
    rows += [
        ["growth/reload, linear fit (MB)", *(f"{s.slope_mb:.3f}" for s in series)],
        ["growth/reload, (last-first)/(M-1) (MB)", *(f"{s.per_reload_mb:.3f}" for s in series)],
        [
            f"RSS last - after reload {series[0].reference} (MB)",
            *(f"{s.growth_mb:+.1f} {s.verdict}" for s in series),
        ],
        ["malloc in use after last reload (MB)", *(mb(s.heap_after[-1]) for s in series)],
        [
            "malloc in use growth/reload (MB)",
            *("n/a" if s.heap_slope_mb is None else f"{s.heap_slope_mb:.3f}" for s in series),
        ],
        [
            "build time mean / max (ms)",
            *(f"{sum(s.build_ms) / len(s.build_ms):.1f} / {max(s.build_ms):.1f}" for s in series),
        ],
        ["released engines still alive (Python)", *(str(s.still_alive) for s in series)],
    ]
    title = (
        f"Reloads: new RoutingEngine from the same list, {per_reload} decisions on it, old one released, gc.collect()"
    )
    notes = "\n".join(f"({chr(ord('A') + i)}) {s.name}: {s.how}" for i, s in enumerate(series))
    header = ["", *(f"({chr(ord('A') + i)}) {s.name}" for i, s in enumerate(series))]
    return table(title, header, rows) + "\n" + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=100_000, help="timed decisions per phase (default 100000)")
    parser.add_argument("--reloads", type=int, default=50, help="engine reloads per reload series (default 50)")
    parser.add_argument("--per-reload", type=int, default=100, help="decisions on each reloaded engine (default 100)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed for the facts (default 2026)")
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST_PATH, help="responsibility list (default: shipped)")
    parser.add_argument("--no-diagnostics", action="store_true", help="skip the two diagnostic reload series")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target fails")
    args = parser.parse_args(argv)
    if args.decisions < 1 or args.reloads < 0 or args.per_reload < 0:
        parser.error("--decisions must be >= 1, --reloads and --per-reload >= 0")

    # ---------------------------------------------------------------- measure
    rss_start, heap_start = rss_mb(), heap_mb()
    load_start = loadavg()
    responsibility_list = load(args.list)
    codes = [c.code for c in responsibility_list.categories]
    facts = make_facts(args.decisions, codes, grid_places(), cadres_by_street(), random.Random(args.seed))
    reload_facts = facts[: args.per_reload]
    rss_facts, heap_facts = rss_mb(), heap_mb()

    build_start = time.perf_counter()
    engine = RoutingEngine(responsibility_list, city_centre=CITY_CENTRE)
    first_build_ms = (time.perf_counter() - build_start) * 1000
    gc.collect()
    rss_before, heap_before = rss_mb(), heap_mb()

    engine_timing = time_calls("RoutingEngine.decide", engine.decide, facts)
    gc.collect()
    rss_after, heap_after = rss_mb(), heap_mb()
    baseline_timing = time_calls("dict baseline", baseline_decider(responsibility_list), facts)
    overhead = timer_overhead_ns()
    has_close = callable(getattr(engine, "close", None))
    release_as_shipped(engine)
    del engine
    gc.collect()

    series: list[ReloadSeries] = []
    if args.reloads:
        plan: list[tuple[str, Callable[[RoutingEngine], str]]] = [("as shipped", release_as_shipped)]
        if not args.no_diagnostics and not has_close:
            plan += [
                ("+ delete_ruleset", release_delete_ruleset),
                ("+ delete_state + delete_ruleset", release_state_and_ruleset),
            ]
        for name, release in plan:
            series.append(reload_series(name, responsibility_list, args.reloads, reload_facts, release))

    # ---------------------------------------------------------------- report
    cpus = os.cpu_count() or 1
    busy = ""
    if max(_float(load_start), _float(loadavg())) > 0.75 * cpus:
        busy = " - BUSY: other processes compete for the CPU, latency tails are inflated"
    n = args.decisions
    known = set(codes)
    unknown = sum(f["category"] not in known for f in facts)
    no_location = sum(f["street"] is None for f in facts)
    street_only = sum(f["grid"] is None and f["street"] is not None for f in facts)
    print(
        f"Routing engine bench - list {responsibility_list.version} ({len(codes)} categories), {n:,} decisions, "
        f"{args.reloads} reloads, Python {sys.version.split()[0]}"
    )
    print(f"machine: {os.cpu_count()} CPU(s), load average (1 min) {load_start} at start, {loadavg()} at end{busy}")
    print(
        f"facts: {unknown / n:.1%} unknown codes, {no_location / n:.1%} without location, {street_only / n:.1%} "
        f"street only; sources {'/'.join(SOURCES)}, severity 1-3 and repeat 0-4 weighted (seed {args.seed})"
    )
    print()
    print(latency_table(engine_timing, baseline_timing, overhead))
    print()
    heap_delta = None if heap_after is None or heap_before is None else heap_after - heap_before
    mem_rows = [
        ["after imports", mb(rss_start), mb(heap_start)],
        ["list loaded + facts generated", mb(rss_facts), mb(heap_facts)],
        [f"first engine built ({first_build_ms:.0f} ms)", mb(rss_before), mb(heap_before)],
        [
            f"after {WARMUP_CALLS} + {n:,} decisions",
            f"{mb(rss_after)} ({mb(rss_after - rss_before, sign=True)})",
            f"{mb(heap_after)} ({mb(heap_delta, sign=True)})",
        ],
    ]
    print(table("Memory", ["point", "RSS (MB)", "malloc in use (MB)"], mem_rows))
    print()
    if series:
        print(reload_table(series, args.reloads, args.per_reload))
        if has_close:
            print("(diagnostic series skipped: the engine has close())")
        print()

    p99 = engine_timing.percentile_us(99)
    latency_ok = p99 < P99_TARGET_US
    shipped = series[0] if series else None
    memory_verdict = shipped.verdict if shipped else "n/a"
    targets = [
        [f"decide p99 < {P99_TARGET_US:,.0f} us", f"{p99:,.1f} us", "PASS" if latency_ok else "FAIL"],
        [
            f"as shipped: RSS last reload - reload {shipped.reference if shipped else 10} <= {GROWTH_LIMIT_MB:.0f} MB",
            f"{shipped.growth_mb:+.1f} MB" if shipped else "no reloads",
            memory_verdict,
        ],
    ]
    print(table("Targets", ["target", "measured", "result"], targets))

    if args.check and (not latency_ok or memory_verdict == "GROWS"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
