"""The numbers behind the managers' map of council districts: where each district's requests are, and how it fares.

Why a grid of cells rather than district boundaries: the data carries coordinates and a district per request,
not the city's boundary files, and the page must open with no network. So the map is drawn from the requests
themselves: the city's extent is cut into a grid (``GRID_COLUMNS`` wide, square cells on the ground), and each
cell that holds at least ``MIN_CELL_REQUESTS`` requests takes the district most of them belong to. The union of
a district's cells is its shape: honest (only where requests were filed), contiguous where the district is, and
no district hides another (a convex hull would overlap its neighbours).

Per district (``district_map``): the requests mapped, the label position (the median coordinate of its cells),
the median days to close of the requests resolved in the lookback window (from the accountability table), and
``share_promises_kept`` — the ledger's share of promises kept, NaN until a ledger supplies it
(`with_promises`); the page then says "no promises recorded yet".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

GRID_COLUMNS = 48
MIN_CELL_REQUESTS = 2
EXTENT_QUANTILES = (0.002, 0.998)  # a few stray coordinates must not shrink the city to a corner
UNKNOWN = "(unknown)"
CELL_COLUMNS = ("council_district", "col", "row", "lat_min", "lat_max", "lon_min", "lon_max", "requests")
MAP_COLUMNS = (
    "council_district",
    "requests",
    "cells",
    "latitude",
    "longitude",
    "resolved",
    "median_days_to_close",
    "promises",
    "share_promises_kept",
)


def _located(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with coordinates and a known district, inside the city's extent (stray coordinates dropped)."""
    district = rows["council_district"].astype("str")
    known = rows["council_district"].notna() & (district != UNKNOWN) & (district != "")
    lat, lon = rows["latitude"], rows["longitude"]
    frame = pd.DataFrame({"council_district": district, "lat": lat, "lon": lon})[known & lat.notna() & lon.notna()]
    if frame.empty:
        return frame
    low, high = EXTENT_QUANTILES
    lat_lo, lat_hi = frame["lat"].quantile([low, high])
    lon_lo, lon_hi = frame["lon"].quantile([low, high])
    inside = frame["lat"].between(lat_lo, lat_hi) & frame["lon"].between(lon_lo, lon_hi)
    return frame[inside]


def district_cells(rows: pd.DataFrame, columns: int = GRID_COLUMNS) -> pd.DataFrame:
    """Grid cells over the city, each with the district most of its requests belong to (see the module doc).

    Columns: council_district, col, row (row 0 is the north edge), the cell's bounds in degrees, requests (in
    the cell, all districts). Cells are square on the ground: a degree of longitude is cos(latitude) shorter.
    """
    frame = _located(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(CELL_COLUMNS))
    lat_min, lat_max = float(frame["lat"].min()), float(frame["lat"].max())
    lon_min, lon_max = float(frame["lon"].min()), float(frame["lon"].max())
    shrink = math.cos(math.radians((lat_min + lat_max) / 2))
    width = max(lon_max - lon_min, 1e-6)
    lon_step = width / columns
    lat_step = lon_step * shrink
    rows_count = max(1, math.ceil(max(lat_max - lat_min, 1e-6) / lat_step))
    col = np.minimum(((frame["lon"].to_numpy() - lon_min) / lon_step).astype(int), columns - 1)
    row = np.minimum(((lat_max - frame["lat"].to_numpy()) / lat_step).astype(int), rows_count - 1)
    counts = (
        pd.DataFrame({"col": col, "row": row, "council_district": frame["council_district"].to_numpy()})
        .value_counts()
        .rename("n")
        .reset_index()
    )
    totals = counts.groupby(["col", "row"])["n"].sum().rename("requests")
    # The majority district per cell; ties go to the district named first, so the map is deterministic.
    winners = counts.sort_values(["col", "row", "n", "council_district"], ascending=[True, True, False, True])
    cells = winners.drop_duplicates(["col", "row"]).set_index(["col", "row"]).join(totals).reset_index()
    cells = cells[cells["requests"] >= MIN_CELL_REQUESTS]
    return pd.DataFrame(
        {
            "council_district": cells["council_district"].to_numpy(),
            "col": cells["col"].to_numpy(dtype=int),
            "row": cells["row"].to_numpy(dtype=int),
            "lat_min": lat_max - (cells["row"].to_numpy() + 1) * lat_step,
            "lat_max": lat_max - cells["row"].to_numpy() * lat_step,
            "lon_min": lon_min + cells["col"].to_numpy() * lon_step,
            "lon_max": lon_min + (cells["col"].to_numpy() + 1) * lon_step,
            "requests": cells["requests"].to_numpy(dtype=int),
        }
    ).sort_values(["row", "col"], kind="stable", ignore_index=True)


