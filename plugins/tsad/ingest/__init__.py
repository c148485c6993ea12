"""Ingest: one site-local day from the source system into one Parquet partition.

``sources`` reads the day's raw rows (one class per source kind, chosen by ``source.kind``: a SQL
table, a dropped CSV/Parquet file), ``extract`` makes them regular (grid, quality policy, counts),
``partitions`` says where partitions live and reads them back.
"""

from tsad import lazy_exports

__all__ = ["ExtractResult", "Source", "extract_day", "partition_path", "read_days",
           "read_partition", "source_for"]
__getattr__ = lazy_exports(__name__, {
    "ExtractResult": "extract", "extract_day": "extract", "partition_path": "partitions",
    "read_days": "partitions", "read_partition": "partitions", "Source": "sources",
    "source_for": "sources",
})
