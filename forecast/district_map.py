"""The managers' map of council districts as inline SVG (no tiles, no network), with its legend and a table.

Two views of the same shapes (`forecast.districts`): median days to close and share of promises kept. Both use
one palette in the same direction — darker means worse for residents (slower, or fewer promises kept) — so the
eye goes to the same kind of place on either map. Colours are never the only carrier: each district is labelled
with its number and value (dark text on a white halo, readable on any fill), every shape has a ``<title>``, and
the table after the maps holds every number the colours stand for (the text alternative).

No script and no ``style`` attributes: fills and strokes are SVG presentation attributes, so the page works
under a strict Content-Security-Policy.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from forecast.districts import natural_key

MAP_WIDTH, MAP_MAX_HEIGHT = 520, 600
# ColorBrewer YlOrBr, 5 classes (light to dark): the darkest class still takes dark text on a white halo.
PALETTE = ("#ffffd4", "#fed98e", "#fe9929", "#d95f0e", "#993404")
NO_DATA = "#dfe3e8"
CLASSES = len(PALETTE)


def _e(value: object) -> str:
    return html.escape(str(value))


def _day_digits(values: np.ndarray) -> int:
    """One decimal, or two when the districts are less than a day apart (else labels and classes would
    disagree: two districts both "2.7 days" in different colours)."""
    finite = values[np.isfinite(values)]
    return 2 if finite.size and float(finite.max() - finite.min()) < 1 else 1


def _days(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f} days"


def _share(value: float) -> str:
    return f"{100 * value:.0f}%"


def class_bounds(values: np.ndarray, digits: int) -> list[float]:
    """Equal-interval class bounds (CLASSES + 1 of them) over the finite values, rounded outward to `digits`."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    scale = 10**digits
    low = math.floor(float(finite.min()) * scale) / scale
    high = math.ceil(float(finite.max()) * scale) / scale
    if high <= low:
        high = low + 1 / scale
    return [low + (high - low) * k / CLASSES for k in range(CLASSES + 1)]


def class_of(value: float, bounds: list[float], worse_is_higher: bool) -> int | None:
    """The palette index of `value` (0 = lightest = best); None when there is no value."""
    if not bounds or not np.isfinite(value):
        return None
    k = int(np.searchsorted(bounds[1:-1], value, side="right"))
    return k if worse_is_higher else CLASSES - 1 - k


def _runs(cells: pd.DataFrame) -> list[tuple[int, int, int]]:
    """Horizontal runs (row, first col, length) of adjacent cells: a shorter path than one square per cell."""
    runs = []
    for row, part in cells.groupby("row", sort=True):
        cols = np.sort(part["col"].to_numpy(dtype=int))
        start = previous = cols[0]
        for col in cols[1:]:
            if col != previous + 1:
                runs.append((int(row), int(start), int(previous - start + 1)))
                start = col
            previous = col
        runs.append((int(row), int(start), int(previous - start + 1)))
    return runs


def _boundaries(cells: pd.DataFrame, size: float) -> tuple[str, str]:
    """Path data for the edges between two districts and for the city's outer edge."""
    owner = {(int(c), int(r)): d for c, r, d in zip(cells["col"], cells["row"], cells["council_district"], strict=True)}
    inner, outer = [], []
    for (col, row), district in owner.items():
        x, y = col * size, row * size
        sides = (
            ((col + 1, row), f"M{x + size:.1f},{y:.1f}v{size:.1f}"),
            ((col - 1, row), f"M{x:.1f},{y:.1f}v{size:.1f}"),
            ((col, row + 1), f"M{x:.1f},{y + size:.1f}h{size:.1f}"),
            ((col, row - 1), f"M{x:.1f},{y:.1f}h{size:.1f}"),
        )
        for index, (neighbour, segment) in enumerate(sides):
            other = owner.get(neighbour)
            if other is None:
                outer.append(segment)
            elif other != district and index in (0, 2):  # each shared edge once
                inner.append(segment)
    return "".join(inner), "".join(outer)


