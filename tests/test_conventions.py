"""Conventions a notebook user relies on (issue 14), and regression tests of the issue's smaller bugs.

* importing any digitlab module changes no global state (the matplotlib backend above all);
* every public plotting function takes ``ax=``, returns the Figure, and neither saves nor closes it;
* one name means one augmentation everywhere; ``from_recipe`` overrides mean what they say;
* classify's confusion figure is named for its model; ``save_embedding``/``load_embedding`` share one
  order; a hand-made ``TaskContext`` defaults to device "auto"; numba's cache folder follows
  ``NUMBA_CACHE_DIR`` / ``XDG_CACHE_HOME``; the interactive embedding shows in Jupyter and saves whole.
"""

import inspect
import json
import os
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from digitlab import augment as A
from digitlab import embed as E
from digitlab import features as Fe
from digitlab import metrics as M
from digitlab import plots
from digitlab.exceptions import ConfigError
from digitlab.experiments import clustering as C
from digitlab.experiments.error_analysis import intersections, plot_error_maps, plot_gallery, plot_upset

pytestmark = pytest.mark.usefixtures("one_blas_thread")


# =============================================================================================
# Imports change no global state
# =============================================================================================

IMPORT_ALL = r"""
import importlib, json, os, pkgutil, sys
import matplotlib
matplotlib.use("svg")  # a non-Agg backend, as a notebook's inline backend is
import matplotlib.pyplot as plt
import digitlab
env = dict(os.environ)
names = sorted(m.name for m in pkgutil.walk_packages(digitlab.__path__, "digitlab.") if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
print(json.dumps({"backend": matplotlib.get_backend(), "modules": len(names), "figures": plt.get_fignums(),
                  "env_changed": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))}))
"""


def test_importing_every_module_keeps_the_backend_and_the_environment():
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["backend"] == "svg"
    assert res["modules"] > 40  # the whole package, tasks and report included
    assert res["figures"] == [] and res["env_changed"] == []


# =============================================================================================
# Plotting functions: ax=, the Figure back, nothing saved or closed
# =============================================================================================

# Library plotting functions that draw their own figure without ax= (none now; a set so that the list
# cannot grow unnoticed).
NO_AX: set[str] = set()


def test_every_public_plotting_function_takes_ax():
    import importlib
    import pkgutil

    import digitlab

    missing = set()
    for m in pkgutil.iter_modules(digitlab.__path__):
        if m.name.startswith("_") or m.name in ("cli",) or m.ispkg:
            continue
        mod = importlib.import_module(f"digitlab.{m.name}")
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if (
                name.startswith("plot_")
                and fn.__module__ == mod.__name__
                and "ax" not in inspect.signature(fn).parameters
            ):
                missing.add(f"{m.name}.{name}")
    assert missing == NO_AX


