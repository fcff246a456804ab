"""Where the wells are: coordinates for the map, from a registry file the user supplies.

A registry is a CSV (``well_id``, ``latitude``, ``longitude`` and optionally ``name``,
``field``) or a GeoJSON FeatureCollection of Points whose properties carry ``well_id``. The
portal stores an uploaded one under the home, by a fixed name, after parsing it; nothing of
the upload's name reaches the file system. ``PETROSTREAM_WELL_REGISTRY`` may point at one too.

Without a registry every well gets demo coordinates offshore Brazil, in the Campos and Santos
basins, derived from its id so a well stays put between runs. They are illustrative only:
no real well of that name is there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.errors import InputError

REGISTRY_ENV = "PETROSTREAM_WELL_REGISTRY"
_STORED = ("wells.csv", "wells.geojson")
MAX_REGISTRY_BYTES = 5_000_000

#: (name, south, north, west, east) of open-sea boxes over the two basins' producing fields.
DEMO_BASINS: tuple[tuple[str, float, float, float, float], ...] = (
    ("Campos basin", -22.7, -21.6, -40.4, -39.6),
    ("Santos basin", -25.6, -24.4, -43.4, -42.2),
)


@dataclass(frozen=True)
class WellLocation:
    """A well on the map."""

    well_id: str
    latitude: float
    longitude: float
    name: str
    field: str
    illustrative: bool


@dataclass(frozen=True)
class Registry:
    """Known well locations and where they came from."""

    locations: dict[str, WellLocation]
    source: str
    illustrative: bool
    uploaded: bool = False

    def locate(self, well_ids: Iterable[str]) -> tuple[list[WellLocation], list[str]]:
        """Locations of the given wells (demo ones for a demo registry) and the wells it cannot place."""
        found, missing = [], []
        for well in well_ids:
            if well in self.locations:
                found.append(self.locations[well])
            elif self.illustrative:
                found.append(demo_location(well))
            else:
                missing.append(well)
        return found, missing


def demo_location(well_id: str) -> WellLocation:
    """Illustrative coordinates for a well: a stable point in one of :data:`DEMO_BASINS`."""
    digest = hashlib.sha256(well_id.encode()).digest()
    name, south, north, west, east = DEMO_BASINS[digest[0] % len(DEMO_BASINS)]
    u, v = (int.from_bytes(digest[1:5]) / 2**32, int.from_bytes(digest[5:9]) / 2**32)
    return WellLocation(well_id, south + u * (north - south), west + v * (east - west), well_id, name,
                        illustrative=True)


def load_registry(home: Path) -> Registry:
    """The registry uploaded to ``home``, else the one ``PETROSTREAM_WELL_REGISTRY`` names, else demo."""
    for name in _STORED:
        stored = home / name
        if stored.is_file():
            return Registry(parse_registry(stored.name, stored.read_bytes()), f"uploaded {name}", False, True)
    configured = os.environ.get(REGISTRY_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise InputError(f"{REGISTRY_ENV}={configured}: no such file")
        return Registry(parse_registry(path.name, path.read_bytes()), str(path), False)
    return Registry({}, "demo coordinates (illustrative)", True)


def save_registry(home: Path, file_name: str, data: bytes) -> Registry:
    """Validate an uploaded registry and store it under ``home`` by a fixed name; return it."""
    locations = parse_registry(file_name, data)
    kind = _kind(file_name)
    for name in _STORED:
        (home / name).unlink(missing_ok=True)
    target = home / _STORED[0 if kind == "csv" else 1]
    home.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(target)
    return Registry(locations, f"uploaded {target.name}", False, True)


def forget_registry(home: Path) -> None:
    """Drop an uploaded registry (back to the configured one or the demo coordinates)."""
    for name in _STORED:
        (home / name).unlink(missing_ok=True)


def parse_registry(file_name: str, data: bytes) -> dict[str, WellLocation]:
    """Well id -> location from CSV or GeoJSON bytes; raises :class:`InputError` naming what is wrong."""
    if len(data) > MAX_REGISTRY_BYTES:
        raise InputError(f"{file_name}: a well registry must be under {MAX_REGISTRY_BYTES // 1_000_000} MB")
    rows = _csv_rows(file_name, data) if _kind(file_name) == "csv" else _geojson_rows(file_name, data)
    locations: dict[str, WellLocation] = {}
    for number, (well_id, latitude, longitude, name, field_name) in enumerate(rows, start=1):
        well = str(well_id).strip()
        if not well:
            raise InputError(f"{file_name}: entry {number} has no well_id")
        lat, lon = _coordinate(latitude, file_name, well, -90, 90), _coordinate(longitude, file_name, well, -180, 180)
        locations[well] = WellLocation(well, lat, lon, str(name or well), str(field_name or ""), illustrative=False)
    if not locations:
        raise InputError(f"{file_name}: no wells in the registry")
    return locations


def _kind(file_name: str) -> str:
    suffix = Path(file_name).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".geojson", ".json"):
        return "geojson"
    raise InputError(f"{file_name}: a well registry is a .csv or .geojson file")


def _csv_rows(file_name: str, data: bytes) -> list[tuple[object, ...]]:
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{file_name}: not a readable CSV ({exc})") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = {"well_id", "latitude", "longitude"} - set(frame.columns)
    if missing:
        raise InputError(f"{file_name}: missing column(s) {', '.join(sorted(missing))}")
    optional = [frame[c] if c in frame.columns else [""] * len(frame) for c in ("name", "field")]
    return list(zip(frame["well_id"], frame["latitude"], frame["longitude"], *optional, strict=True))


def _geojson_rows(file_name: str, data: bytes) -> list[tuple[object, ...]]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{file_name}: not valid JSON ({exc})") from exc
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list):
        raise InputError(f"{file_name}: not a GeoJSON FeatureCollection")
    rows = []
    for number, feature in enumerate(features, start=1):
        geometry = (feature or {}).get("geometry") or {}
        properties = (feature or {}).get("properties") or {}
        coordinates = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coordinates, list) or len(coordinates) < 2:
            raise InputError(f"{file_name}: feature {number} is not a Point")
        rows.append((properties.get("well_id", ""), coordinates[1], coordinates[0], properties.get("name"),
                     properties.get("field")))
    return rows


def _coordinate(value: object, file_name: str, well: str, low: float, high: float) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InputError(f"{file_name}: well {well}: {value!r} is not a coordinate") from None
    if not low <= number <= high:
        raise InputError(f"{file_name}: well {well}: {number} is outside [{low}, {high}]")
    return number
