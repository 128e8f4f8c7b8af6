"""The errors task and its library: error sets, Jaccard, UpSet intersections, traits, label issues."""

import csv
import importlib
from itertools import combinations

import numpy as np
import pytest

from digitlab.exceptions import ConfigError

A = importlib.import_module("digitlab.experiments.error_analysis")  # the module (its name is also a function)

# ---------------------------------------------------------------------------------------------
# Error sets, Jaccard, intersections on a constructed case
# ---------------------------------------------------------------------------------------------

Y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
PREDS = {  # errors: a = {0, 1, 2, 3}, b = {2, 3, 4}, c = {3}, d = {} (perfect)
    "a": np.array([1, 0, 0, 1, 1, 2, 0, 1, 2, 0]),
    "b": np.array([0, 1, 1, 2, 2, 2, 0, 1, 2, 0]),
    "c": np.array([0, 1, 2, 2, 1, 2, 0, 1, 2, 0]),
    "d": Y.copy(),
}


def test_error_matrix_marks_exactly_the_wrong_images():
    names, e = A.error_matrix(Y, PREDS)
    assert names == ["a", "b", "c", "d"]
    assert [set(np.flatnonzero(row)) for row in e] == [{0, 1, 2, 3}, {2, 3, 4}, {3}, set()]


def test_jaccard_on_the_constructed_case_and_against_scikit_learn():
    from sklearn.metrics import jaccard_score

    _, e = A.error_matrix(Y, PREDS)
    j = A.jaccard_matrix(e)
    assert j[0, 1] == pytest.approx(2 / 5)  # {2, 3} / {0, 1, 2, 3, 4}
    assert j[0, 2] == pytest.approx(1 / 4) and j[1, 2] == pytest.approx(1 / 3)
    assert j[0, 3] == 0 and j[3, 3] == 1  # empty vs non-empty; two empty sets are identical
    assert np.allclose(j, j.T) and np.allclose(np.diag(j), 1)
    for a, b in combinations(range(3), 2):  # the reference: scikit-learn's binary Jaccard score
        assert j[a, b] == pytest.approx(jaccard_score(e[a], e[b]))


def test_intersections_are_the_exclusive_ones_largest_first():
    names, e = A.error_matrix(Y, PREDS)
    rows = A.intersections(e, names)
    # image 0, 1 -> only a; 2 -> a, b; 3 -> a, b, c; 4 -> only b
    assert rows == [
        {"models": ("a",), "degree": 1, "size": 2},
        {"models": ("a", "b", "c"), "degree": 3, "size": 1},
        {"models": ("a", "b"), "degree": 2, "size": 1},
        {"models": ("b",), "degree": 1, "size": 1},
    ]
    assert sum(r["size"] for r in rows) == int(e.any(0).sum())
    assert A.intersections(e, names, top=2) == rows[:2]
    assert A.intersections(np.zeros((2, 5), bool), ["x", "y"]) == []


def test_intersections_match_a_brute_force_count_on_random_sets():
    rng = np.random.default_rng(0)
    e = rng.random((4, 300)) < 0.3
    names = ["p", "q", "r", "s"]
    got = {r["models"]: r["size"] for r in A.intersections(e, names)}
    for k in range(1, 5):
        for combo in combinations(range(4), k):
            inside = np.all(e[list(combo)], axis=0)
            outside = (
                ~np.any(e[[j for j in range(4) if j not in combo]], axis=0) if k < 4 else np.ones(300, bool)
            )
            want = int((inside & outside).sum())
            assert got.get(tuple(names[j] for j in combo), 0) == want


def test_misclassified_rows_confidence_and_votes():
    proba = np.full((10, 3), 0.1)
    proba[np.arange(10), PREDS["a"]] = 0.8
    proba[1, PREDS["a"][1]] = 0.95
    rows = A.misclassified(Y, PREDS["a"], A.confidence(proba, 10), index=np.arange(100, 110))
    assert [r["index"] for r in rows] == [101, 100, 102, 103]  # most confident mistake first, then stable
    assert rows[0] == {"index": 101, "true": 1, "predicted": 0, "confidence": pytest.approx(0.95)}
    assert all(r["confidence"] is None for r in A.misclassified(Y, PREDS["a"], A.confidence(None, 10)))
    assert A.votes(PREDS, 3, 3).tolist() == [1, 1, 2]  # image 3 (label 0): a says 1, b and c say 2, d says 0
    names, e = A.error_matrix(Y, PREDS)
    fig = A.plot_upset(A.intersections(e, names), names, e.sum(1))
    assert len(fig.axes) == 3


