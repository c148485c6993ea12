"""Baseline: every table of ``tsad.storage.schema.metadata``.

Revision ID: 0001
Revises:
Create Date: 2026-03-01

Creates what is missing and leaves existing tables alone, so a database made before migrations
existed (``metadata.create_all``) is adopted as is. It reads the tables from the metadata (with the
modules that add to it, see ``tsad.storage.migrate.SCHEMA_MODULES``: ``anomaly_feedback`` lives in
``tsad.storage.views``, whose ``create_views`` makes the reporting views), so every table defined
alongside the baseline is part of it; once a release has run it, changes go into new revisions
(``op.add_column``, ``op.create_table``): additive only, the tables are a public contract.
"""

from __future__ import annotations

from alembic import op

from tsad.storage.migrate import load_metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_metadata().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    load_metadata().drop_all(op.get_bind(), checkfirst=True)
