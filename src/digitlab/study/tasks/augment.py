"""Task ``augment``: which transformations are valid for digits, how they move the data, what they do to a CNN.

Four parts, each computed from data:

1. a gallery of the catalogue (:mod:`digitlab.augment`) on the same test digits;
2. distribution shift: per augmentation a domain-classifier AUC, an RBF MMD and the k-NN label
   consistency of augmented images among clean ones, plus a shared 2-D embedding (small multiples);
3. effectiveness: the same small CNN trained with each augmentation (same subset, budget and
   seeds), scored on the clean test set and on a corruption suite (each augmentation applied to
   the test set with p=1);
4. why flips and large rotations are invalid for digits: how the un-augmented model labels
   mirrored and rotated test digits (e.g. 6 <-> 9 under 180 degrees).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np

from digitlab.augment import (AUGMENTATIONS, augment_images, distribution_shift, get_augmentation, plot_gallery,
                              plot_shift_embedding, shift_embedding)  # fmt: skip
from digitlab.grid import fit_and_score
from digitlab.data.subsets import subset_indices
from digitlab.exceptions import ConfigError
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png

NAME = "augment"
TITLE = "Augmentation: which transformations keep the label, how they move the data, and what they do"

ALL_AUGMENTATIONS = [n for n in AUGMENTATIONS if n != "identity" and not AUGMENTATIONS[n].colour_only]
COLOUR_AUGMENTATIONS = [n for n in AUGMENTATIONS if AUGMENTATIONS[n].colour_only]  # added on colour images
KEY_CORRUPTIONS = ("rotate_large", "hflip", "vflip", "gaussian_noise", "elastic", "rotate_small")
FLIP_TRANSFORMS = {  # transform label -> (catalogue name, params): exact, label-changing candidates
    "hflip": ("hflip", {"p": 1.0}),
    "vflip": ("vflip", {"p": 1.0}),
    "rot180": ("rotate_large", {"p": 1.0, "degrees": 180.0, "exact": True}),
}


@dataclass
class Config:
    augmentations: list[str] = field(default_factory=lambda: list(ALL_AUGMENTATIONS))  # catalogue names compared
    n_train: int = 10000  # stratified training subset for every CNN (0 = the whole training set)
    n_test: int = 0  # stratified test subset for clean accuracy and the flip analysis (0 = all)
    n_test_corrupt: int = 1000  # stratified test subset for the corruption suite (0 = all)
    train_p: float = 0.5  # probability that a training image is augmented (the same for every augmentation)
    net: str = "cnn"  # network family (digitlab.models.nets)
    width: int = 8  # channels of the first block ("cnn"/"resnet"): a small, fast net (~97.5% after 2 epochs on 10k)
    n_blocks: int = 3  # conv blocks ("cnn" only)
    epochs: int = 2  # passes over the training subset per run
    batch_size: int = 128  # images per step
    lr: float = 0.01  # peak learning rate (one-cycle, AdamW: the engine's fast recipe)
    n_seeds: int = 2  # training seeds per augmentation (study seed, +1, ...)
    max_seconds: float = 0.0  # wall-time cap per training run (0 = none)
    shift_n: int = 1000  # images per distribution-shift measurement (half clean, half augmented)
    embed_n: int = 200  # images in the shared-embedding figure (each shown clean and under every augmentation)
    embed_method: str = "tsne"  # "pca" | "tsne" | "umap": the shared 2-D embedding (t-SNE: ~15 s for 3,600 points)
    gallery_n: int = 8  # images per gallery row

    def validate(self) -> None:
        unknown = [a for a in self.augmentations if a not in AUGMENTATIONS]
        if unknown or not self.augmentations:
            raise ConfigError(f"config key augment.augmentations: unknown or empty ({', '.join(unknown)}); "
                              f"use names from {', '.join(ALL_AUGMENTATIONS + COLOUR_AUGMENTATIONS)}")
        for key in ("n_train", "n_test", "n_test_corrupt"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config key augment.{key}: {getattr(self, key)} is negative; use 0 (= all) or a size")
        for key in ("epochs", "n_seeds", "batch_size", "width", "n_blocks", "gallery_n"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key augment.{key}: {getattr(self, key)} must be at least 1")
        if not 0.0 < self.train_p <= 1.0:
            raise ConfigError(f"config key augment.train_p: {self.train_p} must be in (0, 1]")
        if self.shift_n < 40 or self.embed_n < 10:
            raise ConfigError("config keys augment.shift_n / embed_n: too small; use at least 40 / 10")
        if self.embed_method not in ("pca", "tsne", "umap"):
            raise ConfigError(f"config key augment.embed_method: {self.embed_method!r} unknown; use pca, tsne or umap")


PROFILES: dict[str, dict] = {
    "quick": {"augmentations": ["hflip", "rotate_small", "rotate_large", "elastic", "gaussian_noise"], "n_train": 2000,
              "n_test": 1000, "n_test_corrupt": 500, "width": 8, "n_blocks": 2, "epochs": 1, "batch_size": 64, "n_seeds": 1,
              "shift_n": 300, "embed_n": 150, "embed_method": "pca"},  # fmt: skip
    "full": {"n_train": 0, "n_test": 0, "n_test_corrupt": 0, "width": 32, "epochs": 3, "n_seeds": 3, "shift_n": 4000,
             "embed_n": 1000, "embed_method": "tsne"},  # fmt: skip
}


# =============================================================================================
# Helpers
# =============================================================================================


def _net_params(cfg: Config) -> dict:
    if cfg.net == "cnn":
        return {"width": cfg.width, "n_blocks": cfg.n_blocks}
    if cfg.net == "resnet":
        return {"width": cfg.width}
    return {}


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


# =============================================================================================
# Part 2: distribution shift
# =============================================================================================


def measure_shift(ctx: TaskContext, cfg: Config) -> list[dict]:
    """Domain AUC, MMD and k-NN consistency for identity (the null) and every augmentation."""
    ds = ctx.dataset
    rows = []
    for name in ["identity"] + list(cfg.augmentations):
        r = distribution_shift(ds.x_train, ds.y_train, name, seed=ctx.seed, n=cfg.shift_n, n_jobs=ctx.n_jobs)
        rows.append({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items() if k != "mmd_bandwidth"})
    return rows


def plot_shift_map(rows: list[dict]):
    """Domain AUC (x) against k-NN label consistency (y): where each augmentation lands."""
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    for r in rows:
        ax.scatter(r["domain_auc"], r["knn_consistency"], s=18, color="tab:blue" if r["augmentation"] != "identity" else "k")
        ax.annotate(r["augmentation"], (r["domain_auc"], r["knn_consistency"]), fontsize=7, xytext=(3, 2),
                    textcoords="offset points")
    base = next((r["knn_consistency_clean"] for r in rows if r["augmentation"] == "identity"), None)
    if base is not None:
        ax.axhline(base, color="0.5", ls="--", lw=0.8, label="clean k-NN consistency")
    ax.axvline(0.5, color="0.5", ls=":", lw=0.8, label="AUC 0.5 (indistinguishable)")
    ax.set_xlabel("domain-classifier ROC-AUC (clean vs augmented)")
    ax.set_ylabel("k-NN label consistency among clean images")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


# =============================================================================================
# Part 3: effectiveness (training runs through digitlab.train.fit) and the corruption suite
# =============================================================================================


def corruption_suite(x: np.ndarray, names: list[str], seed: int) -> dict[str, np.ndarray]:
    """Each augmentation applied with p=1 to the test images, seeded (shared by every model)."""
    # An offset seed so the corruption draws are not the ones the gallery and shift measures used.
    return {name: augment_images(x, name, seed=seed + 7919, p=1.0) for name in names}


def train_runs(ctx: TaskContext, cfg: Config, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
               suite: dict[str, np.ndarray], y_suite: np.ndarray, flips: dict[str, np.ndarray]) -> tuple[list[dict], dict]:
    """Train one CNN per (training augmentation, seed); score clean, corrupted and flipped tests.

    ``suite`` maps corruption name -> corrupted images labelled ``y_suite``; ``flips`` maps
    transform name -> transformed ``x_te``. Returns the per-run rows and, per (augmentation, seed),
    the predicted labels on the clean test images (and, for the first seed of "none", the reference
    model, on the flipped ones).
    """
    from digitlab.train import TrainConfig

    names = list(suite)
    # One forward pass per model over clean + corrupted (+ flipped, for the reference model only) images.
    stacked = np.concatenate([x_te] + [suite[n] for n in names])
    stacked_ref = np.concatenate([stacked] + [flips[k] for k in flips])
    sizes = [len(x_te)] + [len(suite[n]) for n in names] + [len(flips[k]) for k in flips]
    runs, preds = [], {}
    for aug_name in ["none"] + list(cfg.augmentations):
        augment = None if aug_name == "none" else get_augmentation(aug_name, p=cfg.train_p)
        for s in range(cfg.n_seeds):
            seed = ctx.seed + s
            tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, device=ctx.device,
                               max_seconds=cfg.max_seconds)  # fmt: skip
            reference = aug_name == "none" and s == 0
            t0 = time.perf_counter()
            res = fit_and_score(cfg.net, _net_params(cfg), x_tr, y_tr, {"all": (stacked_ref if reference else stacked, None)},
                                tcfg, seed=seed, augment=augment, n_classes=ctx.dataset.n_classes, progress=ctx.progress)
            seconds = time.perf_counter() - t0
            pred = np.split(res["all_pred"], np.cumsum(sizes)[: (len(sizes) if reference else 1 + len(names)) - 1])
            row = {"train_augmentation": aug_name, "seed": seed, "clean_acc": float(np.mean(pred[0] == y_te)),
                   "train_seconds": round(seconds, 2), "best_epoch": res["best_epoch"]}
            for name, p in zip(names, pred[1:1 + len(names)]):
                row[name] = float(np.mean(p == y_suite))
            row["mean_corrupted_acc"] = float(np.mean([row[n] for n in names])) if names else float("nan")
            runs.append(row)
            preds[(aug_name, seed)] = {"clean": pred[0], **(dict(zip(flips, pred[1 + len(names):])) if reference else {})}
            ctx.log.info("augment: trained with %s (seed %d) in %.1f s: clean %.4f, corrupted %.4f", aug_name, seed,
                         seconds, row["clean_acc"], row["mean_corrupted_acc"])  # fmt: skip
    return runs, preds


def summarise_runs(runs: list[dict], names: list[str], order: list[str]) -> list[dict]:
    """Mean over seeds per training augmentation, with the seed spread (sample SD) of clean accuracy."""
    out = []
    for aug in order:
        rs = [r for r in runs if r["train_augmentation"] == aug]
        clean = np.array([r["clean_acc"] for r in rs])
        row = {"train_augmentation": aug, "n_seeds": len(rs), "clean_acc": float(clean.mean()),
               "clean_acc_sd": float(clean.std(ddof=1)) if len(rs) > 1 else 0.0,
               "mean_corrupted_acc": float(np.mean([r["mean_corrupted_acc"] for r in rs]))}  # fmt: skip
        row.update({n: float(np.mean([r[n] for r in rs])) for n in names})
        row["train_seconds"] = float(np.mean([r["train_seconds"] for r in rs]))
        out.append(row)
    base = out[0]
    for row in out:
        row["delta_clean_vs_none"] = row["clean_acc"] - base["clean_acc"]
    return out


def clean_verdicts(summary: list[dict], n_test: int) -> dict[str, tuple[str, float, float]]:
    """Per augmentation: ("helps" | "hurts" | "within noise", difference, noise scale).

    The noise scale is the larger of the seed-based standard error of the difference of means and
    the binomial standard error of one accuracy on ``n_test`` images (so one seed is not over-read).
    A difference beyond twice that scale is called a help or a hurt.
    """
    base = summary[0]
    out = {}
    for row in summary[1:]:
        se_seed = np.sqrt(row["clean_acc_sd"] ** 2 / row["n_seeds"] + base["clean_acc_sd"] ** 2 / base["n_seeds"])
        p = base["clean_acc"]
        se_binom = np.sqrt(p * (1 - p) / max(n_test, 1))
        noise = float(max(se_seed, se_binom))
        d = row["delta_clean_vs_none"]
        verdict = "helps" if d > 2 * noise else "hurts" if d < -2 * noise else "within noise"
        out[row["train_augmentation"]] = (verdict, d, noise)
    return out


def plot_clean_delta(summary: list[dict], verdicts: dict):
    """Change of clean test accuracy against 'none' per training augmentation, +- 2 noise scales."""
    rows = summary[1:]
    names = [r["train_augmentation"] for r in rows]
    d = np.array([100 * r["delta_clean_vs_none"] for r in rows])
    err = np.array([200 * verdicts[n][2] for n in names])
    colors = ["tab:green" if verdicts[n][0] == "helps" else "tab:red" if verdicts[n][0] == "hurts" else "0.6" for n in names]
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y, d, xerr=err, color=colors, capsize=2)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("clean test accuracy minus 'none' (percentage points; bars: +-2 noise scales)")
    fig.tight_layout()
    return fig


def plot_robustness_heatmap(summary: list[dict], names: list[str]):
    """Mean accuracy (%) of each training augmentation (rows) on each test corruption (columns)."""
    cols = ["clean"] + names
    m = np.array([[r["clean_acc"]] + [r[n] for n in names] for r in summary]) * 100
    fig, ax = plt.subplots(figsize=(0.55 * len(cols) + 2.5, 0.33 * len(summary) + 1.6))
    im = ax.imshow(m, cmap="viridis", vmin=max(0.0, float(m.min())), vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(summary)), [r["train_augmentation"] for r in summary], fontsize=7)
    ax.set_xlabel("test set (corruption applied with p=1)")
    ax.set_ylabel("training augmentation")
    thresh = (m.min() + 100) / 2
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=6, color="w" if m[i, j] < thresh else "k")
    fig.colorbar(im, ax=ax, label="accuracy (%)", shrink=0.8)
    fig.tight_layout()
    return fig


# =============================================================================================
# Part 4: why flips and large rotations are invalid for digits
# =============================================================================================


def flip_confusions(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Row-normalised confusion matrix: fraction of true class i predicted as j."""
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (y, pred), 1)
    return cm / np.maximum(cm.sum(1, keepdims=True), 1)


