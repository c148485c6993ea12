"""Airflow's local settings for a source checkout: imported by every Airflow process, from the
plugins folder Airflow puts on ``sys.path``.

It preloads the nightly tasks' heavy modules in the processes that fork tasks (the scheduler
with the LocalExecutor, a Celery worker), so each task starts with them instead of importing
them again (``tsad.airflow_layer.preload``; ``TSAD_PRELOAD=0`` turns it off). A deployment that
has its own ``airflow_local_settings.py`` adds these two lines to it.
"""

from tsad.airflow_layer.preload import preload_for_this_process

preload_for_this_process()
