"""The managers' page: one self-contained HTML file (inline SVG charts, inline CSS and a few lines of JS).

Why inline SVG drawn here rather than a charting library: the page must open with no network (a file
attached to an email, a laptop on a plane) and the service must not ship a front-end build. Every chart is
a ``<svg>`` whose numbers come from the same tables written as CSV next to it; native ``<title>`` tooltips
give exact values without script, and each chart's numbers are also a table on the page (in a ``<details>``
under the chart: the text alternative a screen reader or a keyboard user reads). The page meets WCAG 2.1 AA as
axe-core checks it (tests/integration/test_dashboard_browser.py): landmarks, one heading outline, labelled
controls, text and lines at 4.5:1 / 3:1 contrast, focusable scroll regions. The map of council districts is
`forecast.district_map`.

The only script is `SCRIPT`, the department filter (``<select id="department-filter">``): it hides every
element whose ``data-department`` differs from the choice and says what it shows in a live region. Nothing
else is inline but CSS and SVG presentation attributes, so a Content-Security-Policy needs only the script's
hash (`script_hash`) and ``style-src 'unsafe-inline'``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecast.district_map import render_district_maps
from forecast.districts import natural_key, with_promises

if TYPE_CHECKING:
    from forecast.departments import ForecastReport

ALL = ""
WIDTH, HEIGHT = 560, 230
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 14, 14, 40
AT_RISK_ROWS_PER_DEPARTMENT = 50
NEIGHBORHOOD_ROWS = 40
# At least 4.5:1 on white, so a colour also carries text: blue, red, green, purple, orange, brown, pink, teal, grey.
COLORS = ("#1d5fa8", "#b42318", "#1a7f37", "#6f42c1", "#a34400", "#6b4226", "#c2185b", "#0b7285", "#5b6475")
EXPECTED_COLOR, INTAKE_COLOR, BACKLOG_COLOR = "#1f77b4", "#c65102", "#7b4fa8"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2b45;color:#fff;padding:16px 24px}
header h1{margin:0 0 4px 0;font-size:22px}
header p{margin:0;opacity:.85}
main{padding:16px 24px;max-width:1280px}
.controls{margin:8px 0 16px 0;font-size:15px}
select{font-size:15px;padding:4px 8px}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.kpi{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:150px}
.kpi b{display:block;font-size:24px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:16px}
.card{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card h3{margin:0 0 6px 0;font-size:16px}
.note{color:#5b6475;font-size:13px}
svg text{font-size:11px;fill:#3b4252}
svg .axis{stroke:#9aa3b2;stroke-width:1}
svg .grid-line{stroke:#e3e6eb;stroke-width:1}
svg .band{fill:#1f77b4;fill-opacity:.22;stroke:none}
svg .expected{fill:none;stroke:#1f77b4;stroke-width:2.2}
svg .intake{fill:none;stroke:#c65102;stroke-width:1.6;stroke-dasharray:5 3}
svg .backlog-band{fill:#7b4fa8;fill-opacity:.2;stroke:none}
svg .backlog{fill:none;stroke:#7b4fa8;stroke-width:2.2}
svg .diagonal{stroke:#9aa3b2;stroke-dasharray:4 3}
table{border-collapse:collapse;width:100%;font-size:13px;background:#fff}
th,td{padding:4px 8px;border-bottom:1px solid #e3e6eb;text-align:right}
th{background:#eef0f4;position:sticky;top:0}
td.l,th.l{text-align:left}
tbody th{background:#fff;position:static;font-weight:600}
svg.bars{display:block}
.scroll{max-height:460px;overflow:auto}
.scroll:focus,select:focus,summary:focus,a:focus{outline:3px solid #1d5fa8;outline-offset:2px}
.good{color:#1a7f37}.bad{color:#b42318}
section{margin-bottom:22px}
h2{font-size:19px;margin:0 0 8px 0}
details{margin:6px 0}summary{cursor:pointer;color:#1d5fa8;font-size:13px}
caption{text-align:left;font-weight:600;padding:4px 0}
.maps{display:flex;flex-wrap:wrap;gap:24px}
figure{margin:0;max-width:540px}figcaption{font-size:13px;margin:6px 0}
ul.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px}
svg.swatch{vertical-align:middle}
svg .map-label{font-size:11px;fill:#1d2330;stroke:#fff;stroke-width:3px;paint-order:stroke;stroke-linejoin:round}
svg .map-district{font-weight:700;font-size:12px}
.key{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:3px}
.key-actual{background:#1f77b4}.key-predicted{background:#c65102}
.skip{position:absolute;left:-9999px}.skip:focus{left:8px;top:8px;background:#fff;color:#1d2330;padding:6px}
"""

