"""The demo data must pass for real 3W 2.0 data: layout, schema, labels, wells and events."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.demo_data import generate
from engine.errors import InputError
from engine.readers import read_instance, well_id_from_name
from engine.schema import CLASSES_WITH_TRANSIENT, TRANSIENT_OFFSET, VARIABLES, event_of

SOURCES = [v.source_name for v in VARIABLES]
VALVES = [v.source_name for v in VARIABLES if v.unit == "state"]
NAME = re.compile(r"^WELL-\d{5}_(\d{14})\.parquet$")
DEFAULT_EVENTS = {1, 2, 3, 4, 5, 6, 7, 8}
HOURS = 8.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The default data set (6 wells x 8 h), made once for the whole module."""
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, hours=HOURS)


@pytest.fixture(scope="module")
def frames(demo: tuple[Path, list[Path]]) -> dict[Path, pd.DataFrame]:
    return {path: pd.read_parquet(path) for path in demo[1]}


def by_well(frames: dict[Path, pd.DataFrame]) -> dict[str, list[pd.DataFrame]]:
    """Each well's instances in time order."""
    wells: dict[str, list[pd.DataFrame]] = defaultdict(list)
    for path in sorted(frames, key=lambda p: p.name):
        wells[well_id_from_name(path)].append(frames[path])
    return wells


def label_runs(frame: pd.DataFrame) -> list[int]:
    """The labels of an instance in order of appearance, unlabeled rows left out."""
    labels = frame["class"].dropna().to_numpy(dtype=np.int64)
    return [int(x) for x in labels[np.r_[True, labels[1:] != labels[:-1]]]]


def event_frames(frames: dict[Path, pd.DataFrame], event: int) -> list[pd.DataFrame]:
    return [frame for path, frame in frames.items() if path.parent.name == str(event)]


def test_layout_and_names(demo: tuple[Path, list[Path]], frames: dict[Path, pd.DataFrame]) -> None:
    out, written = demo
    assert sorted(written) == sorted(out.rglob("*.parquet"))
    assert {p.parent.parent for p in written} == {out}
    for path, frame in frames.items():
        match = NAME.match(path.name)
        assert match, path.name
        assert pd.Timestamp(frame.index[0]) == pd.to_datetime(match.group(1), format="%Y%m%d%H%M%S")
        assert frame.index[0].year == 2024
        events = {event_of(int(c)) for c in frame["class"].dropna().unique()} - {0}
        assert int(path.parent.name) == (events.pop() if events else 0)
        assert not events, f"{path} mixes events"


def test_schema_as_pyarrow_and_pandas_read_it(frames: dict[Path, pd.DataFrame]) -> None:
    path, frame = next(iter(frames.items()))
    schema = pq.read_schema(path)
    assert schema.names == [*SOURCES, "class", "state", "timestamp"]
    assert all(schema.field(name).type == pa.float64() for name in SOURCES)
    assert schema.field("class").type == schema.field("state").type == pa.int64()
    assert pa.types.is_timestamp(schema.field("timestamp").type)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "BROTLI"
    for frame in frames.values():
        assert frame.index.name == "timestamp"
        assert isinstance(frame.index, pd.DatetimeIndex)
        assert (np.diff(frame.index.to_numpy()) == np.timedelta64(1, "s")).all()
        assert list(frame.columns) == [*SOURCES, "class", "state"]
        assert (frame[SOURCES].dtypes == "float64").all()
        assert frame["class"].dtype == frame["state"].dtype == "Int64"


def test_default_run_has_every_event_class(demo: tuple[Path, list[Path]]) -> None:
    folders = {int(p.parent.name) for p in demo[1]}
    assert folders == {0} | DEFAULT_EVENTS
    normal = sum(1 for p in demo[1] if p.parent.name == "0")
    assert normal > len(demo[1]) / 2, "most instances should be normal"


def test_labels_go_normal_transient_event(frames: dict[Path, pd.DataFrame]) -> None:
    for path, frame in frames.items():
        event = int(path.parent.name)
        runs = label_runs(frame)
        if event in CLASSES_WITH_TRANSIENT:
            assert runs == [0, event + TRANSIENT_OFFSET, event], path
            normal_minutes = (frame["class"] == 0).sum() / 60
            assert normal_minutes >= 20, f"{path}: only {normal_minutes:.0f} min of normal data first"
        else:
            assert runs == [event], path
            assert frame["class"].notna().all(), path


def test_a_few_rows_near_transitions_are_unlabeled(frames: dict[Path, pd.DataFrame]) -> None:
    rows = sum(len(f) for f in frames.values())
    unlabeled = sum(int(f["class"].isna().sum()) for f in frames.values())
    assert 0 < unlabeled < 0.01 * rows


def test_instances_of_a_well_follow_each_other(frames: dict[Path, pd.DataFrame]) -> None:
    wells = by_well(frames)
    assert len(wells) == 6
    for well, instances in wells.items():
        for before, after in itertools.pairwise(instances):
            gap = after.index[0] - before.index[-1]
            assert pd.Timedelta(seconds=1) <= gap <= pd.Timedelta(minutes=15), well
        assert sum(len(f) for f in instances) == HOURS * 3600, well
        assert all(pd.Timedelta(minutes=30) <= f.index[-1] - f.index[0] <= pd.Timedelta(hours=3.5)
                   for f in instances), well


def test_wells_differ_in_operating_point(frames: dict[Path, pd.DataFrame]) -> None:
    sensors = ["P-TPT", "T-TPT", "P-MON-CKP", "T-JUS-CKP"]
    points = {well: pd.concat(fs)[sensors].median().to_numpy() for well, fs in by_well(frames).items()}
    for (one, a), (other, b) in itertools.combinations(points.items(), 2):
        assert np.max(np.abs(a - b) / b) > 0.05, f"{one} and {other} operate alike"


