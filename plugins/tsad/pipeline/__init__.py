from tsad.pipeline.steps import *  # noqa: F403  (temporary)
from tsad.pipeline.steps import RunInfo, alert, database_url, detect, ensure_model, extract, record, record_units, records_written_by, run_day, score, score_unit, unscored_units  # noqa: F401
