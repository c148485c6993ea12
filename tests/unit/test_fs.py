"""Local paths and object storage URLs behind tsad.fs: locations, atomic writes that leave the old
file (and no temporary file) when the writer fails, JSON helpers, and the remote branch on
fsspec's in-memory filesystem."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from tsad import fs


@pytest.mark.parametrize(("where", "remote"), [
    ("s3://bucket/tsad/data", True), ("gs://bucket/models", True), ("memory://x/y", True),
    ("file:///srv/tsad/data", False), ("/srv/tsad/data", False), ("data", False),
    (Path("/srv/tsad"), False),
])
def test_is_remote(where: str | Path, remote: bool) -> None:
    assert fs.is_remote(where) is remote


def test_locations_are_urls_when_remote_and_paths_when_local() -> None:
    assert fs.location("s3://bucket/tsad/", "pumps", "v0001") == "s3://bucket/tsad/pumps/v0001"
    assert fs.location("s3://bucket") == "s3://bucket"
    assert fs.location("/srv/tsad", "pumps", "v0001") == Path("/srv/tsad/pumps/v0001")
    assert fs.location("file:///srv/tsad", "pumps") == Path("/srv/tsad/pumps")
    url, path = "s3://bucket/tsad/pumps/v0001", Path("/srv/tsad/pumps/v0001")
    assert (fs.parent(url), fs.name(url)) == ("s3://bucket/tsad/pumps", "v0001")
    assert (fs.parent(path), fs.name(path)) == (Path("/srv/tsad/pumps"), "v0001")
    assert fs.with_name(url, "v0002") == "s3://bucket/tsad/pumps/v0002"
    assert fs.with_name(path, "v0002") == Path("/srv/tsad/pumps/v0002")


def test_storage_options_point_s3_at_the_configured_endpoint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TSAD_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert fs.storage_options("s3") == {"use_listings_cache": False}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws-like:9000")
    assert fs.storage_options("s3")["endpoint_url"] == "http://aws-like:9000"
    monkeypatch.setenv("TSAD_S3_ENDPOINT_URL", "http://minio:9000")  # tsad's own wins
    assert fs.storage_options("s3")["endpoint_url"] == "http://minio:9000"
    assert "endpoint_url" not in fs.storage_options("gs")


def test_atomic_output_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "plot.png"  # missing folders are made
    with fs.atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"first")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_bytes() == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # readable by the web server
    fs.write_bytes_atomic(target, b"2")
    assert target.read_bytes() == b"2"
    assert os.listdir(target.parent) == ["plot.png"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "records.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="killed"), fs.atomic_output(target) as tmp:
        tmp.write_text("half of the new con")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["records.json"]
    with pytest.raises(KeyboardInterrupt), fs.atomic_output(tmp_path / "new.json") as tmp:
        tmp.write_text("{")  # not only an Exception: an interrupt leaves nothing either
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["records.json"]


def test_write_json_and_read_json(tmp_path: Path) -> None:
    file = tmp_path / "manifest.json"
    data = {"b": [1, 2.5, None], "a": {"z": "ü", "y": True}}
    fs.write_json(file, data)
    assert fs.read_json(file) == data
    text = file.read_text()
    assert text == json.dumps(data, indent=2, sort_keys=True)  # stable bytes: checksums hold
    assert text.index('"a"') < text.index('"b"')
    fs.write_json(file, [])  # shorter content leaves nothing of the longer one behind
    assert file.read_text() == "[]" and fs.read_json(file) == []
    assert fs.is_file(file) and not fs.is_file(tmp_path / "nothing.json")
    assert fs.read_bytes(file) == b"[]"


def test_fsync_dir_is_quiet_on_any_folder(tmp_path: Path) -> None:
    assert fs.fsync_dir(tmp_path) is None
    assert fs.fsync_dir(tmp_path / "gone") is None  # cannot be opened: a no-op, not an error


def test_the_remote_branch_uploads_only_a_finished_file() -> None:
    root = f"memory://tsad-test-{uuid.uuid4().hex}"
    target = fs.location(root, "models", "manifest.json")
    assert isinstance(target, str)
    with pytest.raises(RuntimeError), fs.atomic_output(target) as tmp:
        tmp.write_text("{")
        raise RuntimeError("killed")
    assert not fs.is_file(target)
    fs.write_json(target, {"group": "pumps"})
    assert fs.is_file(target) and fs.read_json(target) == {"group": "pumps"}
    claim = fs.location(root, "models", ".claim")
    assert fs.write_bytes(claim, b"me", create_only=True) is True
    assert fs.write_bytes(claim, b"you", create_only=True) is False  # the number is taken
    assert fs.read_bytes(claim) == b"me"
    # (the memory filesystem roots its paths at "/", so compare names)
    assert [fs.name(url) for url in fs.glob(root, "models/*")] == [".claim", "manifest.json"]
    fs.remove(claim)
    assert [fs.name(url) for url in fs.glob(root, "models/*")] == ["manifest.json"]
