/* tsad: the event page's interactive chart (vanilla JS + SVG; no library, no network but this
 * server). Reads the JSON of <div id="chart" data-src="..."> (the series endpoint): one panel per
 * top channel (reading, reconstruction) and one of the score against the threshold, the event
 * shaded, time in the site's zone. Zoom: drag across a panel, or the mouse wheel; "Reset zoom"
 * or a double click shows everything again. Hovering reads the values at that time.
 * After each draw the root's data-view holds the shown range "start,end" (epoch ms). */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var root = document.getElementById("chart");
  if (!root) { return; }
  var M = {left: 74, right: 16, top: 8, gap: 14, axis: 40};
  var PANEL = 130, SCORE_PANEL = 150, LOG_RATIO = 20;
  var STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400, 172800, 604800].map(function (s) { return s * 1000; });

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function html(name, cls, text, parent) {
    var node = document.createElement(name);
    if (cls) { node.className = cls; }
    if (text) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function fail(message) {
    root.textContent = "";
    html("p", "note chart-error", "Interactive chart unavailable: " + message +
         (document.getElementById("png") ? " The static picture below shows the event." : ""),
         root);
    root.setAttribute("data-error", message);
  }

  var headers = {Accept: "application/json"};
  fetch(root.getAttribute("data-src"), {credentials: "same-origin", headers: headers})
    .then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) { throw new Error(body.detail || ("HTTP " + r.status)); }
        return body;
      });
    })
    .then(draw)
    .catch(function (err) { fail(String(err.message || err)); });

  function draw(data) {
    var tz = data.site_timezone || "UTC";
    var times = data.times;
    if (!times.length) { fail("no readings around the event."); return; }
    var full = [times[0], times[times.length - 1]];
    if (full[0] === full[1]) { full = [full[0] - 60000, full[1] + 60000]; }
    var view = full.slice();
    root.textContent = "";
    var bar = html("div", "chart-bar", "", root);
    var reset = html("button", "", "Reset zoom", bar);
    reset.type = "button"; reset.id = "chart-reset"; reset.disabled = true;
    html("span", "note", "Drag across a panel or use the mouse wheel to zoom; double-click " +
         "to reset. Time axis: " + tz + (data.step > 1 ? "; every " + data.step +
         "th row shown (the highest score of each)" : "") + ".", bar);
    var legend = html("div", "chart-legend note", "", root);
    [["reading", "line-reading"], ["reconstruction", "line-recon"],
     ["anomaly score", "line-score"], ["threshold", "line-threshold"],
     ["event", "swatch-event"]].forEach(function (item) {
      var key = html("span", "key " + item[1], "", legend);
      key.setAttribute("aria-hidden", "true");
      html("span", "", item[0], legend);
    });
    var readout = html("div", "chart-readout note", "\u00a0", root);
    readout.id = "chart-readout";
    var width = Math.max(root.clientWidth, 480);
    var panels = data.channels.map(function (c) {
      return {label: c.unit ? c.name + " (" + c.unit + ")" : c.name, series: [
        {values: c.reading, cls: "line-reading", name: "reading"},
        {values: c.reconstruction, cls: "line-recon", name: "reconstruction"}],
        height: PANEL, id: c.name};
    });
    panels.push({label: "score", series: [{values: data.score, cls: "line-score",
                 name: "score"}], height: SCORE_PANEL, threshold: data.threshold, id: "score"});
    var height = M.top + M.axis + panels.reduce(function (s, p) { return s + p.height + M.gap; }, 0);
    var svg = el("svg", {width: width, height: height, "class": "chart-svg",
                         role: "img", "aria-label": "readings, reconstruction and score"}, root);
    var plotW = width - M.left - M.right;
    var y0 = M.top;
    panels.forEach(function (p) { p.top = y0; y0 += p.height + M.gap; });
    var bottom = y0 - M.gap;
    el("clipPath", {id: "chart-clip"}, el("defs", {}, svg)).appendChild(
      el("rect", {x: M.left, y: 0, width: plotW, height: height}));
    var layer = el("g", {}, svg);
    var overlay = el("g", {}, svg);
    var cross = el("line", {"class": "crosshair", y1: M.top, y2: bottom, visibility: "hidden"},
                   overlay);
    var brush = el("rect", {"class": "brush", y: M.top, height: bottom - M.top,
                            visibility: "hidden"}, overlay);
    var hit = el("rect", {x: M.left, y: M.top, width: plotW, height: bottom - M.top,
                          fill: "transparent", "class": "hit"}, overlay);

    function xOf(t) { return M.left + (t - view[0]) / (view[1] - view[0]) * plotW; }
    function tOf(x) { return view[0] + (x - M.left) / plotW * (view[1] - view[0]); }

    function visible() {
      var lo = lowerBound(times, view[0]), hi = lowerBound(times, view[1] + 1);
      return [Math.max(0, lo - 1), Math.min(times.length, hi + 1)];
    }

    function render() {
      while (layer.firstChild) { layer.removeChild(layer.firstChild); }
      var span = visible();
      var ticks = timeTicks(view, tz, plotW);
      panels.forEach(function (p) { renderPanel(p, span, ticks); });
      ticks.forEach(function (t) {
        var x = xOf(t.at);
        var text = el("text", {x: x, y: bottom + 16, "class": "tick-x", "text-anchor": "middle"},
                      layer);
        text.textContent = t.label;
        if (t.date) {
          var d = el("text", {x: x, y: bottom + 30, "class": "tick-x tick-date",
                              "text-anchor": "middle"}, layer);
          d.textContent = t.date;
        }
      });
      el("text", {x: M.left + plotW, y: height - 2, "class": "axis-title",
                  "text-anchor": "end"}, layer).textContent = "time (" + tz + ")";
      root.setAttribute("data-view", Math.round(view[0]) + "," + Math.round(view[1]));
      reset.disabled = view[0] === full[0] && view[1] === full[1];
    }

    function renderPanel(p, span, ticks) {
      var g = el("g", {"class": "panel", "data-panel": p.id}, layer);
      var values = [];
      p.series.forEach(function (s) {
        for (var i = span[0]; i < span[1]; i++) { if (s.values[i] !== null) { values.push(s.values[i]); } }
      });
      if (p.threshold !== undefined) { values.push(p.threshold); }
      var lo = Math.min.apply(null, values.length ? values : [0]);
      var hi = Math.max.apply(null, values.length ? values : [1]);
      var log = p.threshold !== undefined && lo > 0 && hi > LOG_RATIO * p.threshold;
      var f = log ? Math.log10 : function (v) { return v; };
      var a = f(lo), b = f(hi);
      if (a === b) { a -= 1; b += 1; }
      var pad = (b - a) * 0.06;
      a -= pad; b += pad;
      function yOf(v) { return p.top + p.height - (f(v) - a) / (b - a) * p.height; }
      el("rect", {x: M.left, y: p.top, width: plotW, height: p.height, "class": "frame"}, g);
      var e0 = Math.max(xOf(data.event.start), M.left), e1 = Math.min(xOf(data.event.end), M.left + plotW);
      if (e1 >= e0) {
        el("rect", {x: e0, y: p.top, width: Math.max(e1 - e0, 2), height: p.height,
                    "class": "event-span"}, g);
      }
      ticks.forEach(function (t) {
        el("line", {x1: xOf(t.at), x2: xOf(t.at), y1: p.top, y2: p.top + p.height,
                    "class": "grid"}, g);
      });
      valueTicks(a, b, log).forEach(function (v) {
        var y = yOf(v);
        el("line", {x1: M.left, x2: M.left + plotW, y1: y, y2: y, "class": "grid"}, g);
        el("text", {x: M.left - 6, y: y + 4, "text-anchor": "end", "class": "tick-y"}, g)
          .textContent = number(v);
      });
      var label = el("text", {"class": "panel-label", "text-anchor": "middle",
                              transform: "translate(14," + (p.top + p.height / 2) + ") rotate(-90)"}, g);
      label.textContent = p.label;
      var clipped = el("g", {"clip-path": "url(#chart-clip)"}, g);
      if (p.threshold !== undefined) {
        var ty = yOf(p.threshold);
        el("line", {x1: M.left, x2: M.left + plotW, y1: ty, y2: ty, "class": "line-threshold"},
           clipped);
      }
      p.series.forEach(function (s) {
        var d = "", pen = false;
        for (var i = span[0]; i < span[1]; i++) {
          var v = s.values[i];
          if (v === null || (log && v <= 0)) { pen = false; continue; }
          d += (pen ? "L" : "M") + xOf(times[i]).toFixed(1) + "," + yOf(v).toFixed(1);
          pen = true;
        }
        el("path", {d: d || "M0,0", "class": s.cls, "data-series": s.name}, clipped);
      });
      p.yOf = yOf;
    }

    function zoomTo(a, b) {
      var min = Math.max((times.length > 1 ? (full[1] - full[0]) / times.length : 1000) * 4, 1000);
      if (b - a < min) { var mid = (a + b) / 2; a = mid - min / 2; b = mid + min / 2; }
      view = [Math.max(full[0], a), Math.min(full[1], b)];
      render();
    }

    function pointerX(evt) {
      var box = svg.getBoundingClientRect();
      return Math.min(Math.max(evt.clientX - box.left, M.left), M.left + plotW);
    }

    var dragFrom = null;
    hit.addEventListener("mousedown", function (evt) {
      evt.preventDefault();
      dragFrom = pointerX(evt);
    });
    window.addEventListener("mousemove", function (evt) {
      if (dragFrom === null) { return; }
      var x = pointerX(evt);
      brush.setAttribute("x", Math.min(x, dragFrom));
      brush.setAttribute("width", Math.abs(x - dragFrom));
      brush.setAttribute("visibility", "visible");
    });
    window.addEventListener("mouseup", function (evt) {
      if (dragFrom === null) { return; }
      var x = pointerX(evt), from = dragFrom;
      dragFrom = null;
      brush.setAttribute("visibility", "hidden");
      if (Math.abs(x - from) >= 5) { zoomTo(tOf(Math.min(x, from)), tOf(Math.max(x, from))); }
    });
    hit.addEventListener("wheel", function (evt) {
      evt.preventDefault();
      var at = tOf(pointerX(evt)), k = evt.deltaY < 0 ? 0.8 : 1.25;
      zoomTo(at - (at - view[0]) * k, at + (view[1] - at) * k);
    }, {passive: false});
    hit.addEventListener("dblclick", function () { zoomTo(full[0], full[1]); });
    reset.addEventListener("click", function () { zoomTo(full[0], full[1]); });
    hit.addEventListener("mousemove", function (evt) {
      var x = pointerX(evt), i = nearest(times, tOf(x));
      cross.setAttribute("x1", xOf(times[i])); cross.setAttribute("x2", xOf(times[i]));
      cross.setAttribute("visibility", "visible");
      var parts = [stamp(times[i], tz)];
      data.channels.forEach(function (c) {
        parts.push(c.name + " " + number(c.reading[i]) + " (model " + number(c.reconstruction[i]) + ")");
      });
      parts.push("score " + number(data.score[i]) + " / threshold " + number(data.threshold));
      readout.textContent = parts.join(" \u00b7 ");
    });
    hit.addEventListener("mouseleave", function () { cross.setAttribute("visibility", "hidden"); });
    render();
    var png = document.getElementById("png");
    if (png) { png.open = false; }
    root.setAttribute("data-ready", "1");
  }

  function lowerBound(a, v) {
    var lo = 0, hi = a.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (a[mid] < v) { lo = mid + 1; } else { hi = mid; } }
    return lo;
  }

  function nearest(a, v) {
    var i = Math.min(lowerBound(a, v), a.length - 1);
    return i > 0 && Math.abs(a[i - 1] - v) < Math.abs(a[i] - v) ? i - 1 : i;
  }

  function number(v) {
    if (v === null || v === undefined || !isFinite(v)) { return "\u2013"; }
    var m = Math.abs(v);
    if (m !== 0 && (m >= 1e5 || m < 1e-3)) { return v.toExponential(2); }
    return String(Number(v.toPrecision(4)));
  }

  function valueTicks(a, b, log) {
    if (log) {
      var out = [];
      for (var e = Math.ceil(a); e <= Math.floor(b); e++) { out.push(Math.pow(10, e)); }
      return out.length ? out : [Math.pow(10, (a + b) / 2)];
    }
    var raw = (b - a) / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (s) { return s * mag; })
      .filter(function (s) { return s >= raw; })[0];
    var ticks = [];
    for (var v = Math.ceil(a / step) * step; v <= b; v += step) { ticks.push(Number(v.toPrecision(12))); }
    return ticks;
  }

  var formats = {};
  function fmt(tz, opts) {
    var key = tz + JSON.stringify(opts);
    if (!formats[key]) {
      formats[key] = new Intl.DateTimeFormat("en-GB", Object.assign({timeZone: tz,
                                                                        hourCycle: "h23"}, opts));
    }
    return formats[key];
  }

  function offset(t, tz) {
    /* the site's UTC offset at t, in ms (wall clock minus UTC) */
    var p = {};
    fmt(tz, {year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
             minute: "2-digit", second: "2-digit"}).formatToParts(new Date(t))
      .forEach(function (x) { p[x.type] = x.value; });
    var wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return wall - Math.floor(t / 1000) * 1000;
  }

  function dayOf(t, tz) {
    var p = {};
    fmt(tz, {year: "numeric", month: "2-digit", day: "2-digit"}).formatToParts(new Date(t))
      .forEach(function (x) { p[x.type] = x.value; });
    return p.year + "-" + p.month + "-" + p.day;
  }

  function timeTicks(view, tz, plotW) {
    var span = view[1] - view[0], want = Math.max(2, Math.floor(plotW / 90));
    var step = STEPS.filter(function (s) { return span / s <= want; })[0] || STEPS[STEPS.length - 1];
    var off = offset(view[0], tz);
    var opts = step >= 86400000 ? {day: "2-digit", month: "short"}
      : step < 60000 ? {hour: "2-digit", minute: "2-digit", second: "2-digit"}
      : {hour: "2-digit", minute: "2-digit"};
    var ticks = [], lastDay = null;
    for (var w = Math.ceil((view[0] + off) / step) * step; w - off <= view[1]; w += step) {
      var t = w - off, d = dayOf(t, tz);
      ticks.push({at: t, label: fmt(tz, opts).format(new Date(t)),
                  date: step < 86400000 && d !== lastDay ? d : null});
      lastDay = d;
    }
    return ticks;
  }

  function stamp(t, tz) {
    /* "2026-03-05 22:40:00 CET (21:40:00 UTC)" */
    var clock = {hour: "2-digit", minute: "2-digit", second: "2-digit"};
    var zone = "";
    fmt(tz, {timeZoneName: "short", hour: "2-digit"}).formatToParts(new Date(t))
      .forEach(function (x) { if (x.type === "timeZoneName") { zone = x.value; } });
    var local = dayOf(t, tz) + " " + fmt(tz, clock).format(new Date(t)) + " " + zone;
    return tz === "UTC" ? local : local + " (" + fmt("UTC", clock).format(new Date(t)) + " UTC)";
  }
})();