def top_confusions(cm: np.ndarray, classes: list[str], k: int = 3) -> list[tuple[str, str, float]]:
    """The ``k`` largest off-diagonal fractions as (true, predicted, fraction of the true class)."""
    off = cm.copy()
    np.fill_diagonal(off, -1)
    flat = np.argsort(off, axis=None)[::-1][:k]
    return [(classes[i], classes[j], float(off[i, j])) for i, j in zip(*np.unravel_index(flat, cm.shape))]


def plot_flip_confusions(cms: dict[str, np.ndarray], classes: list[str]):
    """One row-normalised confusion matrix per transform, for the model trained without augmentation."""
    fig, axes = plt.subplots(1, len(cms), figsize=(3.3 * len(cms), 3.4), squeeze=False)
    for ax, (name, cm) in zip(axes[0], cms.items()):
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j] >= 0.1:
                    ax.text(j, i, f"{100 * cm[i, j]:.0f}", ha="center", va="center", fontsize=6,
                            color="w" if cm[i, j] > 0.5 else "k")
        ax.set_xticks(range(len(classes)), classes, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(f"{name}: predicted vs true (%)", fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    fig.tight_layout()
    return fig


def flip_tables(cms: dict[str, np.ndarray], classes: list[str]) -> tuple[list[dict], list[dict]]:
    """Per transform (kept accuracy, top confusions) and per digit (kept fraction, commonest other label)."""
    per_transform, per_digit = [], []
    for name, cm in cms.items():
        tops = top_confusions(cm, classes)
        row = {"transform": name, "label_kept": float(np.mean(np.diag(cm)))}
        for i, (t, p, f) in enumerate(tops, 1):
            row[f"confusion_{i}"] = f"{t} -> {p} ({_pct(f)})"
        per_transform.append(row)
    for c, label in enumerate(classes):
        row = {"class": label}
        for name, cm in cms.items():
            other = cm[c].copy()
            other[c] = -1
            row[f"{name}_kept"] = float(cm[c, c])
            row[f"{name}_most_often"] = f"{classes[int(other.argmax())]} ({_pct(float(other.max()))})"
        per_digit.append(row)
    return per_transform, per_digit


# =============================================================================================
# Findings
# =============================================================================================


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
    hidden = [f"{r['augmentation']} (AUC {r['domain_auc']:.2f})" for r in aug if r["domain_auc"] < null["domain_auc"] + 0.05]
    low_knn = [f"{_pct(r['knn_consistency'])} under {r['augmentation']}" for r in by_knn[:3]]
    least = by_auc[-1]
    near_null = _join(hidden) if hidden else f"none (the least detectable is {least['augmentation']}, AUC {least['domain_auc']:.2f})"
    out = [
        f"Distribution shift: a domain classifier separates clean from augmented images best for {_join(top_auc)}; "
        f"the identity null gives AUC {null['domain_auc']:.2f}. Within 0.05 of the null: "
        f"{near_null}.",
        f"Label consistency: the 5 nearest clean images vote for the true label of {_pct(base)} of un-augmented images "
        f"but only {_join(low_knn)}: these transforms move images towards other classes, not just away from the data.",
    ]
    keep = [r["augmentation"] for r in aug if r["domain_auc"] > 0.9 and r["knn_consistency"] >= base - 0.03]
    if keep:
        out.append(f"Easy to detect yet label-preserving (AUC > 0.9, k-NN consistency within 3 points of clean): "
                   f"{_join(keep)}: a visible change of style, not of class.")
    return out


def effect_findings(summary: list[dict], verdicts: dict, names: list[str], n_test: int) -> list[str]:
    base = summary[0]
    helps = [f"{a} ({100 * d:+.2f} pp)" for a, (v, d, _) in verdicts.items() if v == "helps"]
    hurts = [f"{a} ({100 * d:+.2f} pp)" for a, (v, d, _) in verdicts.items() if v == "hurts"]
    noise = max((n for _, _, n in verdicts.values()), default=0.0)
    out = [
        f"Clean accuracy: without augmentation the CNN reaches {_pct(base['clean_acc'])} (seed SD "
        f"{100 * base['clean_acc_sd']:.2f} pp over {base['n_seeds']} seed(s), {n_test:,} test images). Differences "
        f"beyond twice the noise scale (at most {100 * noise:.2f} pp here) - helped: {_join(helps)}; hurt: {_join(hurts)}; "
        f"the other {len(verdicts) - len(helps) - len(hurts)} are within noise.",
    ]
    if names:
        worst = min(names, key=lambda n: base[n])
        out.append(f"The un-augmented model is most fragile to {worst}: {_pct(base[worst])} accuracy against "
                   f"{_pct(base['clean_acc'])} clean (mean over all corruptions {_pct(base['mean_corrupted_acc'])}).")
        gains = []
        for n in names:
            best = max(summary[1:], key=lambda r: r[n])
            gains.append((best[n] - base[n], n, best["train_augmentation"], base[n], best[n]))
        gains = sorted((g for g in gains if g[0] > 0), reverse=True)
        if gains:
            out.append("Largest robustness gains over 'none': " + "; ".join(
                f"on {n}, training with {a} lifts accuracy from {_pct(b0)} to {_pct(b1)}" for _, n, a, b0, b1 in gains[:4]) + ".")
        else:
            out.append("No training augmentation raised accuracy on any corruption above the un-augmented model's.")
        best_mean = max(summary[1:], key=lambda r: r["mean_corrupted_acc"])
        out.append(f"Best mean accuracy over the corruption suite: training with {best_mean['train_augmentation']} "
                   f"({_pct(best_mean['mean_corrupted_acc'])} vs {_pct(base['mean_corrupted_acc'])} without augmentation; "
                   f"its clean accuracy {_pct(best_mean['clean_acc'])}).")
    return out


def _swap_pair(meta: dict, classes: list[str]) -> tuple[str, str] | None:
    """The class pair a 180-degree rotation swaps, from the dataset's metadata (6/9 for digits)."""
    for a, b in meta.get("label_swaps_under_rotation", []):
        if a in classes and b in classes:
            return a, b
    return None


def flip_findings(per_transform: list[dict], cms: dict[str, np.ndarray], classes: list[str], cm_clean: dict,
                  meta: dict) -> list[str]:
    noun = meta.get("item_noun", "image")
    out = []
    for row in per_transform:
        cm = cms[row["transform"]]
        kept = [classes[i] for i in range(len(classes)) if cm[i, i] >= 0.8]
        tops = ", ".join(row[k] for k in ("confusion_1", "confusion_2", "confusion_3") if k in row)
        out.append(f"Under {row['transform']}, the un-augmented model still assigns the true label to {_pct(row['label_kept'])} "
                   f"of test {noun}s; most frequent changes: {tops}. Classes that keep their label (>= 80%): {_join(kept)}.")
    pair = _swap_pair(meta, classes)
    if "rot180" in cms and pair:
        a, b = pair
        ia, ib = classes.index(a), classes.index(b)
        cm = cms["rot180"]
        out.append(f"A 180-degree rotation turns a {a} into a {b} for the model {_pct(cm[ia, ib])} of the time and a {b} into "
                   f"a {a} {_pct(cm[ib, ia])}: a classifier cannot be invariant to 180-degree rotation and still tell {a} "
                   f"from {b}, so large rotations are not label-preserving for {meta.get('kind', 'these images')}.")
    if cm_clean and pair:
        parts = [f"{a}: {n}" for a, n in cm_clean.items()]
        out.append(f"Clean test images confused between {pair[0]} and {pair[1]} (either way) by the model trained with each "
                   "augmentation: " + "; ".join(parts) + ".")
    if meta.get("flip_preserves_label"):
        out.append(f"For {meta.get('kind', 'these images')} a mirror image keeps its class, so flips are a valid augmentation "
                   "here even where the model trained without them misreads flipped images.")
    return out


# =============================================================================================
# run
# =============================================================================================


def _gallery_part(ctx: TaskContext, cfg: Config, tables: list, figures: list) -> None:
    ds, names = ctx.dataset, list(cfg.augmentations)
    catalogue = [{"augmentation": n, "description": AUGMENTATIONS[n].description, "default_p": AUGMENTATIONS[n].defaults["p"],
                  "parameters": ", ".join(f"{k}={v}" for k, v in AUGMENTATIONS[n].defaults.items() if k != "p") or "-"}
                 for n in names]  # fmt: skip
    tables.append(Table("catalogue", catalogue, f"The augmentations compared, with their default parameters. Training applies "
                                                f"each with p={cfg.train_p}; the gallery, shift measures and corruptions with p=1.",
                        ["augmentation", "parameters", "default_p", "description"]))  # fmt: skip
    idx = subset_indices(ds.y_test, cfg.gallery_n, ctx.seed)
    figures.append(Figure("gallery", save_png(plot_gallery(ds.x_test[idx], names, seed=ctx.seed), ctx.out_dir, "gallery"),
                          "The same test images under each augmentation (p=1), original in the first row."))


def _shift_part(ctx: TaskContext, cfg: Config, tables: list, figures: list) -> list[dict]:
    ds, names = ctx.dataset, list(cfg.augmentations)
    rows = measure_shift(ctx, cfg)
    idx = subset_indices(ds.y_test, cfg.embed_n, ctx.seed)
    clean_2d, aug_2d = shift_embedding(ds.x_test[idx], names, seed=ctx.seed, method=cfg.embed_method, n_jobs=ctx.n_jobs)
    fig = plot_shift_embedding(clean_2d, aug_2d, ds.y_test[idx], stats={r["augmentation"]: r for r in rows})
    figures.append(Figure("shift_embedding", save_png(fig, ctx.out_dir, "shift_embedding"),
                          f"Clean test images (grey) and their augmented versions (coloured by class) in one shared "
                          f"{cfg.embed_method.upper()} embedding of PCA-50 features fitted on all of them."))  # fmt: skip
    figures.append(Figure("shift_map", save_png(plot_shift_map(rows), ctx.out_dir, "shift_map"),
                          "Where each augmentation lands: detectability (domain AUC) against label consistency (k-NN)."))
    tables.append(Table("distribution_shift", rows,
                        f"Distribution shift per augmentation (p=1) on {cfg.shift_n} training images: half clean, half augmented.",
                        ["augmentation", "domain_auc", "mmd2", "knn_consistency", "knn_consistency_clean",
                         "mean_abs_pixel_change"]))  # fmt: skip
    return rows


def _effect_part(ctx: TaskContext, cfg: Config, tables: list, figures: list):
    """Train every configuration, score it; returns (runs, summary, verdicts, preds, y_te, n_train)."""
    ds, names = ctx.dataset, list(cfg.augmentations)
    tr = subset_indices(ds.y_train, cfg.n_train, ctx.seed)
    te = subset_indices(ds.y_test, cfg.n_test, ctx.seed)
    tc = subset_indices(ds.y_test[te], cfg.n_test_corrupt, ctx.seed)  # corruption subset, inside the clean test subset
    x_te, y_te = ds.x_test[te], ds.y_test[te]
    suite = corruption_suite(x_te[tc], names, ctx.seed)
    flips = {k: augment_images(x_te, n, seed=ctx.seed, **p) for k, (n, p) in FLIP_TRANSFORMS.items()}
    runs, preds = train_runs(ctx, cfg, ds.x_train[tr], ds.y_train[tr], x_te, y_te, suite, y_te[tc], flips)
    summary = summarise_runs(runs, names, ["none"] + names)
    verdicts = clean_verdicts(summary, len(te))
    key = [n for n in KEY_CORRUPTIONS if n in names][:4]
    eff_rows = [{"train_augmentation": r["train_augmentation"], "clean_acc": r["clean_acc"], "clean_acc_sd": r["clean_acc_sd"],
                 "delta_clean_vs_none": r["delta_clean_vs_none"],
                 "verdict": verdicts.get(r["train_augmentation"], ("baseline",))[0],
                 "mean_corrupted_acc": r["mean_corrupted_acc"], **{f"acc_{n}": r[n] for n in key},
                 "train_seconds": r["train_seconds"]} for r in summary]  # fmt: skip
    tables.append(Table("effectiveness", eff_rows,
                        f"The same CNN ({cfg.net}, width {cfg.width}) trained on {len(tr):,} images for {cfg.epochs} epoch(s) "
                        f"with each augmentation (p={cfg.train_p}), mean over {cfg.n_seeds} seed(s): clean accuracy on "
                        f"{len(te):,} test images and accuracy on {len(tc):,} corrupted test images."))  # fmt: skip
    tables.append(Table("robustness", [{"train_augmentation": r["train_augmentation"], "clean": r["clean_acc"],
                                        **{n: r[n] for n in names}} for r in summary],
                        "Mean accuracy of each training augmentation (rows) on each test corruption (columns)."))
    tables.append(Table("runs", runs, "Every training run (one row per augmentation and seed)."))
    figures.append(Figure("clean_delta", save_png(plot_clean_delta(summary, verdicts), ctx.out_dir, "clean_delta"),
                          "Clean test accuracy of each training augmentation minus that of training without augmentation."))
    figures.append(Figure("robustness_heatmap", save_png(plot_robustness_heatmap(summary, names), ctx.out_dir, "robustness_heatmap"),
                          "Accuracy (%) by training augmentation (rows) and test corruption (columns)."))
    return runs, summary, verdicts, preds, y_te, len(tr)


def _flip_part(ctx: TaskContext, cfg: Config, preds: dict, y_te: np.ndarray, tables: list, figures: list) -> list[str]:
    classes = list(ctx.dataset.classes)
    ref = preds[("none", ctx.seed)]
    cms = {k: flip_confusions(y_te, ref[k], len(classes)) for k in FLIP_TRANSFORMS}
    per_transform, per_digit = flip_tables(cms, classes)
    tables.append(Table("flip_confusions", per_transform,
                        "How the model trained without augmentation labels flipped / 180-degree-rotated test images."))
    tables.append(Table("flip_per_digit", per_digit, "Per class: fraction that keeps its label under each transform, and the "
                                                     "label it most often receives instead."))
    figures.append(Figure("flip_confusions", save_png(plot_flip_confusions(cms, classes), ctx.out_dir, "flip_confusions"),
                          "Row-normalised confusion matrices of the un-augmented model on transformed test images."))
    cm69, pair = {}, _swap_pair(ctx.dataset.meta, classes)
    if pair:
        i6, i9 = classes.index(pair[0]), classes.index(pair[1])
        for a in ["none"] + [n for n in cfg.augmentations if n in ("rotate_large", "vflip", "hflip", "rotate_small")]:
            p = preds[(a, ctx.seed)]["clean"]
            cm69[a] = int(np.sum((y_te == i6) & (p == i9)) + np.sum((y_te == i9) & (p == i6)))
    return flip_findings(per_transform, cms, classes, cm69, ctx.dataset.meta)


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    colour_added = [n for n in COLOUR_AUGMENTATIONS if ctx.dataset.is_colour and n not in cfg.augmentations]
    if colour_added:  # photographs: colour changes are among the candidates; ink drawings have none
        from dataclasses import replace

        cfg = replace(cfg, augmentations=list(cfg.augmentations) + colour_added)
    tables: list[Table] = []
    figures: list[Figure] = []
    _gallery_part(ctx, cfg, tables, figures)
    t0 = time.perf_counter()
    shift_rows = _shift_part(ctx, cfg, tables, figures)
    shift_seconds = time.perf_counter() - t0
    runs, summary, verdicts, preds, y_te, n_train = _effect_part(ctx, cfg, tables, figures)
    flip_text = _flip_part(ctx, cfg, preds, y_te, tables, figures)
    findings = shift_findings(shift_rows) + effect_findings(summary, verdicts, list(cfg.augmentations), len(y_te)) + flip_text
    base = summary[0]
    best = max(summary[1:], key=lambda r: r["clean_acc"])
    from digitlab.train import TrainConfig

    _engine = TrainConfig()  # the engine's defaults this task leaves untouched (optimizer, schedule)
    swap = [f for f in flip_text if f.startswith("A 180-degree rotation")]
    return TaskResult(
        title=TITLE,
        headline=(swap or findings or [""])[0],
        summary=(f"{len(cfg.augmentations)} augmentations from a batched catalogue: what they look like, how far they move "
                 f"the data (domain classifier, MMD, k-NN label consistency), and how each changes the clean and corrupted "
                 f"test accuracy of the same small CNN trained on {n_train:,} images with {cfg.n_seeds} seed(s)."),
        findings=findings,
        tables=tables,
        figures=figures,
        notes=[f"The images have {ctx.dataset.channels} colour channels, so the colour augmentation(s) "
               f"{', '.join(colour_added)} were added to the configured list."] * bool(colour_added) + [
            "Domain AUC: cross-validated ROC-AUC of a logistic regression (PCA-50 features fitted on the union) telling a "
            "clean half of the sample from the augmented other half; disjoint halves make the identity transform the null "
            "(AUC about 0.5). MMD: unbiased squared maximum mean discrepancy with an RBF kernel whose width is the median "
            "pairwise distance. k-NN label consistency: share of augmented images whose 5 nearest clean neighbours vote for "
            "their true label.",
            f"Training: {cfg.net} via digitlab.train.fit ({_engine.optimizer}, {_engine.scheduler} schedule, lr {cfg.lr}, "
            f"batch {cfg.batch_size}), the same "
            f"stratified subset, epochs and seeds for every augmentation; each training image is augmented with probability "
            f"{cfg.train_p}. Corruptions apply each augmentation to the test images with p=1 and a fixed seed.",
            "Helps/hurts: the accuracy difference to 'none' exceeds twice the larger of the seed-based standard error of the "
            "difference and the binomial standard error of one test accuracy.",
        ],
        metrics={
            "clean_acc_none": base["clean_acc"],
            "best_train_augmentation": best["train_augmentation"],
            "best_clean_acc": best["clean_acc"],
            "mean_corrupted_acc_none": base["mean_corrupted_acc"],
            "best_mean_corrupted_acc": max(r["mean_corrupted_acc"] for r in summary),
            "train_seconds_total": float(sum(r["train_seconds"] for r in runs)),
            "shift_seconds": round(shift_seconds, 2),
        },
    )

