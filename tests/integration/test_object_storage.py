"""Extracts and the model registry in object storage: workers that share no disk, only a bucket.

A real S3-compatible server (moto's server mode, in a thread on 127.0.0.1) behind the real s3fs
client; the pipeline runs two days against ``s3://`` data_dir and models_dir: the first extracts
and trains, the second reuses the model, loaded back from S3. Event pictures are drawn by a stub
(test_plots covers the renderer); they are still uploaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from conftest import detect, small_plant  # noqa: E402
from tsad import fs, pipeline  # noqa: E402
from tsad.pipeline import GroupDay  # noqa: E402
from tsad.model import registry  # noqa: E402
from tsad.config import load_config  # noqa: E402
from tsad.errors import DataError, ModelError  # noqa: E402
from tsad.ingest.partitions import partition_path, read_partition  # noqa: E402
from tsad.evaluation.simulator import simulate  # noqa: E402

BUCKET = "tsad-test"
D0 = date(2026, 3, 1)
DAY1, DAY2 = D0 + timedelta(days=3), D0 + timedelta(days=4)  # models train on 3 days


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client on a fresh bucket; tsad reaches the server through TSAD_S3_ENDPOINT_URL."""
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "TSAD_S3_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    keys = [o["Key"] for o in _objects(client, "")]
    for key in keys:
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def _objects(client: Any, prefix: str) -> list[dict[str, Any]]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o for page in pages for o in page.get("Contents", [])]


def _keys(client: Any, prefix: str) -> set[str]:
    return {o["Key"][len(prefix):] for o in _objects(client, prefix)}


def stub_render(picture: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(picture.title.encode())
    return out


def test_two_days_on_s3(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tsad.detection.plots.render", stub_render)
    monkeypatch.chdir(tmp_path)  # a stray local "s3:" folder would show up here
    data = small_plant(tmp_path, sampling_seconds=600)
    data["groups"] = data["groups"][:1]  # pumps
    data["data_dir"] = f"s3://{BUCKET}/data"
    data["models_dir"] = f"s3://{BUCKET}/models"
    (tmp_path / "tsad.yaml").write_text(yaml.safe_dump(data))
    config = load_config(tmp_path / "tsad.yaml")
    assert config.data_dir == f"s3://{BUCKET}/data"  # URLs are not anchored to the config folder
    simulate(config, D0, 5, [DAY1], seed=3)

    # day 1: extract, train (extracting the 3 training days first), score
    extracted = pipeline.extract(GroupDay.of(config, "pumps", DAY1))
    assert extracted["path"] == f"s3://{BUCKET}/data/extracts/group=pumps/date={DAY1}/readings.parquet"
    model = pipeline.ensure_model(GroupDay.of(config, "pumps", DAY1))
    assert model["trained"] and model["path"] == f"s3://{BUCKET}/models/pumps/v0001"
    first = detect(GroupDay.of(config, "pumps", DAY1), model["path"])
    assert first["model_version_id"] == "pumps/v0001"

    parts = _keys(s3, "data/extracts/group=pumps/")
    for day in (D0, D0 + timedelta(days=1), D0 + timedelta(days=2), DAY1):
        assert {f"date={day}/readings.parquet", f"date={day}/quality.json"} <= parts
    assert _keys(s3, "models/pumps/") == {
        "v0001/.claim", "v0001/config.json", "v0001/weights.safetensors", "v0001/state.json",
        "v0001/manifest.json"}
    quality = json.loads(s3.get_object(Bucket=BUCKET, Key=f"data/extracts/group=pumps/"
                                       f"date={DAY1}/quality.json")["Body"].read())
    assert quality["grid_points"] == 144
    plots = _keys(s3, f"data/plots/group=pumps/date={DAY1}/")
    assert len(plots) == first["n_events"]

    # day 2: a fresh process would find everything in the bucket; the model comes from S3
    second_extract = pipeline.extract(GroupDay.of(config, "pumps", DAY2))
    assert second_extract["rows"] == 144
    reused = pipeline.ensure_model(GroupDay.of(config, "pumps", DAY2))
    assert not reused["trained"] and reused["path"] == model["path"]
    second = detect(GroupDay.of(config, "pumps", DAY2), reused["path"])
    assert second["model_version_id"] == "pumps/v0001"
    assert f"date={DAY2}/readings.parquet" in _keys(s3, "data/extracts/group=pumps/")
    frame = read_partition(config.data_dir, "pumps", DAY2, config.group("pumps").channels)
    assert len(frame) == 144 and list(frame.columns) == config.group("pumps").channels

    # nothing went to a local disk path named after the URL
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "data").exists()
    assert not (tmp_path / "models").exists()


def test_registry_claims_numbers_and_verifies_downloads(s3: Any, tmp_path: Path) -> None:
    """A number another publisher claimed is skipped; a tampered object is refused on load."""
    data = small_plant(tmp_path, sampling_seconds=600)
    data["groups"] = data["groups"][:1]
    data["data_dir"] = f"s3://{BUCKET}/data"
    data["models_dir"] = models = f"s3://{BUCKET}/models"
    (tmp_path / "tsad.yaml").write_text(yaml.safe_dump(data))
    config = load_config(tmp_path / "tsad.yaml")
    simulate(config, D0, 4, seed=3)
    assert pipeline.ensure_model(GroupDay.of(config, "pumps", DAY1))["trained"]
    v1 = registry.list_versions(models, "pumps")[0]
    detector = registry.load_detector(v1, config.group("pumps").channels)

    claim = f"{models}/pumps/v0002/.claim"
    assert fs.write_bytes(claim, b"another worker", create_only=True)
    assert not fs.write_bytes(claim, b"me", create_only=True)  # If-None-Match: * refuses
    v3 = registry.publish(models, detector, D0, DAY1, "test", group="pumps")
    assert v3.version == 3  # v0002 is claimed but unpublished: invisible, and never reused
    assert [v.version for v in registry.list_versions(models, "pumps")] == [1, 3]
    assert registry.version_at(str(v3.path)) == v3
    registry.load_detector(v3, config.group("pumps").channels)

    s3.put_object(Bucket=BUCKET, Key="models/pumps/v0003/weights.safetensors", Body=b"tampered")
    with pytest.raises(ModelError, match="v0003/weights.safetensors does not match its manifest"):
        registry.load_detector(v3)
    with pytest.raises(DataError, match=f"s3://{BUCKET}/data/extracts/group=pumps"):
        read_partition(config.data_dir, "pumps", D0 + timedelta(days=30), ["flow"])
    assert fs.is_remote(partition_path(config.data_dir, "pumps", D0))
