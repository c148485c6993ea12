"""The thin Airflow layer: resolves connections and the data day, then calls ``tsad.pipeline``.

Only this subpackage, ``dags/`` and ``plugins/tsad_plugin.py`` import Airflow.
"""
