"""Sentences of the datasize task: findings, notes and the headline, from its numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from digitlab.names import model_name


def first_look_findings(rows: list[dict], curves: dict) -> list[str]:
    acc = {r["model"]: r["accuracy"] for r in rows}
    order = sorted(acc, key=acc.get, reverse=True)
    n, n_te = rows[0]["n_train"], rows[0]["n_test"]
    half = 100 * 1.96 * math.sqrt(0.25 / n_te)
    out = [
        f"First look ({n:,} training images, {n_te} test images): {model_name(order[0])} is the most accurate at "
        f"{100 * acc[order[0]]:.1f} %, {model_name(order[-1])} the least at {100 * acc[order[-1]]:.1f} %; with {n_te} test "
        f"images one accuracy is known to within about ±{half:.0f} points (95 %), so only gaps well beyond that count."
    ]
    for m, c in curves.items():
        ev = np.array(c["eval_acc"])
        tr = np.array(c["train_acc"])
        best = int(np.argmax(ev))
        near = int(np.argmax(ev >= ev.max() - 0.005))
        unit = c["unit"]
        out.append(
            f"{model_name(m)}: {c['eval_name']} accuracy comes within 0.5 points of its best ({100 * ev.max():.1f} %, "
            f"reached at {c['x'][best]} {_plural(unit, c['x'][best])}) after {c['x'][near]} of {c['x'][-1]} {unit}s"
            + (f" and ends at {100 * ev[-1]:.1f} %" if ev[-1] < ev.max() - 0.005 else "")
            + f"; training accuracy ends at {100 * tr[-1]:.1f} %, a train-{c['eval_name']} gap of "
            f"{100 * (tr[-1] - ev[-1]):.1f} points."
        )
    return out


def growth_findings(
    summary: list[dict], fits: dict, adequate: dict, cfg: Any, available: int, time_exp: dict[str, float]
) -> list[str]:
    by = {(r["model"], r["n_train"]): r for r in summary}
    models = list(fits)
    n0 = min(r["n_train"] for r in summary)
    n1 = max(r["n_train"] for r in summary)
    mids = sorted({r["n_train"] for r in summary if r["n_train"] <= n1 / 5})
    nm = mids[-1] if mids and mids[-1] > n0 else None
    out = []
    lo = {m: by[(m, n0)]["accuracy_mean"] for m in models if (m, n0) in by}
    hi = {m: by[(m, n1)]["accuracy_mean"] for m in models if (m, n1) in by}
    both = [m for m in models if m in lo and m in hi]
    if both:
        gain = {m: hi[m] - lo[m] for m in both}
        ranked = sorted(both, key=gain.get, reverse=True)
        ratio = {m: (1 - lo[m]) / max(1 - hi[m], 1e-9) for m in both}
        out.append(
            f"From {n0:,} to {n1:,} training images every model's accuracy changes by "
            + ", ".join(
                f"{model_name(m)} {100 * gain[m]:+.1f} points ({100 * lo[m]:.1f} -> {100 * hi[m]:.1f} %, "
                f"error / {ratio[m]:.1f})"
                for m in ranked
            )
            + "."
        )
        out.append(
            f"The models that need data most are {_list(ranked[:3])} (the largest gains); "
            f"{_list(ranked[-2:][::-1])} gain least."
        )
        if nm:
            late = {m: hi[m] - by[(m, nm)]["accuracy_mean"] for m in both if (m, nm) in by}
            early = sorted(late, key=late.get)
            out.append(
                f"Past {nm:,} images, {_list(early[:3])} gain only "
                + ", ".join(f"{100 * late[m]:+.2f}" for m in early[:3])
                + " points up to "
                f"{n1:,} (they saturate early), against {_list(early[-2:][::-1])} with "
                + ", ".join(f"{100 * late[m]:+.2f}" for m in early[-2:][::-1])
                + " points."
            )
        r0, r1 = sorted(both, key=lo.get, reverse=True), sorted(both, key=hi.get, reverse=True)
        moved = [m for m in both if abs(r0.index(m) - r1.index(m)) >= 2]
        if moved:
            out.append(
                "The ranking changes with data: "
                + "; ".join(
                    f"{model_name(m)} is {_ordinal(r0.index(m) + 1)} at {n0:,} and {_ordinal(r1.index(m) + 1)} at {n1:,}"
                    for m in moved
                )
                + "."
            )
        else:
            out.append(
                f"The ranking of the models barely changes between {n0:,} and {n1:,} images (no model moves two places)."
            )
    fitted = {m: a for m, a in adequate.items() if fits.get(m) is not None}
    if fitted:
        words = []
        for m in sorted(fitted, key=lambda m: fitted[m]["size"]):
            a, f = fitted[m], fits[m]
            where = _where(a["size"], f, available)
            ci = (
                f" (95 % interval {_fmt_end(a['low'], f)}-{_fmt_end(a['high'], f)})"
                if math.isfinite(a["low"])
                else " (no interval: too few points)"
            )
            words.append(f"{model_name(m)} {_fmt_size(a['size'])}{ci}, {where}")
        out.append(
            f"Adequate size (where {cfg.gain_per:,} more images buy less than {100 * cfg.min_gain:g} accuracy points, "
            "read from each model's fitted power law): " + "; ".join(words) + "."
        )
        out += _exponent_findings({m: fits[m] for m in fitted})
    t = {m: e for m, e in time_exp.items() if math.isfinite(e)}
    if t:
        fast, slow = min(t, key=t.get), max(t, key=t.get)
        out.append(
            f"Fit time grows like n^{t[slow]:.2f} for {model_name(slow)} (the steepest) and n^{t[fast]:.2f} for "
            f"{model_name(fast)} (the flattest), from a straight line through log time against log size."
        )
    sd0 = [by[(m, n0)]["accuracy_sd"] for m in models if (m, n0) in by and by[(m, n0)]["n"] > 1]
    sdl = [
        r["accuracy_sd"]
        for r in summary
        if r["n"] > 1 and r["n_train"] == max(x["n_train"] for x in summary if x["n"] > 1)
    ]
    if sd0 and sdl:
        out.append(
            f"The spread between seeds shrinks with data: mean SD {100 * np.mean(sd0):.2f} points at {n0:,} images, "
            f"{100 * np.mean(sdl):.2f} at the largest size run with several seeds."
        )
    return out


def _exponent_findings(fits: dict[str, Any]) -> list[str]:
    """Which curve falls fastest and which floor is lowest, from the fits whose parameters the data
    pin down (SD below the value), or a sentence saying the fits are too loose to rank."""
    sure = {m: f for m, f in fits.items() if f.has_covariance and f.b_sd < f.b and "b" not in f.at_bound}
    n_sizes = max(f.n_sizes for f in fits.values())
    if len(sure) < 2:
        return [
            f"With {n_sizes} sizes the fitted exponents are too uncertain to rank the models by how fast their error "
            "falls (standard deviations as large as the values); more sizes or seeds would pin them down."
        ]
    steep, flat = max(sure, key=lambda m: sure[m].b), min(sure, key=lambda m: sure[m].b)
    floors = {m: f for m, f in sure.items() if f.c_sd < max(f.c, 1e-4) and "c" not in f.at_bound}
    out = [
        f"Among the {len(sure)} well-determined fits, the error falls fastest with data for {model_name(steep)} "
        f"(exponent b = {sure[steep].b:.2f} ± {sure[steep].b_sd:.2f}) and slowest for {model_name(flat)} "
        f"(b = {sure[flat].b:.2f} ± {sure[flat].b_sd:.2f})."
    ]
    if len(floors) == 1:
        ((m, f),) = floors.items()
        out.append(
            f"The one well-determined error floor (the error the model would keep with unlimited data of this kind) "
            f"is {model_name(m)}'s, {100 * f.c:.2f} ± {100 * f.c_sd:.2f} %."
        )
    elif floors:
        lo, hi = min(floors, key=lambda m: floors[m].c), max(floors, key=lambda m: floors[m].c)
        out.append(
            f"The fitted error floors (the error a model would keep with unlimited data of this kind) range from "
            f"{100 * floors[lo].c:.2f} ± {100 * floors[lo].c_sd:.2f} % ({model_name(lo)}) to {100 * floors[hi].c:.2f} ± "
            f"{100 * floors[hi].c_sd:.2f} % ({model_name(hi)})."
        )
    return out


def class_findings(
    gain: np.ndarray, classes: list[str], n0: int, n1: int, low_recall: np.ndarray
) -> list[str]:
    mean = gain.mean(0)
    order = np.argsort(-mean)
    hard = int(np.argmin(low_recall.mean(0)))
    return [
        f"Averaged over the models, the classes that gain most recall from {n0:,} to {n1:,} images are "
        + ", ".join(f"{classes[i]} ({mean[i]:+.1f} points)" for i in order[:3])
        + "; the least, "
        + ", ".join(f"{classes[i]} ({mean[i]:+.1f})" for i in order[-2:][::-1])
        + f". At {n0:,} images class {classes[hard]} has the lowest mean recall ({100 * low_recall.mean(0)[hard]:.1f} %)."
    ]


def _list(names: list[str]) -> str:
    w = [model_name(n) for n in names]
    return w[0] if len(w) == 1 else ", ".join(w[:-1]) + " and " + w[-1]


def _plural(unit: str, k: int) -> str:
    return unit if k == 1 else unit + "s"


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def _fmt_end(v: float, fit: Any) -> str:
    """An end of an adequate-size interval; below the smallest size measured the fit says nothing."""
    return f"under {int(fit.size_range[0]):,}" if v < fit.size_range[0] else _fmt_size(v)


def _fmt_size(v: float) -> str:
    if math.isinf(v):
        return "more than 10^12"
    return f"{int(v):,}"


def _where(size: float, f: Any, available: int) -> str:
    """Whether an adequate size lies among the sizes measured or is an extrapolation of the fit."""
    if size > available:
        return f"beyond the {available:,} images the data set has"
    if size > f.size_range[1]:
        return f"extrapolated beyond the largest size measured ({int(f.size_range[1]):,})"
    if size < f.size_range[0]:
        return f"below the smallest size measured ({int(f.size_range[0]):,})"
    return "within the sizes measured"


def fit_note(f: Any, size: float, available: int) -> str:
    parts = []
    if f.at_bound:
        parts.append(f"{', '.join(f.at_bound)} at a bound")
    if not f.has_covariance:
        parts.append("no uncertainty (as many points as parameters)")
    if not f.size_range[0] <= size <= f.size_range[1]:
        parts.append(_where(size, f, available))
    return "; ".join(parts)


def method_notes(
    cfg: Any, sizes: list[int], n_test: int, available: int, rows: list[dict], setups: dict[str, str]
) -> list[str]:
    cnn_rows = [r for r in rows if r["model"] == "cnn" and r.get("steps")]
    notes = [
        f"Growth: every model is trained at {len(sizes)} sizes ({', '.join(f'{s:,}' for s in sizes)} images; a size is a "
        "seeded stratified subset drawn by the study's one subset rule) and scored on the same "
        f"{n_test:,} test images. Seeds per size: {cfg.n_seeds} for most models, {cfg.slow_n_seeds} for "
        f"{_list(cfg.slow_models) if cfg.slow_models else 'none'}, and {cfg.full_n_seeds} on the whole training set "
        "(where only the model's own randomness can vary). A seed draws both the subset and the model's randomness.",
        "The learning curve fitted per model is error(n) = a·(n/1,000)^-b + c by least squares over every (size, seed) "
        "point (scipy's curve_fit with a ≥ 0, 0.01 ≤ b ≤ 4, 0 ≤ c ≤ 1); the ± values are standard deviations from its "
        f"covariance, and the adequate size's interval comes from {cfg.n_draws:,} parameter draws from that covariance. "
        "The adequate size is the smallest n where error(n) - error(n + "
        f"{cfg.gain_per:,}) falls below {100 * cfg.min_gain:g} points: beyond it more data buys little, by the fit.",
        "Every model uses the same settings as in the model comparison: "
        + "; ".join(f"{model_name(m)}: {setups[m]}" for m in cfg.models)
        + ".",
    ]
    if cnn_rows:
        per = {}
        for r in cnn_rows:
            per.setdefault(r["n_train"], set()).add((r["epochs"], r["steps"]))
        notes.append(
            "The CNN's training budget grows with the data: its recipe runs at least "
            + (f"{cfg.cnn_min_steps}" if cfg.cnn_min_steps else "the recipe's minimum number of")
            + " optimiser steps, adding epochs on small sets. Budget per size: "
            + "; ".join(
                f"{n:,} images: " + ", ".join(f"{e} epochs / {s} steps" for e, s in sorted(v))
                for n, v in sorted(per.items())
            )
            + "."
        )
    return notes


def reuse_note(n: int, reused: list[str], refused: list[str], seed: int) -> str:
    """What the growth read from the classify task's runs, and what it retrained."""
    note = (
        f"The {n:,}-image points of {_list(reused) if reused else 'no model'} (seed {seed}) are the "
        "classify task's runs, read from its predictions: the same training images, test images, seed and settings."
    )
    if refused:
        note += (
            f" The {_list(refused)} {'was' if len(refused) == 1 else 'were'} set up differently in classify "
            "(model settings or, for the CNN, its step budget) and retrained here."
        )
    return note


