"""The "Anomalies" view in the Airflow UI: a FastAPI app mounted by ``plugins/tsad_plugin.py``.

Server-rendered pages over tsad's records (events, plots, model versions, verdicts), protected by
Airflow's own authentication (plugin apps are not protected automatically: see ``auth``).
Importing this package imports neither torch nor pandas: the API server loads it at start.
"""
