"""Where training and replay data come from: typed folders and uploaded files are checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.data_sources import (
    INCOMING_FOLDER,
    catalogue,
    data_roots,
    files_of_wells,
    safe_file_name,
    save_upload,
    uploads_folder,
    user_files,
)
from engine.errors import InputError
from engine.readers import discover


def test_a_folder_of_3w_files_inside_a_data_root_is_accepted(demo_dir: Path) -> None:
    assert user_files(f"  {demo_dir}  ", [demo_dir.parent.resolve()]) == discover([demo_dir.resolve()])


@pytest.mark.parametrize(("text", "message"), [
    ("", "enter the path"), ("relative/folder", "absolute path"), ("/no/such/folder", "outside the data folders"),
    ("/", "outside the data folders"), ("/etc", "outside the data folders"),
    ("/data/\x00evil", "not a usable"), ("/" + "a" * 5000, "not a usable")])
def test_unusable_folders_are_refused(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=message):
        user_files(text, [tmp_path])


def test_a_path_that_climbs_out_of_a_root_is_refused(tmp_path: Path, demo_dir: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(demo_dir)
    for escape in (f"{root}/../../", f"{root}/link"):
        with pytest.raises(InputError, match="outside the data folders"):
            user_files(escape, [root])


def test_the_roots_are_the_configured_ones_and_the_homes_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETROSTREAM_DATA_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert data_roots(tmp_path / "home") == [tmp_path / "a", tmp_path / "b", tmp_path / "home" / "demo-data",
                                             tmp_path / "home" / "uploads"]


def test_a_folder_too_wide_to_walk_is_refused(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"d{i}").mkdir()
    with pytest.raises(InputError, match="more than 20 files and folders"):
        discover([tmp_path], max_entries=20)


def test_a_folder_without_3w_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="no 3W files"):
        user_files(str(tmp_path), [tmp_path])


@pytest.mark.parametrize(("name", "safe"), [
    ("WELL-00011_20140515110134.csv", "WELL-00011_20140515110134.csv"),
    ("../../etc/WELL-1.parquet", "WELL-1.parquet"),
    ("C:\\Users\\x\\WELL-2.CSV", "WELL-2.csv"),
    ("..hidden.csv", "hidden.csv"),
    ("we ll;rm -rf.csv", "we_ll_rm_-rf.csv"),
])
def test_upload_names_are_reduced_to_safe_base_names(name: str, safe: str) -> None:
    assert safe_file_name(name) == safe


def test_only_3w_suffixes_are_accepted() -> None:
    with pytest.raises(InputError, match="upload a 3W"):
        safe_file_name("model.joblib")


def test_an_upload_is_stored_only_if_it_reads_as_3w(tmp_path: Path, demo_dir: Path) -> None:
    source = discover([demo_dir])[0].path
    stored = save_upload(tmp_path, f"../{source.name}", source.read_bytes())
    assert stored.parent == uploads_folder(tmp_path) and stored.name == source.name
    assert discover([uploads_folder(tmp_path)])[0].well_id == discover([demo_dir])[0].well_id
    with pytest.raises(InputError, match=r"bogus\.csv"):
        save_upload(tmp_path, "bogus.csv", b"a,b\n1,2\n")
    assert sorted(p.name for p in uploads_folder(tmp_path).iterdir()) == [source.name]
    assert list((tmp_path / INCOMING_FOLDER).iterdir()) == []  # no temporary file left behind


def test_choosing_wells_picks_their_files(demo_dir: Path) -> None:
    files = discover([demo_dir])
    listing = catalogue(files)
    assert list(listing.columns) == ["well_id", "event_class", "file"] and len(listing) == len(files)
    first = files[0].well_id
    assert {f.well_id for f in files_of_wells(files, [first])} == {first}
    assert files_of_wells(files, []) == []
