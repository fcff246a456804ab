"""Synthetic 3W 2.0 instances, so every part of PetroStream runs without the real dataset.

A user without 3W data still has to train, stream, evaluate and benchmark, so the demo data
imitates what makes real wells hard rather than what is easy to draw: each well has its own
operating point and instruments, sensors wander slowly and share part of that wander, some
sensors are missing for a whole well or drop out for minutes, values carry the 7 significant
digits of the source, labels are missing around transitions, and the events change several
variables in the directions the 3W paper describes, by amounts a plot shows clearly but that
drift and noise still blur.

Everything is vectorised over rows (numpy per instance, one smooth-noise field per well) and
every random draw comes from generators keyed by the seed (and the well number), so a seed gives
byte-identical files on every run and a well's operating point does not depend on how many wells
are made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.schema import NORMAL_CLASS, TRANSIENT_OFFSET, VARIABLES

Phases = tuple[int, int, int]
"""Seconds of normal lead-in, transient and steady event of one instance."""
Driver = Callable[[Phases, np.random.Generator], np.ndarray]
"""How strongly an event acts at each second of its instance (0 = not at all)."""

_SOURCES: tuple[str, ...] = tuple(v.source_name for v in VARIABLES)
_COLUMN: dict[str, int] = {name: i for i, name in enumerate(_SOURCES)}
_UNITS: tuple[str, ...] = tuple(v.unit for v in VARIABLES)
_VALVES = np.array([i for i, unit in enumerate(_UNITS) if unit == "state"])
_ANALOG = np.array([unit not in ("state", "%") for unit in _UNITS])

#: Well status codes of the 3W ``state`` column (3W 2.0 paper, table 5) that the demo uses.
_OPEN, _SHUT_IN = 0, 1

_EPOCH = pd.Timestamp("2024-01-01")
_START_DAYS = 300  # the field's data starts on one of the first 300 days of 2024
_WELL_STAGGER = 2 * 3600  # wells of a field report concurrently, starting within 2 h
_GAP = (1, 600)  # seconds between consecutive instances of a well
_NORMAL_TYPICAL = 2 * 3600  # normal instances are cut to about 1-3 h, like 3W's
_EVENT_SHARE = 0.4  # at most this share of a well's time is event instances
_UNLABELED = ((5, 60), (0, 30))  # seconds without a label before / after a phase change
_DROPOUTS = 0.8  # mean number of sensor dropouts per instance
_DROPOUT_SECONDS = (5, 600)
_SIGNIFICANT_DIGITS = 7  # 3W stores values with 7 significant digits
_DRIFT_SCALES = ((60, 0.2), (900, 0.5), (3 * 3600, 1.0))  # (knot spacing in s, weight)

#: Sensors few 3W wells have: each is installed on a demo well with this probability.
_RARE_SENSORS = ("P-ANULAR", "P-JUS-BS", "QBS", "T-PDG", "PT-P", "P-MON-SDV-P")
_RARE_PRESENCE = 0.2
_GAS_LIFT_SENSORS = ("ABER-CKGL", "P-JUS-CKGL", "P-MON-CKGL", "QGL")
_CHOKE_SIDE_SENSORS = ("P-JUS-CKP", "T-MON-CKP")
_CHOKE_SIDE_PRESENCE = 0.7

#: (white-noise sd, drift amplitude) ranges relative to the level, by unit and by whether the
#: sensor is topside (around the platform chokes, noisier) or subsea.
_INSTRUMENTS: dict[tuple[str, bool], tuple[tuple[float, float], tuple[float, float]]] = {
    ("Pa", False): ((2e-5, 2e-4), (0.002, 0.006)),
    ("Pa", True): ((2e-4, 1e-3), (0.004, 0.012)),
    ("°C", False): ((5e-5, 3e-4), (0.002, 0.006)),
    ("°C", True): ((3e-4, 1.5e-3), (0.005, 0.015)),
    ("m3/s", False): ((5e-3, 2e-2), (0.01, 0.04)),
}


@dataclass(frozen=True)
class WellProfile:
    """Where one demo well operates and how its instruments behave.

    Wells differ in every field, so a model trained on several wells meets different levels,
    noise and missing sensors, as with real 3W wells. Tuples follow :data:`VARIABLES` order.
    """

    number: int
    levels: tuple[float, ...]  # steady value per variable; NaN where the well has no sensor
    noise: tuple[float, ...]  # white-noise standard deviation, in the variable's unit
    drift: tuple[float, ...]  # amplitude of the slow wander, relative to the level

    @property
    def well_id(self) -> str:
        return f"WELL-{self.number:05d}"


@dataclass(frozen=True)
class _Event:
    """How one 3W event unfolds: its phase lengths and each variable's response.

    ``response`` is the change relative to the level when the driver is 1; ``lags`` raise the
    driver to a power for variables that follow it later (> 1) or sooner (< 1).
    """

    lead: tuple[int, int]  # (shortest, longest) seconds of normal operation first
    transient: tuple[int, int]  # (shortest, longest) seconds labeled 100 + N
    steady: tuple[int, int]  # (shortest, longest) seconds labeled N
    driver: Driver
    response: Mapping[str, float]
    lags: Mapping[str, float] = field(default_factory=dict)
    state: int = _OPEN  # well status once the event is steady

    def draw_phases(self, rng: np.random.Generator) -> Phases:
        lead, transient, steady = (int(rng.integers(lo, hi + 1)) for lo, hi in self.ranges)
        return lead, transient, steady

    @property
    def shortest(self) -> Phases:
        lead, transient, steady = (lo for lo, _ in self.ranges)
        return lead, transient, steady

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        return self.lead, self.transient, self.steady


@dataclass(frozen=True)
class _Instance:
    """One file to write: which event, how long each phase is, and where it sits in time."""

    event: int
    phases: Phases
    offset: int  # seconds of the well's data before this instance; indexes the well's drift
    start: pd.Timestamp

    @property
    def length(self) -> int:
        return sum(self.phases)

    def path(self, out_dir: Path, well_id: str) -> Path:
        return out_dir / str(self.event) / f"{well_id}_{self.start:%Y%m%d%H%M%S}.parquet"


def generate(
    out_dir: Path,
    wells: int = 6,
    hours: float = 8.0,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
    compression: str = "brotli",
) -> list[Path]:
    """Write synthetic 3W 2.0 instances under out_dir/<class>/<name>.parquet; return the files written.

    ``hours`` is each well's total data; it is cut into normal and event instances that follow
    each other in time. ``progress(done, total)`` is called after each file. Files use 3W's
    brotli unless told otherwise: scratch files read back at once are 4-7x faster to write with zstd.
    """
    seconds = _check(wells, hours, seed)
    plan = _plan(wells, seconds, _rng(seed))
    total = sum(len(instances) for instances in plan)
    written: list[Path] = []
    for number, instances in enumerate(plan, start=1):
        rng = _rng(seed, number)
        profile = _operating_point(number, rng)
        drift = _drift(profile, seconds, rng)
        for instance in instances:
            path = instance.path(Path(out_dir), profile.well_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            frame = _frame(profile, instance, drift[instance.offset : instance.offset + instance.length], rng)
            frame.to_parquet(path, engine="pyarrow", compression=compression)
            written.append(path)
            if progress is not None:
                progress(len(written), total)
    return written


def _check(wells: int, hours: float, seed: int) -> int:
    """Reject arguments that cannot make a data set; return the seconds of data per well."""
    if wells < 1:
        raise InputError(f"demo data: --wells must be at least 1 (got {wells})")
    if not math.isfinite(hours) or round(hours * 3600) < 1:
        raise InputError(f"demo data: --hours must give at least one second of data (got {hours})")
    if seed < 0:
        raise InputError(f"demo data: --seed must not be negative (got {seed})")
    return round(hours * 3600)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream per (seed, keys), so wells never share draws."""
    return np.random.default_rng([seed, *keys])