# ---------------------------------------------------------------------------------------------
# Traits
# ---------------------------------------------------------------------------------------------


def test_trait_comparison_measures_against_the_same_class():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 201)
    t = np.where(y == 0, 10.0, 100.0) + rng.normal(0, 1, len(y))
    hard = np.array([0, 201])
    t[0], t[201] = 13.0, 97.0  # +3 sd in class 0, -3 sd in class 1
    ref = np.ones(len(y), bool)
    ref[hard] = False
    (row,) = A.trait_comparison({"x": t}, y, hard, ref)
    assert row["n_hard"] == 2
    assert row["mean_abs_z"] == pytest.approx(3, abs=0.35) and abs(row["mean_z"]) < 0.35
    assert row["reference_mean"] == pytest.approx(55, abs=0.2)
    assert 40 < row["mean_percentile"] < 60  # one near 100, one near 0


def test_slant_sign_follows_the_lean():
    img = np.zeros((2, 28, 28), np.uint8)
    for r in range(4, 24):  # a "/" line: the column grows as the row goes up
        img[0, r, 20 - (r - 4) // 2 : 22 - (r - 4) // 2] = 255
        img[1, r, 8 + (r - 4) // 2 : 10 + (r - 4) // 2] = 255  # a "\" line
    tr = A.image_traits(img)
    assert tr["slant_deg"][0] > 15 and tr["slant_deg"][1] < -15
    assert set(A.image_traits(img, strokes=False)) == {"ink_ratio", "mean_intensity"}


# ---------------------------------------------------------------------------------------------
# Label issues
# ---------------------------------------------------------------------------------------------


def test_planted_label_flips_rank_among_the_top_candidates(mnist):
    from digitlab.data.subsets import stratified_subset

    idx = stratified_subset(mnist.y_train, total=2000, seed=0)
    x, y = mnist.x_train[idx], mnist.y_train[idx]
    y_flip, planted = A.plant_flips(y, 10, 10, seed=3)
    assert (y_flip[planted] != y[planted]).all() and (
        np.delete(y_flip, planted) == np.delete(y, planted)
    ).all()
    (z,) = A.pca_space(x, 50, 0)
    proba = A.out_of_fold_proba(z, y_flip, 10, "knn", n_folds=5, seed=0)
    ranked = A.rank_label_issues(y_flip, proba, index=idx)
    top = [r["index"] for r in ranked[:20]]
    found = np.isin(idx[planted], top)
    assert found.sum() >= 8, (found, [r["index"] for r in ranked[:30]])
    pos = {int(t): k for k, t in enumerate(idx)}
    back = 0
    for r in ranked[:20]:
        i = pos[r["index"]]
        assert r["given"] == y_flip[i] and r["score"] == pytest.approx(proba[i, y_flip[i]])
        back += i in planted and r["suggested"] == y[i]
    assert back >= 7  # the suggestion for a found flip is (mostly) the original label
    scores = A.detection_scores([pos[r["index"]] for r in ranked], planted)
    assert scores["recall"] >= 0.8 and scores["precision_at_k"] >= 0.5


def test_one_flipped_label_in_a_clean_cluster_is_the_first_candidate():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(c * 8, 1, (60, 5)) for c in range(3)])
    y = np.repeat(np.arange(3), 60)
    y[10] = 2  # an image of the first cluster labelled as the third class
    ranked = A.rank_label_issues(y, A.out_of_fold_proba(z, y, 3, "logreg", seed=0))
    assert ranked[0]["index"] == 10 and ranked[0]["suggested"] == 0 and ranked[0]["given"] == 2


def test_rank_label_issues_handles_a_class_missing_from_the_labels():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 2], 50)
    p = np.full((100, 3), 0.1)
    p[np.arange(100), y] = 0.8
    p[5] = [0.01, 0.0, 0.99]  # labelled 0, looks like 2
    ranked = A.rank_label_issues(y, p + rng.random(p.shape) * 1e-3)
    assert ranked[0]["index"] == 5 and ranked[0]["suggested"] == 2


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def test_config_validation_names_the_key():
    from digitlab.study.tasks.errors import Config

    for key, value in (
        ("map_method", "mds"),
        ("hard_fraction", 0.0),
        ("planted_fraction", 0.5),
        ("cv_folds", 1),
        ("test_models", ["nope"]),
        ("map_points", 10),
        ("cv_model", "svm"),
    ):
        with pytest.raises(ConfigError, match=f"errors.{key}"):
            Config(**{key: value}).validate()


