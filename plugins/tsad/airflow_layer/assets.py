"""The Asset tsad's nightly DAG updates after writing a (group, day)'s records.

One definition: the nightly DAG's ``detect`` task emits it (``extra``: the partition) and
reporting DAGs (``dags/tsad_reporting.py``) schedule on it.
"""

from __future__ import annotations

from airflow.sdk import Asset

RECORDS = Asset(name="tsad_records", uri="tsad://records", group="tsad")
