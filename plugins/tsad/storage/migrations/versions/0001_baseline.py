"""Baseline: tsad's tables as the first release made them (frozen here, never edited).

Revision ID: 0001
Revises:
Create Date: 2026-03-01

Creates what is missing and leaves existing tables alone, so a database made before migrations
existed (``metadata.create_all`` of the first release) is adopted as is. The tables are a frozen
copy, not ``tsad.storage.schema``: that module describes the head, and each later revision adds
its own change (additive only: the tables are a public contract).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (JSON, Boolean, CheckConstraint, Column, Date, Float, ForeignKey, Index,
                        Integer, MetaData, String, Table, Text, UniqueConstraint)
from sqlalchemy.dialects.postgresql import JSONB

from tsad.storage.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GROUP = 63
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def baseline() -> MetaData:
    """The first release's five tables."""
    metadata = MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    Table("model_version", metadata,
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
          UniqueConstraint("sensor_group", "version"))
    Table("detection_run", metadata,
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
          Index(None, "sensor_group", "partition_date", "id"))
    Table("anomaly_event", metadata,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("detection_run_id", Integer, ForeignKey("detection_run.id"), nullable=False),
          Column("sensor_group", String(GROUP), nullable=False),
          Column("partition_date", Date, nullable=False),
          Column("start_ts", UTCDateTime, nullable=False),
          Column("end_ts", UTCDateTime, nullable=False),
          Column("peak_ts", UTCDateTime, nullable=False),
          Column("peak_score", Float, nullable=False),
          Column("threshold", Float, nullable=False),
          Column("severity", Float, nullable=False,
                 comment="peak_score / threshold; >= 1 is anomalous"),
          Column("n_points", Integer, nullable=False),
          Column("top_channels_json", JSONType, nullable=False,
                 comment='[{"channel": str, "contribution": fraction 0..1}], largest first'),
          Column("model_version_id", String(100), nullable=True),
          Column("plot_path", Text, nullable=True,
                 comment="PNG of the event (readings, reconstructions, score vs threshold); "
                         "may be NULL"),
          Index(None, "sensor_group", "partition_date"),
          Index(None, "start_ts"))
    Table("anomaly_point", metadata,
          Column("sensor_group", String(GROUP), primary_key=True),
          Column("partition_date", Date, primary_key=True),
          Column("channel", String(200), primary_key=True),
          Column("ts", UTCDateTime, primary_key=True),
          Column("score", Float, nullable=False),
          Column("threshold", Float, nullable=False),
          Column("severity", Float, nullable=False),
          Column("contribution", Float, nullable=True),
          Column("detection_run_id", Integer, ForeignKey("detection_run.id"), nullable=False),
          Column("model_version_id", String(100), nullable=True))
    Table("anomaly_feedback", metadata,
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
          CheckConstraint("label IN ('true_alarm', 'false_alarm')",
                          name="ck_anomaly_feedback_label"))
    return metadata


def upgrade() -> None:
    baseline().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    baseline().drop_all(op.get_bind(), checkfirst=True)
