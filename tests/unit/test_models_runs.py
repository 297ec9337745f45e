"""log_model stores a model folder as artifacts of a run; load_model("runs:/…") fetches it into
a cache and verifies it against the manifest digest the artifact store recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlcycle as mc
from mlcycle.config import Settings
from mlcycle.errors import ArtifactNotFound, InvalidInputError, ModelIntegrityError, StoreError
from mlcycle.models import load_model, log_model

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = [0, 0, 1, 1]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[mc.Client]:
    with mc.Client(settings=Settings(home=tmp_path / ".mlcycle")) as c:
        yield c


def test_log_and_load_through_a_run(client: mc.Client, tmp_path: Path) -> None:
    model = LogisticRegression().fit(X, Y)
    with client.start_run(experiment="models", log_system=False) as run:
        info = log_model(run, model, input_example=X.head(2), metadata={"stage": "test"})
    assert info.run_id == run.run_id and info.artifact_path == "model"
    assert info.model_uri == f"runs:/{run.run_id}/model"
    stored = {a.path: a.digest for a in client.list_artifacts(run.run_id, "model")}
    assert stored["model/model.json"] == info.manifest_digest
    assert set(stored) == {f"model/{name}" for name in [*info.files, "model.json"]}

    loaded = load_model(info.model_uri, client=client)
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    assert loaded.info.run_id == run.run_id and loaded.info.model_uri == info.model_uri
    assert loaded.info.manifest_digest == info.manifest_digest
    assert loaded.info.metadata == {"stage": "test"}
    cached = tmp_path / ".mlcycle" / "cache" / "models" / info.manifest_digest
    assert Path(loaded.info.path) == cached and (cached / "model.pkl").is_file()


def test_log_with_a_client_and_run_id(client: mc.Client) -> None:
    run = client.start_run(experiment="models", log_system=False)
    info = log_model(client, LogisticRegression().fit(X, Y), "nested/clf", run_id=run.run_id)
    assert info.model_uri == f"runs:/{run.run_id}/nested/clf"
    assert load_model(info.model_uri, client=client).info.signature is None
    with pytest.raises(InvalidInputError, match="needs run_id="):
        log_model(client, LogisticRegression().fit(X, Y))
    with pytest.raises(InvalidInputError, match="expected an ActiveRun or a Client"):
        log_model("not a run", LogisticRegression())


def test_a_changed_cache_is_fetched_again(client: mc.Client) -> None:
    with client.start_run(experiment="models", log_system=False) as run:
        info = log_model(run, LogisticRegression().fit(X, Y), input_example=X.head(2))
    first = load_model(info.model_uri, client=client)
    cached = Path(first.info.path)
    pickled = cached / "model.pkl"
    pickled.write_bytes(b"not the model")
    again = load_model(info.model_uri, client=client)
    assert again.predict(X).tolist() == [0, 0, 1, 1]
    assert pickled.read_bytes() != b"not the model"


def test_a_changed_stored_object_is_refused(client: mc.Client) -> None:
    with client.start_run(experiment="models", log_system=False) as run:
        info = log_model(run, LogisticRegression().fit(X, Y))
    digest = {a.path: a.digest for a in client.list_artifacts(run.run_id)}["model/model.pkl"]
    store_root = Path(client.settings.home) / "artifacts" / "objects"
    obj = store_root / digest[:2] / digest[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"tampered in the store")
    with pytest.raises(StoreError, match="corrupted"):
        load_model(info.model_uri, client=client)


def test_uri_errors(client: mc.Client) -> None:
    with client.start_run(experiment="models", log_system=False) as run:
        info = log_model(run, LogisticRegression().fit(X, Y))
    with pytest.raises(InvalidInputError, match="needs client="):
        load_model(info.model_uri)
    with pytest.raises(ArtifactNotFound, match="has no model at 'other'"):
        load_model(f"runs:/{run.run_id}/other", client=client)
    with pytest.raises(InvalidInputError, match="runs:/<run_id>/<artifact_path>"):
        load_model("runs:/only-an-id", client=client)
    with pytest.raises(InvalidInputError, match="a local folder or runs:/"):
        load_model("s3://bucket/model")
    with pytest.raises(ModelIntegrityError, match="expected 0000"):
        load_model(info.model_uri, client=client, expected_digest="0" * 64)