# ---------------------------------------------------------------------------
# Wells
# ---------------------------------------------------------------------------
def _operating_point(number: int, rng: np.random.Generator) -> WellProfile:
    """Draw one well inside the ranges real 3W wells show.

    Pressures are drawn in flow order (bottom hole > subsea tree > platform choke > downstream)
    so every well flows the right way; temperatures fall from the reservoir to the platform.
    """
    p_pdg = rng.uniform(2.0e7, 3.5e7)
    p_tpt = rng.uniform(8e6, min(1.8e7, 0.7 * p_pdg))
    p_mon_ckp = rng.uniform(2e6, min(8e6, 0.6 * p_tpt))
    p_jus_ckgl = p_tpt * rng.uniform(1.1, 1.4)
    t_tpt = rng.uniform(60, 110)
    t_jus_ckp = rng.uniform(40, min(80, t_tpt - 10))
    level = {
        "ABER-CKGL": rng.uniform(20, 70),
        "ABER-CKP": rng.uniform(30, 100),
        "ESTADO-DHSV": 1.0,
        "ESTADO-M1": 1.0,
        "ESTADO-M2": 1.0,
        "ESTADO-PXO": 0.0,  # crossover valves stay closed while producing
        "ESTADO-SDV-GL": 1.0,
        "ESTADO-SDV-P": 1.0,
        "ESTADO-W1": 1.0,
        "ESTADO-W2": 1.0,
        "ESTADO-XO": 0.0,
        "P-ANULAR": p_jus_ckgl * rng.uniform(0.9, 1.0),
        "P-JUS-BS": rng.uniform(5e6, 1.5e7),
        "P-JUS-CKGL": p_jus_ckgl,
        "P-JUS-CKP": p_mon_ckp * rng.uniform(0.25, 0.6),
        "P-MON-CKGL": p_jus_ckgl * rng.uniform(1.05, 1.2),
        "P-MON-CKP": p_mon_ckp,
        "P-MON-SDV-P": p_mon_ckp * rng.uniform(1.01, 1.04),
        "P-PDG": p_pdg,
        "PT-P": p_tpt * rng.uniform(0.97, 0.995),
        "P-TPT": p_tpt,
        "QBS": 0.0,  # the service pump is idle in normal production
        "QGL": rng.uniform(0.5, 2.0),
        "T-JUS-CKP": t_jus_ckp,
        "T-MON-CKP": t_jus_ckp + rng.uniform(1, 6),
        "T-PDG": t_tpt + rng.uniform(5, 25),
        "T-TPT": t_tpt,
    }
    absent = _absent_sensors(number, rng)
    levels = np.array([np.nan if name in absent else level[name] for name in _SOURCES])
    noise, drift = _instruments(rng)
    return WellProfile(number, tuple(levels), tuple(levels * noise), tuple(drift))


