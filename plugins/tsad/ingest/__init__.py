"""Ingest: one site-local day from the source system into one Parquet partition.

``sources`` reads the day's raw rows (a SQL table, or a dropped CSV/Parquet file), ``extract``
makes them regular (grid, quality policy, counts), ``partitions`` says where partitions live and
reads them back.
"""

from tsad import lazy_exports

__all__ = ["ExtractResult", "extract_day", "partition_path", "read_days", "read_partition"]
__getattr__ = lazy_exports(__name__, {
    "ExtractResult": "extract", "extract_day": "extract", "partition_path": "partitions",
    "read_days": "partitions", "read_partition": "partitions",
})