def test_operating_ranges_are_plausible(frames: dict[Path, pd.DataFrame]) -> None:
    normal = pd.concat(event_frames(frames, 0))
    for sensor, low, high in (("P-PDG", 1.8e7, 3.8e7), ("P-TPT", 7e6, 2e7), ("T-TPT", 55, 115),
                              ("P-MON-CKP", 1.5e6, 9e6), ("T-JUS-CKP", 35, 85), ("ABER-CKP", 0, 100)):
        assert low <= normal[sensor].min() and normal[sensor].max() <= high, sensor
    assert set(np.unique(pd.concat(frames.values())[VALVES].to_numpy())) <= {0.0, 0.5, 1.0, np.nan}


def test_some_wells_lack_sensors_others_have(frames: dict[Path, pd.DataFrame]) -> None:
    absent = {well: {s for s in SOURCES if pd.concat(fs)[s].isna().all()} for well, fs in by_well(frames).items()}
    present_somewhere = set(SOURCES) - set.intersection(*absent.values())
    assert any(missing & present_somewhere for missing in absent.values())
    assert any("P-PDG" in missing for missing in absent.values())
    assert any({"P-PDG", "QGL"}.isdisjoint(missing) for missing in absent.values())


def test_sensors_drop_out_for_short_stretches(frames: dict[Path, pd.DataFrame]) -> None:
    partly_missing = [
        (frame[s].isna().sum(), len(frame))
        for frame in frames.values()
        for s in SOURCES
        if 0 < frame[s].isna().sum() < len(frame)
    ]
    assert partly_missing
    assert all(missing <= 600 for missing, _ in partly_missing)


# Direction in which the steady event moves a sensor away from the instance's normal start.
SIGNATURES = {
    1: (("P-TPT", -1), ("T-TPT", -1)),
    2: (("P-TPT", -1), ("T-TPT", -1), ("ESTADO-DHSV", -1)),
    5: (("P-TPT", -1), ("T-TPT", -1), ("P-MON-CKP", -1)),
    6: (("ABER-CKP", -1), ("P-MON-CKP", +1), ("T-JUS-CKP", -1)),
    7: (("P-MON-CKP", +1), ("T-JUS-CKP", -1)),
    8: (("P-MON-CKP", -1), ("P-TPT", +1), ("T-JUS-CKP", -1)),
}


@pytest.mark.parametrize("event", sorted(SIGNATURES))
def test_events_move_sensors_the_physical_way(frames: dict[Path, pd.DataFrame], event: int) -> None:
    for frame in event_frames(frames, event):
        normal, steady = frame[frame["class"] == 0], frame[frame["class"] == event]
        for sensor, sign in SIGNATURES[event]:
            shift = steady[sensor].mean() - normal[sensor].mean()
            assert np.sign(shift) == sign, (event, sensor)
            assert abs(shift) > 3 * max(normal[sensor].std(), 1e-9), (event, sensor)
        assert (steady["state"] != 0).all() if event == 2 else (frame["state"] == 0).all()


@pytest.mark.parametrize("event", [3, 4])
def test_slugging_and_instability_oscillate_more_than_normal(
    frames: dict[Path, pd.DataFrame], event: int
) -> None:
    def swing(frame: pd.DataFrame) -> float:
        pressure = frame["P-MON-CKP"]
        return float(pressure.rolling(1800).std().median() / pressure.mean())

    normal_swings = [swing(f) for f in event_frames(frames, 0)]
    for frame in event_frames(frames, event):
        assert swing(frame) > 2 * np.median(normal_swings)
    slugs = [swing(f) for f in event_frames(frames, 3)]
    instabilities = [swing(f) for f in event_frames(frames, 4)]
    assert min(slugs) > max(instabilities), "slugging should swing harder than flow instability"


def test_readers_read_every_file_back(demo: tuple[Path, list[Path]], frames: dict[Path, pd.DataFrame]) -> None:
    for path in demo[1]:
        table = read_instance(path)
        assert table.num_rows == len(frames[path])
        assert set(table.column("well_id").to_pylist()) == {path.name.split("_")[0]}
        labels = table.column("class").to_pandas().astype("Int64")
        assert labels.equals(frames[path]["class"].reset_index(drop=True))


def small(tmp_path: Path, name: str, seed: int) -> dict[str, pd.DataFrame]:
    files = generate(tmp_path / name, wells=2, hours=3.0, seed=seed)
    return {str(p.relative_to(tmp_path / name)): pd.read_parquet(p) for p in files}


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    first, again, other = small(tmp_path, "a", 11), small(tmp_path, "b", 11), small(tmp_path, "c", 12)
    assert first.keys() == again.keys()
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert first.keys() != other.keys()
    first_values = pd.concat(first.values())["P-TPT"].to_numpy()
    other_values = pd.concat(other.values())["P-TPT"].to_numpy()
    assert not np.allclose(first_values[:100], other_values[:100])


def test_small_runs_still_get_events(tmp_path: Path) -> None:
    files = generate(tmp_path, wells=2, hours=3.0, seed=3)
    events = {int(p.parent.name) for p in files} - {0}
    assert len(events) >= 2


def test_reports_progress_per_file(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    files = generate(tmp_path, wells=1, hours=0.5, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, len(files)) for i in range(1, len(files) + 1)]


@pytest.mark.parametrize(("wells", "hours", "seed"), [(0, 8.0, 7), (2, 0.0, 7), (2, float("nan"), 7), (2, 8.0, -1)])
def test_rejects_arguments_that_make_no_data(tmp_path: Path, wells: int, hours: float, seed: int) -> None:
    with pytest.raises(InputError):
        generate(tmp_path, wells=wells, hours=hours, seed=seed)