def _cases():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    imgs = rng.integers(0, 256, (40, 12, 12), dtype=np.uint8)
    proba = rng.dirichlet(np.ones(4), size=40)
    X, names = Fe.extract_features(imgs)
    scores = [{"feature": n, "rank_F": i, "F": float(i + 1), "MI": 0.1} for i, n in enumerate(names[:5])]
    emb = rng.normal(size=(40, 2))
    cls = list("abcd")
    errors = rng.random((4, 40)) < 0.3  # four models' mistakes
    layer_rows = [
        {
            "depth": d,
            "layer": f"block {d}",
            "net": net,
            "merge": "gap",
            "ARI": rng.random(),
            "NMI": rng.random(),
        }
        for d in range(3)
        for net in ("trained", "untrained")
    ]
    return {
        "plot_confusion_matrix": lambda ax: plots.plot_confusion_matrix(y, proba.argmax(1), cls, ax=ax),
        "plot_images": lambda ax: plots.plot_images(imgs[:6], [str(v) for v in y[:6]], cols=3, ax=ax),
        "plot_reliability_diagram": lambda ax: plots.plot_reliability_diagram(y, proba, ax=ax),
        "plot_class_mean_images": lambda ax: Fe.plot_class_mean_images(
            *Fe.class_mean_images(imgs, y, 4), cls, ax=ax
        ),
        "plot_feature_scores": lambda ax: Fe.plot_feature_scores(scores, ax=ax),
        "plot_feature_distributions": lambda ax: Fe.plot_feature_distributions(
            X, y, names, names[:2], cls, ax=ax
        ),
        "plot_pairwise_auc": lambda ax: Fe.plot_pairwise_auc(
            Fe.pairwise_auc(X, y, 4), names, names[:2], cls, ax=ax
        ),
        "plot_embedding": lambda ax: E.plot_embedding(emb, y, cls, ax=ax),
        "plot_embeddings": lambda ax: E.plot_embeddings({"a": emb, "b": -emb}, y, cls, ax=ax),
        "plot_gallery": lambda ax: A.plot_gallery(imgs, ["hflip", "shift"], n_samples=3, ax=ax),
        "plot_shift_embedding": lambda ax: A.plot_shift_embedding(
            emb, {"x": emb + 1, "y": emb - 1}, y, ax=ax
        ),
        "plot_reliability_diagrams": lambda ax: plots.plot_reliability_diagrams(
            y, {"a": proba, "b": proba[::-1]}, ax=ax
        ),
        "plot_upset": lambda ax: plot_upset(intersections(errors, cls), cls, errors.sum(1), ax=ax),
        "plot_error_maps": lambda ax: plot_error_maps(emb, y, cls, errors, cls, ax=ax),
        "error_analysis.plot_gallery": lambda ax: plot_gallery(
            imgs[:6], [str(v) for v in y[:6]], cols=3, ax=ax
        ),
        "plot_assignments": lambda ax: C.plot_assignments(emb, y, {"k": y[::-1], "w": y}, cls, ax=ax),
        "plot_layer_scores": lambda ax: C.plot_layer_scores(
            layer_rows, [("ARI", "ARI"), ("NMI", "NMI")], ["gap"], ax=ax
        ),
        "plot_filters": lambda ax: C.plot_filters(
            {"a": rng.normal(size=(6, 1, 3, 3)), "b": rng.normal(size=(4, 1, 3, 3))}, ax=ax
        ),
        "plot_feature_maps": lambda ax: C.plot_feature_maps(
            imgs[:4], cls, {"a": rng.random((4, 5, 6, 6))}, 3, ax=ax
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_plot_draws_into_ax_returns_the_figure_and_keeps_it_open(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plt.close("all")
    fig = CASES[name](None)  # a new figure
    assert isinstance(fig, Figure) and plt.fignum_exists(fig.number)
    host, axes = plt.subplots(1, 2, figsize=(10, 4))
    before = len(host.axes)
    assert CASES[name](axes[1]) is host  # drawn into the caller's figure, in the slot of axes[1]
    assert plt.fignum_exists(host.number) and len(host.axes) >= before
    assert axes[0] in host.axes  # the other slot is untouched
    assert list(tmp_path.iterdir()) == []  # nothing saved
    plt.close("all")


def test_many_panel_figures_stay_within_the_printable_width(tmp_path):
    """With a study's worth of panels (11 models, 5 clusterings, 32 filters, 15 intersections, 10 images a
    row) a new figure is at most plots.MAX_WIDTH (7.5 in) wide as saved, so the report prints its labels
    at a readable size; more panels make more rows."""
    import io

    from PIL import Image

    rng = np.random.default_rng(1)
    n, names = 300, [f"model {i}" for i in range(11)]
    y = np.repeat(np.arange(10), n // 10)
    emb = rng.normal(size=(n, 2)) + y[:, None]
    cls = [str(c) for c in range(10)]
    errors = rng.random((11, n)) < 0.1
    proba = rng.dirichlet(np.ones(10), size=n)
    imgs = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    rows = [
        {
            "depth": d,
            "layer": f"block {d}",
            "net": net,
            "merge": mg,
            "ARI": rng.random(),
            "NMI": rng.random(),
            "probe": rng.random(),
        }
        for d in range(5)
        for net in ("trained", "untrained")
        for mg in ("gap", "flatten")
    ]
    figs = {
        "error_map": plot_error_maps(emb, y, cls, errors, names),
        "upset": plot_upset(intersections(errors, names, 15), names, errors.sum(1), "largest"),
        "gallery": plot_gallery(imgs, ["#1\ngiven 3\nsuggest 5\nself-conf. 0.123"] * 20, cols=10),
        "assignments": C.plot_assignments(
            emb,
            y,
            {m: rng.integers(0, 10, n) for m in "abcde"},
            cls,
            dict.fromkeys("abcde", "k-means on 50-component PCA\nARI 0.50, NMI 0.60"),
        ),
        "layer_scores": C.plot_layer_scores(
            rows, [("ARI", "ARI"), ("NMI", "NMI"), ("probe", "probe accuracy")], ["gap", "flatten"]
        ),
        "filters": C.plot_filters(
            {"trained": rng.normal(size=(32, 1, 5, 5)), "untrained": rng.normal(size=(32, 1, 5, 5))}
        ),
        "feature_maps": C.plot_feature_maps(
            imgs[:10], cls, {k: rng.random((10, 32, 7, 7)) for k in ("a", "b", "c")}, 4
        ),
        "reliability": plots.plot_reliability_diagrams(y, dict.fromkeys(names, proba)),
    }
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, dpi=100, bbox_inches="tight")  # as the tasks save them (save_png)
        width = Image.open(buf).size[0] / 100
        assert width <= plots.MAX_WIDTH + 0.1, (name, width)
    assert figs["error_map"].get_size_inches()[1] < 6 and figs["reliability"].get_size_inches()[1] < 6.5
    plt.close("all")


def test_panels_accepts_an_array_of_axes_and_rejects_a_wrong_count():
    fig, axes = plt.subplots(2, 3)
    f, got = plots.panels(axes, 2, 3, (1, 1))
    assert f is fig and got.shape == (2, 3) and got[1, 2] is axes[1, 2]
    with pytest.raises(ValueError, match="6"):
        plots.panels(axes[0], 2, 3, (1, 1))
    plt.close(fig)


def test_confusion_matrix_from_labels_equals_from_counts():
    y, p = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2])
    a = plots.plot_confusion_matrix(y, p, ["x", "y", "z"])
    b = plots.plot_confusion_matrix(M.confusion_matrix(y, p, 3), classes=["x", "y", "z"])
    texts = lambda f: [t.get_text() for t in f.axes[0].texts]  # noqa: E731
    assert texts(a) == texts(b) == ["1", "1", "1", "1", "2"]
    pct = plots.plot_confusion_matrix(y, p, ["x", "y", "z"], normalize=True)
    assert [t.get_text() for t in pct.axes[0].texts] == ["50.0", "50.0", "100.0", "33.3", "66.7"]
    plt.close("all")


# =============================================================================================
# One name, one transform; from_recipe
# =============================================================================================


def test_training_names_resolve_to_the_catalogue():
    from digitlab.train import resolve_augment

    aff = resolve_augment("affine")
    assert isinstance(aff, A.Augmentation) and aff.params == A.get_augmentation("affine").params
    assert aff.params["shear"] == 10.0  # the transform the gallery shows and distribution_shift measures
    shift = resolve_augment("shift")
    assert (shift.name, shift.params["pad"]) == ("pad_crop", 2) and "shift" not in A.AUGMENTATIONS
    x = torch.zeros(64, 1, 12, 12)
    x[:, :, 5, 6] = 1.0  # one lit pixel: its new place is the shift
    out = shift(x, torch.Generator().manual_seed(3))
    where = out[:, 0].reshape(64, -1).argmax(1).numpy()
    rows, cols = where // 12, where % 12
    assert (
        out.sum().item() == 64 and set(rows - 5) == set(range(-2, 3)) and set(cols - 6) == set(range(-2, 3))
    )
    np.testing.assert_array_equal(
        A.augment_images((x[:, 0] * 255).byte().numpy(), "shift", seed=1),
        A.augment_images((x[:, 0] * 255).byte().numpy(), "pad_crop", seed=1, pad=2),
    )
    assert resolve_augment(None) is None and resolve_augment("none") is None and resolve_augment("") is None
    with pytest.raises(ConfigError, match="shift"):
        resolve_augment("shfit")


def test_from_recipe_overrides_augment_and_merges_net_params():
    from sklearn.base import clone

    from digitlab.train import STRONG_RECIPE, CNNClassifier, TrainConfig

    net, params, tc = STRONG_RECIPE
    plain = CNNClassifier.from_recipe(STRONG_RECIPE)
    assert plain.augment == "shift" and plain._config().augment == "shift"
    off = CNNClassifier.from_recipe(STRONG_RECIPE, augment=None)
    assert off.augment is None and off._config().augment == ""
    assert CNNClassifier.from_recipe(STRONG_RECIPE, augment="none")._config().augment == "none"
    assert clone(plain).set_params(augment=None)._config().augment == ""  # set_params turns it off too
    wide = CNNClassifier.from_recipe(STRONG_RECIPE, net_params={"width": 32})
    assert wide.net_params == {**params, "width": 32} and wide.net_params["convs_per_block"] == 2
    assert CNNClassifier.from_recipe(STRONG_RECIPE, net="lenet5").net_params == {}
    smooth = CNNClassifier.from_recipe(STRONG_RECIPE, train_params={"label_smoothing": 0.1})
    assert smooth._config() == TrainConfig(**{**tc.__dict__, "label_smoothing": 0.1})
    with pytest.raises(ConfigError, match="one place"):
        CNNClassifier(augment="affine", train_params={"augment": "shift"})._config()


# =============================================================================================
# classify's confusion figure, embeddings on disk, the task context's device, caches
# =============================================================================================


def test_confusion_figure_is_named_for_its_model():
    # the classify task draws the best model's pair of confusion matrices; each panel names its model
    from sklearn.datasets import load_digits

    from digitlab.experiments import compare_models

    d = load_digits()
    x, y = (d.images * 15).astype(np.uint8), d.target
    cmp = compare_models((x[:300], y[:300], x[300:500], y[300:500]), ["gnb", "knn"], n_boot=50)
    for model in ("gnb", "knn"):
        fig = cmp.plot_confusion_pair(model)
        assert [a.get_title().split(":")[0] for a in fig.axes[:2]] == [model, model]
        plt.close(fig)
    assert cmp.plot_confusion_pair().axes[0].get_title().startswith(cmp.best)


def test_save_and_load_embedding_share_one_order(tmp_path):
    idx, emb = np.array([3, 1, 4]), np.arange(6, dtype=np.float32).reshape(3, 2)
    E.save_embedding(tmp_path, "umap", idx, emb)
    got_idx, got_emb = E.load_embedding(tmp_path, "umap")
    np.testing.assert_array_equal(got_idx, idx)
    np.testing.assert_array_equal(got_emb, emb)
    np.testing.assert_array_equal(E.load_embedding(tmp_path, "umap").embedding, emb)
    with pytest.raises(ConfigError, match="indices first"):
        E.save_embedding(tmp_path, "umap", emb, idx)  # the old order is refused, not stored swapped


def test_task_context_defaults_to_auto_and_the_cpu_budget_resolves_it(tmp_path):
    from digitlab.data.dataset import Dataset
    from digitlab.runtime import cpu_budget, resolve_device
    from digitlab.study.task import TaskContext

    z = np.zeros((2, 4, 4), np.uint8)
    ctx = TaskContext(Dataset("tiny", z, np.zeros(2, np.int64), z, np.zeros(2, np.int64), ["0"]), tmp_path)
    assert ctx.device == "auto"
    assert cpu_budget(2, ctx.device) == cpu_budget(2, resolve_device("auto"))


NUMBA_DIR = r"""
import sys
if sys.argv[1] == "numba first":
    import numba  # numba already configured: the folder must reach its config too
from digitlab.embed import numba_cache_dir
folder = numba_cache_dir()  # what import_umap() calls before importing umap
import numba
print(folder + "|" + numba.config.CACHE_DIR)
"""


def test_numba_cache_follows_xdg_cache_home_and_numba_cache_dir(tmp_path):
    base = {
        k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "DIGITLAB_HOME", "XDG_CACHE_HOME")
    }

    def folder(env: dict, order: str = "digitlab first") -> str:
        out = subprocess.run(
            [sys.executable, "-c", NUMBA_DIR, order],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1]

    want = str(tmp_path / "xdg" / "digitlab" / "numba")
    assert folder({"XDG_CACHE_HOME": str(tmp_path / "xdg")}) == f"{want}|{want}"
    assert folder({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, "numba first") == f"{want}|{want}"
    assert (
        folder({"XDG_CACHE_HOME": "/nowhere", "DIGITLAB_HOME": str(tmp_path / "dl")})
        == f"{tmp_path / 'dl' / 'numba'}|{tmp_path / 'dl' / 'numba'}"
    )
    mine = str(tmp_path / "mine")
    assert folder({"NUMBA_CACHE_DIR": mine, "XDG_CACHE_HOME": "/nowhere"}) == f"{mine}|{mine}"


def test_interactive_embedding_shows_in_jupyter_and_saves_a_whole_page(tmp_path, mnist):
    x, y = mnist.x_test[:60], mnist.y_test[:60]
    emb = np.random.default_rng(0).normal(size=(60, 2))
    m = E.interactive_embedding(emb, y, x, mnist.classes, title="test map")  # no indices needed
    page = m.to_html()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "plotly_hover" in page and "Plotly.newPlot" in page
    assert len(page) > 3_000_000  # plotly.js itself is inline: the page works offline, alone
    assert "index %{customdata[0]}" in page  # hover shows the row number when no indices are given
    shown = m._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and "&lt;!DOCTYPE html&gt;" in shown
    assert m.save(tmp_path / "map.html").read_text(encoding="utf-8") == page
