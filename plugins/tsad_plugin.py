"""tsad's Airflow plugin for a source checkout (the plugins folder): the "Anomalies" page.

The only plugin file: ``plugins/.airflowignore`` keeps the ``tsad`` package out of the plugin
loader (which would otherwise execute every module under ``plugins/`` as a top-level module).
When tsad is pip-installed, its ``airflow.plugins`` entry point registers the same plugin; this
file then defines nothing, so Airflow does not report "Plugin 'tsad' already registered".
"""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(ep.value.startswith("tsad.") for ep in entry_points(group="airflow.plugins")):
    from tsad.airflow_layer.plugin import TsadPlugin  # noqa: F401  (found by the plugin loader)
