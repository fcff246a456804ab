"""The one place that knows the shape of 3W data and of the lake.

Every reader, writer, feature and query takes its column names, units and class codes
from here, so a renamed sensor or a new label is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Variable:
    """One 3W sensor variable: its name in the dataset, in the lake, and its unit."""

    source_name: str
    name: str
    unit: str
    meaning: str


def _var(source_name: str, unit: str, meaning: str) -> Variable:
    return Variable(source_name, source_name.lower().replace("-", "_"), unit, meaning)


#: The 27 variables of 3W 2.0, in the dataset's order.
VARIABLES: tuple[Variable, ...] = (
    _var("ABER-CKGL", "%", "gas-lift choke opening"),
    _var("ABER-CKP", "%", "production choke opening"),
    _var("ESTADO-DHSV", "state", "downhole safety valve state"),
    _var("ESTADO-M1", "state", "production master valve state"),
    _var("ESTADO-M2", "state", "annulus master valve state"),
    _var("ESTADO-PXO", "state", "pig-crossover valve state"),
    _var("ESTADO-SDV-GL", "state", "gas-lift shutdown valve state"),
    _var("ESTADO-SDV-P", "state", "production shutdown valve state"),
    _var("ESTADO-W1", "state", "production wing valve state"),
    _var("ESTADO-W2", "state", "annulus wing valve state"),
    _var("ESTADO-XO", "state", "crossover valve state"),
    _var("P-ANULAR", "Pa", "well annulus pressure"),
    _var("P-JUS-BS", "Pa", "service pump downstream pressure"),
    _var("P-JUS-CKGL", "Pa", "gas-lift choke downstream pressure"),
    _var("P-JUS-CKP", "Pa", "production choke downstream pressure"),
    _var("P-MON-CKGL", "Pa", "gas-lift choke upstream pressure"),
    _var("P-MON-CKP", "Pa", "production choke upstream pressure"),
    _var("P-MON-SDV-P", "Pa", "production shutdown valve upstream pressure"),
    _var("P-PDG", "Pa", "permanent downhole gauge pressure (bottom-hole)"),
    _var("PT-P", "Pa", "production tube pressure downstream of the wing valve"),
    _var("P-TPT", "Pa", "temperature-pressure transducer pressure"),
    _var("QBS", "m3/s", "service pump flow rate"),
    _var("QGL", "m3/s", "gas-lift flow rate"),
    _var("T-JUS-CKP", "°C", "production choke downstream temperature"),
    _var("T-MON-CKP", "°C", "production choke upstream temperature"),
    _var("T-PDG", "°C", "permanent downhole gauge temperature"),
    _var("T-TPT", "°C", "temperature-pressure transducer temperature"),
)

SENSOR_COLUMNS: tuple[str, ...] = tuple(v.name for v in VARIABLES)
SOURCE_TO_COLUMN: dict[str, str] = {v.source_name: v.name for v in VARIABLES}
UNITS: dict[str, str] = {v.name: v.unit for v in VARIABLES}

#: The eight variables of 3W 1.0 CSV files, in file order.
V1_SOURCE_COLUMNS: tuple[str, ...] = (
    "P-PDG", "P-TPT", "T-TPT", "P-MON-CKP", "T-JUS-CKP", "P-JUS-CKGL", "T-JUS-CKGL", "QGL",
)
#: 3W 1.0 has one variable that 3W 2.0 dropped; it maps onto no lake column.
V1_ONLY_SOURCE_COLUMNS: frozenset[str] = frozenset({"T-JUS-CKGL"})

PRESSURE_COLUMN = "p_tpt"
TEMPERATURE_COLUMN = "t_tpt"

#: Event classes of 3W. A transient into event N is labeled N + TRANSIENT_OFFSET.
EVENT_CLASSES: dict[int, str] = {
    0: "normal operation",
    1: "abrupt increase of BSW",
    2: "spurious closure of DHSV",
    3: "severe slugging",
    4: "flow instability",
    5: "rapid productivity loss",
    6: "quick restriction in PCK",
    7: "scaling in PCK",
    8: "hydrate in production line",
    9: "hydrate in service line",
}
TRANSIENT_OFFSET = 100
NORMAL_CLASS = 0
CLASSES_WITH_TRANSIENT: frozenset[int] = frozenset({1, 2, 5, 6, 7, 8, 9})


def event_of(label: int) -> int:
    """The event class a label belongs to (a transient label maps to its event)."""
    return label - TRANSIENT_OFFSET if label >= TRANSIENT_OFFSET else label


def is_transient(label: int) -> bool:
    return label >= TRANSIENT_OFFSET


def class_name(label: int) -> str:
    """``102`` -> ``102 · spurious closure of DHSV (transient)``: a label as an operator reads it."""
    name = f"{label} · {EVENT_CLASSES.get(event_of(label), 'unknown')}"
    return f"{name} (transient)" if is_transient(label) else name


# ---------------------------------------------------------------------------
# Observations: what a reader yields, the producer sends and the consumer receives.
# ---------------------------------------------------------------------------
TIME_UNIT = "ms"
EVENT_TIME_TYPE = pa.timestamp(TIME_UNIT, tz="UTC")

OBSERVATION_SCHEMA = pa.schema(
    [pa.field("well_id", pa.string(), nullable=False),
     pa.field("event_time", EVENT_TIME_TYPE, nullable=False)]
    + [pa.field(c, pa.float32()) for c in SENSOR_COLUMNS]
    + [pa.field("class", pa.int16()), pa.field("state", pa.int16())]
)

# ---------------------------------------------------------------------------
# Lake tables.
# ---------------------------------------------------------------------------
WELL_DATA_TABLE = "well_data"
DEAD_LETTERS_TABLE = "dead_letters"
ANOMALY_EVENT_VERSIONS_TABLE = "anomaly_event_versions"
#: A view: the latest version of each event in ``anomaly_event_versions`` (:data:`LAKE_VIEWS`).
ANOMALY_EVENTS_TABLE = "anomaly_events"

WELL_DATA_SCHEMA = pa.schema(
    [
        *OBSERVATION_SCHEMA,
        pa.field("pressure", pa.float32()),
        pa.field("temperature", pa.float32()),
        pa.field("anomaly_score", pa.float64()),
        pa.field("anomaly_flag", pa.int8()),
        pa.field("model_version", pa.string()),
        pa.field("ingest_time", pa.timestamp(TIME_UNIT, tz="UTC")),
    ]
)
#: Hive partition key of every lake table, derived from the event time (UTC).
PARTITION_COLUMN = "date"

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("shard_id", pa.string()),
        pa.field("sequence_number", pa.string()),
        pa.field("partition_key", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("payload", pa.binary()),
        pa.field("failed_at", pa.timestamp(TIME_UNIT, tz="UTC")),
    ]
)

#: Alarm events are stored as *versions* (see engine/alarms.py): a version is appended when an
#: event opens, in every later micro-batch that changes it, and once when it clears; ``revision``
#: numbers an event's versions from 0. ``anomaly_events`` is the view of each event's latest version.
#: ``label`` is the event's most frequent source class (null when the source had none); the
#: diagnosis columns (``likely_class`` … ``explanation``) are null until a diagnosis fills them.
ANOMALY_EVENT_VERSIONS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("well_id", pa.string(), nullable=False),
        pa.field("start_time", EVENT_TIME_TYPE, nullable=False),
        pa.field("end_time", EVENT_TIME_TYPE),
        pa.field("state", pa.string(), nullable=False),
        pa.field("peak_score", pa.float64()),
        pa.field("model_version", pa.string()),
        pa.field("label", pa.int16()),
        pa.field("likely_class", pa.int16()),
        pa.field("likely_class_probability", pa.float64()),
        pa.field("top_sensors", pa.string()),
        pa.field("explanation", pa.string()),
        pa.field("peak_time", EVENT_TIME_TYPE),
        pa.field("last_active_time", EVENT_TIME_TYPE, nullable=False),
        pa.field("duration_seconds", pa.float64()),
        pa.field("active_rows", pa.int64()),
        pa.field("revision", pa.int64(), nullable=False),
    ]
)
#: What ``anomaly_events`` returns: every column of a version, then its date partition (so callers
#: can bound their scans by it; see :data:`LAKE_VIEWS`).
ANOMALY_EVENTS_SCHEMA = ANOMALY_EVENT_VERSIONS_SCHEMA.append(pa.field(PARTITION_COLUMN, pa.string()))

@dataclass(frozen=True)
class TableSpec:
    """A lake table: its columns, the time column its date partition derives from, its key."""

    schema: pa.Schema
    time_column: str
    key_columns: tuple[str, ...]


LAKE_TABLES: dict[str, TableSpec] = {
    WELL_DATA_TABLE: TableSpec(WELL_DATA_SCHEMA, "event_time", ("well_id", "event_time")),
    DEAD_LETTERS_TABLE: TableSpec(DEAD_LETTER_SCHEMA, "failed_at", ("shard_id", "sequence_number")),
    ANOMALY_EVENT_VERSIONS_TABLE: TableSpec(ANOMALY_EVENT_VERSIONS_SCHEMA, "start_time", ("event_id", "revision")),
}


@dataclass(frozen=True)
class ViewSpec:
    """A lake view: its columns and its definition, one Trino-dialect ``SELECT`` over lake tables.

    Every backend defines it from this text (DuckDB after translation; Athena from the Glue
    catalog), so a view means the same on both.
    """

    schema: pa.Schema
    sql: str


_EVENT_COLUMNS = ", ".join(f'"{name}"' for name in ANOMALY_EVENTS_SCHEMA.names)
#: All versions of an event share its start date's partition, so partitioning the window by
#: ``date`` as well as ``event_id`` changes nothing in the result, and lets Athena (Trino) push a
#: caller's predicate on ``date`` below the window into partition pruning: a filter on a column
#: that is not a window partition key cannot be pushed, and the view would read every partition.
# The view's SQL is built from the schema's own names (bandit B608: constants, not input).
LAKE_VIEWS: dict[str, ViewSpec] = {
    ANOMALY_EVENTS_TABLE: ViewSpec(ANOMALY_EVENTS_SCHEMA, (
        f"SELECT {_EVENT_COLUMNS} FROM ("  # nosec B608
        f"SELECT {_EVENT_COLUMNS}, row_number() OVER (PARTITION BY \"{PARTITION_COLUMN}\", event_id "
        f"ORDER BY revision DESC) AS newest "
        f"FROM {ANOMALY_EVENT_VERSIONS_TABLE}) AS versions WHERE newest = 1")),
}


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` cast to ``schema``; one that has it already is returned as is, because a cast costs
    a compute call per column even when nothing changes, and a stream record is a few hundred rows."""
    return table if table.schema.equals(schema) else table.cast(schema)