def _svg(
    cells: pd.DataFrame,
    table: pd.DataFrame,
    column: str,
    bounds: list[float],
    worse_is_higher: bool,
    fmt: Callable[[float], str],
    caption_id: str,
    kind: str,
) -> str:
    cols = int(cells["col"].max()) + 1
    rows = int(cells["row"].max()) + 1
    size = min(MAP_WIDTH / cols, MAP_MAX_HEIGHT / rows)
    width, height = cols * size, rows * size
    values = table.set_index("council_district")[column]
    parts = [
        f'<svg class="district-map {kind}" viewBox="-2 -2 {width + 4:.0f} {height + 4:.0f}" width="{width + 4:.0f}" '
        f'height="{height + 4:.0f}" role="img" aria-labelledby="{caption_id}">'
    ]
    for district, part in cells.groupby("council_district", sort=False):
        value = float(values.get(district, np.nan))
        k = class_of(value, bounds, worse_is_higher)
        fill = NO_DATA if k is None else PALETTE[k]
        d = "".join(
            f"M{c * size:.1f},{r * size:.1f}h{n * size:.1f}v{size:.1f}h{-n * size:.1f}z" for r, c, n in _runs(part)
        )
        tip = f"District {district}: " + ("no data" if k is None else fmt(value))
        parts.append(
            f'<path class="district" data-district="{_e(district)}" fill="{fill}" d="{d}">'
            f"<title>{_e(tip)}</title></path>"
        )
    inner, outer = _boundaries(cells, size)
    parts.append(f'<path d="{inner}" fill="none" stroke="#ffffff" stroke-width="1.6" aria-hidden="true"/>')
    parts.append(f'<path d="{outer}" fill="none" stroke="#5b6475" stroke-width="1" aria-hidden="true"/>')
    for _, row in table.iterrows():
        district = row["council_district"]
        own = cells[cells["council_district"] == district]
        if own.empty:
            continue
        # The label sits on the district's own cell nearest its median position, so it is always inside.
        target_c = own["col"].median()
        target_r = own["row"].median()
        nearest = ((own["col"] - target_c) ** 2 + (own["row"] - target_r) ** 2).idxmin()
        x = (own.at[nearest, "col"] + 0.5) * size
        y = (own.at[nearest, "row"] + 0.5) * size
        value = float(row[column])
        text = fmt(value).replace(" days", " d") if np.isfinite(value) else "–"
        parts.append(
            f'<text class="map-label" x="{x:.1f}" y="{y - 2:.1f}" text-anchor="middle" aria-hidden="true">'
            f'<tspan class="map-district" x="{x:.1f}">{_e(district)}</tspan>'
            f'<tspan class="map-value" x="{x:.1f}" dy="12">{_e(text)}</tspan></text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend(bounds: list[float], worse_is_higher: bool, fmt: Callable[[float], str], absent: str) -> str:
    """The colour key as a list: a swatch (SVG, no style attribute) and the range it stands for."""

    def swatch(fill: str) -> str:
        return (
            f'<svg class="swatch" width="18" height="12" aria-hidden="true"><rect width="18" height="12" '
            f'fill="{fill}" stroke="#5b6475" stroke-width="1"/></svg>'
        )

    items = []
    for k in range(len(bounds) - 1):
        low, high = bounds[k], bounds[k + 1]
        index = k if worse_is_higher else CLASSES - 1 - k
        items.append(f"<li>{swatch(PALETTE[index])} {_e(fmt(low))} – {_e(fmt(high))}</li>")
    items.append(f"<li>{swatch(NO_DATA)} {_e(absent)}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def render_district_maps(table: pd.DataFrame, cells: pd.DataFrame, lookback_days: int) -> str:
    """The maps section: two figures (days to close, promises kept), their legends, and the table of numbers."""
    if table.empty or cells.empty:
        return (
            '<section class="card" aria-labelledby="district-map-title"><h2 id="district-map-title">Map of council '
            'districts</h2><p class="note">No request in these data has both coordinates and a council district.</p>'
            "</section>"
        )
    table = table.sort_values("council_district", key=natural_key, kind="stable")
    days = table["median_days_to_close"].to_numpy(dtype=float)
    shares = table["share_promises_kept"].to_numpy(dtype=float)
    digits = _day_digits(days)
    days_text = partial(_days, digits=digits)
    day_bounds = class_bounds(days, digits)
    share_bounds = class_bounds(shares, 2)
    days_svg = _svg(cells, table, "median_days_to_close", day_bounds, True, days_text, "map-days-caption", "days-map")
    shares_svg = _svg(
        cells, table, "share_promises_kept", share_bounds, False, _share, "map-promises-caption", "promises-map"
    )
    if np.isfinite(days).any():
        slowest = table.iloc[int(np.nanargmax(days))]
        fastest = table.iloc[int(np.nanargmin(days))]
        days_summary = (
            f"Slowest: district {slowest['council_district']} ({days_text(slowest['median_days_to_close'])}); fastest: "
            f"district {fastest['council_district']} ({days_text(fastest['median_days_to_close'])})."
        )
    else:
        days_summary = f"No request was resolved in the last {lookback_days} days."
    if np.isfinite(shares).any():
        worst = table.iloc[int(np.nanargmin(shares))]
        best = table.iloc[int(np.nanargmax(shares))]
        shares_summary = (
            f"Fewest kept: district {worst['council_district']} ({_share(worst['share_promises_kept'])}); most: "
            f"district {best['council_district']} ({_share(best['share_promises_kept'])})."
        )
    else:
        shares_summary = "No promises recorded yet: the ledger holds none for these districts."
    rows = []
    for _, row in table.iterrows():
        median = row["median_days_to_close"]
        share = row["share_promises_kept"]
        rows.append(
            f'<tr><th scope="row" class="l">{_e(row["council_district"])}</th><td>{int(row["requests"]):,}</td>'
            f"<td>{int(row['resolved']):,}</td><td>{days_text(median) if np.isfinite(median) else 'no data'}</td>"
            f"<td>{int(row['promises']):,}</td>"
            f"<td>{_share(share) if np.isfinite(share) else 'no promises recorded yet'}</td></tr>"
        )
    numbers = (
        '<table class="district-map-table"><caption>The numbers behind the maps</caption><thead><tr>'
        '<th scope="col" class="l">district</th><th scope="col">requests mapped</th>'
        f'<th scope="col">resolved (last {lookback_days} days)</th><th scope="col">median days to close</th>'
        '<th scope="col">promises recorded</th><th scope="col">share of promises kept</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return f"""<section class="card" aria-labelledby="district-map-title">
<h2 id="district-map-title">Map of council districts (equity)</h2>
<p class="note">Each district is drawn where its requests were filed (a grid over the request coordinates, each
cell given to the district most of its requests belong to). Darker means worse for residents on both maps.
City-wide: the department filter does not apply here.</p>
<div class="maps">
<figure>{days_svg}<figcaption id="map-days-caption"><strong>Median days to close</strong>, requests resolved in
the last {lookback_days} days, by council district. {_e(days_summary)}</figcaption>
{_legend(day_bounds, True, days_text, "no resolved requests")}</figure>
<figure>{shares_svg}<figcaption id="map-promises-caption"><strong>Share of promises kept</strong> (closed by the
promised date, from the ledger), by council district. {_e(shares_summary)}</figcaption>
{_legend(share_bounds, False, _share, "no promises recorded yet")}</figure>
</div>
<div class="scroll" tabindex="0" role="region" aria-label="The numbers behind the maps">{numbers}</div>
</section>"""
