"""Short answers to the brief's questions, key findings and conclusions, computed from stored results.

Every sentence here is a template filled with numbers a task stored (``TaskResult.metrics``, its
tables, its ``headline``); nothing is typed in. A task whose metrics this module does not know is
answered by its own ``headline`` (or, failing that, its first finding that is not a timing).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from digitlab.names import humanize, model_name

TIMING = re.compile(r"\btook\b|\bimages per second\b|\bimg/s\b|\bwall time\b|\bCPU seconds\b|\bin \d[\d.,]* ?s\b", re.I)


def is_timing(sentence: str) -> bool:
    """Whether a sentence is about speed rather than a scientific result."""
    return bool(TIMING.search(sentence or ""))


def headline(result: Any) -> str:
    """The task's scientific one-liner: its headline, else its first finding that is not a timing."""
    if result is None:
        return ""
    if result.headline and not is_timing(result.headline):
        return humanize(result.headline)
    for f in result.findings:
        if not is_timing(f):
            return humanize(f)
    return ""


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _table(result: Any, name: str) -> list[dict]:
    for tb in result.tables:
        if tb.name == name:
            return tb.rows
    return []


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# ---------------------------------------------------------------------------------------------
# Per-task answers (each returns "" when the metrics it needs are absent: the headline is used then)
# ---------------------------------------------------------------------------------------------


def _overview(r: Any, results: dict) -> str:
    m = r.metrics
    n_tr, n_te, ratio = _num(m.get("n_train")), _num(m.get("n_test")), _num(m.get("imbalance_ratio"))
    if n_tr is None or n_te is None or ratio is None:
        return ""
    text = (f"The data holds {int(n_tr):,} training and {int(n_te):,} test images; the largest class is {ratio:.2f}× "
            f"the smallest, so ")
    text += "accuracy is a fair summary score." if ratio < 1.5 else "per-class scores matter as much as accuracy."
    dup = _num(m.get("duplicates_in_sample"))
    if dup is not None:
        text += f" A sample of test images had {int(dup)} exact duplicate(s) in the training set."
    return text


def _features(r: Any, results: dict) -> str:
    m = r.metrics
    top_f, top_mi = m.get("top_F_feature"), m.get("top_MI_feature")
    if not isinstance(top_f, str):
        return ""
    text = f"Yes: the most discriminative feature is {top_f} by ANOVA F"
    text += f" and {top_mi} by mutual information." if isinstance(top_mi, str) and top_mi != top_f else " and by mutual information."
    best = None
    for clf in ("logreg", "rf"):
        feats, pix = _num(m.get(f"accuracy_{clf}_features")), _num(m.get(f"accuracy_{clf}_pixels"))
        if feats is not None and pix is not None and (best is None or feats > best[1]):
            best = (clf, feats, pix)
    if best:
        name = {"rf": "a random forest", "logreg": "logistic regression"}[best[0]]
        n = int(m.get("n_features", 0)) or "the"
        text += (f" With {name}, the {n} features reach {_pct(best[1])} test accuracy against {_pct(best[2])} from the raw "
                 "pixels.")
    return text


def _embed(r: Any, results: dict) -> str:
    m = r.metrics
    names = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    acc = {k: _num(m.get(f"{k}_knn_accuracy")) for k in names}
    acc = {k: v for k, v in acc.items() if v is not None}
    if len(acc) < 2:
        return ""
    order = sorted(acc, key=acc.get, reverse=True)
    best, worst = order[0], order[-1]
    text = (f"{names[best]} keeps the classes most apart: a nearest-neighbour vote in its 2-D map recovers "
            f"{_pct(acc[best])} of the labels, against {_pct(acc[worst])} for {names[worst]}.")
    hard = _num(m.get("n_hard"))
    npts = _num(m.get("n_points"))
    if hard is not None and npts:
        text += f" {int(hard):,} of {int(npts):,} images sit among another class even in the original space."
    return text


def _augment(r: Any, results: dict) -> str:
    return ""  # the augment task's own headline states its verdicts (with their noise level)