def size_notes(over: list[int], available: int) -> list[str]:
    if not over:
        return []
    return [
        f"The configuration asks for {', '.join(f'{s:,}' for s in over)} training images; {available:,} "
        "exist, so those sizes become all of them."
    ]


def headline(summary: list[dict], adequate: dict, cfg: Any, n0: int, n1: int) -> str:
    """The section's key finding: the best model's gain over the sizes and the adequate sizes."""
    best1 = max((r for r in summary if r["n_train"] == n1), key=lambda r: r["accuracy_mean"])
    best0 = {r["model"]: r for r in summary if r["n_train"] == n0}[best1["model"]]
    fitted = {m: a["size"] for m, a in adequate.items()}
    text = (
        f"From {n0:,} to {n1:,} training images the most accurate model, {model_name(best1['model'])}, goes from "
        f"{100 * best0['accuracy_mean']:.2f} % to {100 * best1['accuracy_mean']:.2f} %"
    )
    if best1["model"] in fitted:
        text += (
            f"; by its fitted learning curve {cfg.gain_per:,} more images stop buying {100 * cfg.min_gain:g} points at "
            f"about {_fmt_size(fitted[best1['model']])} images"
        )
    if fitted:
        lo_m, hi_m = min(fitted, key=fitted.get), max(fitted, key=fitted.get)
        text += (
            f" (adequate sizes range from {_fmt_size(fitted[lo_m])} for {model_name(lo_m)} to "
            f"{_fmt_size(fitted[hi_m])} for {model_name(hi_m)})"
        )
    return text + "."