SCRIPT = """
(function(){
  var select = document.getElementById('department-filter');
  function apply(){
    var chosen = select.value;
    var items = document.querySelectorAll('[data-department]');
    for (var i = 0; i < items.length; i++){
      var d = items[i].getAttribute('data-department');
      items[i].style.display = (chosen === '' || d === chosen || d === '*') ? '' : 'none';
    }
    document.body.setAttribute('data-selected', chosen);
    var status = document.getElementById('filter-status');
    if (status) status.textContent = chosen === '' ? 'Showing all departments.' : 'Showing ' + chosen + ' only.';
  }
  select.addEventListener('change', apply);
  apply();
  window.eta311Ready = true;
})();
"""


def script_hash() -> str:
    """The CSP source for the page's one inline script: ``'sha256-...'`` of `SCRIPT` as the page embeds it."""
    digest = hashlib.sha256(SCRIPT.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _e(value: object) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value))


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if math.isnan(number):
        return ""
    return f"{number:,.{digits}f}"


def _pct(value: object) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{100 * number:.0f}%"


def _nice_max(value: float) -> float:
    """A round upper bound for an axis (1, 2, 2.5, 5 x 10^k)."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _path(xs: Sequence[float], ys: Sequence[float]) -> str:
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def _band_chart(
    department: str,
    kind: str,
    dates: list[str],
    mean: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    line_class: str,
    band_class: str,
    label: str,
    extra: np.ndarray | None = None,
    extra_label: str = "",
) -> str:
    """One chart: a band (low-high), the expected line, optionally a dashed second series; dates on x."""
    n = len(dates)
    top = _nice_max(float(np.nanmax(np.concatenate([high, extra if extra is not None else high]))) * 1.05)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(i: int) -> float:
        return MARGIN_LEFT + (plot_w * i / max(n - 1, 1))

    def y(v: float) -> float:
        return MARGIN_TOP + plot_h * (1.0 - float(v) / top)

    xs = [x(i) for i in range(n)]
    parts = [
        f'<svg class="chart {kind}" data-department="{_e(department)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_e(label)} per day for {_e(department)}, '
        f'{_e(dates[0] if dates else "")} to {_e(dates[-1] if dates else "")}: numbers in the table below">'
    ]
    for k in range(5):
        value = top * k / 4
        parts.append(
            f'<line class="grid-line" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text x="{MARGIN_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{_fmt(value, 0)}</text>"
        )
    step = max(1, math.ceil(n / 7))
    for i in range(0, n, step):
        parts.append(
            f'<text x="{xs[i]:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" text-anchor="middle">{_e(dates[i][5:])}</text>'
        )
    parts.append(f'<line class="axis" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    band = _path(xs + xs[::-1], [y(v) for v in high] + [y(v) for v in low[::-1]]) + " Z"
    parts.append(f'<path class="{band_class}" d="{band}"><title>80% band</title></path>')
    if extra is not None:
        parts.append(
            f'<path class="intake" d="{_path(xs, [y(v) for v in extra])}"><title>{_e(extra_label)}</title></path>'
        )
    parts.append(f'<path class="{line_class}" d="{_path(xs, [y(v) for v in mean])}"/>')
    for i in range(n):
        tip = f"{dates[i]}: {label} {mean[i]:,.1f} (80%: {low[i]:,.1f}-{high[i]:,.1f})"
        if extra is not None:
            tip += f"; {extra_label} {extra[i]:,.1f}"
        parts.append(
            f'<circle cx="{xs[i]:.1f}" cy="{y(mean[i]):.1f}" r="3" '
            f'fill="{EXPECTED_COLOR if line_class == "expected" else BACKLOG_COLOR}"><title>{_e(tip)}</title></circle>'
        )
    legend = f"{label} (line), 80% band (shaded)" + (f", {extra_label} (dashed)" if extra is not None else "")
    parts.append(f'<text x="{MARGIN_LEFT}" y="{HEIGHT - 6}">{_e(legend)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _calibration_chart(calibration: pd.DataFrame, departments: list[str]) -> str:
    """Nominal quantile level (x) vs observed share of resolved requests below it (y): on the diagonal = honest."""
    size, pad = 300, 40
    plot = size - 2 * pad

    def px(v: float) -> float:
        return pad + plot * v

    def py(v: float) -> float:
        return size - pad - plot * v

    parts = [
        f'<svg class="chart calibration-chart" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        'role="img" aria-label="calibration: observed share at or below P10, P50 and P90 per department; '
        'numbers in the table below">',
        f'<line class="diagonal" x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}"/>',
        f'<line class="axis" x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(0)}"/>',
        f'<line class="axis" x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(1)}"/>',
    ]
    for v in (0.0, 0.1, 0.5, 0.9, 1.0):
        parts.append(f'<text x="{px(v):.1f}" y="{size - pad + 14}" text-anchor="middle">{v:g}</text>')
        parts.append(f'<text x="{pad - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    parts.append(f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle">predicted quantile (P10, P50, P90)</text>')
    names = ["All departments", *departments]
    for i, name in enumerate(names):
        part = calibration[calibration["department"] == name].sort_values("nominal")
        if part.empty or part["observed"].isna().all():
            continue
        color = COLORS[i % len(COLORS)]
        key = "*" if name == "All departments" else name
        xs = [px(v) for v in part["nominal"]]
        ys = [py(v) for v in part["observed"].fillna(0.0)]
        parts.append(f'<g data-department="{_e(key)}" stroke="{color}" fill="{color}">')
        parts.append(f'<path d="{_path(xs, ys)}" fill="none" stroke-width="{3 if key == "*" else 1.6}"/>')
        for xv, yv, (_, row) in zip(xs, ys, part.iterrows(), strict=True):
            level = round(100 * row["nominal"])
            tip = f"{name}: {row['observed']:.0%} of {int(row['n'])} resolved requests at or below P{level}"
            parts.append(f'<circle cx="{xv:.1f}" cy="{yv:.1f}" r="3.5"><title>{_e(tip)}</title></circle>')
        parts.append("</g>")
    parts.append("</svg>")
    legend = "".join(
        f'<li data-department="{_e("*" if n == "All departments" else n)}">'
        f'<svg class="swatch" width="14" height="10" aria-hidden="true"><rect width="14" height="10" '
        f'fill="{COLORS[i % len(COLORS)]}"/></svg> {_e(n)}</li>'
        for i, n in enumerate(names)
    )
    observed = calibration.pivot_table(index="department", columns="nominal", values="observed", sort=False)
    counts = calibration.groupby("department", sort=False)["n"].max()
    rows = "".join(
        f'<tr><th scope="row" class="l">{_e(name)}</th><td>{_fmt(counts.get(name), 0)}</td>'
        + "".join(f"<td>{_pct(observed.at[name, level])}</td>" for level in (0.1, 0.5, 0.9) if level in observed)
        + "</tr>"
        for name in names
        if name in observed.index
    )
    table = (
        '<table><thead><tr><th scope="col" class="l">department</th><th scope="col">resolved</th>'
        '<th scope="col">at or below P10</th><th scope="col">at or below P50</th><th scope="col">at or below P90</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return (
        "".join(parts)
        + f'<ul class="legend">{legend}</ul>'
        + f"<details><summary>Numbers behind the calibration chart</summary>{table}</details>"
    )


def _chart_numbers(department: str, part: pd.DataFrame) -> str:
    """The table behind one department's two charts (their text alternative), folded under them."""
    rows = "".join(
        f'<tr><th scope="row" class="l">{_e(r.date)}</th><td>{_fmt(r.expected_closures)}</td><td>{_fmt(r.low)}</td>'
        f"<td>{_fmt(r.high)}</td><td>{_fmt(r.expected_intake)}</td><td>{_fmt(r.projected_backlog, 0)}</td>"
        f"<td>{_fmt(r.backlog_low, 0)}</td><td>{_fmt(r.backlog_high, 0)}</td></tr>"
        for r in part.itertuples()
    )
    head = "".join(
        f'<th scope="col"{" class=l" if h == "date" else ""}>{h}</th>'
        for h in (
            "date",
            "expected closures",
            "closures 80% low",
            "closures 80% high",
            "expected intake",
            "projected backlog",
            "backlog 80% low",
            "backlog 80% high",
        )
    )
    return (
        f"<details><summary>Numbers behind the {_e(department)} charts</summary>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _region(label: str, content: str) -> str:
    """A scrolling box a keyboard can reach (focusable, named): WCAG 2.1.1 for overflowing tables."""
    return f'<div class="scroll" tabindex="0" role="region" aria-label="{_e(label)}">{content}</div>'


def _table(frame: pd.DataFrame, columns: list[tuple[str, str, str]], department_column: str | None = None) -> str:
    """An HTML table; columns are (field, header, format) with format in {"text", "int", "num", "pct", "days"}."""
    head = "".join(f'<th scope="col" class="{"l" if f == "text" else ""}">{_e(h)}</th>' for _, h, f in columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for name, _, kind in columns:
            value = row.get(name)
            if kind == "text":
                cells.append(f'<td class="l">{_e(value)}</td>')
            elif kind == "int":
                cells.append(f"<td>{_fmt(value, 0)}</td>")
            elif kind == "pct":
                cells.append(f"<td>{_pct(value)}</td>")
            else:
                cells.append(f"<td>{_fmt(value, 1)}</td>")
        attribute = f' data-department="{_e(row[department_column])}"' if department_column else ""
        body.append(f"<tr{attribute}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _district_table(frame: pd.DataFrame) -> str:
    """Council districts: median actual vs predicted days as bars, with accuracy and today's open/at-risk."""
    top = float(np.nanmax(frame[["median_actual_days", "median_predicted_days"]].to_numpy())) if len(frame) else 1.0
    top = top if np.isfinite(top) and top > 0 else 1.0
    rows = []
    for _, row in frame.sort_values("council_district", key=natural_key).iterrows():
        actual, predicted = row["median_actual_days"], row["median_predicted_days"]
        actual_px = 120 * actual / top if np.isfinite(actual) else 0.0
        predicted_px = 120 * predicted / top if np.isfinite(predicted) else 0.0
        bars = (
            f'<svg class="bars" width="122" height="20" aria-hidden="true">'
            f'<rect y="1" width="{actual_px:.0f}" height="8" fill="{EXPECTED_COLOR}"/>'
            f'<rect y="11" width="{predicted_px:.0f}" height="8" fill="{INTAKE_COLOR}"/></svg>'
        )
        better = row["mae_hours"] <= row["baseline_mae_hours"]
        rows.append(
            f'<tr><th scope="row" class="l">{_e(row["council_district"])}</th><td>{_fmt(row["n"], 0)}</td>'
            f'<td class="l">{bars}</td><td>{_fmt(actual, 2)}</td><td>{_fmt(predicted, 2)}</td>'
            f'<td class="{"good" if better else "bad"}">{_fmt(row["mae_hours"])}</td>'
            f"<td>{_fmt(row['baseline_mae_hours'])}</td>"
            f"<td>{_pct(row['within_p10_p90'])}</td><td>{_pct(row['closed_before_expected'])}</td>"
            f"<td>{_fmt(row.get('open_now'), 0)}</td><td>{_fmt(row.get('at_risk_now'), 0)}</td></tr>"
        )
    head = (
        '<tr><th scope="col" class="l">district</th><th scope="col">resolved</th><th scope="col" class="l">'
        'median days: <span class="key key-actual"></span>actual / <span class="key key-predicted"></span>predicted'
        '</th><th scope="col">actual d</th><th scope="col">predicted d</th><th scope="col">MAE h</th>'
        '<th scope="col">per-type median MAE h</th><th scope="col">in P10-P90</th>'
        '<th scope="col">closed by promise</th><th scope="col">open now</th><th scope="col">at risk</th></tr>'
    )
    return f'<table class="district-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def render_report(
    report: ForecastReport,
    department: str | None = None,
    csv_links: bool = True,
    data_link: str | None = None,
    promises_by_district: pd.DataFrame | Mapping[str, float] | None = None,
) -> str:
    """The whole page for `report`; `department` preselects the filter (None or "" = all departments).

    `csv_links` links the CSV files written next to a static page; `data_link` names a URL with the JSON
    (the service's ``/forecast/departments``). `promises_by_district` is the ledger's share of promises kept
    per council district (see `forecast.districts.with_promises`); without it the map says none are recorded."""
    selected = department or ALL
    departments = report.departments
    forecast = report.department_forecast
    summary = report.summary
    first_days = int(report.department_totals["days"].min()) if len(report.department_totals) else 0
    totals = report.department_totals[report.department_totals["days"] == first_days]
    options = ['<option value="">All departments</option>'] + [
        f'<option value="{_e(d)}"{" selected" if d == selected else ""}>{_e(d)}</option>' for d in departments
    ]
    kpis = [
        ("open requests", _fmt(summary.get("open_requests"), 0)),
        (f"expected closures, next {first_days} days", _fmt(totals["expected_closures"].sum(), 0)),
        (f"expected intake, next {first_days} days", _fmt(totals["expected_intake"].sum(), 0)),
        ("at risk", _fmt(summary.get("at_risk"), 0)),
        (
            "P50 MAE (h), model / per-type median",
            f"{_fmt(summary.get('model_p50_mae_hours'))} / {_fmt(summary.get('baseline_mae_hours'))}",
        ),
        ("P10-P90 coverage (target 80%)", _pct(summary.get("coverage_p10_p90"))),
    ]
    cards = []
    for name in departments:
        part = forecast[forecast["department"] == name].sort_values("day")
        dates = part["date"].tolist()
        closures = _band_chart(
            name,
            "forecast-chart",
            dates,
            part["expected_closures"].to_numpy(float),
            part["low"].to_numpy(float),
            part["high"].to_numpy(float),
            "expected",
            "band",
            "expected closures",
            part["expected_intake"].to_numpy(float),
            "expected intake",
        )
        backlog = _band_chart(
            name,
            "backlog-chart",
            dates,
            part["projected_backlog"].to_numpy(float),
            part["backlog_low"].to_numpy(float),
            part["backlog_high"].to_numpy(float),
            "backlog",
            "backlog-band",
            "projected backlog",
        )
        first = part.iloc[0] if len(part) else None
        open_now = _fmt(first["open_at_as_of"], 0) if first is not None else "0"
        end = _fmt(part["projected_backlog"].iloc[-1], 0) if len(part) else "0"
        week = totals[totals["department"] == name]
        week_text = ""
        if len(week):
            w = week.iloc[0]
            week_text = (
                f"; next {int(w['days'])} days: {_fmt(w['expected_closures'], 0)} closures expected "
                f"(80%: {_fmt(w['low'], 0)}-{_fmt(w['high'], 0)}) vs {_fmt(w['expected_intake'], 0)} new requests"
            )
        cards.append(
            f'<div class="card dept" data-department="{_e(name)}"><h3>{_e(name)}</h3>'
            f'<div class="note">open now {open_now}; projected backlog on {_e(dates[-1] if dates else "")}: '
            f"{end}{week_text}</div>{closures}{backlog}{_chart_numbers(name, part)}</div>"
        )
    at_risk = report.at_risk
    shown_risk = at_risk.groupby("department", sort=True, group_keys=False).head(AT_RISK_ROWS_PER_DEPARTMENT)
    shown_risk = shown_risk.assign(
        created=_local(shown_risk["created_at"], report.timezone).str[:16],
        predicted=_local(shown_risk["predicted_close_at"], report.timezone).str[:10],
        target=_local(shown_risk["target_at"], report.timezone).str[:10],
    )
    risk_table = _table(
        shown_risk,
        [
            ("request_id", "request", "text"),
            ("department", "department", "text"),
            ("request_type", "type", "text"),
            ("council_district", "district", "text"),
            ("neighborhood", "neighborhood", "text"),
            ("created", "created (UTC)", "text"),
            ("age_days", "age d", "num"),
            ("predicted", "predicted close", "text"),
            ("target", "target", "text"),
            ("target_source", "target from", "text"),
        ],
        "department",
    )
    accuracy_columns = [
        ("n", "resolved", "int"),
        ("mae_hours", "P50 MAE h", "num"),
        ("baseline_mae_hours", "per-type median MAE h", "num"),
        ("improvement_vs_baseline", "better than baseline", "pct"),
        ("within_p10_p90", "in P10-P90", "pct"),
        ("closed_before_expected", "closed by promise", "pct"),
        ("median_actual_days", "median actual d", "num"),
        ("median_predicted_days", "median predicted d", "num"),
    ]
    by_department = _table(
        report.accuracy_by_department, [("department", "department", "text"), *accuracy_columns], "department"
    )
    by_type = _table(report.accuracy_by_type, [("request_type", "type", "text"), *accuracy_columns])
    neighborhoods = _table(
        report.equity_by_neighborhood.head(NEIGHBORHOOD_ROWS),
        [
            ("neighborhood", "neighborhood", "text"),
            ("n", "resolved", "int"),
            ("median_actual_days", "median actual d", "num"),
            ("median_predicted_days", "median predicted d", "num"),
            ("mae_hours", "P50 MAE h", "num"),
            ("within_p10_p90", "in P10-P90", "pct"),
        ],
    )
    links = ""
    if csv_links:
        links = " · ".join(f'<a href="{name}.csv">{name}.csv</a>' for name in report.tables())
        links = f'<p class="note">Tables behind the charts: {links}</p>'
    if data_link:
        links += f'<p class="note">Data behind the charts (JSON): <a href="{_e(data_link)}">{_e(data_link)}</a></p>'
    kpi_html = "".join(f'<div class="kpi"><b>{v}</b>{_e(k)}</div>' for k, v in kpis)
    title = "eta311 — department forecast and accountability"
    calibration = _calibration_chart(report.calibration, departments)
    threshold_days = summary.get("at_risk_threshold_days", {})
    thresholds = "; ".join(f"{_e(t)} {_fmt(d)}" for t, d in threshold_days.items()) or "none"
    thresholds += f"; other types {_fmt(summary.get('at_risk_default_threshold_days'))}"
    districts = _district_table(report.accuracy_by_district)
    district_maps = render_district_maps(
        with_promises(report.district_map, promises_by_district), report.district_cells, report.lookback_days
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><link rel="icon" href="data:,"><style>{CSS}</style></head>
<body data-selected="{_e(selected)}">
<header role="banner"><h1>{_e(title)}</h1>
<p>As of {_e(report.as_of.isoformat())} · next {report.horizon_days} days · accountability over the last
{report.lookback_days} days · dates in {_e(report.timezone)}</p></header>
<main>
<div class="controls"><label for="department-filter">Department: </label>
<select id="department-filter" name="department">{"".join(options)}</select>
<span id="filter-status" class="note" role="status" aria-live="polite"></span></div>
<div class="kpis">{kpi_html}</div>
<p class="note">Figures above are city-wide; the department filter applies to the charts and tables below
(the district and neighborhood tables stay city-wide).</p>
<section><h2>Closures and backlog, per department</h2>
<p class="note">Expected closures per day with an 80% band (each open request's closing probability given its
age, summed as independent Bernoullis; new requests arrive at the recent same-weekday rate and close along the
department's curve for new requests). Projected backlog = open now + intake − closures.</p>
<div class="grid">{"".join(cards)}</div></section>
<div class="grid"><section class="card"><h2>Calibration</h2>
<p class="note">Share of requests resolved in the last {report.lookback_days} days that closed at or before their
predicted P10 / P50 / P90. On the diagonal = honest ranges.</p>{calibration}</section>
<section class="card"><h2>Accountability by department</h2>
<p class="note">Predicted P50 vs actual for requests resolved in the last {report.lookback_days} days, next to the
per-type median of the 28 days before each request. "Closed by promise" = closed before
expected_close_at (created + P50).</p>{_region("Accountability by department", by_department)}</section></div>
{district_maps}
<section class="card"><h2>Council districts (accountability)</h2>{_region("Council districts", districts)}</section>
<section class="card"><h2>At risk: open requests whose predicted close passes the target ({len(at_risk):,})</h2>
<p class="note">Oldest first; up to {AT_RISK_ROWS_PER_DEPARTMENT} per department here, all in at_risk.csv. Target:
the city's own where it publishes one, else the type's P90 of recently resolved requests
(days: {thresholds}).</p>
{_region("At-risk requests", risk_table)}</section>
<div class="grid"><section class="card"><h2>Accuracy by request type</h2>{_region("Accuracy by request type", by_type)}
</section>
<section class="card"><h2>Neighborhoods (equity, busiest {NEIGHBORHOOD_ROWS})</h2>
{_region("Neighborhoods", neighborhoods)}</section></div>
{links}
</main>
<script>{SCRIPT}</script>
</body></html>
"""


def _local(instants: pd.Series, timezone: str) -> pd.Series:
    """UTC instants as text in the page's time zone (the header says dates are local): a request closing at
    03:00 UTC closes the evening before in Los Angeles."""
    return pd.to_datetime(instants, utc=True).dt.tz_convert(timezone).astype("str")
