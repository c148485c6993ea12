"""Sustained events and the "new operating point" verdict.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

- ``anomaly_event.kind`` ('transient' for every earlier row) and ``anomaly_event.since_date``: a
  day that moved away from training as a whole is recorded as a sustained event, every day it
  lasts, with the day it began.
- ``anomaly_feedback.label`` also takes 'new_operating_point'.

The reporting views read these tables, so they are dropped first (SQLite rebuilds a table to
change its CHECK constraint) and ``tsad.storage.views.create_views`` makes them again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tsad.storage.schema import anomaly_feedback
from tsad.storage.views import VIEWS

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LABELS = ("true_alarm", "false_alarm", "new_operating_point")


def upgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("anomaly_event") as batch:
        batch.add_column(sa.Column(
            "kind", sa.String(32), nullable=False, server_default="transient",
            comment="'transient': an episode inside the day; 'sustained': the day as a whole "
                    "moved away from training (recorded and alerted every day it lasts)"))
        batch.add_column(sa.Column("since_date", sa.Date, nullable=True,
                                   comment="sustained events: the first data day of the departure"))
    # SQLite cannot alter a CHECK constraint: rebuild the table from the head's definition
    with op.batch_alter_table("anomaly_feedback", recreate="auto",
                              copy_from=anomaly_feedback) as batch:
        batch.drop_constraint("ck_anomaly_feedback_label", type_="check")
        batch.create_check_constraint("ck_anomaly_feedback_label",
                                      sa.column("label").in_(LABELS))


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("anomaly_event") as batch:
        batch.drop_column("since_date")
        batch.drop_column("kind")
