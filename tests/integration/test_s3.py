"""Artifacts on S3, against moto's S3-compatible server on 127.0.0.1 (no AWS account here)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

import mlcycle as mc
from mlcycle.config import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
                 aws_secret_access_key="s").create_bucket(Bucket="mlcycle-test")
    yield url
    server.stop()


def test_runs_store_artifacts_in_s3(s3_endpoint: str, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        artifact_uri="s3://mlcycle-test/team-a",
        artifact_options={"key": "k", "secret": "s",
                          "client_kwargs": {"endpoint_url": s3_endpoint,
                                            "region_name": "us-east-1"}},
    )
    client = mc.Client(settings=settings)
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 10_000)
    with client.start_run(experiment="s3", log_system=False) as run:
        [art] = run.log_artifact(model)
        run.log_artifact(model, "copy/model.bin")  # same bytes: stored once
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="k", aws_secret_access_key="s")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mlcycle-test")["Contents"]]
    assert keys == [f"team-a/objects/{art.digest[:2]}/{art.digest[2:]}"]
    out = client.download_artifacts(run.run_id, "copy", tmp_path / "dl")
    assert (out / "model.bin").read_bytes() == model.read_bytes()
    client.close()


def test_datasets_read_from_and_snapshot_to_s3(s3_endpoint: str, tmp_path: Path) -> None:
    """An s3:// source is read through fsspec, and the snapshot lands in an S3 artifact store."""
    import pandas as pd

    options = {"key": "k", "secret": "s",
               "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="k", aws_secret_access_key="s")
    frame = pd.DataFrame({"id": range(100), "city": ["Oslo", "Lima"] * 50})
    s3.put_object(Bucket="mlcycle-test", Key="raw/cities.csv",
                  Body=frame.to_csv(index=False).encode())
    settings = Settings(home=tmp_path, artifact_uri="s3://mlcycle-test/datasets",
                        artifact_options=options)
    client = mc.Client(settings=settings)
    v = client.data.ingest("cities", "s3://mlcycle-test/raw/cities.csv", storage_options=options)
    assert v.num_rows == 100 and v.source["path"] == "s3://mlcycle-test/raw/cities.csv"
    assert client.data.ingest("cities", "s3://mlcycle-test/raw/cities.csv",
                              storage_options=options).version == 1
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="mlcycle-test",
                                                 Prefix="datasets/")["Contents"]}
    assert f"datasets/objects/{v.digest[:2]}/{v.digest[2:]}" in keys
    assert client.data.load("cities@v1", format="pandas").equals(frame)
    client.close()
