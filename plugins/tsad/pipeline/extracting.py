"""Step 1: the day's readings from the source into the group's Parquet partition."""

from __future__ import annotations

from typing import Any

from tsad.ingest.extract import extract_day
from tsad.ingest.partitions import write_quality
from tsad.pipeline.context import GroupDay, log, retrying


def extract(ctx: GroupDay) -> dict[str, Any]:
    """Extract the day (``tsad.ingest``); its quality counts go beside the partition."""
    config = ctx.config
    result = retrying(lambda: extract_day(ctx.group, ctx.day, config.site_timezone,
                                          config.data_dir, source_url=ctx.source_url),
                      f"extracting group {ctx.label()}")
    write_quality(config.data_dir, ctx.name, ctx.day, result.quality)
    log.info("group %s: extracted %d rows to %s", ctx.label(), result.rows, result.path)
    return result.to_dict()
