"""What the Airflow UI shows an operator about the nightly DAG and each of its tasks (``doc_md``).

Written for the plant's on-call data team, not for tsad's developers: what a task does, what a
failure of it means, and what to do next. Developer notes live in the modules' docstrings.
"""

from __future__ import annotations

DAG_DOC = """\
### tsad nightly anomaly detection

Every night this DAG scores **the previous day** of every configured sensor group (the *data
day*, a date in the site's time zone) and records the anomaly events it finds. Each group runs
on its own: one group's failure never stops the others, but it makes the whole run fail
(task `sensor_group.outcome`) so it is not missed.

**Where to look**

- Events: *Browse -> Anomalies* (one page per day and group, with plots), or
  `tsad events --from YYYY-MM-DD` on a worker.
- A failed group: open the run, then the failed task's mapped instance named after the group;
  its log ends with one line saying what is wrong and what to fix.

**Failures and retries**

- A problem that waiting can fix (database restarting, source unreachable, lock held) is retried
  automatically.
- A problem that needs a person (a wrong setting in the config, a missing table or column, bad
  data, a broken model) fails at once, without retries, and notifies the group's alert routes.
  Fix the cause, then *Clear* the failed task: every task can be re-run safely.

**Running it by hand** (*Trigger*): all fields are optional.

- *Sensor groups*: only these groups (empty: all).
- *Force retrain*: train new model versions even if the current ones are fresh.
- *Data day*: the day to score, `YYYY-MM-DD`, instead of the day before the run's date.

Re-running or backfilling a day (*Run Backfill*, or `airflow backfill create`) replaces that
day's records; it never duplicates them.
"""

TASK_DOCS: dict[str, str] = {
    "db_upgrade": """\
Brings tsad's records database to the newest table layout. Usually does nothing.

**If it fails**: the records database cannot be reached or logged into; the log names it. Check
the database connection (`database.conn_id` or `database.url` in the config).""",
    "list_groups": """\
Lists the sensor groups this run scores: all configured groups, or those picked in the trigger
form.

**If it fails**: the config file cannot be read or names an unknown group; the log says which
setting. Fix the config (`tsad config check` validates it), then clear this task.""",
    "list_units": """\
Splits large groups into their channel shards (`groups[].shards`); each unit trains and scores
on its own.

**If it fails**: the config's shard settings are wrong; the log names the group.""",
    "extract": """\
Reads the data day of one sensor group from its source (historian table or dropped files) into
a Parquet file. One instance per group.

**If it fails**: the source is missing data, a table or a column, or cannot be read; the log
names the table, file or column. A source that is down for a while is retried automatically.""",
    "ensure_model": """\
Makes sure the group (or shard) has a fresh model: loads the current version, or trains a new
one on the days before the data day when it is too old, missing, drifting or *Force retrain*
was set. Runs on the GPU queue and pool.

**If it fails**: no usable model and not enough normal history to train one, or the model files
are damaged; the log says which. Skipped when the group's extract failed.""",
    "score": """\
Scores the data day with the group's (or shard's) model: how far each reading is from what the
model expects.

**If it fails**: the model does not fit the data (channels changed since training); retrain
with *Force retrain*. Skipped when the model could not be prepared.""",
    "detect": """\
Turns the scores into anomaly events and writes the day's records for the group, replacing
any earlier run's records of that day in one transaction.

**If it fails**: the records database refused the write; the log names it. Skipped (records
left as they were) when one of the group's units was not scored.""",
    "alert": """\
Sends the group's digest of the day's events to its email and Slack routes
(`groups[].alerts`). Skipped when this run wrote no records for the group.

**If it fails**: a mail server or webhook refused the message; check the connection named in
the log.""",
    "outcome": """\
Marks the run failed when any group's task failed, so a partial night is never shown green.
Look for the red task instances before it.""",
}
