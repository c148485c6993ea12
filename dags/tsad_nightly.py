"""tsad's nightly anomaly detection: one run per data day, fanned out over sensor groups.

The DAG is built by ``tsad.airflow_layer.nightly.nightly_dag`` (its docs are in the Airflow UI).
This file imports neither torch nor pandas: the scheduler parses it often.
"""

from tsad.airflow_layer.nightly import nightly_dag

dag = nightly_dag()
