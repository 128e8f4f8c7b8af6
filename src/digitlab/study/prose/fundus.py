"""Sentences of the fundus grading section (task ``fundus``): findings, captions, notes; numbers in, strings out."""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.experiments.fundus import best_of

HOW_TO = (
    "digitlab data synth-fundus DIR  (a synthetic DDR-layout set, for tests and demonstrations), then "
    "digitlab run --dataset ddr --data-dir DIR  (DIR: the folder holding DR_grading/; the real DDR works the same way)"
)


def not_fundus(name: str, meta: dict) -> str:
    return (
        f"{name} is not a fundus dataset (its metadata says kind = {meta.get('kind', 'unknown')!r}), "
        "so diabetic-retinopathy grading does not apply to it. To run this section: " + HOW_TO + "."
    )


def grading_caption(n_test: int, n_balanced: int, n_train: int, balance: str) -> str:
    return (
        f"Every grader on the same {n_test:,} test images ({n_balanced:,} training rows after "
        f"{'oversampling' if balance == 'oversample' else 'no rebalancing'} of {n_train:,} images). "
        "QWK: quadratic weighted kappa with its 95 % bootstrap interval."
    )


def confusion_caption(best: dict) -> str:
    return f"Confusion matrix of the best grader ({best['model']} on {best['input']}): rows true grade, columns predicted."


def domains_caption(other_name: str | None, compare_run: str) -> str:
    return (
        "Augmentations across domains: whether each keeps the label (from each dataset's metadata) and what it "
        "changes: "
        + (f"{other_name}'s accuracy (augment task of {compare_run}), " if other_name else "")
        + "fundus accuracy (this run's augment task) and fundus QWK (the base CNN here)."
    )


CAPTIONS = {
    "per_grade_recall": "Recall per grade: the share of each grade's test images given that grade.",
    "classify_as_graders": "The classify task's models (full-resolution pixels, no rebalancing, its own test subset) scored as graders.",
    "features_vs_grade": "The ten colour/texture features most rank-correlated with the grade (training images).",
    "augmentation_runs": "The base CNN trained with each augmentation.",
    "fundus_gallery": "Test photographs under the augmentations compared here (each applied with p=1), original in the first row.",
    "qwk": "Quadratic weighted kappa of every grader (95 % bootstrap interval).",
    "confusion_best": "Confusion matrix of the best grader (counts; colour: share of the true grade).",
    "recall_per_grade": "Recall per grade of the best model of each input kind.",
    "augmentation_domains": "Change against training without augmentation, per augmentation and domain.",
}
NO_COMPARE = (
    "No MNIST run was named (fundus.compare_run), so the digits side of the comparison comes from MNIST's "
    "metadata; name a run folder whose study ran the augment task to put its measured numbers beside these."
)
SYNTHETIC = (
    "These photographs are synthetic (digitlab's generator, for tests and demonstrations): lesions are drawn "
    "with a number and kind that grow with the grade, so the numbers say how well the pipeline recovers that "
    "rule, not how well it grades real retinas."
)


def summary(n_train: int, n_test: int, cfg: Any, n_features: int, size: int) -> str:
    return (
        f"Grading diabetic retinopathy (0 no DR to 4 proliferative) on {n_train:,} training and {n_test:,} test "
        f"photographs: the classic zoo on {cfg.pixel_size}-px pixels and on {n_features} colour/texture features, "
        f"{len(cfg.nets)} network families at {size} px, class imbalance handled by "
        f"{'oversampling' if cfg.balance == 'oversample' else 'nothing (balance = none)'}, scored by quadratic "
        "weighted kappa; and which augmentations suit photographs rather than digits."
    )


def model_findings(
    rows: list[dict], y_te: np.ndarray, y_tr: np.ndarray, classes: list[str], balance: str
) -> list[str]:
    best = best_of(rows)
    majority = int(np.bincount(y_tr).argmax())
    maj_acc = float(np.mean(y_te == majority))
    out = [
        f"The best grader is the {best['model']} on {best['input']}: quadratic weighted kappa {best['qwk']:.3f} "
        f"(95 % bootstrap interval {best['qwk_low']:.3f}-{best['qwk_high']:.3f}), accuracy {100 * best['accuracy']:.1f} % "
        f"against {100 * maj_acc:.1f} % for always answering the commonest grade ({classes[majority]}, whose kappa is 0)."
    ]
    kinds = [(k, best_of(rows, k)) for k in ("pixels", "features", "network", "classify task")]
    kinds = [(k, b) for k, b in kinds if b is not None]
    if len(kinds) > 1:
        out.append(
            "Best kappa per input: " + "; ".join(f"{k}: {b['model']} {b['qwk']:.3f}" for k, b in kinds) + "."
        )
    rec = {c: best[f"recall {c}"] for c in classes}
    lo = min(rec, key=rec.get)
    counts = np.bincount(y_tr, minlength=len(classes))
    out.append(
        f"Per grade, the best model finds {', '.join(f'{c} {100 * v:.0f} %' for c, v in rec.items())}; the weakest is "
        f"{lo}, which has {counts[classes.index(lo)]:,} training images "
        f"({'oversampled to the largest grade' if balance == 'oversample' else 'no rebalancing'})."
    )
    out.append(
        f"As a referral decision (grade >= 2, moderate NPDR or worse) the best model has sensitivity "
        f"{100 * best['referable_sensitivity']:.1f} % and specificity {100 * best['referable_specificity']:.1f} %; "
        f"{100 * best['within_one']:.1f} % of its grades are at most one step off (mean error {best['mae_grades']:.2f} grades)."
    )
    acc_best = max(rows, key=lambda r: r["accuracy"])
    if acc_best["model"] != best["model"] or acc_best["input"] != best["input"]:
        out.append(
            f"Accuracy and kappa rank differently: the {acc_best['model']} on {acc_best['input']} has the highest accuracy "
            f"({100 * acc_best['accuracy']:.1f} %) but kappa {acc_best['qwk']:.3f}, because kappa charges distant "
            "grade errors more and discounts agreement expected by chance."
        )
    return out


