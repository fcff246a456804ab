"""The kept-between-runs folder (the synthetic prior's cache): reused only while it verifies, else rebuilt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.diagnosis_training import thinned
from ml.verified_folder import CHECKSUMS, cached_folder, verified


class Builder:
    """Writes two files and counts how often it was asked to."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, folder: Path) -> None:
        self.calls += 1
        (folder / "a").mkdir()
        (folder / "a" / "one.parquet").write_bytes(b"first file")
        (folder / "two.parquet").write_bytes(b"second file")


def test_built_once_then_reused(tmp_path: Path) -> None:
    build = Builder()
    first = cached_folder(tmp_path, "key", build)
    second = cached_folder(tmp_path, "key", build)
    assert first == second == tmp_path / "key"
    assert build.calls == 1
    assert verified(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]  # no temporary folder left behind


@pytest.mark.parametrize("damage", ["edited", "truncated", "missing", "extra", "no checksums", "bad checksums"])
def test_a_damaged_copy_is_rebuilt_never_used(tmp_path: Path, damage: str) -> None:
    build = Builder()
    folder = cached_folder(tmp_path, "key", build)
    target = folder / "a" / "one.parquet"
    if damage == "edited":
        target.write_bytes(b"first fild")
    elif damage == "truncated":
        target.write_bytes(b"first")
    elif damage == "missing":
        target.unlink()
    elif damage == "extra":  # a stray file would be read as training data
        (folder / "a" / "three.parquet").write_bytes(b"not ours")
    elif damage == "no checksums":  # a copy whose writer died before finishing
        (folder / CHECKSUMS).unlink()
    else:
        (folder / CHECKSUMS).write_text("{not json")
    assert not verified(folder)
    again = cached_folder(tmp_path, "key", build)
    assert build.calls == 2
    assert verified(again)
    assert (again / "a" / "one.parquet").read_bytes() == b"first file"
    assert not (again / "a" / "three.parquet").exists()


def test_a_failed_build_leaves_nothing_to_trust(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        (folder / "half.parquet").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cached_folder(tmp_path, "key", broken)
    assert not (tmp_path / "key").exists()
    assert list(tmp_path.iterdir()) == []


def test_thinned_keeps_at_most_cap_rows_of_each_well_and_class() -> None:
    rng = np.random.default_rng(1)
    classes = rng.integers(1, 4, 5_000)
    wells = np.array([f"w{k}" for k in rng.integers(0, 5, 5_000)], dtype=object)
    keep = thinned(classes, wells, 100, seed=0)
    for well in set(wells.tolist()):
        for event in (1, 2, 3):
            group = (wells == well) & (classes == event)
            assert keep[group].sum() == min(100, group.sum())
    assert np.array_equal(keep, thinned(classes, wells, 100, seed=0))  # the same rows every run
    assert thinned(classes, wells, 10_000, seed=0).all()
