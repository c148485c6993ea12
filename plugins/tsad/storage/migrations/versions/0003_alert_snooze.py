"""Snoozes set from the UI.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

- ``alert_snooze``: a group's alerts (or those a channel leads) held back for data days before
  ``until_date``, set and removed on the event page; a removal keeps the row (``removed_at``,
  ``removed_by``). The alerts read it together with the config's ``alerts.snooze``.

A new table only: the reporting views are left alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tsad.storage.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GROUP = 63


def upgrade() -> None:
    op.create_table(
        "alert_snooze",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sensor_group", sa.String(GROUP), nullable=False),
        sa.Column("channel", sa.String(200), nullable=True,
                  comment="NULL: every event of the group; else the events where this channel "
                          "carries at least half of the contribution"),
        sa.Column("until_date", sa.Date, nullable=False,
                  comment="alerts are held back for data days before this day"),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(250), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("removed_by", sa.String(250), nullable=True),
        sa.Column("removed_at", UTCDateTime, nullable=True,
                  comment="NULL while the snooze is in force"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_snooze"),
    )
    op.create_index("ix_alert_snooze_sensor_group_until_date", "alert_snooze",
                    ["sensor_group", "until_date"])


def downgrade() -> None:
    op.drop_index("ix_alert_snooze_sensor_group_until_date", table_name="alert_snooze")
    op.drop_table("alert_snooze")
