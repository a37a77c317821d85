"""The map of council districts: the grid each district is drawn from, its numbers, the ledger's promises, the SVG."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from forecast.district_map import PALETTE, class_bounds, class_of, render_district_maps
from forecast.districts import district_cells, district_map, with_promises


def two_districts() -> pd.DataFrame:
    """District "2" in the west half, district "10" in the east, a few strays and rows the map cannot place."""
    rng = np.random.default_rng(0)
    west = pd.DataFrame({"latitude": rng.uniform(34.0, 34.1, 400), "longitude": rng.uniform(-118.4, -118.3, 400)})
    east = pd.DataFrame({"latitude": rng.uniform(34.0, 34.1, 400), "longitude": rng.uniform(-118.3, -118.2, 400)})
    west["council_district"], east["council_district"] = "2", "10"
    unplaced = pd.DataFrame(
        {
            "latitude": [np.nan, 34.05, 34.05],
            "longitude": [-118.3, np.nan, -118.3],
            "council_district": ["2", "2", None],
        }
    )
    return pd.concat([west, east, unplaced], ignore_index=True)


def accuracy() -> pd.DataFrame:
    return pd.DataFrame({"council_district": ["10", "2"], "n": [30, 50], "median_actual_days": [4.0, 1.5]})


def test_each_cell_goes_to_its_majority_district_and_cells_are_square_on_the_ground() -> None:
    rows = two_districts()
    cells = district_cells(rows, columns=10)
    assert set(cells["council_district"]) == {"2", "10"}
    centre = (cells["lon_min"] + cells["lon_max"]) / 2
    assert (cells.loc[centre < -118.31, "council_district"] == "2").all()
    assert (cells.loc[centre > -118.29, "council_district"] == "10").all()
    assert cells["requests"].min() >= 2 and cells["col"].max() <= 9
    width = (cells["lon_max"] - cells["lon_min"]) * np.cos(np.radians(34.05))
    assert np.allclose(width, cells["lat_max"] - cells["lat_min"])  # square on the ground, not in degrees
    north = cells.sort_values("row").iloc[0]
    assert north["row"] == 0 and north["lat_max"] == pytest.approx(rows["latitude"].max(), abs=1e-3)


def test_map_table_holds_counts_medians_and_no_promises_until_a_ledger_gives_them() -> None:
    rows = two_districts()
    table = district_map(rows, district_cells(rows, columns=10), accuracy())
    assert table["council_district"].tolist() == ["2", "10"]  # natural order, not "10" < "2"
    assert table["median_days_to_close"].tolist() == [1.5, 4.0] and table["resolved"].tolist() == [50, 30]
    assert table["requests"].sum() <= 800 and table["share_promises_kept"].isna().all()
    kept = with_promises(table, pd.DataFrame({"council_district": [2], "share_promises_kept": [0.75], "promises": [8]}))
    assert kept["share_promises_kept"].tolist()[0] == 0.75 and np.isnan(kept["share_promises_kept"].iloc[1])
    assert kept["promises"].tolist() == [8, 0]
    assert table["share_promises_kept"].isna().all()  # the input is not modified
    assert with_promises(table, {"10": 0.5})["share_promises_kept"].iloc[1] == 0.5
    with pytest.raises(ValueError, match="district '2' has 1.5"):
        with_promises(table, {"2": 1.5})
    with pytest.raises(ValueError, match="missing column"):
        with_promises(table, pd.DataFrame({"council_district": ["2"]}))


def test_classes_put_higher_worse_values_in_darker_colours_both_ways() -> None:
    bounds = class_bounds(np.array([1.0, 2.0, 3.0, np.nan]), 1)
    assert bounds[0] == 1.0 and bounds[-1] == 3.0 and len(bounds) == len(PALETTE) + 1
    assert class_of(1.0, bounds, True) == 0 and class_of(3.0, bounds, True) == len(PALETTE) - 1
    assert class_of(3.0, bounds, False) == 0 and class_of(np.nan, bounds, True) is None
    assert class_bounds(np.array([np.nan]), 1) == []


def test_svg_maps_one_shape_per_district_legend_and_the_table_of_numbers() -> None:
    rows = two_districts()
    cells = district_cells(rows, columns=10)
    table = district_map(rows, cells, accuracy())
    page = render_district_maps(table, cells, 28)
    assert page.count('<path class="district"') == 4  # two districts x two views
    assert "style=" not in page and "<script" not in page  # strict-CSP friendly
    assert 'aria-labelledby="map-days-caption"' in page and 'id="map-days-caption"' in page
    assert "Slowest: district 10 (4.0 days); fastest: district 2 (1.5 days)" in page
    assert page.count("no promises recorded yet") >= 3  # caption/legend/table say it
    slow = re.search(r'data-district="10" fill="([^"]+)"', page).group(1)
    assert slow == PALETTE[-1]
    kept = render_district_maps(with_promises(table, {"2": 0.9, "10": 0.4}), cells, 28)
    assert "Fewest kept: district 10 (40%); most: district 2 (90%)" in kept
    assert "<td>40%</td>" in kept
    empty = render_district_maps(table.iloc[0:0], cells.iloc[0:0], 28)
    assert "No request in these data has both coordinates and a council district" in empty
