"""Every metric against scikit-learn / SciPy on random inputs, plus bootstrap, McNemar and model size."""

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy import stats
from sklearn.preprocessing import label_binarize

from digitlab import metrics as M

K = 5


def _random_case(seed: int, n: int = 300, drop_pred_class: bool = False):
    """Labels, noisy predictions and probabilities; optionally a class that is never predicted."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K)) + 2.0 * np.eye(K)[y]
    if drop_pred_class:
        logits[:, K - 1] = -50  # class K-1 is present in y_true but never predicted
    proba = np.exp(logits - logits.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    return y, proba.argmax(1), proba


CASES = [(s, d) for s in (0, 1, 2) for d in (False, True)]


@pytest.mark.parametrize("seed,drop", CASES)
def test_label_metrics_match_sklearn(seed, drop):
    y, pred, _ = _random_case(seed, drop_pred_class=drop)
    labels = list(range(K))
    assert M.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    assert M.balanced_accuracy(y, pred, K) == pytest.approx(skm.balanced_accuracy_score(y, pred))
    np.testing.assert_array_equal(M.confusion_matrix(y, pred, K), skm.confusion_matrix(y, pred, labels=labels))
    np.testing.assert_allclose(M.confusion_matrix(y, pred, K, normalize="true"),
                               skm.confusion_matrix(y, pred, labels=labels, normalize="true"))
    p, r, f, s = M.precision_recall_f1(y, pred, K)
    rp, rr, rf, rs = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for a, b in ((p, rp), (r, rr), (f, rf), (s, rs)):
        np.testing.assert_allclose(a, b)
    for avg in ("macro", "micro", "weighted"):
        ours = M.precision_recall_f1(y, pred, K, average=avg)[:3]
        ref = skm.precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)[:3]
        np.testing.assert_allclose(ours, ref, err_msg=avg)
    assert M.cohen_kappa(y, pred, K) == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert M.matthews_corrcoef(y, pred, K) == pytest.approx(skm.matthews_corrcoef(y, pred))


@pytest.mark.parametrize("seed,drop", CASES)
def test_probability_metrics_match_sklearn(seed, drop):
    y, pred, proba = _random_case(seed, drop_pred_class=drop)
    assert M.roc_auc_ovr(y, proba) == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    ybin = label_binarize(y, classes=range(K))
    np.testing.assert_allclose(M.roc_auc_ovr(y, proba, average=None), skm.roc_auc_score(ybin, proba, average=None))
    np.testing.assert_allclose(M.pr_auc_ovr(y, proba, average=None), skm.average_precision_score(ybin, proba, average=None))
    assert M.log_loss(y, proba) == pytest.approx(skm.log_loss(y, proba, labels=range(K)))
    assert M.top_k_accuracy(y, proba, 2) == pytest.approx(skm.top_k_accuracy_score(y, proba, k=2, labels=range(K)))
    assert M.brier_score(y, proba) == pytest.approx(np.mean(np.sum((proba - ybin) ** 2, axis=1)))


def test_ranking_metrics_with_ties_match_sklearn():
    rng = np.random.default_rng(7)
    y = rng.integers(0, K, 400)
    scores = rng.integers(0, 4, size=(400, K)).astype(float)  # heavy ties
    ybin = label_binarize(y, classes=range(K))
    np.testing.assert_allclose(M.roc_auc_ovr(y, scores, average=None), skm.roc_auc_score(ybin, scores, average=None))
    np.testing.assert_allclose(M.pr_auc_ovr(y, scores, average=None), skm.average_precision_score(ybin, scores, average=None))
    # a tied true class does not count as a top-2 hit for free
    assert M.top_k_accuracy([0], np.array([[0.0, 1.0, 0.0, 0.0]]), 2) == 0.0


def test_ece_matches_a_direct_loop_and_bins_are_configurable():
    y, _, proba = _random_case(3, n=500)
    for n_bins in (5, 15):
        conf, correct = proba.max(1), proba.argmax(1) == y
        ece = 0.0
        for lo, hi in zip(np.linspace(0, 1, n_bins + 1)[:-1], np.linspace(0, 1, n_bins + 1)[1:]):
            m = (conf > lo) & (conf <= hi)
            if m.any():
                ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
        assert M.expected_calibration_error(y, proba, n_bins) == pytest.approx(ece)
    onehot = np.eye(K)[y]  # confident and always right: perfectly calibrated
    assert M.expected_calibration_error(y, onehot) == pytest.approx(0.0)


def test_reliability_diagram_draws(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    y, _, proba = _random_case(0)
    ax = M.plot_reliability_diagram(y, proba, n_bins=10, label="demo")
    assert "ECE" in ax.get_title() and len(ax.patches) > 0
    ax.figure.savefig(tmp_path / "rel.png")
    assert (tmp_path / "rel.png").stat().st_size > 0


def test_classification_metrics_bundle():
    y, pred, proba = _random_case(4)
    m = M.classification_metrics(y, pred, proba)
    assert m["f1_micro"] == pytest.approx(m["accuracy"])
    assert m["confusion_matrix"].sum() == len(y)
    assert m["ece"] is not None and m["log_loss"] > 0
    scores_only = M.classification_metrics(y, pred, scores=np.log(proba))
    assert scores_only["log_loss"] is None and scores_only["roc_auc_ovr"] == pytest.approx(m["roc_auc_ovr"])


def test_bootstrap_ci_contains_estimate_narrows_and_is_seeded():
    rng = np.random.default_rng(0)
    small, large = rng.random(200) < 0.9, rng.random(5000) < 0.9
    a, b = M.bootstrap_ci(small, n_boot=1000, seed=1), M.bootstrap_ci(large, n_boot=1000, seed=1)
    assert a["low"] <= a["estimate"] <= a["high"] and b["low"] <= b["estimate"] <= b["high"]
    assert (b["high"] - b["low"]) < 0.5 * (a["high"] - a["low"])  # width ~ 1/sqrt(n): 5x narrower expected
    # the bootstrap sd of a mean of Bernoulli(p) is close to sqrt(p(1-p)/n)
    assert b["std"] == pytest.approx(np.sqrt(large.mean() * (1 - large.mean()) / len(large)), rel=0.15)
    assert M.bootstrap_ci(small, n_boot=300, seed=5) == M.bootstrap_ci(small, n_boot=300, seed=5)
    y = np.arange(100) % 3
    assert M.accuracy_ci(y, y)["low"] == 1.0


def _pair(b: int, c: int, both_right: int = 50, both_wrong: int = 10):
    y = np.zeros(b + c + both_right + both_wrong, int)
    a_ok = np.r_[np.ones(b), np.zeros(c), np.ones(both_right), np.zeros(both_wrong)].astype(bool)
    b_ok = np.r_[np.zeros(b), np.ones(c), np.ones(both_right), np.zeros(both_wrong)].astype(bool)
    return y, np.where(a_ok, 0, 1), np.where(b_ok, 0, 2)


@pytest.mark.parametrize("b,c", [(3, 11), (0, 6), (12, 12), (1, 0)])
def test_mcnemar_exact_matches_scipy_binomtest(b, c):
    res = M.mcnemar(*_pair(b, c))
    assert (res["b"], res["c"], res["method"]) == (b, c, "exact binomial")
    assert res["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)


def test_mcnemar_chi_square_hand_computed():
    res = M.mcnemar(*_pair(40, 20))
    assert res["method"] == "chi-square (cc)"
    assert res["statistic"] == pytest.approx((20 - 1) ** 2 / 60)  # 6.0167
    assert res["p_value"] == pytest.approx(0.014166, abs=1e-5)  # chi2.sf(6.0167, 1), as in statsmodels' mcnemar
    assert M.mcnemar(*_pair(0, 0))["p_value"] == 1.0


def test_holm_adjustment():
    np.testing.assert_allclose(M.holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_model_size_sklearn_and_torch():
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 8)), rng.integers(0, 3, 100)
    lr = LogisticRegression(max_iter=200).fit(x, y)
    size = M.model_size(lr)
    assert size["parameters"] >= 3 * 8 + 3 and size["bytes"] > 8 * size["parameters"] // 2
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)
    assert M.model_size(tree)["parameters"] > tree.tree_.node_count  # every node stores several numbers
    import pickle

    assert M.model_size(tree)["bytes"] == len(pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL))
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    assert M.model_size(net) == {"parameters": 8 * 4 + 4 + 4 * 3 + 3, "bytes": 4 * (8 * 4 + 4 + 4 * 3 + 3)}


def test_metric_definitions_cover_the_suite():
    names = " ".join(d["name"] for d in M.METRIC_DEFINITIONS)
    for word in ("Accuracy", "Balanced", "F1", "kappa", "Matthews", "ROC-AUC", "PR-AUC", "Top-2", "Log loss", "calibration",
                 "McNemar", "Bootstrap", "size"):
        assert word in names
    notes = M.metric_notes()
    assert len(notes) == len(M.METRIC_DEFINITIONS) and all("Can mislead" in n for n in notes)
