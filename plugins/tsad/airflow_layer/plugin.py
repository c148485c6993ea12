"""tsad's Airflow plugin: the "Anomalies" entry in the Airflow UI's navigation.

Registered two ways, never both: the ``airflow.plugins`` entry point of an installed tsad
(``pip install "tsad[airflow]"``, no plugins folder needed), or ``plugins/tsad_plugin.py`` in a
source checkout whose tsad is not installed with that entry point. The page itself is a FastAPI
app (``tsad.airflow_layer.ui.app``) that Airflow's API server mounts at ``/tsad``; it checks
Airflow's authentication itself. Nothing heavy is imported here.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from tsad.airflow_layer.ui.app import URL_PREFIX, app


class TsadPlugin(AirflowPlugin):
    name = "tsad"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "tsad anomalies"}]
    external_views = [{
        "name": "Anomalies",
        "href": f"{URL_PREFIX}/overview",  # the fleet overview; the event list is at /
        "destination": "nav",
        "url_route": "anomalies",
        "category": "browse",
    }]