def district_map(rows: pd.DataFrame, cells: pd.DataFrame, accuracy_by_district: pd.DataFrame) -> pd.DataFrame:
    """One row per district on the map: requests mapped, label position, median days to close, promises.

    `accuracy_by_district` is the forecast's accountability table (``median_actual_days`` over the requests
    resolved in the lookback window, ``n`` of them). Promises are NaN here; `with_promises` fills them.
    """
    frame = _located(rows)
    if frame.empty or cells.empty:
        return pd.DataFrame(columns=list(MAP_COLUMNS))
    requests = frame["council_district"].value_counts()
    centre = cells.assign(lat=(cells["lat_min"] + cells["lat_max"]) / 2, lon=(cells["lon_min"] + cells["lon_max"]) / 2)
    grouped = centre.groupby("council_district")
    label = grouped[["lat", "lon"]].median()
    accuracy = accuracy_by_district.set_index(accuracy_by_district["council_district"].astype("str"))
    out = pd.DataFrame(
        {
            "council_district": label.index.astype("str"),
            "requests": requests.reindex(label.index).fillna(0).astype(int).to_numpy(),
            "cells": grouped.size().reindex(label.index).to_numpy(dtype=int),
            "latitude": label["lat"].to_numpy(),
            "longitude": label["lon"].to_numpy(),
            "resolved": accuracy["n"].reindex(label.index).fillna(0).astype(int).to_numpy(),
            "median_days_to_close": accuracy["median_actual_days"].reindex(label.index).to_numpy(dtype=float),
            "promises": np.zeros(len(label), dtype=int),
            "share_promises_kept": np.full(len(label), np.nan),
        }
    )
    return out.sort_values("council_district", key=natural_key, kind="stable", ignore_index=True)


def with_promises(map_table: pd.DataFrame, promises: pd.DataFrame | Mapping[str, float] | None) -> pd.DataFrame:
    """`map_table` with the ledger's promises per district: a frame with ``council_district`` and
    ``share_promises_kept`` (0-1; optional ``promises``, the count behind it), or a mapping district -> share.

    Districts the ledger does not name keep NaN ("no promises recorded yet"); a share outside 0-1 is a
    ValueError naming the district.
    """
    if promises is None:
        return map_table
    if isinstance(promises, Mapping):
        promises = pd.DataFrame({"council_district": list(promises), "share_promises_kept": list(promises.values())})
    missing = {"council_district", "share_promises_kept"} - set(promises.columns)
    if missing:
        raise ValueError(f"promises by district: missing column(s) {', '.join(sorted(missing))}")
    given = promises.assign(council_district=promises["council_district"].astype("str")).set_index("council_district")
    share = pd.to_numeric(given["share_promises_kept"], errors="coerce")
    bad = share[(share < 0) | (share > 1)]
    if len(bad):
        raise ValueError(f"share_promises_kept must be within 0-1; district {bad.index[0]!r} has {bad.iloc[0]}")
    out = map_table.copy()
    key = out["council_district"].astype("str")
    out["share_promises_kept"] = key.map(share).to_numpy(dtype=float)
    if "promises" in given.columns:
        out["promises"] = key.map(given["promises"]).fillna(0).astype(int).to_numpy()
    return out


def natural_key(values: pd.Series) -> pd.Series:
    """Sort key: district "2" before "10", names after numbers."""
    return values.map(lambda v: (0, int(v), "") if str(v).isdigit() else (1, 0, str(v)))
