"""Location features: cleaned latitude/longitude and a coarse grid cell that serves as an area key.

Coordinates stay numeric (trees split on them directly). A grid cell of ``grid_deg`` degrees (0.01 deg is
about 1.1 km north-south, 0.9 km east-west at these latitudes) gives a stable area id for places without a
council district and lets the model learn small hot spots. The cell id is one int64 so vocabularies stay
compact in JSON and the per-request path needs no string formatting.

Coordinates outside the city's generous bounding box (``schema.CITIES``), or the (0, 0) placeholder some
exports use, are treated as missing: a point in the ocean carries no information about the city's queues.
"""

from __future__ import annotations

import math

import numpy as np

from features.calendar import CityLike, city_codes
from features.schema import CITIES

DEFAULT_GRID_DEG = 0.01
# Cell id = row * _CELL_STRIDE + column, rows/columns offset to be non-negative for any valid coordinate.
_CELL_STRIDE = 1_000_000_000


def clean_coordinates(lat: np.ndarray, lon: np.ndarray, cities: CityLike) -> tuple[np.ndarray, np.ndarray]:
    """Latitude/longitude as float64 with impossible or out-of-city points set to NaN (both together)."""
    lat = np.asarray(lat, dtype=np.float64).copy()
    lon = np.asarray(lon, dtype=np.float64).copy()
    bad = ~((np.abs(lat) <= 90) & (np.abs(lon) <= 180)) | ((lat == 0) & (lon == 0))
    cities = city_codes(cities)
    for i, code in enumerate(cities.labels):
        info = CITIES.get(code)
        if info is None:
            continue
        min_lat, max_lat, min_lon, max_lon = info.bounds
        outside = (lat < min_lat) | (lat > max_lat) | (lon < min_lon) | (lon > max_lon)
        bad |= (cities.codes == i) & outside
    lat[bad] = np.nan
    lon[bad] = np.nan
    return lat, lon


def clean_coordinates_row(lat: float | None, lon: float | None, city: str) -> tuple[float, float]:
    """`clean_coordinates` for one request."""
    if lat is None or lon is None:
        return math.nan, math.nan
    lat, lon = float(lat), float(lon)
    if not (abs(lat) <= 90 and abs(lon) <= 180) or (lat == 0 and lon == 0):
        return math.nan, math.nan
    info = CITIES.get(city)
    if info is not None:
        min_lat, max_lat, min_lon, max_lon = info.bounds
        if lat < min_lat or lat > max_lat or lon < min_lon or lon > max_lon:
            return math.nan, math.nan
    return lat, lon


def grid_cells(lat: np.ndarray, lon: np.ndarray, grid_deg: float = DEFAULT_GRID_DEG) -> np.ndarray:
    """Grid cell ids (int64) for cleaned coordinates; -1 where the location is missing."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    ok = ~(np.isnan(lat) | np.isnan(lon))
    row = np.floor(np.where(ok, lat, 0.0) / grid_deg).astype(np.int64) + _offset(90.0, grid_deg)
    col = np.floor(np.where(ok, lon, 0.0) / grid_deg).astype(np.int64) + _offset(180.0, grid_deg)
    return np.where(ok, row * _CELL_STRIDE + col, -1)


def grid_cell_row(lat: float, lon: float, grid_deg: float = DEFAULT_GRID_DEG) -> int:
    """`grid_cells` for one cleaned coordinate pair."""
    if math.isnan(lat) or math.isnan(lon):
        return -1
    row = math.floor(lat / grid_deg) + _offset(90.0, grid_deg)
    col = math.floor(lon / grid_deg) + _offset(180.0, grid_deg)
    return row * _CELL_STRIDE + col


def _offset(limit: float, grid_deg: float) -> int:
    return math.ceil(limit / grid_deg) + 1
