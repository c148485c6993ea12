"""Alembic scripts for tsad's records database; run them with ``tsad db upgrade`` (see
:mod:`tsad.storage.migrate`). A schema change is a new file in ``versions/``: additive only,
because downstream reports read these tables (docs: SQL conventions)."""
