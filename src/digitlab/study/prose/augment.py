"""Sentences of the ``augment`` task: findings, notes, captions, filled in from the numbers."""

from __future__ import annotations

import numpy as np


def pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _join(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


def shift_findings(rows: list[dict]) -> list[str]:
    null = next(r for r in rows if r["augmentation"] == "identity")
    aug = [r for r in rows if r["augmentation"] != "identity"]
    if not aug:
        return []
    by_auc = sorted(aug, key=lambda r: -r["domain_auc"])
    by_knn = sorted(aug, key=lambda r: r["knn_consistency"])
    base = null["knn_consistency_clean"]
    top_auc = [f"{r['augmentation']} (AUC {r['domain_auc']:.2f})" for r in by_auc[:3]]
    hidden = [
        f"{r['augmentation']} (AUC {r['domain_auc']:.2f})"
        for r in aug
        if r["domain_auc"] < null["domain_auc"] + 0.05
    ]
    low_knn = [f"{pct(r['knn_consistency'])} under {r['augmentation']}" for r in by_knn[:3]]
    least = by_auc[-1]
    near_null = (
        _join(hidden)
        if hidden
        else f"none (the least detectable is {least['augmentation']}, AUC {least['domain_auc']:.2f})"
    )
    out = [
        f"Distribution shift: a domain classifier separates clean from augmented images best for {_join(top_auc)}; "
        f"the identity null gives AUC {null['domain_auc']:.2f}. Within 0.05 of the null: "
        f"{near_null}.",
        f"Label consistency: the 5 nearest clean images vote for the true label of {pct(base)} of un-augmented images "
        f"but only {_join(low_knn)}: these transforms move images towards other classes, not just away from the data.",
    ]
    keep = [r["augmentation"] for r in aug if r["domain_auc"] > 0.9 and r["knn_consistency"] >= base - 0.03]
    if keep:
        out.append(
            f"Easy to detect yet label-preserving (AUC > 0.9, k-NN consistency within 3 points of clean): "
            f"{_join(keep)}: a visible change of style, not of class."
        )
    return out


def effect_findings(summary: list[dict], verdicts: dict, names: list[str], n_test: int) -> list[str]:
    """``summary``: per training augmentation ("none" first) ``clean_acc``, ``clean_acc_sd``, ``n_seeds``,
    ``mean_corrupted_acc`` and one accuracy per corruption; ``verdicts``: name -> (verdict, difference, noise)."""
    base = summary[0]
    helps = [f"{a} ({100 * d:+.2f} pp)" for a, (v, d, _) in verdicts.items() if v == "helps"]
    hurts = [f"{a} ({100 * d:+.2f} pp)" for a, (v, d, _) in verdicts.items() if v == "hurts"]
    noise = max((n for _, _, n in verdicts.values()), default=0.0)
    out = [
        f"Clean accuracy: without augmentation the CNN reaches {pct(base['clean_acc'])} (seed SD "
        f"{100 * base['clean_acc_sd']:.2f} pp over {base['n_seeds']} seed(s), {n_test:,} test images). Differences "
        f"beyond twice the noise scale (at most {100 * noise:.2f} pp here) - helped: {_join(helps)}; hurt: {_join(hurts)}; "
        f"the other {len(verdicts) - len(helps) - len(hurts)} are within noise.",
    ]
    if names:
        worst = min(names, key=lambda n: base[n])
        out.append(
            f"The un-augmented model is most fragile to {worst}: {pct(base[worst])} accuracy against "
            f"{pct(base['clean_acc'])} clean (mean over all corruptions {pct(base['mean_corrupted_acc'])})."
        )
        gains = []
        for n in names:
            best = max(summary[1:], key=lambda r: r[n])
            gains.append((best[n] - base[n], n, best["train_augmentation"], base[n], best[n]))
        gains = sorted((g for g in gains if g[0] > 0), reverse=True)
        if gains:
            out.append(
                "Largest robustness gains over 'none': "
                + "; ".join(
                    f"on {n}, training with {a} lifts accuracy from {pct(b0)} to {pct(b1)}"
                    for _, n, a, b0, b1 in gains[:4]
                )
                + "."
            )
        else:
            out.append(
                "No training augmentation raised accuracy on any corruption above the un-augmented model's."
            )
        best_mean = max(summary[1:], key=lambda r: r["mean_corrupted_acc"])
        out.append(
            f"Best mean accuracy over the corruption suite: training with {best_mean['train_augmentation']} "
            f"({pct(best_mean['mean_corrupted_acc'])} vs {pct(base['mean_corrupted_acc'])} without augmentation; "
            f"its clean accuracy {pct(best_mean['clean_acc'])})."
        )
    return out


def flip_findings(
    per_transform: list[dict],
    cms: dict[str, np.ndarray],
    classes: list[str],
    swaps: dict,
    pair: tuple[str, str] | None,
    meta: dict,
) -> list[str]:
    noun = meta.get("item_noun", "image")
    out = []
    for row in per_transform:
        cm = cms[row["transform"]]
        kept = [classes[i] for i in range(len(classes)) if cm[i, i] >= 0.8]
        tops = ", ".join(row[k] for k in ("confusion_1", "confusion_2", "confusion_3") if k in row)
        out.append(
            f"Under {row['transform']}, the un-augmented model still assigns the true label to {pct(row['label_kept'])} "
            f"of test {noun}s; most frequent changes: {tops}. Classes that keep their label (>= 80%): {_join(kept)}."
        )
    if "rot180" in cms and pair:
        a, b = pair
        ia, ib = classes.index(a), classes.index(b)
        cm = cms["rot180"]
        out.append(
            f"A 180-degree rotation turns a {a} into a {b} for the model {pct(cm[ia, ib])} of the time and a {b} into "
            f"a {a} {pct(cm[ib, ia])}: a classifier cannot be invariant to 180-degree rotation and still tell {a} "
            f"from {b}, so large rotations are not label-preserving for {meta.get('kind', 'these images')}."
        )
    if swaps and pair:
        parts = [f"{a}: {n}" for a, n in swaps.items()]
        out.append(
            f"Clean test images confused between {pair[0]} and {pair[1]} (either way) by the model trained with each "
            "augmentation: " + "; ".join(parts) + "."
        )
    if meta.get("flip_preserves_label"):
        out.append(
            f"For {meta.get('kind', 'these images')} a mirror image keeps its class, so flips are a valid augmentation "
            "here even where the model trained without them misreads flipped images."
        )
    return out


def summary(n_augmentations: int, n_train: int, n_seeds: int) -> str:
    return (
        f"{n_augmentations} augmentations from a batched catalogue: what they look like, how far they move "
        f"the data (domain classifier, MMD, k-NN label consistency), and how each changes the clean and corrupted "
        f"test accuracy of the same small CNN trained on {n_train:,} images with {n_seeds} seed(s)."
    )


def notes(cfg, channels: int, colour_added: list[str], optimizer: str, scheduler: str) -> list[str]:
    return [
        f"The images have {channels} colour channels, so the colour augmentation(s) "
        f"{', '.join(colour_added)} were added to the configured list."
    ] * bool(colour_added) + [
        "Domain AUC: cross-validated ROC-AUC of a logistic regression (PCA-50 features fitted on the union) telling a "
        "clean half of the sample from the augmented other half; disjoint halves make the identity transform the null "
        "(AUC about 0.5). MMD: unbiased squared maximum mean discrepancy with an RBF kernel whose width is the median "
        "pairwise distance. k-NN label consistency: share of augmented images whose 5 nearest clean neighbours vote for "
        "their true label.",
        f"Training: {cfg.net} via digitlab.train.fit ({optimizer}, {scheduler} schedule, lr {cfg.lr}, "
        f"batch {cfg.batch_size}), the same "
        f"stratified subset, epochs and seeds for every augmentation; each training image is augmented with probability "
        f"{cfg.train_p}. Corruptions apply each augmentation to the test images with p=1 and a fixed seed.",
        "Helps/hurts: the accuracy difference to 'none' exceeds twice the larger of the seed-based standard error of the "
        "difference and the binomial standard error of one test accuracy.",
    ]


CATALOGUE = "The augmentations compared, with their default parameters. Training applies each with p={p}; the gallery, shift measures and corruptions with p=1."
GALLERY = "The same test images under each augmentation (p=1), original in the first row."
SHIFT_EMBEDDING = (
    "Clean test images (grey) and their augmented versions (coloured by class) in one shared "
    "{method} embedding of PCA-50 features fitted on all of them."
)
SHIFT_MAP = "Where each augmentation lands: detectability (domain AUC) against label consistency (k-NN)."
SHIFT_TABLE = "Distribution shift per augmentation (p=1) on {n} training images: half clean, half augmented."
EFFECT_TABLE = (
    "The same CNN ({net}, width {width}) trained on {n_train:,} images for {epochs} epoch(s) with each "
    "augmentation (p={p}), mean over {n_seeds} seed(s): clean accuracy on {n_test:,} test images and accuracy "
    "on {n_corrupt:,} corrupted test images."
)
ROBUSTNESS_TABLE = "Mean accuracy of each training augmentation (rows) on each test corruption (columns)."
RUNS_TABLE = "Every training run (one row per augmentation and seed)."
CLEAN_DELTA = "Clean test accuracy of each training augmentation minus that of training without augmentation."
HEATMAP = "Accuracy (%) by training augmentation (rows) and test corruption (columns)."
FLIP_TABLE = "How the model trained without augmentation labels flipped / 180-degree-rotated test images."
FLIP_PER_DIGIT = "Per class: fraction that keeps its label under each transform, and the label it most often receives instead."
FLIP_FIGURE = "Row-normalised confusion matrices of the un-augmented model on transformed test images."
