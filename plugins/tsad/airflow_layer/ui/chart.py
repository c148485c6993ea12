"""The event page's chart block: the interactive chart, with the PNG as its fallback.

The chart is ``static/event_chart.js`` (vanilla JS drawing SVG, shipped in the package: plants
have no internet, so no CDN), fed by ``GET /api/events/{id}/series`` (``series``). The PNG the
alert carried stays on the page, open until the chart has drawn: without JavaScript, or when the
readings or the model are gone, it is what the page shows.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from typing import Any

STATIC = files("tsad.airflow_layer.ui").joinpath("static")
#: The files ``GET /static/{name}`` serves, and their media types.
STATIC_FILES = {"event_chart.js": "text/javascript"}

CSS = """
#chart{margin:8px 0 4px;min-height:40px;max-width:1400px}
.chart-bar{display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin-bottom:4px}
.chart-legend{display:flex;gap:6px;align-items:center;flex-wrap:wrap}
.chart-legend .key{display:inline-block;width:22px;height:0;border-top:2px solid currentColor;
margin-left:8px}
.chart-legend .key.line-recon{border-top-style:dashed}
.chart-legend .key.line-threshold{border-top-style:dotted}
.chart-legend .key.swatch-event{height:10px;border:0;background:rgba(214,39,40,.15)}
.chart-readout{min-height:1.4em;font-variant-numeric:tabular-nums}
svg.chart-svg{display:block;font:12px system-ui,sans-serif;user-select:none}
svg.chart-svg .hit{cursor:crosshair}
svg.chart-svg .frame{fill:none;stroke:#cbd5e0}
svg.chart-svg .grid{stroke:#edf2f7}
svg.chart-svg .tick-x,svg.chart-svg .tick-y{fill:#4a5568;font-size:12px}
svg.chart-svg .tick-date{fill:#718096}
svg.chart-svg .panel-label,svg.chart-svg .axis-title{fill:#1a202c;font-size:13px;font-weight:600}
svg.chart-svg path{fill:none;stroke-width:1.6}
.line-reading{stroke:#1f77b4;color:#1f77b4}
.line-recon{stroke:#ff7f0e;stroke-dasharray:5 3;color:#ff7f0e}
.line-score{stroke:#2d3748;color:#2d3748}
.line-threshold{stroke:#d62728;stroke-width:1.5;stroke-dasharray:2 3;color:#d62728}
svg.chart-svg .event-span{fill:rgba(214,39,40,.15)}
svg.chart-svg .brush{fill:rgba(11,102,195,.15);stroke:#0b66c3}
svg.chart-svg .crosshair{stroke:#718096;stroke-dasharray:3 3}
details#png summary{cursor:pointer;color:#4a5568}
"""


def chart_block(event: dict[str, Any], site_timezone: str) -> str:
    """The chart's container, the PNG fallback (open until the chart draws) and the script."""
    event_id = int(event["event_id"])
    png = (f'<details id="png" open><summary>Static picture (the PNG of the alert)</summary>'
           f'<img class="plot" id="plot" src="{event_id}/plot.png" '
           f'alt="readings, reconstructions and score around the event"></details>'
           if event.get("plot_path") else "")
    return (f"<style>{CSS}</style>"
            f'<div id="chart" data-src="../api/events/{event_id}/series" '
            f'data-timezone="{escape(site_timezone)}">'
            '<p class="note">Loading the interactive chart&hellip; (it needs JavaScript'
            f'{"; the static picture below shows the event" if png else ""})</p></div>'
            f'{png}<script src="../static/event_chart.js" defer></script>')


def static_file(name: str) -> tuple[bytes, str] | None:
    """A packaged static file and its media type; None for any other name."""
    if name not in STATIC_FILES:
        return None
    return STATIC.joinpath(name).read_bytes(), STATIC_FILES[name]
