"""Example downstream report, scheduled on tsad's records Asset (see docs/reporting.md).

Each successful ``detect`` of the nightly DAG updates the Asset ``tsad_records`` with the
partition it wrote in the event's ``extra``. This DAG runs after such updates (nightly runs,
backfills and re-runs alike), reads the view ``v_daily_group_summary`` for the days named by the
triggering events, and writes one CSV per day to ``{data_dir}/reports/daily-YYYY-MM-DD.csv``.
Replace the body with your own report; keep reading the views, not the tables.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from tsad.airflow_layer.assets import RECORDS


@dag(
    dag_id="tsad_reporting",
    schedule=[RECORDS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["tsad", "reporting"],
    doc_md=__doc__,
)
def tsad_reporting() -> None:
    @task
    def daily_summary_csv(triggering_asset_events: dict | None = None) -> list[str]:
        import csv
        import io
        from datetime import date

        import sqlalchemy as sa

        from tsad.airflow_layer.connections import optional_url
        from tsad import fs
        from tsad.config import load_config
        from tsad.storage.engine import get_engine
        from tsad.storage.views import create_views

        config = load_config()
        engine = get_engine(optional_url(config.database.url, config.database.conn_id))
        create_views(engine)
        days = sorted({date.fromisoformat(e.extra["partition_date"])
                       for events in (triggering_asset_events or {}).values() for e in events
                       if (e.extra or {}).get("partition_date")})
        with engine.connect() as conn:
            if not days:  # a manual run: the newest day on record
                newest = conn.execute(sa.text(
                    "SELECT MAX(partition_date) FROM v_daily_group_summary")).scalar()
                days = [date.fromisoformat(str(newest))] if newest else []
            query = sa.text("SELECT * FROM v_daily_group_summary WHERE partition_date = :day "
                            "ORDER BY sensor_group").bindparams(sa.bindparam("day", type_=sa.Date))
            written = []
            for day in days:
                result = conn.execute(query, {"day": day})
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(result.keys())
                writer.writerows(result)
                out = fs.location(config.data_dir, "reports", f"daily-{day.isoformat()}.csv")
                if fs.is_remote(out):  # object storage: one PUT, seen whole or not at all
                    fs.write_bytes(str(out), buffer.getvalue().encode())
                else:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(buffer.getvalue())
                written.append(str(out))
        return written

    daily_summary_csv()


tsad_reporting()
