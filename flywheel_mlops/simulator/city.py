"""The simulated city: its bounding box, the zone grid and distances on the map."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The city box (roughly Berlin inside the ring): latitude and longitude bounds in degrees.
LAT_MIN, LAT_MAX = 52.45, 52.60
LON_MIN, LON_MAX = 13.25, 13.50

EARTH_RADIUS_KM = 6371.0088
#: Kilometres per degree of latitude (and of longitude at the equator).
KM_PER_DEGREE = 111.195


def haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km between arrays of points given in degrees."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def _grid_shape(zones: int) -> tuple[int, int]:
    """Rows and columns of the most square grid with exactly `zones` cells (rows <= columns)."""
    rows = max(r for r in range(1, math.isqrt(zones) + 1) if zones % r == 0)
    return rows, zones // rows


@dataclass(frozen=True)
class CityGrid:
    """Zones as a grid over the city box; zone i is row i // columns, column i % columns."""

    rows: int
    """Grid rows, south to north."""

    columns: int
    """Grid columns, west to east."""

    @classmethod
    def for_zones(cls, zones: int) -> CityGrid:
        """The grid with `zones` cells, e.g. 12 -> 3 rows x 4 columns."""
        rows, columns = _grid_shape(zones)
        return cls(rows=rows, columns=columns)

    @property
    def size(self) -> int:
        """Number of zones."""
        return self.rows * self.columns

    @property
    def names(self) -> list[str]:
        """Zone names `Z00`, `Z01`, ... in index order."""
        return [f"Z{i:02d}" for i in range(self.size)]

    def centrality(self) -> np.ndarray:
        """Per zone, 1 at the city centre falling to 0 at the farthest cell (busier, denser)."""
        idx = np.arange(self.size)
        r = (idx // self.columns + 0.5) / self.rows - 0.5
        c = (idx % self.columns + 0.5) / self.columns - 0.5
        dist = np.hypot(r, c)
        return 1.0 - dist / dist.max() if dist.max() > 0 else np.ones(self.size)

    def sample_points(
        self, zone: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random (lat, lon) inside each row's zone cell."""
        lat_step = (LAT_MAX - LAT_MIN) / self.rows
        lon_step = (LON_MAX - LON_MIN) / self.columns
        u = rng.random((2, zone.size))
        lat = LAT_MIN + (zone // self.columns + u[0]) * lat_step
        lon = LON_MIN + (zone % self.columns + u[1]) * lon_step
        return lat, lon


def _reflect(value: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold values that overshoot [low, high] back inside, like a mirror at each edge."""
    span = high - low
    folded = np.mod(value - low, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def offset_points(
    lat: np.ndarray, lon: np.ndarray, km: np.ndarray, bearing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points `km` away at `bearing` (radians from north), kept inside the city box.

    A flat-earth step is exact enough over a few km. Points past the edge are mirrored back
    rather than clipped, so no drivers pile up on the boundary; callers must re-measure the
    distance afterwards.
    """
    dlat = km * np.cos(bearing) / KM_PER_DEGREE
    dlon = km * np.sin(bearing) / (KM_PER_DEGREE * np.cos(np.radians(lat)))
    return _reflect(lat + dlat, LAT_MIN, LAT_MAX), _reflect(lon + dlon, LON_MIN, LON_MAX)
