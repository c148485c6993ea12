"""The nightly steps for one (group, day), shared by the ``tsad`` CLI and the Airflow DAG.

Every step takes a ``GroupDay`` (config, group, day, run, resolved URLs) and returns a small
JSON-able dict: ``extract`` -> ``ensure_model`` (per unit) -> ``score`` (per unit) -> ``record``
-> ``alert``; ``run_day`` runs them all in this process (``tsad run``). A group without
enough history for a first model records its day with ``record_warming_up`` instead.
"""

from tsad import lazy_exports

__all__ = ["GroupDay", "RunInfo", "alert", "database_url", "ensure_model", "extract", "record",
           "record_warming_up", "records_written_by", "run_day", "score", "unscored_units"]
__getattr__ = lazy_exports(__name__, {
    "GroupDay": "context", "RunInfo": "context", "alert": "alerting", "database_url": "context",
    "ensure_model": "modelling", "extract": "extracting", "record": "recording",
    "record_warming_up": "recording",
    "records_written_by": "recording", "run_day": "nightly", "score": "scoring",
    "unscored_units": "scoring",
})