def _classic(r: Any, results: dict) -> str:
    acc = r.metrics.get("accuracy")
    if not isinstance(acc, dict):
        return ""
    classic = {k: float(v) for k, v in acc.items() if k != "cnn" and _num(v) is not None}
    if len(classic) < 2:
        return ""
    order = sorted(classic, key=classic.get, reverse=True)
    best, worst = order[0], order[-1]
    text = (f"Of {len(classic)} classic models, the {model_name(best)} is the most accurate ({_pct(classic[best])}) and "
            f"the {model_name(worst)} the least ({_pct(classic[worst])}).")
    try:
        from digitlab.models.classic import CLASSIC_MODELS

        linear = [k for k in classic if k in CLASSIC_MODELS and CLASSIC_MODELS[k].family == "linear"]
    except Exception:  # noqa: BLE001 - the family lookup is optional
        linear = []
    if linear:
        lbest = max(linear, key=classic.get)
        if lbest != best:
            err = (1 - classic[lbest]) / max(1 - classic[best], 1e-9)
            text += (f" The best linear model ({model_name(lbest)}, {_pct(classic[lbest])}) makes {err:.1f}× the errors "
                     f"of the {model_name(best)}: one straight boundary per class in pixel space is too simple for digits.")
    return text


def _cnn_vs_classic(results: dict) -> str:
    cl = results.get("classify")
    acc = cl.metrics.get("accuracy") if cl is not None else None
    if not isinstance(acc, dict) or "cnn" not in acc:
        return ""
    classic = {k: float(v) for k, v in acc.items() if k != "cnn" and _num(v) is not None}
    if not classic:
        return ""
    best = max(classic, key=classic.get)
    cnn = float(acc["cnn"])
    diff = 100 * (cnn - classic[best])
    ratio = (1 - classic[best]) / max(1 - cnn, 1e-9)
    if diff > 0:
        return (f"The CNN reaches {_pct(cnn)}, {diff:.2f} points above the best classic model ({model_name(best)}, "
                f"{_pct(classic[best])}): {ratio:.1f}× fewer errors.")
    return (f"The CNN reaches {_pct(cnn)}, {-diff:.2f} points below the best classic model ({model_name(best)}, "
            f"{_pct(classic[best])}) in this run.")


def _cnn_sweeps(r: Any, results: dict) -> str:
    lead = _cnn_vs_classic(results)
    own = headline(r)
    return " ".join(x for x in (lead, own) if x)


ANSWERS: dict[str, Callable[[Any, dict], str]] = {
    "overview": _overview, "features": _features, "embed": _embed, "augment": _augment,
    "classify": _classic, "cnn_sweeps": _cnn_sweeps,
}


def answer(task: str, result: Any, results: dict[str, Any]) -> str:
    """The short answer a task gives to its part of the brief (computed), or its headline."""
    fn = ANSWERS.get(task)
    text = ""
    if fn is not None and result is not None:
        try:
            text = fn(result, results)
        except (TypeError, ValueError, KeyError, ZeroDivisionError):
            text = ""  # damaged metrics: fall back to the headline
    return text or headline(result)


def metrics_answer(results: dict[str, Any]) -> str:
    """The answer of part 3.1: which metrics were computed and what they showed on this run."""
    cl = results.get("classify")
    rows = _table(cl, "scores") if cl is not None else []
    if not rows:
        return ""
    best = rows[0]
    acc, bal, f1 = _num(best.get("accuracy")), _num(best.get("balanced_acc")), _num(best.get("f1_macro"))
    kappa, mcc = _num(best.get("kappa")), _num(best.get("mcc"))
    if acc is None:
        return ""
    text = f"For the best model ({model_name(best.get('model', ''))}) accuracy is {_pct(acc)}"
    extra = [f"balanced accuracy {_pct(bal)}" if bal is not None else "", f"macro F1 {_pct(f1)}" if f1 is not None else ""]
    extra = [e for e in extra if e]
    if extra:
        text += ", " + " and ".join(extra)
    spread = max(abs(acc - v) for v in (bal, f1) if v is not None) if extra else None
    if spread is not None and spread < 0.005:
        text += (f"; these label-based scores differ by at most {100 * spread:.2f} points, as on a nearly balanced test set "
                 "they must, so accuracy with its confidence interval is a fair headline, while per-class F1, the "
                 "confusion matrix and the probability scores show where and how confidently a model fails.")
    elif spread is not None:
        text += (f"; they differ by up to {100 * spread:.2f} points, so the classes are not served equally and the "
                 "class-balanced scores matter as much as accuracy.")
    else:
        text += "."
    if kappa is not None and mcc is not None:
        text += f" Cohen's kappa ({kappa:.4f}) and MCC ({mcc:.4f}) correct for chance agreement."
    return text


__all__ = ["answer", "headline", "metrics_answer", "is_timing"]
