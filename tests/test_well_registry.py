"""Well positions for the map: demo coordinates offshore Brazil, or a registry file the user supplies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.well_registry import (
    DEMO_BASINS,
    REGISTRY_ENV,
    demo_location,
    forget_registry,
    load_registry,
    parse_registry,
    save_registry,
)

CSV = b"well_id,latitude,longitude,name,field\nP-51,-22.35,-40.02,Platform 51,Marlim\nP-52,-22.40,-40.10,,\n"
GEOJSON = json.dumps({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-42.8, -25.4]},
     "properties": {"well_id": "T-1", "name": "Tupi 1"}}]}).encode()


@pytest.fixture(autouse=True)
def no_configured_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REGISTRY_ENV, raising=False)


@pytest.mark.parametrize("well", ["WELL-00001", "WELL-00042", "SIMULATED_00001", "x"])
def test_demo_positions_are_stable_and_offshore_in_the_basins(well: str) -> None:
    location = demo_location(well)
    assert location == demo_location(well) and location.illustrative
    assert any(south <= location.latitude <= north and west <= location.longitude <= east
               and location.field == name for name, south, north, west, east in DEMO_BASINS)


def test_without_a_registry_every_well_gets_an_illustrative_position(tmp_path: Path) -> None:
    registry = load_registry(tmp_path)
    assert registry.illustrative and not registry.uploaded
    placed, missing = registry.locate(["WELL-00001", "WELL-00002"])
    assert [p.well_id for p in placed] == ["WELL-00001", "WELL-00002"] and missing == []


def test_csv_and_geojson_registries_parse() -> None:
    csv = parse_registry("wells.csv", CSV)
    assert csv["P-51"].latitude == -22.35 and csv["P-51"].name == "Platform 51" and csv["P-51"].field == "Marlim"
    assert csv["P-52"].name == "P-52" and not csv["P-52"].illustrative
    geo = parse_registry("wells.geojson", GEOJSON)
    assert (geo["T-1"].latitude, geo["T-1"].longitude, geo["T-1"].name) == (-25.4, -42.8, "Tupi 1")


@pytest.mark.parametrize(("name", "data", "message"), [
    ("wells.xlsx", CSV, "a .csv or .geojson"),
    ("wells.csv", b"well,lat,lon\nA,1,2\n", "missing column"),
    ("wells.csv", b"well_id,latitude,longitude\nA,north,2\n", "not a coordinate"),
    ("wells.csv", b"well_id,latitude,longitude\nA,95,2\n", "outside"),
    ("wells.csv", b"well_id,latitude,longitude\nA,nan,2\n", "outside"),
    ("wells.csv", b"well_id,latitude,longitude\n,1,2\n", "no well_id"),
    ("wells.csv", b"well_id,latitude,longitude\n", "no wells"),
    ("wells.geojson", b"{not json", "not valid JSON"),
    ("wells.geojson", b'{"type": "Feature"}', "FeatureCollection"),
    ("wells.geojson", b'{"features": [{"geometry": {"type": "LineString", "coordinates": [[1, 2]]}}]}', "Point"),
])
def test_bad_registries_are_refused_with_the_reason(name: str, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_registry(name, data)


def test_an_uploaded_registry_is_stored_under_a_fixed_name_and_replaces_the_demo(tmp_path: Path) -> None:
    saved = save_registry(tmp_path, "../../etc/evil name.csv", CSV)
    assert saved.uploaded and sorted(saved.locations) == ["P-51", "P-52"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wells.csv"]
    registry = load_registry(tmp_path)
    assert registry.uploaded and not registry.illustrative
    placed, missing = registry.locate(["P-51", "WELL-00001"])
    assert [p.well_id for p in placed] == ["P-51"] and missing == ["WELL-00001"]
    save_registry(tmp_path, "wells.geojson", GEOJSON)
    assert sorted(load_registry(tmp_path).locations) == ["T-1"]
    forget_registry(tmp_path)
    assert load_registry(tmp_path).illustrative


def test_a_bad_upload_leaves_the_stored_registry_alone(tmp_path: Path) -> None:
    save_registry(tmp_path, "wells.csv", CSV)
    with pytest.raises(InputError):
        save_registry(tmp_path, "wells.csv", b"nonsense")
    assert sorted(load_registry(tmp_path).locations) == ["P-51", "P-52"]


def test_a_configured_registry_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "field.geojson"
    path.write_bytes(GEOJSON)
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    registry = load_registry(tmp_path / "home")
    assert sorted(registry.locations) == ["T-1"] and not registry.uploaded
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="no such file"):
        load_registry(tmp_path / "home")
