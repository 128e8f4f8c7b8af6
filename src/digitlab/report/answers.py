"""Short answers to the brief's questions, key findings and conclusions, computed from stored results.

Every sentence here is a template filled with numbers a task stored (``TaskResult.metrics``, its
tables, its ``headline``); nothing is typed in. A task whose metrics this module does not know is
answered by its own ``headline`` (or, failing that, its first finding that is not a timing). Each
template exists in English and Chinese (``lang="zh"``); a task's own headline stays in its language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from digitlab.names import humanize, model_name
from digitlab.report.i18n import items

TIMING = re.compile(
    r"\btook\b|\bimages per second\b|\bimg/s\b|\bwall time\b|\bCPU seconds\b|\bin \d[\d.,]* ?s\b", re.I
)


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


def _overview(r: Any, results: dict, zh: bool) -> str:
    m = r.metrics
    n_tr, n_te, ratio = _num(m.get("n_train")), _num(m.get("n_test")), _num(m.get("imbalance_ratio"))
    if n_tr is None or n_te is None or ratio is None:
        return ""
    dup = _num(m.get("duplicates_in_sample"))
    if zh:
        text = f"数据包含 {int(n_tr):,} 张训练图像和 {int(n_te):,} 张测试图像；最大类别的样本数是最小类别的 {ratio:.2f} 倍，"
        text += "因此准确率是合理的总体指标。" if ratio < 1.5 else "因此各类别的指标与准确率同样重要。"
        if dup is not None:
            text += f"抽样检查的测试图像中有 {int(dup)} 张与训练集完全重复。"
        return text
    text = (
        f"The data holds {int(n_tr):,} training and {int(n_te):,} test images; the largest class is {ratio:.2f}× "
        f"the smallest, so "
    )
    text += (
        "accuracy is a fair summary score." if ratio < 1.5 else "per-class scores matter as much as accuracy."
    )
    if dup is not None:
        text += f" A sample of test images had {int(dup)} exact duplicate(s) in the training set."
    return text


def _features(r: Any, results: dict, zh: bool) -> str:
    m = r.metrics
    top_f, top_mi = m.get("top_F_feature"), m.get("top_MI_feature")
    if not isinstance(top_f, str):
        return ""
    best = None
    for clf in ("logreg", "rf"):
        feats, pix = _num(m.get(f"accuracy_{clf}_features")), _num(m.get(f"accuracy_{clf}_pixels"))
        if feats is not None and pix is not None and (best is None or feats > best[1]):
            best = (clf, feats, pix)
    n = int(m.get("n_features", 0) or 0)
    other = isinstance(top_mi, str) and top_mi != top_f
    if zh:
        text = f"是的：按 ANOVA F 最具区分力的特征是 {top_f}" + (
            f"，按互信息是 {top_mi}。" if other else "，按互信息也是它。"
        )
        if best:
            name = {"rf": "随机森林", "logreg": "逻辑回归"}[best[0]]
            text += (
                f"使用{name}时，{n or ''} 个特征的测试准确率为 {_pct(best[1])}，原始像素为 {_pct(best[2])}。"
            )
        return text
    text = f"Yes: the most discriminative feature is {top_f} by ANOVA F"
    text += f" and {top_mi} by mutual information." if other else " and by mutual information."
    if best:
        name = {"rf": "a random forest", "logreg": "logistic regression"}[best[0]]
        text += (
            f" With {name}, the {n or 'hand-crafted'} features reach {_pct(best[1])} test accuracy against "
            f"{_pct(best[2])} from the raw pixels."
        )
    return text


def _embed(r: Any, results: dict, zh: bool) -> str:
    m = r.metrics
    names = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    acc = {k: _num(m.get(f"{k}_knn_accuracy")) for k in names}
    acc = {k: v for k, v in acc.items() if v is not None}
    if len(acc) < 2:
        return ""
    order = sorted(acc, key=acc.get, reverse=True)
    best, worst = order[0], order[-1]
    hard, npts = _num(m.get("n_hard")), _num(m.get("n_points"))
    if zh:
        text = (
            f"{names[best]} 最能将各类分开：在其二维图中用近邻投票可恢复 {_pct(acc[best])} 的标签，"
            f"而 {names[worst]} 只有 {_pct(acc[worst])}。"
        )
        if hard is not None and npts:
            text += f"{int(npts):,} 张图像中有 {int(hard):,} 张即使在原始空间中也位于其他类别之中。"
        return text
    text = (
        f"{names[best]} keeps the classes most apart: a nearest-neighbour vote in its 2-D map recovers "
        f"{_pct(acc[best])} of the labels, against {_pct(acc[worst])} for {names[worst]}."
    )
    if hard is not None and npts:
        text += f" {int(hard):,} of {int(npts):,} images sit among another class even in the original space."
    return text


def _classic(r: Any, results: dict, zh: bool, dataset: dict | None = None) -> str:
    acc = r.metrics.get("accuracy")
    if not isinstance(acc, dict):
        return ""
    classic = {k: float(v) for k, v in acc.items() if k != "cnn" and _num(v) is not None}
    if len(classic) < 2:
        return ""
    lang = "zh" if zh else "en"
    order = sorted(classic, key=classic.get, reverse=True)
    best, worst = order[0], order[-1]
    try:
        from digitlab.models.classic import CLASSIC_MODELS

        linear = [k for k in classic if k in CLASSIC_MODELS and CLASSIC_MODELS[k].family == "linear"]
    except Exception:  # noqa: BLE001 - the family lookup is optional
        linear = []
    lbest = max(linear, key=classic.get) if linear else None
    err = (1 - classic[lbest]) / max(1 - classic[best], 1e-9) if lbest and lbest != best else None
    mb, mw = model_name(best, lang), model_name(worst, lang)
    if zh:
        text = f"在 {len(classic)} 个经典模型中，{mb}最准确（{_pct(classic[best])}），{mw}最差（{_pct(classic[worst])}）。"
        if err is not None:
            text += (
                f"最好的线性模型（{model_name(lbest, lang)}，{_pct(classic[lbest])}）的错误数是{mb}的 {err:.1f} 倍："
                f"像素空间中每类一个线性边界对{items(dataset, 'zh')}来说过于简单。"
            )
        return text
    text = f"Of {len(classic)} classic models, the {mb} is the most accurate ({_pct(classic[best])}) and the {mw} the least ({_pct(classic[worst])})."
    if err is not None:
        text += (
            f" The best linear model ({model_name(lbest)}, {_pct(classic[lbest])}) makes {err:.1f}× the errors "
            f"of the {mb}: one straight boundary per class in pixel space is too simple for {items(dataset)}."
        )
    return text


def _cnn_vs_classic(results: dict, zh: bool) -> str:
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
    if zh:
        name = model_name(best, "zh")
        if diff > 0:
            return f"CNN 达到 {_pct(cnn)}，比最好的经典模型（{name}，{_pct(classic[best])}）高 {diff:.2f} 个百分点，错误数减少到约 1/{ratio:.1f}。"
        return f"本次运行中 CNN 为 {_pct(cnn)}，比最好的经典模型（{name}，{_pct(classic[best])}）低 {-diff:.2f} 个百分点。"
    if diff > 0:
        return (
            f"The CNN reaches {_pct(cnn)}, {diff:.2f} points above the best classic model ({model_name(best)}, "
            f"{_pct(classic[best])}): {ratio:.1f}× fewer errors."
        )
    return (
        f"The CNN reaches {_pct(cnn)}, {-diff:.2f} points below the best classic model ({model_name(best)}, "
        f"{_pct(classic[best])}) in this run."
    )


def _cnn_sweeps(r: Any, results: dict, zh: bool) -> str:
    return " ".join(x for x in (_cnn_vs_classic(results, zh), headline(r)) if x)


ANSWERS: dict[str, Callable[[Any, dict, bool], str]] = {
    "overview": _overview,
    "features": _features,
    "embed": _embed,
    "classify": _classic,
    "cnn_sweeps": _cnn_sweeps,
}


# answers that name the data's images take the run's dataset summary (its meta: kind, item noun)
WITH_DATASET = {"classify"}


def answer(
    task: str, result: Any, results: dict[str, Any], lang: str = "en", dataset: dict | None = None
) -> str:
    """The short answer a task gives to its part of the brief (computed), or its headline. ``dataset``:
    the run's dataset summary (summary.json's "dataset", with ``meta``), for the nouns of the answers."""
    fn = ANSWERS.get(task)
    text = ""
    if fn is not None and result is not None:
        try:
            text = fn(result, results, lang == "zh", *((dataset,) if task in WITH_DATASET else ()))
        except (TypeError, ValueError, KeyError, ZeroDivisionError, AttributeError):
            text = ""  # damaged metrics: fall back to the headline
    return text or headline(result)


def metrics_answer(results: dict[str, Any], lang: str = "en") -> str:
    """The answer of part 3.1: what the metrics showed on this run."""
    cl = results.get("classify")
    rows = _table(cl, "scores") if cl is not None else []
    if not rows or not isinstance(rows[0], dict):
        return ""
    best = rows[0]
    acc, bal, f1 = _num(best.get("accuracy")), _num(best.get("balanced_acc")), _num(best.get("f1_macro"))
    kappa, mcc = _num(best.get("kappa")), _num(best.get("mcc"))
    if acc is None:
        return ""
    others = [v for v in (bal, f1) if v is not None]
    spread = max(abs(acc - v) for v in others) if others else None
    zh = lang == "zh"
    name = model_name(str(best.get("model", "")), lang)
    if zh:
        text = f"对最好的模型（{name}），准确率为 {_pct(acc)}"
        text += (f"，平衡准确率为 {_pct(bal)}" if bal is not None else "") + (
            f"，宏平均 F1 为 {_pct(f1)}" if f1 is not None else ""
        )
        if spread is not None and spread < 0.005:
            text += (
                f"；这些基于标签的指标最多相差 {100 * spread:.2f} 个百分点（在近乎平衡的测试集上理应如此），因此带置信区间的"
                "准确率可以作为总体指标，而各类别 F1、混淆矩阵和概率类指标说明模型在哪里、以多大的置信度出错。"
            )
        elif spread is not None:
            text += f"；它们相差达 {100 * spread:.2f} 个百分点，说明各类别没有得到同等对待，按类别平衡的指标与准确率同样重要。"
        else:
            text += "。"
        if kappa is not None and mcc is not None:
            text += f"Cohen's kappa（{kappa:.4f}）和 MCC（{mcc:.4f}）对偶然一致进行了校正。"
        return text
    text = f"For the best model ({name}) accuracy is {_pct(acc)}"
    extra = [
        f"balanced accuracy {_pct(bal)}" if bal is not None else "",
        f"macro F1 {_pct(f1)}" if f1 is not None else "",
    ]
    extra = [e for e in extra if e]
    if extra:
        text += ", " + " and ".join(extra)
    if spread is not None and spread < 0.005:
        text += (
            f"; these label-based scores differ by at most {100 * spread:.2f} points, as on a nearly balanced test set "
            "they must, so accuracy with its confidence interval is a fair headline, while per-class F1, the "
            "confusion matrix and the probability scores show where and how confidently a model fails."
        )
    elif spread is not None:
        text += (
            f"; they differ by up to {100 * spread:.2f} points, so the classes are not served equally and the "
            "class-balanced scores matter as much as accuracy."
        )
    else:
        text += "."
    if kappa is not None and mcc is not None:
        text += f" Cohen's kappa ({kappa:.4f}) and MCC ({mcc:.4f}) correct for chance agreement."
    return text


__all__ = ["answer", "headline", "metrics_answer", "is_timing"]