def _absent_sensors(number: int, rng: np.random.Generator) -> frozenset[str]:
    """Sensors this well lacks for good, as many 3W wells lack P-PDG or gas-lift metering.

    The pattern by well number makes sure a multi-well data set always has a well without a
    downhole gauge and one without gas lift; rarer sensors are a matter of chance.
    """
    absent = {name for name in _RARE_SENSORS if rng.random() >= _RARE_PRESENCE}
    if rng.random() >= _CHOKE_SIDE_PRESENCE:
        absent.update(_CHOKE_SIDE_SENSORS)
    if number % 4 == 2:
        absent.update(("P-PDG", "T-PDG"))
    if number % 3 == 0:
        absent.update(_GAS_LIFT_SENSORS)
    return frozenset(absent)


def _instruments(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Relative white-noise sd and drift amplitude of each variable on one well.

    Openings and valve states are set points, so they get neither.
    """
    noise, drift = np.zeros(len(_SOURCES)), np.zeros(len(_SOURCES))
    for i, (name, unit) in enumerate(zip(_SOURCES, _UNITS, strict=True)):
        ranges = _INSTRUMENTS.get((unit, "-MON-" in name or "-JUS-" in name))
        if ranges is not None:
            noise[i], drift[i] = (rng.uniform(lo, hi) for lo, hi in ranges)
    return noise, drift


def _drift(profile: WellProfile, seconds: int, rng: np.random.Generator) -> np.ndarray:
    """Slow wander of every sensor over the well's whole timeline, relative to its level.

    One field per well, so consecutive instances join up. Part of the wander is shared by all
    sensors with a per-sensor sign and weight (the well's flow rate wanders), part is each
    sensor's own; it mixes minute, quarter-hour and hours scales like real production.
    """
    columns = len(_SOURCES)
    own = sum(weight * _smooth_noise(seconds, knot, columns, rng) for knot, weight in _DRIFT_SCALES)
    shared = sum(weight * _smooth_noise(seconds, knot, 1, rng) for knot, weight in _DRIFT_SCALES)
    coupling = rng.uniform(-1.0, 1.0, columns)
    return (own + shared * coupling) * np.asarray(profile.drift)


def _smooth_noise(n: int, knot: int, columns: int, rng: np.random.Generator) -> np.ndarray:
    """Random curves of about unit size that turn over every ``knot`` seconds.

    Cosine interpolation between normal draws: smooth, bounded and free of per-row loops.
    """
    knots = rng.standard_normal((n // knot + 2, columns))
    position = np.arange(n) / knot
    index = position.astype(np.int64)
    weight = ((1.0 - np.cos(np.pi * (position - index))) / 2.0)[:, None]
    return knots[index] * (1.0 - weight) + knots[index + 1] * weight


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------
def _smoothstep(u: np.ndarray) -> np.ndarray:
    return u * u * (3.0 - 2.0 * u)


def _fast(u: np.ndarray) -> np.ndarray:
    """Most of the change in the first quarter of the transient, like a valve or choke closing."""
    return (1.0 - np.exp(-5.0 * u)) / (1.0 - np.exp(-5.0))


def _gradual(u: np.ndarray) -> np.ndarray:
    """Slow start that speeds up, like a deposit that narrows the flow path ever faster."""
    return u**1.5


def _ramp(shape: Callable[[np.ndarray], np.ndarray]) -> Driver:
    """Driver of an event with a transient: 0 while normal, ``shape`` from 0 to 1, then 1."""

    def drive(phases: Phases, rng: np.random.Generator) -> np.ndarray:
        lead, transient, steady = phases
        through = shape(np.arange(1, transient + 1) / transient)
        return np.concatenate([np.zeros(lead), through, np.ones(steady)])

    return drive


def _slugging(phases: Phases, rng: np.random.Generator) -> np.ndarray:
    """Severe-slugging cycle in [-1, 1]: slow build-up while liquid fills the riser, fast blow-out.

    The period (5-20 min) wanders by about 15 % so cycles are not identical.
    """
    n = sum(phases)
    period = rng.uniform(300, 1200)
    speed = 1.0 + 0.15 * _smooth_noise(n, int(period), 1, rng)[:, 0]
    cycle = (np.cumsum(speed / period) + rng.uniform()) % 1.0
    build = rng.uniform(0.7, 0.9)
    return 2.0 * np.where(cycle < build, cycle / build, (1.0 - cycle) / (1.0 - build)) - 1.0


def _instability(phases: Phases, rng: np.random.Generator) -> np.ndarray:
    """Flow-instability swings in [-1, 1]: a few incommensurate periods under a wandering envelope."""
    n = sum(phases)
    periods = rng.uniform(90, 720, size=3)
    weights = rng.uniform(0.3, 1.0, size=3)
    angles = 2.0 * np.pi * np.arange(n)[:, None] / periods + rng.uniform(0, 2.0 * np.pi, size=3)
    waves = np.sin(angles) @ (weights / weights.sum())
    envelope = np.clip(0.6 + 0.3 * _smooth_noise(n, 900, 1, rng)[:, 0], 0.2, 1.0)
    return waves * envelope


def _minutes(low: float, high: float) -> tuple[int, int]:
    return int(low * 60), int(high * 60)


_LEAD = _minutes(30, 50)  # normal operation before the transient, enough for benchmark 2
_NO_PHASE = (0, 0)

#: Responses loosely follow the 3W paper's descriptions; the keys are the event labels.
_EVENTS: dict[int, _Event] = {
    1: _Event(  # water cut up: heavier column, more bottom-hole pressure, less flow
        _LEAD, _minutes(20, 50), _minutes(20, 45), _ramp(_smoothstep),
        {"P-PDG": 0.04, "P-TPT": -0.06, "PT-P": -0.06, "T-TPT": -0.03, "P-MON-CKP": -0.07,
         "P-MON-SDV-P": -0.07, "P-JUS-CKP": -0.02, "T-JUS-CKP": -0.04, "T-MON-CKP": -0.04},
        lags={"P-PDG": 1.5},
    ),
    2: _Event(  # DHSV shuts: flow stops, the tree cools, the bottom hole builds to static pressure
        _LEAD, _minutes(15, 40), _minutes(15, 40), _ramp(_fast),
        {"ESTADO-DHSV": -1.0, "P-TPT": -0.5, "PT-P": -0.5, "T-TPT": -0.55, "P-PDG": 0.12,
         "P-MON-CKP": -0.6, "P-MON-SDV-P": -0.6, "P-JUS-CKP": -0.3, "T-JUS-CKP": -0.35,
         "T-MON-CKP": -0.35, "T-PDG": 0.01},
        lags={"ESTADO-DHSV": 0.3, "P-PDG": 1.5, "T-TPT": 3.0, "T-JUS-CKP": 3.0, "T-MON-CKP": 3.0},
        state=_SHUT_IN,
    ),
    3: _Event(  # severe slugging: the riser fills and blows out periodically
        _NO_PHASE, _NO_PHASE, _minutes(60, 120), _slugging,
        {"P-PDG": 0.01, "P-TPT": 0.03, "PT-P": 0.03, "T-TPT": 0.004, "P-MON-CKP": -0.15,
         "P-MON-SDV-P": -0.15, "P-JUS-CKP": -0.05, "T-JUS-CKP": -0.02, "T-MON-CKP": -0.02,
         "QGL": 0.1, "P-JUS-CKGL": 0.01, "P-ANULAR": 0.01},
    ),
    4: _Event(  # flow instability: irregular, smaller swings than slugging
        _NO_PHASE, _NO_PHASE, _minutes(60, 120), _instability,
        {"P-PDG": 0.003, "P-TPT": 0.008, "PT-P": 0.008, "T-TPT": 0.002, "P-MON-CKP": -0.05,
         "P-MON-SDV-P": -0.05, "P-JUS-CKP": -0.02, "T-JUS-CKP": -0.008, "T-MON-CKP": -0.008,
         "QGL": 0.04},
    ),
    5: _Event(  # productivity loss: less inflow, pressures and temperatures fall together
        _LEAD, _minutes(15, 40), _minutes(20, 40), _ramp(_smoothstep),
        {"P-PDG": -0.06, "P-TPT": -0.12, "PT-P": -0.12, "T-TPT": -0.06, "T-PDG": -0.01,
         "P-MON-CKP": -0.15, "P-MON-SDV-P": -0.15, "P-JUS-CKP": -0.05, "T-JUS-CKP": -0.08,
         "T-MON-CKP": -0.08},
    ),
    6: _Event(  # production choke closes in minutes: pressure backs up, less hot fluid arrives
        _LEAD, _minutes(3, 10), _minutes(20, 50), _ramp(_fast),
        {"ABER-CKP": -0.45, "P-MON-CKP": 0.35, "P-MON-SDV-P": 0.35, "P-TPT": 0.1, "PT-P": 0.1,
         "P-PDG": 0.04, "P-JUS-CKP": -0.15, "T-JUS-CKP": -0.1, "T-MON-CKP": -0.04, "T-TPT": -0.02},
        lags={"ABER-CKP": 0.5, "P-PDG": 1.5},
    ),
    7: _Event(  # scale narrows the choke over hours while its set opening stays put
        _LEAD, _minutes(70, 100), _minutes(15, 25), _ramp(_gradual),
        {"P-MON-CKP": 0.25, "P-MON-SDV-P": 0.25, "P-TPT": 0.07, "PT-P": 0.07, "P-PDG": 0.03,
         "P-JUS-CKP": -0.1, "T-JUS-CKP": -0.08, "T-MON-CKP": -0.03, "T-TPT": -0.01},
    ),
    8: _Event(  # hydrate plug between tree and platform: pressure up before it, down after it
        _LEAD, _minutes(15, 40), _minutes(20, 40), _ramp(_smoothstep),
        {"P-TPT": 0.1, "PT-P": 0.1, "P-PDG": 0.04, "P-MON-CKP": -0.35, "P-MON-SDV-P": -0.35,
         "P-JUS-CKP": -0.2, "T-JUS-CKP": -0.15, "T-MON-CKP": -0.12, "T-TPT": -0.03},
    ),
}
#: Order in which events are handed to wells: benchmark-2 classes first, then 3 and 4.
_EVENT_ORDER: tuple[int, ...] = (1, 2, 5, 6, 7, 8, 3, 4)


# ---------------------------------------------------------------------------
# Plan: which instances each well gets, and when
# ---------------------------------------------------------------------------
def _plan(wells: int, seconds: int, rng: np.random.Generator) -> list[list[_Instance]]:
    """Every well's instances in time order: its events among normal stretches of about 2 h."""
    day = _EPOCH + pd.Timedelta(days=int(rng.integers(_START_DAYS)))
    return [
        _schedule(events, seconds, day + pd.Timedelta(seconds=int(rng.integers(_WELL_STAGGER))), rng)
        for events in _assign_events(wells, seconds, rng)
    ]


def _assign_events(wells: int, seconds: int, rng: np.random.Generator) -> list[list[tuple[int, Phases]]]:
    """Hand the event classes to the wells in turn while a well has room for them.

    A first round places one instance of each class at its shortest, so a small run gets as
    many classes as fit, then stretches them toward their drawn lengths with the room left;
    further rounds at drawn lengths give long runs several instances of each class. Events stay
    within ``_EVENT_SHARE`` of a well's time: real wells are mostly normal, and training needs
    normal data.
    """
    room = [int(seconds * _EVENT_SHARE)] * wells
    firsts: list[list[int]] = [[] for _ in range(wells)]
    for turn, label in enumerate(_EVENT_ORDER):
        well = _take_room(room, sum(_EVENTS[label].shortest), turn)
        if well is not None:
            firsts[well].append(label)
    assigned = []
    for well, labels in enumerate(firsts):
        events, room[well] = _stretch(labels, room[well], rng)
        assigned.append(events)
    turn = len(_EVENT_ORDER)
    while True:
        placed = False
        for label in _EVENT_ORDER:
            phases = _EVENTS[label].draw_phases(rng)
            well = _take_room(room, sum(phases), turn)
            if well is not None:
                assigned[well].append((label, phases))
                placed = True
            turn += 1
        if not placed:
            return assigned


def _take_room(room: list[int], needed: int, turn: int) -> int | None:
    """The first well from ``turn`` on (round robin) with ``needed`` seconds left, charged for them."""
    wells = len(room)
    well = next((w % wells for w in range(turn, turn + wells) if room[w % wells] >= needed), None)
    if well is not None:
        room[well] -= needed
    return well


def _stretch(labels: list[int], room: int, rng: np.random.Generator) -> tuple[list[tuple[int, Phases]], int]:
    """Lengthen a well's events from their shortest toward drawn lengths, within ``room`` seconds.

    Returns the events with their phases and the room left.
    """
    if not labels:
        return [], room
    shortest = np.array([_EVENTS[label].shortest for label in labels])
    extra = np.array([_EVENTS[label].draw_phases(rng) for label in labels]) - shortest
    phases = shortest + np.floor(extra * min(1.0, room / max(1, extra.sum()))).astype(np.int64)
    events = [(label, (int(a), int(b), int(c))) for label, (a, b, c) in zip(labels, phases, strict=True)]
    return events, room - int((phases - shortest).sum())


def _schedule(
    events: list[tuple[int, Phases]], seconds: int, origin: pd.Timestamp, rng: np.random.Generator
) -> list[_Instance]:
    """One well's instances, shuffled, placed back to back with short gaps from ``origin``."""
    used = sum(sum(phases) for _, phases in events)
    normal = [(NORMAL_CLASS, (0, 0, int(n))) for n in _normal_lengths(seconds - used, rng)]
    pieces = events + normal
    pieces = [pieces[i] for i in rng.permutation(len(pieces))]
    offsets = np.cumsum([0, *(sum(phases) for _, phases in pieces[:-1])])
    gaps = np.cumsum([0, *rng.integers(*_GAP, size=len(pieces) - 1)])
    return [
        _Instance(label, phases, int(offset), origin + pd.Timedelta(seconds=int(offset + gap)))
        for (label, phases), offset, gap in zip(pieces, offsets, gaps, strict=True)
    ]


def _normal_lengths(seconds: int, rng: np.random.Generator) -> np.ndarray:
    """Cut ``seconds`` of normal operation into instances of about 1-3 h."""
    count = max(1, round(seconds / _NORMAL_TYPICAL))
    weights = rng.uniform(0.5, 1.5, count)
    lengths = np.floor(seconds * weights / weights.sum()).astype(np.int64)
    lengths[-1] += seconds - lengths.sum()
    return lengths[lengths > 0]


# ---------------------------------------------------------------------------
# One instance
# ---------------------------------------------------------------------------
def _frame(
    profile: WellProfile, instance: _Instance, drift: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """The instance as 3W 2.0 stores it: timestamp index, 27 float variables, Int64 labels."""
    index = pd.date_range(instance.start, periods=instance.length, freq="s", name="timestamp")
    frame = pd.DataFrame(_sensor_values(profile, instance, drift, rng), index=index, columns=list(_SOURCES))
    frame["class"], frame["state"] = _labels(instance, rng)
    return frame


def _sensor_values(
    profile: WellProfile, instance: _Instance, drift: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Level x (1 + drift + event) + noise, then what instruments and historians do to it."""
    levels = np.asarray(profile.levels)
    relative = drift + _event_effect(instance, rng)
    values = levels * (1.0 + relative) + np.asarray(profile.noise) * rng.standard_normal(relative.shape)
    values[:, _VALVES] = np.clip(np.round(values[:, _VALVES] * 2.0) / 2.0, 0.0, 1.0)
    _round_to_significant_digits(values, levels)
    _drop_out(values, rng)
    return values


def _event_effect(instance: _Instance, rng: np.random.Generator) -> np.ndarray:
    """Each variable's change relative to its level, second by second (zero when normal)."""
    effect = np.zeros((instance.length, len(_SOURCES)))
    event = _EVENTS.get(instance.event)
    if event is not None:
        driver = event.driver(instance.phases, rng)
        for name, change in event.response.items():
            effect[:, _COLUMN[name]] = change * driver ** event.lags.get(name, 1.0)
    return effect


def _round_to_significant_digits(values: np.ndarray, levels: np.ndarray) -> None:
    """Keep the resolution 3W files have (7 significant digits at the variable's level)."""
    magnitude = np.floor(np.log10(np.fmax(np.abs(levels), 1e-3)))
    scale = 10.0 ** (_SIGNIFICANT_DIGITS - 1 - magnitude)
    np.divide(np.round(values * scale), scale, out=values)


def _drop_out(values: np.ndarray, rng: np.random.Generator) -> None:
    """Blank a few short stretches of single sensors, as telemetry links do in real wells."""
    length = len(values)
    present = np.flatnonzero(_ANALOG & ~np.isnan(values[0]))
    for _ in range(rng.poisson(_DROPOUTS)):
        column = rng.choice(present)
        seconds = int(rng.integers(*_DROPOUT_SECONDS))
        start = int(rng.integers(max(1, length - seconds)))
        values[start : start + seconds, column] = np.nan


def _labels(
    instance: _Instance, rng: np.random.Generator
) -> tuple[pd.arrays.IntegerArray, pd.arrays.IntegerArray]:
    """``class`` and ``state`` columns: 0, then 100+N, then N, unlabeled near each change."""
    event = _EVENTS.get(instance.event)
    lead, transient, _ = instance.phases
    codes = np.repeat([NORMAL_CLASS, instance.event + TRANSIENT_OFFSET, instance.event], instance.phases)
    states = np.repeat([_OPEN, _OPEN, _OPEN if event is None else event.state], instance.phases)
    unlabeled = np.zeros(instance.length, dtype=bool)
    if lead and transient:
        for change in (lead, lead + transient):
            (before, after) = (int(rng.integers(lo, hi + 1)) for lo, hi in _UNLABELED)
            unlabeled[change - before : change + after] = True
    return (
        pd.arrays.IntegerArray(codes.astype(np.int64), unlabeled),
        pd.arrays.IntegerArray(states.astype(np.int64), np.zeros(instance.length, dtype=bool)),
    )
