"""A model whose files changed is refused before anything is unpickled; a model that cannot be
pickled gets an error naming what could not be."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from blake3 import blake3
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlcycle.errors import InvalidInputError, ModelIntegrityError
from mlcycle.models import load_model, save_model

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
Y = [0, 0, 1, 1]


def _write_marker(path: str) -> str:
    Path(path).write_text("unpickled")
    return "pwned"


class Payload:
    """What an attacker puts in a model file: unpickling it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (_write_marker, (str(self.marker),))


def _saved(tmp_path: Path) -> tuple[Path, str]:
    info = save_model(LogisticRegression().fit(X, Y), tmp_path / "m", input_example=X.head(2))
    return tmp_path / "m", info.manifest_digest


def test_swapped_pickle_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    folder, _ = _saved(tmp_path)
    marker = tmp_path / "marker"
    # the payload works: unpickling it writes the marker
    pickle.loads(pickle.dumps(Payload(tmp_path / "probe")))
    assert (tmp_path / "probe").exists()

    (folder / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelIntegrityError, match=r"model.pkl changed since the model was saved"
                       ) as err:
        load_model(folder)
    assert err.value.details["file"] == "model.pkl"
    assert err.value.code == "model_integrity"
    assert not marker.exists()  # nothing was unpickled


def test_consistent_tampering_needs_the_manifest_digest(tmp_path: Path) -> None:
    """An attacker who rewrites the manifest too gets past the file check, not past the
    manifest digest the store (or registry) holds."""
    folder, digest = _saved(tmp_path)
    marker = tmp_path / "marker"
    data = pickle.dumps(Payload(marker))
    (folder / "model.pkl").write_bytes(data)
    manifest = orjson.loads((folder / "model.json").read_bytes())
    manifest["files"]["model.pkl"] = {"blake3": blake3(data).hexdigest(), "size": len(data)}
    (folder / "model.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=r"model.json has digest .* expected") as err:
        load_model(folder, expected_digest=digest)
    assert err.value.details["file"] == "model.json"
    assert not marker.exists()


def test_added_removed_and_linked_files_are_refused(tmp_path: Path) -> None:
    folder, digest = _saved(tmp_path)
    (folder / "extra.py").write_text("print('hi')")
    with pytest.raises(ModelIntegrityError, match=r"extra\.py is not listed in model\.json"):
        load_model(folder)
    (folder / "extra.py").unlink()

    os.rename(folder / "input_example.parquet", tmp_path / "moved")
    with pytest.raises(ModelIntegrityError, match=r"input_example\.parquet is listed .* missing"):
        load_model(folder)
    os.symlink(tmp_path / "moved", folder / "input_example.parquet")
    with pytest.raises(ModelIntegrityError, match="is a symbolic link"):
        load_model(folder)
    (folder / "input_example.parquet").unlink()
    os.rename(tmp_path / "moved", folder / "input_example.parquet")
    assert load_model(folder, expected_digest=digest).predict(X).tolist() == [0, 0, 1, 1]


def test_not_a_model_and_malformed_manifests(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"is not a saved model: it has no model\.json"):
        load_model(tmp_path)
    folder, _ = _saved(tmp_path)
    manifest = orjson.loads((folder / "model.json").read_bytes())
    for key, value, message in [
        ("format_version", 99, "model.json: format_version: this mlcycle reads version 1"),
        ("files", {"../x": {"blake3": "0" * 64, "size": 1}}, "expected a relative path"),
        ("flavor", "cobol", "flavor must be one of"),
    ]:
        broken = {**manifest, key: value}
        (folder / "model.json").write_bytes(orjson.dumps(broken))
        with pytest.raises(InvalidInputError, match=message):
            load_model(folder)


def test_unpicklable_model_names_the_attribute(tmp_path: Path) -> None:
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    pipe.steps[1][1].lock_ = threading.Lock()
    with pytest.raises(InvalidInputError, match=r"model cannot be pickled: "
                       r"model.steps\[1\]\[1\].lock_ \(_thread.lock\)") as err:
        save_model(pipe, tmp_path / "m")
    assert err.value.details["path"] == "model.steps[1][1].lock_"
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no half-written folder left


def test_save_never_overwrites(tmp_path: Path) -> None:
    folder, _ = _saved(tmp_path)
    before = (folder / "model.pkl").read_bytes()
    with pytest.raises(InvalidInputError, match="exists and is not an empty folder"):
        save_model(LogisticRegression().fit(X, [1, 1, 0, 0]), folder)
    assert (folder / "model.pkl").read_bytes() == before
    (tmp_path / "empty").mkdir()
    save_model(LogisticRegression().fit(X, Y), tmp_path / "empty")  # an empty folder is fine


def test_file_swapped_after_the_check_is_refused_on_read(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes a flavor unpickles are hashed again as they are read."""
    from mlcycle.models import persistence

    folder, _ = _saved(tmp_path)
    marker = tmp_path / "marker"
    verify = persistence.verify_folder

    def verify_then_swap(root: Any, info: Any) -> None:
        verify(root, info)
        (folder / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))

    monkeypatch.setattr(persistence, "verify_folder", verify_then_swap)
    with pytest.raises(ModelIntegrityError, match=r"model\.pkl changed while it was being loaded"):
        load_model(folder)
    assert not marker.exists()


def test_metadata_must_be_json_and_version_drift_warns(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="metadata: values must be JSON-serialisable"):
        save_model(LogisticRegression().fit(X, Y), tmp_path / "m", metadata={"f": object()})
    info = save_model(LogisticRegression().fit(X, Y), tmp_path / "m",
                      metadata={"owner": "ml-team", "auc": np.float64(0.9)})
    assert info.metadata == {"owner": "ml-team", "auc": 0.9}
    manifest = orjson.loads((tmp_path / "m" / "model.json").read_bytes())
    manifest["requirements"] = ["scikit-learn==0.0.1", *manifest["requirements"][1:]]
    data = orjson.dumps(manifest)
    (tmp_path / "m" / "model.json").write_bytes(data)
    with pytest.warns(UserWarning, match=r"saved with scikit-learn 0.0.1 \(here "):
        load_model(tmp_path / "m", expected_digest=blake3(data).hexdigest())
