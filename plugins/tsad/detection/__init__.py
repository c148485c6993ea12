"""Detection: from a day's scores to what an operator reviews and the records that keep it.

``events`` (flags -> events), ``drift`` (a day that moved away as a whole), ``unit_scores`` (a
unit's scores between tasks), ``merge`` (shards into one group-day), ``day_records`` (the run
row, events and points), ``plots`` (one PNG per event).
"""

from tsad import lazy_exports

__all__ = ["DayRecords", "Event", "Merged", "UnitScores", "build_records", "check_drift",
           "event_mask", "find_events", "plot_events"]
__getattr__ = lazy_exports(__name__, {
    "DayRecords": "day_records", "Event": "events", "Merged": "merge",
    "UnitScores": "unit_scores", "build_records": "day_records", "check_drift": "drift",
    "event_mask": "events", "find_events": "events", "plot_events": "plots",
})
