"""The metrics suite.

The standard scores come from scikit-learn, so their tests check our conventions around it
(every label kept, 0/0 = 0, absent classes, decision scores, the returned keys and shapes) on
hand-computed examples and identities. What we implement ourselves (ECE, tie-pessimistic top-k,
bootstrap, McNemar, Holm, model size) is checked against an independent computation.
"""

import warnings

import numpy as np
import pytest
from scipy import stats

from digitlab import metrics as M
from digitlab import plots as P

K = 5

BUNDLE_KEYS = {
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "cohen_kappa",
    "mcc",
    "precision",
    "recall",
    "f1",
    "support",
    "confusion_matrix",
    "confusion_matrix_normalized",
    "roc_auc_ovr",
    "pr_auc",
    "top2_accuracy",
    "log_loss",
    "brier",
    "ece",
}


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

# Hand example with 4 classes: class 2 is never predicted, class 3 is absent from y_true and predicted once.
Y_HAND = np.array([0, 0, 0, 1, 1, 2, 2, 2])
P_HAND = np.array([0, 0, 1, 1, 1, 0, 1, 3])
#   confusion (rows truth):  [[2, 1, 0, 0], [0, 2, 0, 0], [1, 1, 0, 1], [0, 0, 0, 0]]
#   precision = [2/3, 2/4, 0, 0], recall = [2/3, 1, 0, 0], support = [3, 2, 3, 0]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_label_metrics_on_a_hand_example_with_absent_classes():
    cm = np.array([[2, 1, 0, 0], [0, 2, 0, 0], [1, 1, 0, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(M.confusion_matrix(Y_HAND, P_HAND, 4), cm)
    np.testing.assert_allclose(
        M.confusion_matrix(Y_HAND, P_HAND, 4, normalize="true"),
        [[2 / 3, 1 / 3, 0, 0], [0, 1, 0, 0], [1 / 3, 1 / 3, 0, 1 / 3], [0, 0, 0, 0]],
    )
    # n_classes beyond the labels seen adds empty rows and columns
    assert M.confusion_matrix(Y_HAND, P_HAND, 6).shape == (6, 6)
    assert M.accuracy(Y_HAND, P_HAND) == pytest.approx(4 / 8)
    assert M.balanced_accuracy(Y_HAND, P_HAND, 4) == pytest.approx(
        (2 / 3 + 1 + 0) / 3
    )  # classes present in y_true
    p, r, f, s = M.precision_recall_f1(Y_HAND, P_HAND, 4)
    np.testing.assert_allclose(p, [2 / 3, 1 / 2, 0, 0])
    np.testing.assert_allclose(r, [2 / 3, 1, 0, 0])
    np.testing.assert_allclose(f, [2 / 3, 2 / 3, 0, 0])
    np.testing.assert_array_equal(s, [3, 2, 3, 0])
    assert M.precision_recall_f1(Y_HAND, P_HAND, 4, "macro") == pytest.approx(
        ((2 / 3 + 1 / 2) / 4, (2 / 3 + 1) / 4, (4 / 3) / 4, 8)
    )
    assert M.precision_recall_f1(Y_HAND, P_HAND, 4, "weighted")[:3] == pytest.approx(
        ((3 * 2 / 3 + 2 / 2) / 8, (3 * 2 / 3 + 2) / 8, (3 * 2 / 3 + 2 * 2 / 3) / 8)
    )
    assert M.precision_recall_f1(Y_HAND, P_HAND, 4, "micro") == pytest.approx((0.5, 0.5, 0.5, 8))
    assert isinstance(M.precision_recall_f1(Y_HAND, P_HAND, 4, "macro")[3], int)
    # kappa: p_o = 4/8, p_e = (3*3 + 2*4 + 3*0 + 0*1) / 64
    p_e = 17 / 64
    assert M.cohen_kappa(Y_HAND, P_HAND, 4) == pytest.approx((0.5 - p_e) / (1 - p_e))
    # Gorodkin's R_K from the confusion matrix: (c*s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t))
    t, pp = cm.sum(1), cm.sum(0)
    mcc = (4 * 8 - t @ pp) / np.sqrt((64 - pp @ pp) * (64 - t @ t))
    assert M.matthews_corrcoef(Y_HAND, P_HAND, 4) == pytest.approx(mcc)


def test_undefined_agreement_scores_are_zero():
    y = np.zeros(10, int)  # one class only, predicted perfectly: chance agreement is 1
    with pytest.warns(UserWarning):  # scikit-learn says why
        assert M.cohen_kappa(y, y, 3) == 0.0
        assert M.matthews_corrcoef(y, y, 3) == 0.0


@pytest.mark.parametrize("seed,drop", CASES)
def test_averages_are_consistent_with_the_per_class_values(seed, drop):
    y, pred, _ = _random_case(seed, drop_pred_class=drop)
    p, r, f, s = M.precision_recall_f1(y, pred, K)
    cm = M.confusion_matrix(y, pred, K)
    np.testing.assert_array_equal(s, cm.sum(1))
    np.testing.assert_allclose(r, np.diag(M.confusion_matrix(y, pred, K, normalize="true")))
    np.testing.assert_allclose(p, np.diag(cm) / np.maximum(cm.sum(0), 1))
    if drop:
        assert p[K - 1] == 0.0 and f[K - 1] == 0.0  # never predicted: 0/0 counts as 0
    assert M.precision_recall_f1(y, pred, K, "macro")[:3] == pytest.approx((p.mean(), r.mean(), f.mean()))
    w = s / s.sum()
    assert M.precision_recall_f1(y, pred, K, "weighted")[:3] == pytest.approx((w @ p, w @ r, w @ f))
    assert M.precision_recall_f1(y, pred, K, "micro")[:3] == pytest.approx((M.accuracy(y, pred),) * 3)
    assert M.balanced_accuracy(y, pred, K) == pytest.approx(r.mean())


def test_ranking_metrics_agree_with_mann_whitney_and_skip_absent_classes():
    rng = np.random.default_rng(7)
    y = rng.integers(0, K - 1, 400)  # class K-1 never occurs
    scores = rng.integers(0, 4, size=(400, K)).astype(float)  # decision-like scores with heavy ties
    auc = M.roc_auc_ovr(y, scores, average=None)
    for k in range(K - 1):  # AUC = U / (n_pos n_neg), ties counting 1/2
        pos, neg = scores[y == k, k], scores[y != k, k]
        u = stats.mannwhitneyu(pos, neg).statistic
        assert auc[k] == pytest.approx(u / (len(pos) * len(neg)))
    assert np.isnan(auc[K - 1]) and M.roc_auc_ovr(y, scores) == pytest.approx(np.mean(auc[:-1]))
    ap = M.pr_auc_ovr(y, scores, average=None)
    assert np.isnan(ap[K - 1]) and M.pr_auc_ovr(y, scores) == pytest.approx(np.mean(ap[:-1]))
    with pytest.raises(ValueError, match="average"):
        M.roc_auc_ovr(y, scores, average="weighted")


def test_average_precision_hand_example():
    # scores high to low: +, -, +, - ; thresholds give (R, P) = (1/2, 1), (1/2, 1/2), (1, 2/3), (1, 1/2)
    ap = M.binary_average_precision([1, 0, 1, 0], np.array([0.9, 0.8, 0.7, 0.1]))
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # a tie between a positive and a negative is one threshold: (R, P) = (1, 1/2)
    assert M.binary_average_precision([1, 0], np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(M.binary_average_precision([0, 0], np.array([0.1, 0.2])))
    assert np.isnan(M.binary_roc_auc([1, 1], np.array([0.1, 0.2])))


def test_probability_scores_on_a_hand_example():
    y = np.array([0, 1, 2])
    proba = np.array(
        [[0.7, 0.2, 0.1, 0.0], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )  # class 3 absent from y
    eps = np.finfo(float).eps
    assert M.log_loss(y, proba) == pytest.approx(-(np.log(0.7) + np.log(0.5) + np.log(eps)) / 3)
    assert M.brier_score(y, proba) == pytest.approx(((0.09 + 0.04 + 0.01) + (0.25 + 0.25) + (1 + 1)) / 3)
    # round-off just above 1 (as a float32 softmax can give) is accepted, not rejected
    assert M.brier_score([0], np.array([[1 + 1e-15, 0.0]])) == pytest.approx(0.0)
    # a float32 softmax sums to 1 only within float32 precision: no warning; scores that are not probabilities: warned
    _, _, p = _random_case(0)
    p32 = p.astype(np.float32).astype(float) * (1 + 3e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.log_loss(np.arange(len(p)) % K, p32) == pytest.approx(
            M.log_loss(np.arange(len(p)) % K, p), rel=1e-5
        )
    with pytest.warns(UserWarning, match="sum to one"):
        M.log_loss(np.arange(len(p)) % K, 0.5 * p)


@pytest.mark.parametrize("seed,drop", CASES)
def test_top_k_accuracy_matches_a_direct_loop(seed, drop):
    _, _, proba = _random_case(seed, drop_pred_class=drop)
    y = np.random.default_rng(seed + 10).integers(0, K, len(proba))  # many true classes outside the top 2
    scores = np.round(proba, 1)  # coarse scores: ties everywhere
    for k in (1, 2, 3):
        hits = [sum(s[j] >= s[t] for j in range(K) if j != t) < k for s, t in zip(scores, y)]
        assert M.top_k_accuracy(y, scores, k) == pytest.approx(np.mean(hits))


def test_top_k_ties_count_against_the_model_unlike_sklearn():
    import sklearn.metrics as skm

    one_hot_error = np.array([[0.0, 1.0, 0.0, 0.0]])  # a tree's 0/1 probabilities, true class tied at 0
    assert M.top_k_accuracy([0], one_hot_error, 2) == 0.0
    assert M.top_k_accuracy([3], one_hot_error, 2) == 0.0
    # scikit-learn breaks ties by label index: the highest-numbered tied class gets a free hit
    assert skm.top_k_accuracy_score([3], one_hot_error, k=2, labels=range(4)) == 1.0


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
    b = M.calibration_bins(y, proba, 10)
    assert b["count"].sum() == len(y) and len(b["edges"]) == 11


def test_reliability_diagram_draws(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    y, _, proba = _random_case(0)
    ax = P.plot_reliability_diagram(y, proba, n_bins=10, label="demo").axes[0]
    assert "ECE" in ax.get_title() and len(ax.patches) > 0
    ax.figure.savefig(tmp_path / "rel.png")
    assert (tmp_path / "rel.png").stat().st_size > 0


@pytest.mark.parametrize("drop", [False, True])
def test_classification_metrics_bundle(drop):
    y, pred, proba = _random_case(4, drop_pred_class=drop)
    m = M.classification_metrics(y, pred, proba)
    assert set(m) == BUNDLE_KEYS
    for key in ("precision", "recall", "f1", "support"):
        assert m[key].shape == (K,), key
    assert m["confusion_matrix"].shape == m["confusion_matrix_normalized"].shape == (K, K)
    assert m["f1_micro"] == pytest.approx(m["accuracy"])
    assert m["confusion_matrix"].sum() == len(y)
    for key in BUNDLE_KEYS - {
        "precision",
        "recall",
        "f1",
        "support",
        "confusion_matrix",
        "confusion_matrix_normalized",
    }:
        assert isinstance(m[key], float), key
    assert m["ece"] is not None and m["log_loss"] > 0
    # decision scores (rows not summing to 1): ranking metrics only; log is monotone so the ranks are unchanged
    scores_only = M.classification_metrics(y, pred, scores=np.log(proba))
    assert scores_only["log_loss"] is None and scores_only["brier"] is None and scores_only["ece"] is None
    assert scores_only["roc_auc_ovr"] == pytest.approx(m["roc_auc_ovr"])
    assert scores_only["pr_auc"] == pytest.approx(m["pr_auc"])
    assert scores_only["top2_accuracy"] == pytest.approx(m["top2_accuracy"])
    neither = M.classification_metrics(y, pred, n_classes=K)
    assert all(
        neither[key] is None for key in ("roc_auc_ovr", "pr_auc", "top2_accuracy", "log_loss", "brier", "ece")
    )


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_classification_metrics_keeps_classes_absent_from_the_test_set():
    m = M.classification_metrics(Y_HAND, P_HAND, n_classes=10)
    assert m["confusion_matrix"].shape == (10, 10) and m["f1"].shape == (10,)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 2 / 3) / 10)  # macro over all 10 classes


def _percentile_bootstrap(v, n_boot, seed, chunk=250, confidence=0.95):
    """The percentile bootstrap by hand, drawing indices as the module promises."""
    rng, means = np.random.default_rng(seed), []
    for start in range(0, n_boot, chunk):
        means.append(v[rng.integers(0, len(v), size=(min(chunk, n_boot - start), len(v)))].mean(axis=1))
    means = np.concatenate(means)
    alpha = (1 - confidence) / 2
    return np.quantile(means, alpha), np.quantile(means, 1 - alpha), means.std(ddof=1)


def test_bootstrap_ci_matches_a_hand_bootstrap_and_is_seeded():
    v = (np.random.default_rng(0).random(300) < 0.85).astype(float)
    for seed, n_boot, conf in ((0, 2000, 0.95), (3, 777, 0.9)):
        res = M.bootstrap_ci(v, n_boot=n_boot, confidence=conf, seed=seed)
        low, high, sd = _percentile_bootstrap(v, n_boot, seed, confidence=conf)
        assert (res["low"], res["high"], res["std"]) == pytest.approx((low, high, sd), abs=1e-12)
    assert M.bootstrap_ci(v, n_boot=300, seed=5) == M.bootstrap_ci(v, n_boot=300, seed=5)
    assert M.bootstrap_ci(v, n_boot=300, seed=5) != M.bootstrap_ci(v, n_boot=300, seed=6)


def test_bootstrap_ci_contains_estimate_and_narrows():
    rng = np.random.default_rng(0)
    small, large = rng.random(200) < 0.9, rng.random(5000) < 0.9
    a, b = M.bootstrap_ci(small, n_boot=1000, seed=1), M.bootstrap_ci(large, n_boot=1000, seed=1)
    assert a["low"] <= a["estimate"] <= a["high"] and b["low"] <= b["estimate"] <= b["high"]
    assert (b["high"] - b["low"]) < 0.5 * (a["high"] - a["low"])  # width ~ 1/sqrt(n): 5x narrower expected
    # the bootstrap sd of a mean of Bernoulli(p) is close to sqrt(p(1-p)/n)
    assert b["std"] == pytest.approx(np.sqrt(large.mean() * (1 - large.mean()) / len(large)), rel=0.15)
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
    assert res["p_value"] == pytest.approx(
        0.014166, abs=1e-5
    )  # chi2.sf(6.0167, 1), as in statsmodels' mcnemar
    assert M.mcnemar(*_pair(0, 0))["p_value"] == 1.0
    assert M.mcnemar(*_pair(40, 20), exact=True)["p_value"] == pytest.approx(
        stats.binomtest(40, 60, 0.5).pvalue
    )


def _holm_by_definition(p):
    """Holm step-down: the i-th smallest p gets max over j <= i of min(1, (m - j) p_(j)) (0-based j)."""
    p = np.asarray(p, float)
    m, order = len(p), np.argsort(p)
    adj, running = np.empty(m), 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        adj[idx] = running
    return adj


def test_holm_adjustment():
    np.testing.assert_allclose(M.holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    p = np.random.default_rng(0).random(12) ** 3
    np.testing.assert_allclose(M.holm_adjust(p), _holm_by_definition(p))
    np.testing.assert_allclose(M.holm_adjust([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    assert M.holm_adjust([]).shape == (0,)


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
    for word in (
        "Accuracy",
        "Balanced",
        "F1",
        "kappa",
        "Matthews",
        "ROC-AUC",
        "PR-AUC",
        "Top-2",
        "Log loss",
        "calibration",
        "McNemar",
        "Bootstrap",
        "size",
    ):
        assert word in names
    notes = M.metric_notes()
    assert len(notes) == len(M.METRIC_DEFINITIONS) and all("Can mislead" in n for n in notes)
