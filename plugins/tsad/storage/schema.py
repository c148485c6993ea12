"""tsad's tables: a public contract for downstream reports (additive changes only).

This ``MetaData`` is the single definition of the schema at head; the Alembic migrations in
``tsad.storage.migrations`` build it step by step (``tsad db upgrade``: the baseline revision is a
frozen copy of the first release's tables, later revisions add to it), and a test checks that a
database migrated from empty, and one migrated from the first release, both match it.
Types are portable between SQLite and PostgreSQL: timestamps are ``timestamptz`` on PostgreSQL
and UTC ISO text on SQLite, and :class:`UTCDateTime` makes both hand back tz-aware
UTC datetimes. ``partition_date`` is the site-local data day.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC instant: rejects naive datetimes, stores UTC, reads back tz-aware UTC everywhere.

    SQLite has no time zone type, so values are stored as naive UTC text (lexically ordered);
    PostgreSQL stores ``timestamptz`` and returns it in the session's zone, converted here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
            value = value.to_pydatetime()
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone; tsad stores UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


#: JSON on SQLite, jsonb on PostgreSQL (indexable, queryable by analysts); None is SQL NULL.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

GROUP = 63  # tsad.config.GROUP_NAME allows 63 characters

model_version = Table(
    "model_version",
    metadata,
    Column("id", String(100), primary_key=True, comment="'{group}/v{version:04d}'"),
    Column("sensor_group", String(GROUP), nullable=False),
    Column("version", Integer, nullable=False),
    Column("detector_kind", String(32), nullable=False),
    Column("config_json", JSONType, nullable=False),
    Column("config_sha256", String(64), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("training_start", Date, nullable=False),
    Column("training_end", Date, nullable=False),
    Column("threshold_strategy", String(32), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("metrics_json", JSONType, nullable=True),
    Column("code_version", String(100), nullable=True),
    Column("created_by_run", String(250), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("status", String(32), nullable=False),
    UniqueConstraint("sensor_group", "version"),
)

detection_run = Table(
    "detection_run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(250), nullable=True),
    Column("run_id", String(250), nullable=True),
    Column("sensor_group", String(GROUP), nullable=False),
    Column("partition_date", Date, nullable=False),
    Column("site_timezone", String(64), nullable=False),
    Column("data_start", UTCDateTime, nullable=True),
    Column("data_end", UTCDateTime, nullable=True),
    Column("model_version_id", String(100), nullable=True),
    Column("threshold", Float, nullable=True),
    Column("n_rows", Integer, nullable=False),
    Column("n_windows", Integer, nullable=False),
    Column("n_anomalous_points", Integer, nullable=False),
    Column("n_events", Integer, nullable=False),
    Column("quality_json", JSONType, nullable=True),
    Column("drift", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index(None, "sensor_group", "partition_date", "id"),
)

anomaly_event = Table(
    "anomaly_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("detection_run_id", Integer, ForeignKey("detection_run.id"), nullable=False),
    Column("sensor_group", String(GROUP), nullable=False),
    Column("partition_date", Date, nullable=False),
    Column("start_ts", UTCDateTime, nullable=False),
    Column("end_ts", UTCDateTime, nullable=False),
    Column("peak_ts", UTCDateTime, nullable=False),
    Column("peak_score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("severity", Float, nullable=False, comment="peak_score / threshold; >= 1 is anomalous"),
    Column("n_points", Integer, nullable=False),
    Column("top_channels_json", JSONType, nullable=False,
           comment='[{"channel": str, "contribution": fraction 0..1}], largest first'),
    Column("model_version_id", String(100), nullable=True),
    Column("plot_path", Text, nullable=True,
           comment="PNG of the event (readings, reconstructions, score vs threshold); may be NULL"),
    Column("kind", String(32), nullable=False, server_default="transient",
           comment="'transient': an episode inside the day; 'sustained': the day as a whole moved "
                   "away from training (recorded and alerted every day it lasts)"),
    Column("since_date", Date, nullable=True,
           comment="sustained events: the first data day of the departure"),
    Index(None, "sensor_group", "partition_date"),
    Index(None, "start_ts"),
)

# The primary key's leading (sensor_group, partition_date) already serves per-partition reads and
# the partition delete, so there is no separate index on them: this is the largest table.
anomaly_point = Table(
    "anomaly_point",
    metadata,
    Column("sensor_group", String(GROUP), primary_key=True),
    Column("partition_date", Date, primary_key=True),
    Column("channel", String(200), primary_key=True),
    Column("ts", UTCDateTime, primary_key=True),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("severity", Float, nullable=False),
    Column("contribution", Float, nullable=True),
    Column("detection_run_id", Integer, ForeignKey("detection_run.id"), nullable=False),
    Column("model_version_id", String(100), nullable=True),
)

# Operators' verdicts, as history. Keyed by the event's natural key (group, start), not its id: a
# re-run replaces a partition's event rows and their ids, but the verdict on "the pump event that
# started at 14:05" still applies.
#: Operators' verdicts on an event (the UI writes them): a real fault, a false alarm, or a new
#: operating point of the plant (the model may retrain on it: docs/alarms policy in the README).
FEEDBACK_LABELS = ("true_alarm", "false_alarm", "new_operating_point")

anomaly_feedback = Table(
    "anomaly_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sensor_group", String(GROUP), nullable=False),
    Column("partition_date", Date, nullable=False),
    Column("event_start_ts", UTCDateTime, nullable=False),
    Column("event_id", Integer, nullable=True,
           comment="anomaly_event.id when the verdict was given (ids change on re-runs)"),
    Column("label", String(32), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_by", String(250), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(f"label IN {FEEDBACK_LABELS!r}", name="ck_anomaly_feedback_label"),
)

# Snoozes set from the UI (``tsad.storage.snoozes``); the alerts honour them together with the
# config's ``alerts.snooze``. Removing one keeps the row (removed_at, removed_by) as history.
alert_snooze = Table(
    "alert_snooze",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sensor_group", String(GROUP), nullable=False),
    Column("channel", String(200), nullable=True,
           comment="NULL: every event of the group; else the events where this channel carries "
                   "at least half of the contribution"),
    Column("until_date", Date, nullable=False,
           comment="alerts are held back for data days before this day"),
    Column("reason", Text, nullable=True),
    Column("created_by", String(250), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_by", String(250), nullable=True),
    Column("removed_at", UTCDateTime, nullable=True, comment="NULL while the snooze is in force"),
    Index(None, "sensor_group", "until_date"),
)


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest schema through the migrations (no-op when current)."""
    from tsad.storage.migrate import ensure_current

    ensure_current(engine)