def summary(cfg: Any, first_rows: list[dict], sizes: list[int], n_test: int) -> str:
    return (
        f"How accuracy grows with training data: {len(cfg.models)} models trained on {first_rows[0]['n_train']:,} images "
        f"for a first look, then at {len(sizes)} sizes from {sizes[0]:,} to {sizes[-1]:,} images with several seeds each, scored on "
        f"{n_test:,} test images, with a saturating power law fitted to each model's curve."
    )


def closing_note(n_test: int) -> str:
    return (
        "The first look's 200 test images make each accuracy uncertain by several points; the growth uses the "
        f"{n_test:,}-image test set. Per-point results (accuracy, times, budget, recall per class) are in growth.csv."
    )


def missing_note(missing: list[int]) -> list[str]:
    return (
        [
            f"Milestone sizes {', '.join(f'{s:,}' for s in missing)} are not among the growth sizes and are left out."
        ]
        if missing
        else []
    )


NO_REUSE = "Nothing is reused from the classify task (datasize.reuse_classify = false)."
OTHER_TEST = "The classify task scored other test images, so none of its runs is reused."


def no_match(n: int) -> str:
    return f"The classify task's runs ({n:,} training images) match none of the sizes here, so every point is trained."


def captions(cfg: Any, first_rows: list[dict], n0: int, n1: int) -> dict[str, str]:
    """Figure captions by figure name; table captions under "table_<name>"."""
    n, n_te = first_rows[0]["n_train"], first_rows[0]["n_test"]
    return {
        "first_look": f"First look: test accuracy of every model trained on {n:,} images ({cfg.first_look_per_class} per class), "
        f"scored on {n_te} test images.",
        "convergence": "Convergence in the first look: training and held-out accuracy (solid) and cross-entropy (dashed, log) per "
        "epoch (CNN: on its own validation split; NumPy MLP), L-BFGS iteration (logistic regression), boosting round "
        "or number of trees (on the first look's test images).",
        "growth": "Test accuracy against training-set size (log scale) per model: points are the mean over seeds with their range, "
        "the line the fitted saturating power law with its 95 % band, the dotted line the adequate size when it lies in "
        "the plotted range.",
        "error_all": "Test error of every model against training-set size, both axes logarithmic.",
        "fit_time": "Fit time against training-set size, both axes logarithmic (this machine; points read from the classify task "
        "carry its times).",
        "class_gain": f"Per-class recall gained between {n0:,} and {n1:,} training images (points; mean over seeds).",
        "table_first_look": f"First look: {n:,} training images ({cfg.first_look_per_class} per class), {n_te} test images.",
        "table_convergence": "How training converged in the first look: per iterative model, the best held-out accuracy and when "
        "it was reached, when it came within 0.5 points of it, and the final training and held-out accuracy "
        "and cross-entropy.",
        "table_growth": "Test accuracy (fraction) per model and training-set size: mean, SD, min and max over seeds, mean fit time "
        "(s), training budget, and whether the point was trained here or read from classify.",
        "table_milestones": "Accuracy, macro precision / recall / F1 and recall per class at the milestone sizes (means over seeds).",
    }


def fits_caption(cfg: Any, available: int) -> str:
    return (
        "Fitted error = a·(n/1,000)^-b + c per model (± SD), accuracy ceiling 1 - c, fit RMSE (points), adequate size with its "
        f"95 % interval, and the gain per {cfg.gain_per:,} images at {available:,} images (points)."
    )