def augment_findings(
    aug_rows: list[dict], comp: list[dict], other_name: str | None, meta: dict, other_meta: dict
) -> list[str]:
    base = next(r for r in aug_rows if r["augmentation"] == "none")
    out = []
    others = [r for r in aug_rows if r["augmentation"] != "none"]
    if others:
        noise = 2 * base["qwk_se"]
        parts = []
        for r in others:
            d = r["qwk"] - base["qwk"]
            verdict = "helps" if d > noise else "hurts" if d < -noise else "within noise"
            parts.append(f"{r['augmentation']} {d:+.3f} ({verdict})")
        out.append(
            f"Trained with one augmentation at a time, the base CNN's kappa moves from {base['qwk']:.3f} without "
            f"augmentation: {'; '.join(parts)} (noise: twice the bootstrap SE of the baseline's kappa, {noise:.3f})."
        )
    swaps = other_meta.get("label_swaps_under_rotation") or []
    pair = f"a {swaps[0][0]} into a {swaps[0][1]}" if swaps else "one symbol into another"
    geo = (
        "keep the grade"
        if meta.get("flip_preserves_label") and meta.get("large_rotation_preserves_label")
        else "may change the label"
    )
    out.append(
        f"Why the domains differ: flips and large rotations {geo} of a fundus photograph (left and right eyes are mirror "
        f"images, cameras sit at any angle, and lesions count wherever they are), while on {other_name or 'MNIST'} a "
        f"180-degree rotation turns {pair} and a mirrored digit is no digit; colour jitter imitates "
        "differences between fundus cameras and exposures, which matter for photographs, whereas greyscale ink has no "
        "colour to vary."
    )
    if other_name:
        flips = [
            r
            for r in comp
            if r["augmentation"] in ("hflip", "vflip", "rotate_large")
            and r.get(f"{other_name} accuracy change (pp)") is not None
        ]
        if flips:
            out.append(
                "Measured side by side (accuracy change in points, "
                + other_name
                + " vs fundus): "
                + "; ".join(
                    f"{r['augmentation']} {r[f'{other_name} accuracy change (pp)']:+.2f} vs "
                    + (
                        "n/a"
                        if r["fundus accuracy change (pp, augment task)"] is None
                        else f"{r['fundus accuracy change (pp, augment task)']:+.2f}"
                    )
                    for r in flips
                )
                + "."
            )
    return out


def method_notes(cfg: Any, size: int, n_features: int, prep_s: float) -> list[str]:
    return [
        "Quadratic weighted kappa: 1 - sum(w * observed) / sum(w * expected) over the grade confusion matrix, weights "
        "w = (i - j)^2 / 16 and the expected matrix from the marginal grade frequencies (chance agreement); 0 = chance, 1 = "
        "perfect. The interval is the 2.5-97.5 % percentile of 500 bootstrap resamples of the test images.",
        f"Class imbalance: {'random oversampling (each grade drawn with replacement up to the largest grade count) of the training images, for every model' if cfg.balance == 'oversample' else 'none'}. "
        "The classify task's models (table 'classify_as_graders') were trained without it.",
        f"Classic inputs: pixels area-averaged to {cfg.pixel_size}x{cfg.pixel_size}x3, and {n_features} colour/texture features "
        f"(digitlab.fundus_features: per-channel moments and histograms, green-channel contrast against its local background, "
        f"yellow fraction, gradient/Laplacian/LBP texture, dark and bright blob counts) standardised with the training "
        f"statistics; preparing both took {prep_s:.1f} s.",
        f"Networks at {size} px: AdamW with the one-cycle schedule, peak lr {cfg.lr}, batch {cfg.batch_size}, a budget of "
        f"{cfg.steps} optimiser steps (epochs follow from the training-set size), no validation split (the last step is kept), "
        f"{cfg.threads or 'torch default'} thread(s), "
        f"family nets trained with {', '.join(cfg.net_augment) or 'no augmentation'} (p={cfg.train_p} each); the augmentation "
        "comparison trains the CNN with one augmentation at a time.",
    ]