def test_errors_task_end_to_end_on_digits(tmp_path):
    from digitlab.data import load_dataset
    from digitlab.study.config import resolve
    from digitlab.study.runner import run_study

    cfg = resolve(
        {
            "study": {
                "dataset": "digits",
                "profile": "quick",
                "tasks": ["errors"],
                "output_dir": str(tmp_path / "runs"),
                "cache_dir": str(tmp_path / "cache"),
                "pdf": False,
            },
            "classify": {"models": ["logreg", "gnb", "knn", "linear_svm"]},
            "embed": {"methods": ["pca"]},
            "errors": {"map_method": "pca", "planted_fraction": 0.02},
        }
    )
    out = run_study(cfg, quiet=True)
    res, folder = out.results["errors"], out.run_dir / "results" / "errors"
    ds = load_dataset("digits")
    pred = A.load_predictions(out.run_dir / "results" / "classify" / "predictions.npz")
    # per-model error counts agree with classify's accuracies
    acc = out.results["classify"].metrics["accuracy"]
    for name, n_err in res.metrics["errors"].items():
        assert n_err == round((1 - acc[name]) * len(pred["y_true"]))
    # the misclassified list holds every mistake of every model, in the official test order
    with open(folder / "misclassified.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(res.metrics["errors"].values())
    for r in rows[:50]:
        assert ds.classes[ds.y_test[int(r["index"])]] == r["true"] != r["predicted"]
    # label issues: the required columns, official test indices, given labels that match the data
    with open(folder / "label_issues_test.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["index", "given", "suggested", "score"]
        cands = list(reader)
    assert len(cands) == res.metrics["label_issues_test"]
    for r in cands:
        assert ds.classes[ds.y_test[int(r["index"])]] == r["given"] and 0 <= float(r["score"]) <= 1
    assert [float(r["score"]) for r in cands] == sorted(float(r["score"]) for r in cands)
    names = {f.name for f in res.figures}
    assert {"error_map", "jaccard", "upset", "label_issues_test"} <= names
    from PIL import Image

    for fig in res.figures:
        assert (folder / fig.file).stat().st_size > 500
        # saved at 110 dpi: no wider than the report prints legibly (7.5 in, with bbox slack)
        assert Image.open(folder / fig.file).size[0] / 110 <= 7.7, (
            fig.file,
            Image.open(folder / fig.file).size,
        )
    tables = {t.name: t for t in res.tables}
    assert len(tables["label_issues_test"].rows) == min(20, len(pred["y_true"]))
    assert res.metrics["planted"]["n"] >= 1 and res.headline and len(res.findings) >= 5
    text = " ".join(res.findings)
    assert "logreg" not in text and "linear_svm" not in text  # models named in words


def test_error_analysis_with_label_issues_and_map_on_small_data(mnist):
    from digitlab.data.subsets import subset_indices

    te = subset_indices(mnist.y_test, 300, 0)
    x, y = mnist.x_test[te], mnist.y_test[te]
    rng = np.random.default_rng(0)
    preds = {m: np.where(rng.random(len(y)) < 0.1, (y + 1) % 10, y) for m in ("a", "b", "c")}
    proba = {m: np.eye(10)[p] * 0.9 + 0.01 for m, p in preds.items()}
    ea = A.error_analysis(
        y,
        preds,
        proba,
        images=x,
        classes=mnist.classes,
        index=te,
        hard_fraction=0.6,
        reference_per_class=10,
        train=mnist,
        n_train=500,
        pca_dims=10,
        planted_fraction=0.02,
        top_candidates=5,
        map_method="pca",
        map_size=100,
        seed=0,
    )
    wrong = sum(preds[m] != y for m in preds)
    assert ea.hard_min == 2 and set(ea.hard_positions) == set(np.flatnonzero(wrong >= 2))
    assert ea.per_model.loc["a", "errors"] == int((preds["a"] != y).sum())
    assert ea.map_xy.shape == (100, 2) and set(ea.hard_positions) <= set(
        ea.map_pos
    )  # hard images first on the map
    lab = ea.label
    assert lab.n_train == 500 and lab.test_models == ["a", "b", "c"] and lab.planted["n"] == 10
    assert len(lab.top["test"]) == 5 and all("models_suggesting" in r for r in lab.top["test"])
    assert set(lab.test_candidates["index"]) <= set(te) and "centre_distance" in ea.trait_values
    assert {"trait", "n_hard"} <= set(ea.comparison[0]) and ea.traits is not None
    for fig in (
        ea.plot(),
        ea.plot_upset(5),
        ea.plot_error_map(),
        ea.plot_hard(4),
        lab.plot(4, part="test"),
        lab.plot(4),
    ):
        assert fig.axes
