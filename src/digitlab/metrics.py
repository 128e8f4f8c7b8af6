"""The metrics suite: classification scores, calibration, model size and significance tests.

The standard scores are scikit-learn's (``sklearn.metrics``); this module only fixes the
conventions the study needs so that every model is scored alike: all ``n_classes`` labels are
passed (a class absent from the test set or never predicted still gets its row, column and
zeros), ``0/0`` counts as 0, and ranking metrics accept uncalibrated decision scores. What
scikit-learn lacks is written here: expected calibration error (its diagram is drawn in ``digitlab.plots``),
tie-pessimistic top-k accuracy, the seeded bootstrap interval (on ``scipy.stats.bootstrap``),
McNemar's test with Holm's correction, model size and the metric definitions the report prints.

Labels are integers ``0..n_classes-1``; probabilities / scores are arrays of shape ``(n, n_classes)``.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import numpy as np
import sklearn.metrics as skm
from scipy import stats

# ---------------------------------------------------------------------------------------------
# Confusion-matrix based scores (scikit-learn, with every label and zero_division=0)
# ---------------------------------------------------------------------------------------------


def _labels(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has {y_true.size} labels but y_pred has {y_pred.size}; pass predictions for the same samples"
        )
    if n_classes is None:
        n_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    return y_true, y_pred, n_classes


def confusion_matrix(
    y_true, y_pred, n_classes: int | None = None, normalize: str | None = None
) -> np.ndarray:
    """Confusion matrix ``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``.

    ``normalize="true"`` divides each row by its total (row-normalised: the diagonal is per-class
    recall); rows of absent classes stay 0. ``"pred"`` and ``"all"`` are passed to scikit-learn too.
    """
    y_true, y_pred, k = _labels(y_true, y_pred, n_classes)
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(k), normalize=normalize)


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted label equals the true label."""
    y_true, y_pred, _ = _labels(y_true, y_pred, None)
    return float(skm.accuracy_score(y_true, y_pred))


def balanced_accuracy(y_true, y_pred, n_classes: int | None = None) -> float:
    """Mean of per-class recall over the classes present in ``y_true`` (``n_classes`` is not needed)."""
    y_true, y_pred, _ = _labels(y_true, y_pred, n_classes)
    return float(skm.balanced_accuracy_score(y_true, y_pred))


def precision_recall_f1(y_true, y_pred, n_classes: int | None = None, average: str | None = None):
    """Precision, recall, F1 and support per class, or averaged.

    Parameters
    ----------
    average : None | "macro" | "micro" | "weighted"
        ``None`` returns per-class arrays; ``macro`` is the unweighted mean over all ``n_classes``
        classes, ``weighted`` weights classes by support, ``micro`` pools all true/false positives.

    Returns
    -------
    (precision, recall, f1, support) : arrays per class, or floats (support = total) when averaged.
    A ratio with a zero denominator counts as 0.
    """
    y_true, y_pred, k = _labels(y_true, y_pred, n_classes)
    p, r, f, s = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(k), average=average, zero_division=0
    )
    if average is None:
        return p, r, f, s
    return float(p), float(r), float(f), int(y_true.size)


def cohen_kappa(y_true, y_pred, n_classes: int | None = None) -> float:
    """Agreement beyond chance, ``(p_o - p_e) / (1 - p_e)``; 0 when undefined (``p_e = 1``)."""
    y_true, y_pred, k = _labels(y_true, y_pred, n_classes)
    return float(skm.cohen_kappa_score(y_true, y_pred, labels=np.arange(k), replace_undefined_by=0.0))


def matthews_corrcoef(y_true, y_pred, n_classes: int | None = None) -> float:
    """Multi-class Matthews correlation (Gorodkin's R_K), 0 when undefined (``n_classes`` is not needed)."""
    y_true, y_pred, _ = _labels(y_true, y_pred, n_classes)
    return float(skm.matthews_corrcoef(y_true, y_pred))


