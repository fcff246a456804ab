"""Where training and replay data come from: typed folders and uploaded files are checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.data_sources import catalogue, files_of_wells, safe_file_name, save_upload, uploads_folder, user_folder
from engine.errors import InputError
from engine.readers import discover


def test_a_folder_of_3w_files_is_accepted(demo_dir: Path) -> None:
    assert user_folder(f"  {demo_dir}  ") == demo_dir.resolve()


@pytest.mark.parametrize(("text", "message"), [
    ("", "enter the path"), ("relative/folder", "absolute path"), ("/no/such/folder", "no such folder"),
    ("/data/\x00evil", "not a usable"), ("/" + "a" * 5000, "not a usable")])
def test_unusable_folders_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        user_folder(text)


def test_a_folder_without_3w_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="no 3W files"):
        user_folder(str(tmp_path))


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


def test_choosing_wells_picks_their_files(demo_dir: Path) -> None:
    files = discover([demo_dir])
    listing = catalogue(files)
    assert list(listing.columns) == ["well_id", "event_class", "file"] and len(listing) == len(files)
    first = files[0].well_id
    assert {f.well_id for f in files_of_wells(files, [first])} == {first}
    assert files_of_wells(files, []) == []
