"""Provider info for Airflow's providers manager (the ``apache_airflow_provider`` entry point).

With tsad installed, ``airflow providers list`` shows it and Airflow knows its notifier, so
``PipelineFailureNotifier`` can be named in any DAG's callbacks like a provider's own. Airflow
requires ``package-name`` to equal the distribution's name.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions = [version("tsad")]
    except PackageNotFoundError:  # a source checkout that is not installed
        versions = []
    return {
        "package-name": "tsad",
        "name": "tsad",
        "description": "Nightly anomaly detection for industrial sensor fleets: the nightly DAG "
                       "factory, the Anomalies UI plugin and pipeline-failure notifications.",
        "versions": versions,
        "notifications": ["tsad.airflow_layer.notifiers.PipelineFailureNotifier"],
    }