# ---------------------------------------------------------------------------------------------
# Ranking and probability scores
# ---------------------------------------------------------------------------------------------


def binary_roc_auc(is_pos: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC (ties count 1/2); NaN when only one class is present."""
    is_pos = np.asarray(is_pos, bool)
    if is_pos.all() or not is_pos.any():
        return float("nan")
    return float(skm.roc_auc_score(is_pos, score))


def binary_average_precision(is_pos: np.ndarray, score: np.ndarray) -> float:
    """Average precision ``sum_k (R_k - R_{k-1}) P_k`` over score thresholds; NaN without positives."""
    is_pos = np.asarray(is_pos, bool)
    if not is_pos.any():
        return float("nan")
    return float(skm.average_precision_score(is_pos, score))


def _one_vs_rest(binary, y_true, scores: np.ndarray, average: str | None) -> float | np.ndarray:
    # Per class rather than roc_auc_score(multi_class="ovr"): that one rejects decision scores
    # (rows must sum to 1) and makes the macro mean NaN when a class is absent from the test set.
    y_true, scores = np.asarray(y_true), np.asarray(scores, float)
    per = np.array([binary(y_true == k, scores[:, k]) for k in range(scores.shape[1])])
    if average is None:
        return per
    if average != "macro":
        raise ValueError(f"average={average!r}: choose None (per class) or 'macro'")
    return float(np.nanmean(per))


def roc_auc_ovr(y_true, scores: np.ndarray, average: str = "macro") -> float | np.ndarray:
    """One-vs-rest ROC-AUC per class (``average=None``) or its unweighted mean (absent classes skipped)."""
    return _one_vs_rest(binary_roc_auc, y_true, scores, average)


def pr_auc_ovr(y_true, scores: np.ndarray, average: str = "macro") -> float | np.ndarray:
    """One-vs-rest average precision (area under the precision-recall curve), per class or mean."""
    return _one_vs_rest(binary_average_precision, y_true, scores, average)


def _probability_score(score, y_true, proba: np.ndarray, **kwargs) -> float:
    """A scikit-learn probability score on float64 ``proba`` with every class as a label.

    Round-off just outside [0, 1] (1 + 1e-16), which scikit-learn rejects, is clipped, and its
    "do not sum to one" warning is silenced when rows sum to 1 within the tolerance scikit-learn
    itself allows float32 (sqrt of its eps): models computing in float32 (the CNN, naive Bayes on
    float32 pixels, off by up to ~1e-5) reach us as float64.
    """
    p = np.asarray(proba, float)
    if p.size and p.min() >= -1e-9 and p.max() <= 1 + 1e-9:
        p = np.clip(p, 0.0, 1.0)
    with warnings.catch_warnings():
        if np.allclose(p.sum(axis=1), 1.0, rtol=0.0, atol=np.sqrt(np.finfo(np.float32).eps)):
            warnings.filterwarnings("ignore", "The y_prob values do not sum to one", UserWarning)
        return float(score(np.asarray(y_true), p, labels=np.arange(p.shape[1]), **kwargs))


def log_loss(y_true, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (probabilities clipped to [eps, 1-eps])."""
    return _probability_score(skm.log_loss, y_true, proba)


def brier_score(y_true, proba: np.ndarray) -> float:
    """Multi-class Brier score: mean over samples of ``sum_k (p_k - 1[y = k])^2`` (0 to 2, not halved)."""
    return _probability_score(skm.brier_score_loss, y_true, proba, scale_by_half=False)


def top_k_accuracy(y_true, scores: np.ndarray, k: int = 2) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    Ties count against the model: a true class tied with others is ranked behind all of them.
    Not ``sklearn.metrics.top_k_accuracy_score``, which breaks ties by label index, so a tree's or
    k-NN's 0/1-like probabilities would get free top-2 hits on errors whose true class has a high index.
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    true_score = scores[np.arange(len(y_true)), y_true]
    ahead = (scores >= true_score[:, None]).sum(axis=1) - 1  # other classes scoring at least as high
    return float(np.mean(ahead < k))


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------


def calibration_bins(y_true, proba: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Equal-width confidence bins: per bin the count, mean confidence and accuracy.

    Confidence is the top probability; bin ``b`` holds confidences in ``(b/n_bins, (b+1)/n_bins]``
    (the first bin also holds 0).
    """
    proba = np.asarray(proba, float)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y_true)).astype(float)
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(float)
    empty = count == 0  # empty bins report 0 confidence and 0 accuracy
    mean_conf = np.divide(np.bincount(idx, conf, minlength=n_bins), count, out=np.zeros(n_bins), where=~empty)
    acc = np.divide(np.bincount(idx, correct, minlength=n_bins), count, out=np.zeros(n_bins), where=~empty)
    return {"edges": np.linspace(0, 1, n_bins + 1), "count": count, "confidence": mean_conf, "accuracy": acc}


def expected_calibration_error(y_true, proba: np.ndarray, n_bins: int = 15) -> float:
    """ECE = ``sum_b (n_b / n) |acc_b - conf_b|`` over equal-width confidence bins."""
    b = calibration_bins(y_true, proba, n_bins)
    return float(np.sum(b["count"] / b["count"].sum() * np.abs(b["accuracy"] - b["confidence"])))


def classification_metrics(
    y_true,
    y_pred,
    proba: np.ndarray | None = None,
    n_classes: int | None = None,
    scores: np.ndarray | None = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Every metric of the suite for one model's predictions.

    Parameters
    ----------
    y_true, y_pred : (n,) integer labels.
    proba : (n, n_classes) class probabilities, or None. Enables all probability metrics.
    n_classes : number of classes (default: the columns of proba / scores, else inferred from the labels).
    scores : (n, n_classes) uncalibrated decision scores used when ``proba`` is None; they
        enable the ranking metrics (ROC-AUC, PR-AUC, top-2) but not log loss, Brier or ECE.
    n_bins : equal-width bins of the expected calibration error.

    Returns
    -------
    dict of floats plus per-class arrays (``precision``, ``recall``, ``f1``, ``support``) and
    ``confusion_matrix`` / ``confusion_matrix_normalized``. Probability metrics are ``None`` when
    neither proba nor scores are given.
    """
    rank = proba if proba is not None else scores
    if n_classes is None and rank is not None:
        n_classes = rank.shape[1]
    y_true, y_pred, k = _labels(y_true, y_pred, n_classes)
    p, r, f, support = precision_recall_f1(y_true, y_pred, k)
    out: dict[str, Any] = {
        "accuracy": accuracy(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, k),
    }
    for avg in ("macro", "micro", "weighted"):
        ap, ar, af, _ = precision_recall_f1(y_true, y_pred, k, average=avg)
        out.update({f"precision_{avg}": ap, f"recall_{avg}": ar, f"f1_{avg}": af})
    out.update(
        cohen_kappa=cohen_kappa(y_true, y_pred, k),
        mcc=matthews_corrcoef(y_true, y_pred, k),
        precision=p,
        recall=r,
        f1=f,
        support=support,
        confusion_matrix=confusion_matrix(y_true, y_pred, k),
        confusion_matrix_normalized=confusion_matrix(y_true, y_pred, k, normalize="true"),
    )
    out.update(roc_auc_ovr=None, pr_auc=None, top2_accuracy=None, log_loss=None, brier=None, ece=None)
    if rank is not None:
        out.update(
            roc_auc_ovr=roc_auc_ovr(y_true, rank),
            pr_auc=pr_auc_ovr(y_true, rank),
            top2_accuracy=top_k_accuracy(y_true, rank, 2),
        )
    if proba is not None:
        out.update(
            log_loss=log_loss(y_true, proba),
            brier=brier_score(y_true, proba),
            ece=expected_calibration_error(y_true, proba, n_bins),
        )
    return out


# ---------------------------------------------------------------------------------------------
# Model size
# ---------------------------------------------------------------------------------------------


def _count_array_numbers(obj: Any, seen: dict[int, Any], depth: int = 0) -> int:
    """Numbers held in numeric NumPy arrays reachable from ``obj`` (fitted attributes, tree nodes)."""
    if id(obj) in seen or depth > 30:
        return 0
    seen[id(obj)] = obj  # keep temporaries (``__getstate__`` dicts) alive so their ids are not reused
    if isinstance(obj, np.ndarray):
        if obj.dtype.fields:  # structured arrays (tree nodes): count every field
            return obj.size * len(obj.dtype.fields)
        if obj.dtype == object:  # e.g. a forest's array of fitted trees
            return sum(_count_array_numbers(o, seen, depth + 1) for o in obj.ravel())
        return obj.size if obj.dtype.kind in "biufc" else 0
    if isinstance(obj, dict):
        return sum(_count_array_numbers(v, seen, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_count_array_numbers(v, seen, depth + 1) for v in obj)
    state = getattr(obj, "__dict__", None)
    if state is None and hasattr(obj, "__getstate__") and type(obj).__module__.startswith("sklearn"):
        state = obj.__getstate__()  # Cython objects such as sklearn's Tree expose their arrays here
    return _count_array_numbers(state, seen, depth + 1) if isinstance(state, dict) else 0


def model_size(model: Any) -> dict[str, int]:
    """Size of a fitted model: ``{"parameters": n, "bytes": b}``.

    * torch ``nn.Module``: trainable parameter count and their bytes in memory.
    * anything else (scikit-learn, the NumPy MLP): the numbers stored in its fitted arrays
      (coefficients, support vectors, tree nodes, stored training data for k-NN) and the size
      of the pickled model.
    """
    try:
        import torch

        if isinstance(model, torch.nn.Module):
            ps = [p for p in model.parameters() if p.requires_grad]
            return {
                "parameters": int(sum(p.numel() for p in ps)),
                "bytes": int(sum(p.numel() * p.element_size() for p in ps)),
            }
    except ImportError:  # torch is optional for scikit-learn-only use
        pass
    sink = (
        _CountingSink()
    )  # counts the pickle's bytes without holding them (a 300-tree forest pickles to ~400 MB)
    pickle.dump(model, sink, protocol=pickle.HIGHEST_PROTOCOL)
    return {"parameters": int(_count_array_numbers(model, {})), "bytes": sink.n}


class _CountingSink:
    """A write-only file object that only counts bytes."""

    def __init__(self):
        self.n = 0

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        self.n += size
        return size


# ---------------------------------------------------------------------------------------------
# Uncertainty and significance
# ---------------------------------------------------------------------------------------------


def bootstrap_ci(
    values, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0, chunk: int = 250
) -> dict[str, float]:
    """Percentile bootstrap confidence interval of the mean of per-sample ``values``.

    For accuracy pass ``values = (y_pred == y_true)``. ``scipy.stats.bootstrap`` draws the
    resamples in batches of ``chunk`` x n indices (bounded memory) from
    ``np.random.default_rng(seed)``, so a seed always gives the same interval. Needs n >= 2.

    Returns ``{"estimate", "low", "high", "std"}`` (``std``: of the bootstrap means).
    """
    v = np.asarray(values, float).ravel()
    res = stats.bootstrap(
        (v,),
        np.mean,
        n_resamples=n_boot,
        batch=chunk,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return {
        "estimate": float(v.mean()),
        "low": float(ci.low),
        "high": float(ci.high),
        "std": float(res.standard_error),
    }


def accuracy_ci(
    y_true, y_pred, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Bootstrap confidence interval of accuracy (see :func:`bootstrap_ci`)."""
    return bootstrap_ci(np.asarray(y_true) == np.asarray(y_pred), n_boot, confidence, seed)


def mcnemar(y_true, pred_a, pred_b, exact: bool | None = None, exact_below: int = 25) -> dict[str, Any]:
    """McNemar's test of equal error rates of two classifiers on the same test samples.

    ``b`` = samples A gets right and B wrong, ``c`` = A wrong and B right. Under the null
    hypothesis each discordant sample is a fair coin flip. ``exact=None`` uses the exact
    two-sided binomial test when ``b + c < exact_below`` and otherwise the chi-square statistic
    with continuity correction ``(|b - c| - 1)^2 / (b + c)`` on 1 degree of freedom.

    Returns ``{"b", "c", "statistic", "p_value", "method"}``.
    """
    y = np.asarray(y_true)
    ok_a, ok_b = np.asarray(pred_a) == y, np.asarray(pred_b) == y
    b, c = int(np.sum(ok_a & ~ok_b)), int(np.sum(~ok_a & ok_b))
    n = b + c
    if exact is None:
        exact = n < exact_below
    if n == 0:
        return {
            "b": b,
            "c": c,
            "statistic": 0.0,
            "p_value": 1.0,
            "method": "exact binomial" if exact else "chi-square (cc)",
        }
    if exact:
        p = min(1.0, 2.0 * stats.binom.cdf(min(b, c), n, 0.5))
        return {
            "b": b,
            "c": c,
            "statistic": float(min(b, c)),
            "p_value": float(p),
            "method": "exact binomial",
        }
    stat = (abs(b - c) - 1.0) ** 2 / n
    return {
        "b": b,
        "c": c,
        "statistic": float(stat),
        "p_value": float(stats.chi2.sf(stat, 1)),
        "method": "chi-square (cc)",
    }


def holm_adjust(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error control for many pairwise tests)."""
    p = np.asarray(p_values, float)
    m = len(p)
    order = np.argsort(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


# ---------------------------------------------------------------------------------------------
# Definitions for the report
# ---------------------------------------------------------------------------------------------

# n samples, K classes, TP_k / FP_k / FN_k counted from the confusion matrix C (rows = truth).
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {
        "name": "Accuracy",
        "formula": "acc = (1/n) &sum;<sub>i</sub> 1[&ycirc;<sub>i</sub> = y<sub>i</sub>] = trace(C) / n",
        "computed": "scikit-learn's accuracy_score: mean of the correct-prediction indicator on the test set",
        "meaning": "the share of test images classified correctly",
        "misleads": "with imbalanced classes (a majority-class guess can score high) and it hides which classes fail",
    },
    {
        "name": "Bootstrap 95 % CI of accuracy",
        "formula": "2.5 and 97.5 percentiles of acc over B resamples of the n test images drawn with replacement",
        "computed": "scipy.stats.bootstrap, percentile method, seeded; B x n resample indices drawn in batches",
        "meaning": "how much the accuracy would move on another test set of the same size from the same distribution",
        "misleads": "it ignores variation from training (seeds, data order) and assumes test images are independent",
    },
    {
        "name": "Balanced accuracy",
        "formula": "(1/K) &sum;<sub>k</sub> TP<sub>k</sub> / (TP<sub>k</sub> + FN<sub>k</sub>)",
        "computed": "scikit-learn's balanced_accuracy_score: mean of per-class recall over classes present in the test set",
        "meaning": "accuracy with every class weighted equally",
        "misleads": "it equals accuracy on a balanced test set (MNIST's is nearly balanced), so it adds little there",
    },
    {
        "name": "Precision, recall, F1 (per class)",
        "formula": "P<sub>k</sub> = TP<sub>k</sub>/(TP<sub>k</sub>+FP<sub>k</sub>), R<sub>k</sub> = TP<sub>k</sub>/(TP<sub>k</sub>+FN<sub>k</sub>), "
        "F1<sub>k</sub> = 2P<sub>k</sub>R<sub>k</sub>/(P<sub>k</sub>+R<sub>k</sub>) = 2TP<sub>k</sub>/(2TP<sub>k</sub>+FP<sub>k</sub>+FN<sub>k</sub>)",
        "computed": "scikit-learn's precision_recall_fscore_support over all K classes; 0/0 counts as 0",
        "meaning": "precision: how trustworthy a prediction of class k is; recall: how many images of class k are found",
        "misleads": "a class never predicted gets precision 0 by convention, which can look worse than it is",
    },
    {
        "name": "Macro / micro / weighted averages",
        "formula": "macro = (1/K) &sum;<sub>k</sub> m<sub>k</sub>; weighted = &sum;<sub>k</sub> (n<sub>k</sub>/n) m<sub>k</sub>; "
        "micro pools TP, FP, FN over classes before dividing",
        "computed": "scikit-learn's precision_recall_fscore_support with average = macro, micro or weighted",
        "meaning": "macro treats classes equally, weighted follows class frequency, micro F1 equals accuracy in single-label problems",
        "misleads": "macro is sensitive to tiny classes; micro and weighted hide failures on rare classes",
    },
    {
        "name": "Cohen's kappa",
        "formula": "&kappa; = (p<sub>o</sub> - p<sub>e</sub>) / (1 - p<sub>e</sub>), "
        "p<sub>e</sub> = &sum;<sub>k</sub> (row<sub>k</sub>/n)(col<sub>k</sub>/n)",
        "computed": "scikit-learn's cohen_kappa_score: observed agreement p<sub>o</sub> = accuracy, chance agreement from the confusion matrix's margins; 0 when undefined",
        "meaning": "agreement with the truth beyond what matching label frequencies would give by chance (1 perfect, 0 chance)",
        "misleads": "it depends on the class marginals, so values are not comparable across datasets with different balance",
    },
    {
        "name": "Matthews correlation (multi-class)",
        "formula": "MCC = (c&middot;n - t&middot;p) / &radic;((n<sup>2</sup> - p&middot;p)(n<sup>2</sup> - t&middot;t)), "
        "c = trace(C), t = row sums, p = column sums",
        "computed": "scikit-learn's matthews_corrcoef (Gorodkin's R<sub>K</sub>); 0 when undefined",
        "meaning": "correlation between true and predicted labels, using every cell of the confusion matrix",
        "misleads": "its scale is not a rate; it is hard to translate into 'how many errors'",
    },
    {
        "name": "Confusion matrix",
        "formula": "C<sub>ij</sub> = #{i : y = i, &ycirc; = j}; row-normalised C<sub>ij</sub> / &sum;<sub>j</sub> C<sub>ij</sub>",
        "computed": "scikit-learn's confusion_matrix over all K classes (normalize = true for the rows)",
        "meaning": "which classes are mistaken for which; the normalised diagonal is per-class recall",
        "misleads": "counts follow class sizes; compare normalised rows across classes",
    },
    {
        "name": "One-vs-rest ROC-AUC",
        "formula": "AUC<sub>k</sub> = P(s<sub>k</sub>(x<sup>+</sup>) &gt; s<sub>k</sub>(x<sup>-</sup>)) + &frac12;P(tie), macro-averaged over k",
        "computed": "scikit-learn's roc_auc_score of the class-k score, class-k images against all others, per class (so decision scores work too); classes absent from the test set are skipped",
        "meaning": "how well each class's score ranks its own images above the rest, independent of any threshold",
        "misleads": "near 1 for every decent model (the many easy negatives dominate); it ignores calibration",
    },
    {
        "name": "PR-AUC (average precision)",
        "formula": "AP<sub>k</sub> = &sum;<sub>t</sub> (R<sub>t</sub> - R<sub>t-1</sub>) P<sub>t</sub> over decreasing score thresholds, macro-averaged",
        "computed": "scikit-learn's average_precision_score per class: step-wise area under its precision-recall curve",
        "meaning": "ranking quality focused on the positives; more sensitive than ROC-AUC when positives are rare (1 in 10 here)",
        "misleads": "its baseline is the class frequency, not 0.5, so values are not comparable across class balances",
    },
    {
        "name": "Top-2 accuracy",
        "formula": "(1/n) &sum;<sub>i</sub> 1[y<sub>i</sub> among the 2 highest scores]",
        "computed": "a tied true class is ranked behind the classes it ties with (scikit-learn's top_k_accuracy_score breaks ties by label index instead)",
        "meaning": "whether the model at least short-lists the right digit",
        "misleads": "it flatters models whose errors are near-misses and says nothing about confidence",
    },
    {
        "name": "Log loss",
        "formula": "-(1/n) &sum;<sub>i</sub> log p<sub>i,y<sub>i</sub></sub>, p clipped to [&epsilon;, 1-&epsilon;]",
        "computed": "scikit-learn's log_loss: mean negative log-probability of the true class",
        "meaning": "how much probability the model puts on the truth; punishes confident mistakes without bound",
        "misleads": "a few confident errors dominate it (a tree's 0/1 probabilities give huge values); needs probabilities",
    },
    {
        "name": "Brier score",
        "formula": "(1/n) &sum;<sub>i</sub> &sum;<sub>k</sub> (p<sub>ik</sub> - 1[y<sub>i</sub> = k])<sup>2</sup>",
        "computed": "scikit-learn's brier_score_loss, not halved: squared distance between the probability vector and the one-hot truth",
        "meaning": "a bounded (0 to 2) proper score mixing calibration and sharpness",
        "misleads": "it is less sensitive than log loss to rare confident mistakes",
    },
    {
        "name": "Expected calibration error",
        "formula": "ECE = &sum;<sub>b</sub> (n<sub>b</sub>/n) |acc<sub>b</sub> - conf<sub>b</sub>| "
        "over equal-width bins of the top-class confidence",
        "computed": "confidence = max probability; bins (b/B, (b+1)/B]; shown as a reliability diagram",
        "meaning": "whether '90 % confident' means right 90 % of the time",
        "misleads": "depends on the number of bins and is near 0 for very accurate models simply because most confidences are ~1",
    },
    {
        "name": "McNemar's test",
        "formula": "b = A right and B wrong, c = A wrong and B right; exact: p = min(1, 2 P(Bin(b+c, &frac12;) &le; min(b,c))); "
        "otherwise &chi;<sup>2</sup> = (|b - c| - 1)<sup>2</sup>/(b + c), 1 d.o.f.",
        "computed": "exact binomial test below 25 discordant images, else chi-square with continuity correction; "
        "Holm's step-down correction across all pairs",
        "meaning": "whether two models' error rates differ on this test set beyond chance, using only the images they disagree on",
        "misleads": "it tests one fixed test set and one training run each; a non-significant result is not proof of equality",
    },
    {
        "name": "Model size",
        "formula": "parameters = numbers in the fitted arrays; bytes = pickled size (torch: parameter bytes)",
        "computed": "recursive walk of the fitted estimator's arrays (coefficients, support vectors, tree nodes, stored training "
        "images for k-NN); torch: trainable parameter count x element size",
        "meaning": "memory needed to keep and ship the model",
        "misleads": "tree nodes, support vectors and stored images are not 'parameters' in the neural-network sense",
    },
]


def metric_notes() -> list[str]:
    """One HTML paragraph per metric of :data:`METRIC_DEFINITIONS` (for a task's ``notes``)."""
    return [
        f"<b>{d['name']}</b>: {d['formula']}. <i>Computed</i>: {d['computed']}. <i>Meaning</i>: {d['meaning']}. "
        f"<i>Can mislead</i>: {d['misleads']}."
        for d in METRIC_DEFINITIONS
    ]
