"""Saved models: networks as state_dict + JSON, classic models as skops files; what loads back predicts
the same, and a file naming an untrusted type is refused before anything in it is built."""

import io
import json
import zipfile

import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from digitlab.data import stratified_subset
from digitlab.exceptions import ModelError
from digitlab.models.classic import CLASSIC_MODELS, ValidationSearch, make_model
from digitlab.models.nets import build_net
from digitlab.models.persist import (
    META_FILE,
    SKOPS_FILE,
    TRUSTED_TYPES,
    WEIGHTS_FILE,
    load_net,
    read_meta,
    save_net,
)
from digitlab.models.zoo import load_model, save_model
from digitlab.train import CNNClassifier

FAST = {
    "random_forest": {"n_estimators": 10},
    "extra_trees": {"n_estimators": 10},
    "hgb": {"max_iter": 10},
    "rbf_svm": {"search_size": 200, "val_size": 100},
    "numpy_mlp": {"epochs": 2},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data(mnist):
    ds = mnist
    tr = stratified_subset(ds.y_train, total=500, seed=0)
    te = stratified_subset(ds.y_test, total=300, seed=0)
    return ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te]


def test_saved_cnn_loads_back_with_identical_predictions(data, tmp_path):
    x, y, xt, _ = data
    labels = np.array(list("abcdefghij"))[y]  # arbitrary labels survive the JSON round trip
    clf = CNNClassifier(
        net_params={"n_blocks": 2, "width": 8}, epochs=2, batch_size=64, device="cpu", l2=1e-4
    ).fit(x, labels)
    save_model(tmp_path / "cnn", "cnn", clf)
    assert sorted(p.name for p in (tmp_path / "cnn").iterdir()) == [META_FILE, WEIGHTS_FILE]
    back = load_model(tmp_path / "cnn")
    assert isinstance(back, CNNClassifier)
    np.testing.assert_array_equal(back.predict_proba(xt), clf.predict_proba(xt))
    np.testing.assert_array_equal(back.predict(xt), clf.predict(xt))
    assert back.get_params() == clf.get_params() and back.in_shape_ == (1, 28, 28)
    assert (
        back.train_result_.norm == clf.train_result_.norm
        and back.train_result_.steps == clf.train_result_.steps
    )
    meta = read_meta(tmp_path / "cnn")
    assert (
        meta["net"] == "cnn" and meta["net_params"] == {"n_blocks": 2, "width": 8} and meta["n_classes"] == 10
    )
    assert meta["classes"] == list("abcdefghij") and meta["train_config"]["l2"] == 1e-4
    assert meta["normalisation"]["per_channel"] is False and meta["name"] == "cnn"
    # the weights file holds tensors only: torch's safe loader reads it
    state = torch.load(tmp_path / "cnn" / WEIGHTS_FILE, weights_only=True)
    assert set(state) == set(clf.model_.state_dict())


def test_saved_colour_cnn_keeps_its_per_channel_normalisation(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(48) % 3
    x = rng.integers(0, 120, size=(48, 16, 16, 3))
    x[np.arange(48), :, :, y] += 120
    x = x.astype(np.uint8)
    clf = CNNClassifier(
        net="resnet", net_params={"width": 4, "n_stages": 2}, epochs=1, batch_size=16, device="cpu"
    ).fit(x, y)
    back = CNNClassifier.load(clf.save(tmp_path / "rgb"))
    assert back.in_shape_ == (3, 16, 16) and len(back.train_result_.norm[0]) == 3
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))


def test_save_net_and_load_net_rebuild_any_family(tmp_path):
    net = build_net("lenet5", (3, 32, 32), 4, seed=0).eval()
    save_net(
        tmp_path,
        net,
        {"net": "lenet5", "net_params": {}, "in_shape": (3, 32, 32), "n_classes": 4, "note": "x"},
    )
    back, meta = load_net(tmp_path)
    inp = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(back(inp), net(inp), rtol=0, atol=0)
    assert meta["note"] == "x" and meta["in_shape"] == [3, 32, 32]
    with pytest.raises(ModelError, match="lacks"):
        save_net(tmp_path / "b", net, {"net": "lenet5"})


def test_weights_with_pickled_objects_are_refused(tmp_path):
    net = build_net("lenet5", seed=0)
    save_net(tmp_path, net, {"net": "lenet5", "net_params": {}, "in_shape": (1, 28, 28), "n_classes": 10})
    torch.save({"payload": Pipeline([("clf", ValidationSearch())])}, tmp_path / WEIGHTS_FILE)  # not tensors
    with pytest.raises(ModelError) as err:
        load_net(tmp_path)
    assert WEIGHTS_FILE in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["logreg", "random_forest"])
def test_saved_classic_model_loads_back_with_identical_predictions(name, data, tmp_path):
    x, y, xt, _ = data
    model = make_model(name, **FAST.get(name, {})).fit(x, y)
    save_model(tmp_path / name, name, model)
    assert (tmp_path / name / SKOPS_FILE).is_file()
    back = load_model(tmp_path / name)
    assert type(back) is type(model)
    np.testing.assert_array_equal(back.predict(xt), model.predict(xt))
    np.testing.assert_array_equal(back.predict_proba(xt), model.predict_proba(xt))
    meta = read_meta(tmp_path / name)
    assert meta["name"] == name and meta["class"] == "sklearn.pipeline.Pipeline"


@pytest.mark.parametrize("name", [n for n in CLASSIC_MODELS if n not in ("logreg", "random_forest")])
def test_every_zoo_model_round_trips_with_only_the_listed_trusted_types(name, data, tmp_path):
    x, y, xt, _ = data
    model = make_model(name, **FAST.get(name, {})).fit(x, y)
    untrusted = set(sio.get_untrusted_types(data=sio.dumps(model)))
    assert untrusted <= set(TRUSTED_TYPES), untrusted - set(TRUSTED_TYPES)
    back = load_model(save_model(tmp_path / name, name, model))
    np.testing.assert_array_equal(back.predict(xt), model.predict(xt))
    if name == "rbf_svm":
        assert isinstance(back, ValidationSearch) and back.best_params_ == model.best_params_


def _rewrite_schema(path, edit) -> None:
    """Edit the schema of a skops file in place, as an attacker with write access to it could."""
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "schema.json":
                schema = json.loads(data)
                edit(schema)
                data = json.dumps(schema).encode()
            dst.writestr(item, data)
    path.write_bytes(buf.getvalue())


def _swap_function(node, old: tuple[str, str], new: tuple[str, str]) -> int:
    """Point every function node ``old = (module, name)`` of a schema at ``new``; returns how many."""
    count = 0
    if isinstance(node, dict):
        if (node.get("__module__"), node.get("__class__")) == old and node.get(
            "__loader__"
        ) == "FunctionNode":
            node["__module__"], node["__class__"] = new
            count += 1
        for value in node.values():
            count += _swap_function(value, old, new)
    elif isinstance(node, list):
        count += sum(_swap_function(v, old, new) for v in node)
    return count


def test_a_tampered_skops_file_is_refused_with_one_line(data, tmp_path):
    x, y, _, _ = data
    save_model(tmp_path, "logreg", make_model("logreg").fit(x, y))

    def edit(schema):  # the pipeline's pixel function swapped for os.system
        assert _swap_function(schema, ("digitlab.models.classic", "unit_pixels"), ("os", "system")) == 1

    _rewrite_schema(tmp_path / SKOPS_FILE, edit)
    with pytest.raises(ModelError) as err:
        load_model(tmp_path)
    msg = str(err.value)
    assert "os.system" in msg and "untrusted" in msg and "\n" not in msg


class Foreign(ClassifierMixin, BaseEstimator):
    """An estimator digitlab does not know: its type is not trusted."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_an_unknown_type_is_refused_on_load_and_on_save(data, tmp_path):
    x, y, _, _ = data
    model = Foreign().fit(x, y)
    sio.dump(model, tmp_path / SKOPS_FILE)  # written behind digitlab's back
    (tmp_path / META_FILE).write_text(
        json.dumps({"format": "digitlab-skops", "format_version": 1, "file": SKOPS_FILE})
    )
    with pytest.raises(ModelError, match=r"untrusted type\(s\) .*Foreign") as err:
        load_model(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match="would refuse"):
        save_model(tmp_path / "b", "foreign", model)
    assert not (tmp_path / "b" / SKOPS_FILE).exists()


def test_missing_or_foreign_folders_raise_model_error(tmp_path):
    with pytest.raises(ModelError, match="no saved model"):
        load_model(tmp_path / "nothing")
    (tmp_path / META_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        load_model(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(ModelError, match="not a digitlab model"):
        load_model(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps({"format": "digitlab-skops", "format_version": 1}))
    (tmp_path / SKOPS_FILE).write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable skops file"):
        load_model(tmp_path)
