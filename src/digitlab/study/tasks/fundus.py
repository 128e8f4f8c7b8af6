"""Task ``fundus``: diabetic-retinopathy grading on colour fundus photographs (the DDR dataset).

Runs on a dataset whose metadata says ``kind = "fundus"`` (``digitlab run --dataset ddr --data-dir
DIR``); on any other dataset it returns at once a short section saying how to run it.

1. **Grading models.** The classic zoo on downsampled pixels and on hand-crafted colour/texture
   features (:mod:`digitlab.fundus_features`), and the CNN family (the configurable CNN, ResNet,
   ConvMixer) trained through :func:`digitlab.grid.fit_and_score`. Class imbalance (DDR has
   ~26x more "no DR" than "severe NPDR" images) is handled by random oversampling of the training
   indices (every grade drawn up to the largest grade's count), configurable.
2. **Metrics that fit grading.** Quadratic weighted kappa (QWK, a miss by two grades costs four
   times a miss by one) with a bootstrap interval, per-grade recall, the confusion matrix, the
   referable-DR decision (grade >= 2), plus the usual suite (:func:`digitlab.metrics.classification_metrics`).
   The classify task's models, trained on full-resolution pixels without balancing, are scored the same way.
3. **Augmentations across domains.** The base CNN trained with each of a few augmentations,
   compared by QWK; beside it the augment task's accuracy changes on these photographs and, with
   ``compare_run``, the augment task's accuracy changes on MNIST from another run folder. Which
   transformations keep the label comes from each dataset's metadata (a flip or a rotation keeps a
   fundus grade; it turns a 6 into a 9).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from digitlab.exceptions import ConfigError
from digitlab.study.common import add_figure, split, status
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "fundus"
TITLE = "Diabetic-retinopathy grading on fundus photographs"
REQUIRES = ("classify", "augment")

NET_FAMILIES = ("cnn", "resnet", "convmixer")
INPUTS = ("pixels", "features")
BALANCE = ("oversample", "none")
HOW_TO = ("digitlab data synth-fundus DIR  (a synthetic DDR-layout set, for tests and demonstrations), then "
          "digitlab run --dataset ddr --data-dir DIR  (DIR: the folder holding DR_grading/; the real DDR works the same way)")


# =============================================================================================
# Configuration
# =============================================================================================


@dataclass
class Config:
    """Settings of the grading study; defaults are the standard profile."""

    n_train: int = 0  # training images (stratified subset; 0 = all)
    n_test: int = 0  # test images scored (stratified subset; 0 = all)
    balance: str = "oversample"  # "oversample": every grade drawn (with replacement) up to the largest grade's count; "none"
    models: list[str] = field(default_factory=lambda: ["logreg", "random_forest", "hgb", "knn"])  # classic zoo models
    inputs: list[str] = field(default_factory=lambda: list(INPUTS))  # classic-model inputs: "pixels" (downsampled), "features"
    pixel_size: int = 32  # side in pixels of the downsampled images the classic models see (x3 colour channels)
    n_estimators: int = 200  # trees of the random forest / extra trees
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping)
    nets: list[str] = field(default_factory=lambda: list(NET_FAMILIES))  # network families trained (cnn, resnet, convmixer)
    net_size: int = 0  # side in pixels the networks see (0 = as loaded: the dataset's image_size, 128 by default)
    width: int = 16  # channels of the first block of the CNN; ResNet gets half, ConvMixer's width is 4x this
    steps: int = 400  # optimiser steps per network (the budget: epochs follow from the training-set size)
    batch_size: int = 32  # images per step
    lr: float = 0.003  # peak learning rate (AdamW, one-cycle: the engine's defaults)
    net_augment: list[str] = field(default_factory=lambda: ["hflip", "rotate_large"])  # augmentations of every family net ([] = none)
    train_p: float = 0.5  # probability that a training image gets each augmentation
    augmentations: list[str] = field(default_factory=lambda: ["none", "hflip", "rotate_large", "colour_jitter", "elastic"])  # compared on the base CNN ("none" first)
    n_seeds: int = 1  # seeds per network (mean over seeds in the tables)
    threads: int = 1  # torch/BLAS threads while the networks train (0 = leave torch's setting); see the note below
    compare_run: str = ""  # run folder of an MNIST study whose results/augment/result.json goes beside the fundus results ("" = explain from metadata)
    gallery_n: int = 6  # test images in the augmentation gallery

    def validate(self) -> None:
        from digitlab.augment import AUGMENTATIONS
        from digitlab.models.classic import CLASSIC_MODELS

        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key fundus.{key}: {problem}; {fix}")

        for key in ("n_train", "n_test"):
            if getattr(self, key) < 0:
                raise bad(key, f"{getattr(self, key)} is negative", "use 0 (= all) or a number of images")
        if self.balance not in BALANCE:
            raise bad("balance", f"{self.balance!r} unknown", f"use one of {', '.join(BALANCE)}")
        unknown = [m for m in self.models if m not in CLASSIC_MODELS]
        if unknown:
            raise bad("models", f"{unknown} unknown", f"choose from {', '.join(CLASSIC_MODELS)}")
        if [i for i in self.inputs if i not in INPUTS]:
            raise bad("inputs", f"{self.inputs} not valid", f"use any of {', '.join(INPUTS)}")
        if [n for n in self.nets if n not in NET_FAMILIES]:
            raise bad("nets", f"{self.nets} not valid", f"use any of {', '.join(NET_FAMILIES)}")
        if not self.nets and not (self.models and self.inputs):
            raise bad("nets", "no grader to train (no nets, and no classic models or inputs)", "name at least one network or model")
        aug_unknown = [a for a in list(self.net_augment) + list(self.augmentations) if a != "none" and a not in AUGMENTATIONS]
        if aug_unknown:
            raise bad("augmentations", f"{aug_unknown} unknown", f"use 'none' or names of {', '.join(AUGMENTATIONS)}")
        if self.augmentations and self.augmentations[0] != "none":
            raise bad("augmentations", "the first entry must be 'none'", "start the list with 'none' (the baseline)")
        if not 8 <= self.pixel_size <= 128:
            raise bad("pixel_size", f"{self.pixel_size} out of range", "use 8 to 128 pixels")
        if self.net_size and not 16 <= self.net_size <= 1024:
            raise bad("net_size", f"{self.net_size} out of range", "use 0 (as loaded) or 16 to 1024 pixels")
        if self.threads < 0:
            raise bad("threads", f"{self.threads} is negative", "use 0 (torch's default) or a number of threads, e.g. 1")
        for key in ("width", "steps", "batch_size", "n_seeds", "n_estimators", "hgb_max_iter", "gallery_n"):
            if getattr(self, key) < 1:
                raise bad(key, f"{getattr(self, key)} must be at least 1", "use a positive number")
        if not self.lr > 0:
            raise bad("lr", f"{self.lr} must be positive", "e.g. 0.003")
        if not 0.0 < self.train_p <= 1.0:
            raise bad("train_p", f"{self.train_p} must be in (0, 1]", "e.g. 0.5")
        if self.compare_run and compare_file(self.compare_run) is None:
            raise bad("compare_run", f"no results/augment/result.json under {self.compare_run!r}",
                      "name the run folder of a study that ran the augment task (e.g. runs/<stamp>-mnist-quick) or leave it empty")


# quick: for a synthetic set of a few hundred images at 64 px: the classic zoo on 16-px pixels and on
# the features, three small nets at 48 px and the CNN with two augmentations, 100 steps each (six
# trainings). Measured on 256 training / 109 test images at 64 px: 12 s with torch's 2 threads on
# near-idle cores; while another process kept the 2 cores busy, 168 s with 2 threads and 16 s with
# 1 (hence ``threads = 1``).
# On a non-fundus dataset the task returns at once.
PROFILES: dict[str, dict] = {
    "quick": {"models": ["logreg", "random_forest", "hgb"], "pixel_size": 16, "n_estimators": 100, "hgb_max_iter": 100,
              "net_size": 48, "width": 8, "steps": 100, "augmentations": ["none", "hflip", "colour_jitter"], "gallery_n": 4},
    "full": {"models": ["logreg", "random_forest", "extra_trees", "hgb", "knn", "rbf_svm"], "n_estimators": 300,
             "steps": 1200, "n_seeds": 3, "augmentations": ["none", "hflip", "vflip", "rotate_large", "colour_jitter", "elastic",
                                                           "gaussian_blur", "brightness_contrast"]},
}


def compare_file(compare_run: str) -> Path | None:
    """The augment result of a run folder (or of ``results/augment`` or the file itself), None if absent."""
    p = Path(compare_run).expanduser()
    for cand in (p / "results" / "augment" / "result.json", p / "result.json", p):
        if cand.is_file() and cand.name == "result.json":
            return cand
    return None


# =============================================================================================
# Data: subsets, balancing, the inputs of each model kind
# =============================================================================================


def oversample(y: np.ndarray, seed: int) -> np.ndarray:
    """Training indices with every class drawn up to the largest class's count: all images of a class,
    plus random repeats (with replacement) of it; shuffled. Classes absent from ``y`` stay absent."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    top = counts.max()
    parts = [np.flatnonzero(y == c) for c in range(len(counts)) if counts[c]]
    parts = [np.concatenate([p, rng.choice(p, top - len(p), replace=True)]) for p in parts]
    return rng.permutation(np.concatenate(parts))


def training_indices(y: np.ndarray, balance: str, seed: int) -> np.ndarray:
    return oversample(y, seed) if balance == "oversample" else np.arange(len(y))


def standardised(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-scores with the training statistics, times 255: the zoo's pipelines begin by dividing by 255
    (their pixel step), so they see the z-scores themselves."""
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    return ((train - mu) / sd * 255).astype(np.float32), ((test - mu) / sd * 255).astype(np.float32)


# =============================================================================================
# Model runs -> grading rows
# =============================================================================================


def grading_row(model: str, kind: str, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, classes: list[str],
                proba=None, scores=None, seed: int = 0, **extra: Any) -> dict:
    """One table row: QWK (with its bootstrap interval), accuracy, balanced accuracy, macro F1, grade error,
    referable-DR sensitivity/specificity, recall per grade; the confusion matrix under ``_cm``."""
    from digitlab.fundus_features import grading_metrics, qwk_bootstrap

    m = grading_metrics(y_true, y_pred, proba=proba, scores=scores, n_classes=n_classes)
    boot = qwk_bootstrap(y_true, y_pred, n_classes, n_boot=500, seed=seed)
    row = {"model": model, "input": kind, "qwk": round(m["qwk"], 4), "qwk_low": round(boot["low"], 4),
           "qwk_high": round(boot["high"], 4), "qwk_se": round(boot["se"], 4), "accuracy": round(m["accuracy"], 4),
           "balanced_accuracy": round(m["balanced_accuracy"], 4), "f1_macro": round(m["f1_macro"], 4),
           "mae_grades": round(m["mae_grades"], 4), "within_one": round(m["within_one"], 4),
           "referable_sensitivity": round(m["referable_sensitivity"], 4),
           "referable_specificity": round(m["referable_specificity"], 4),
           "roc_auc_ovr": None if m["roc_auc_ovr"] is None else round(float(m["roc_auc_ovr"]), 4)}
    row.update({f"recall {classes[c]}": round(float(m["recall"][c]), 4) for c in range(n_classes)})
    row.update(extra)
    row["_cm"] = np.asarray(m["confusion_matrix"]).tolist()
    return row


def classic_rows(ctx: TaskContext, cfg: Config, inputs: dict[str, tuple[np.ndarray, np.ndarray]], y_tr: np.ndarray,
                 y_te: np.ndarray, step) -> list[dict]:
    """The classic zoo on each input kind (``inputs[kind] = (x_train, x_test)``, train rows already balanced)."""
    from digitlab.models.zoo import ZooSettings, run_model
    from digitlab.names import model_name

    zoo = ZooSettings(n_estimators=cfg.n_estimators, hgb_max_iter=cfg.hgb_max_iter)
    ds, rows = ctx.dataset, []
    for kind, (x_tr, x_te) in inputs.items():
        extra = {"pca": 0} if kind == "features" else {}  # ~70 features: no PCA front end
        for name in cfg.models:
            over = extra if name in ("hgb", "knn", "rbf_svm") else {}
            run = run_model(name, x_tr, y_tr, x_te, zoo, seed=ctx.seed, n_jobs=ctx.n_jobs, device=ctx.device, **over)
            rows.append(grading_row(model_name(name), kind, y_te, run.y_pred, ds.n_classes, ds.classes, proba=run.proba,
                                    scores=run.scores, seed=ctx.seed, fit_s=round(run.fit_s, 2)))
            ctx.log.info("fundus: %s on %s fitted in %.1f s: QWK %.3f", name, kind, run.fit_s, rows[-1]["qwk"])
            step(description=f"fundus: {model_name(name)} on {kind}")
    return rows


def net_params(name: str, cfg: Config, size: int) -> dict:
    if name == "cnn":
        return {"width": cfg.width, "n_blocks": 4 if size >= 96 else 3}
    if name == "resnet":  # half the width: it keeps full resolution through its first stage (~4x the CNN's cost at equal width)
        return {"width": max(4, cfg.width // 2), "n_stages": 3}
    return {"dim": 4 * cfg.width, "depth": 4, "patch_size": max(2, size // 16), "kernel_size": 5}


def make_augment(names: list[str], p: float):
    """One callable applying each named augmentation with probability ``p`` (None for none)."""
    from digitlab.augment import compose, get_augmentation

    augs = [get_augmentation(n, p=p) for n in names if n != "none"]
    return compose(*augs) if augs else None


def train_net(ctx: TaskContext, cfg: Config, net: str, size: int, x_tr, y_tr, x_te, y_te, augment, seed: int) -> dict:
    from digitlab.grid import fit_and_score
    from digitlab.train import TrainConfig

    # No validation split: the oversampled training set would leak repeats into it; the last step is kept.
    # ResNet trains in the default (NCHW) layout: on torch 2.13's CPU build the backward pass of its 1x1
    # stride-2 shortcut conv in channels_last crashes the process (segfault) for odd batch sizes >= 3.
    tcfg = TrainConfig(epochs=1, min_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, val_fraction=0.0,
                       device=ctx.device, channels_last=net != "resnet")
    return fit_and_score(net, net_params(net, cfg, size), x_tr, y_tr, {"test": (x_te, y_te)}, tcfg, seed=seed,
                         augment=augment, n_classes=ctx.dataset.n_classes, keep_proba=True)


def net_row(ctx: TaskContext, cfg: Config, label: str, kind: str, outs: list[dict], y_te: np.ndarray, **extra) -> dict:
    """A grading row for a network: predictions of the first seed; QWK and accuracy averaged over seeds."""
    from digitlab.fundus_features import quadratic_weighted_kappa

    ds = ctx.dataset
    first = outs[0]
    row = grading_row(label, kind, y_te, first["test_pred"], ds.n_classes, ds.classes, proba=first.get("test_proba"),
                      seed=ctx.seed, fit_s=round(float(np.mean([o["train_seconds"] for o in outs])), 2),
                      params=first["params"], steps=first["steps"], **extra)
    if len(outs) > 1:
        q = [quadratic_weighted_kappa(y_te, o["test_pred"], ds.n_classes) for o in outs]
        row.update(qwk=round(float(np.mean(q)), 4), qwk_seed_sd=round(float(np.std(q, ddof=1)), 4),
                   accuracy=round(float(np.mean([o["test_acc"] for o in outs])), 4), n_seeds=len(outs))
    return row


# =============================================================================================
# Augmentations across domains
# =============================================================================================


def keeps_label(aug: str, meta: dict, colour: bool) -> str:
    """Whether ``aug`` keeps the label on a dataset with metadata ``meta`` (a short cell text)."""
    from digitlab.augment import AUGMENTATIONS

    swaps = meta.get("label_swaps_under_rotation") or []
    swap = f" ({swaps[0][0]} <-> {swaps[0][1]})" if swaps else ""
    if aug in ("hflip", "vflip"):
        return "yes" if meta.get("flip_preserves_label") else "no: mirrored shapes are other symbols or none"
    if aug == "rotate_large":
        return "yes" if meta.get("large_rotation_preserves_label") else "no" + swap
    if aug != "none" and AUGMENTATIONS[aug].colour_only and not colour:
        return "n/a: no colour"
    return "yes"


def augment_deltas(result) -> dict[str, float]:
    """Per training augmentation, its clean-accuracy change against 'none' from an augment task result."""
    tables = {t["name"] if isinstance(t, dict) else t.name: (t["rows"] if isinstance(t, dict) else t.rows)
              for t in (result["tables"] if isinstance(result, dict) else result.tables)}
    return {r["train_augmentation"]: float(r["delta_clean_vs_none"]) for r in tables.get("effectiveness", [])}


def read_compare(compare_run: str) -> tuple[dict[str, float], dict, str]:
    """(accuracy deltas, dataset metadata, dataset name) of another run's augment task."""
    from digitlab.data.registry import MNIST_META

    path = compare_file(compare_run)
    if path is None:
        raise ConfigError(f"config key fundus.compare_run: no results/augment/result.json under {compare_run!r}; "
                          "name a run folder of a study that ran the augment task")
    deltas = augment_deltas(json.loads(path.read_text()))
    summary = path.parent.parent.parent / "summary.json"
    meta, name = dict(MNIST_META), "mnist"
    if summary.is_file():
        ds = json.loads(summary.read_text()).get("dataset", {})
        meta, name = ds.get("meta") or meta, ds.get("name", name)
    return deltas, meta, name


def comparison_rows(names: list[str], aug_rows: list[dict], fundus_acc: dict[str, float], other: dict[str, float] | None,
                    other_meta: dict, meta: dict, other_name: str) -> list[dict]:
    """Side by side per augmentation: does it keep the label (other dataset, fundus), the other dataset's
    accuracy change, the fundus accuracy change (augment task) and the fundus QWK change (this task)."""
    base = next(r for r in aug_rows if r["augmentation"] == "none")
    by_aug = {r["augmentation"]: r for r in aug_rows}
    rows = []
    for a in dict.fromkeys(list(names) + list(fundus_acc) + list(other or {})):
        if a == "none":
            continue
        row = {"augmentation": a, f"keeps label: {other_name}": keeps_label(a, other_meta, False),
               "keeps grade: fundus": keeps_label(a, meta, True)}
        if other is not None:
            row[f"{other_name} accuracy change (pp)"] = _pp(other.get(a))
        row["fundus accuracy change (pp, augment task)"] = _pp(fundus_acc.get(a))
        r = by_aug.get(a)
        row["fundus QWK change (this task)"] = None if r is None else round(r["qwk"] - base["qwk"], 4)
        rows.append(row)
    return rows


def _pp(v: float | None) -> float | None:
    return None if v is None else round(100 * v, 2)


# =============================================================================================
# Figures
# =============================================================================================


def plot_qwk(rows: list[dict]):
    """QWK per model with its bootstrap interval, coloured by input."""
    colours = {"pixels": "tab:blue", "features": "tab:orange", "network": "tab:green", "classify task": "0.6"}
    order = sorted(rows, key=lambda r: r["qwk"])
    fig, ax = plt.subplots(figsize=(6.8, 0.3 * len(order) + 1.2))
    y = np.arange(len(order))
    q = np.array([r["qwk"] for r in order])
    err = np.array([[r["qwk"] - r["qwk_low"], r["qwk_high"] - r["qwk"]] for r in order]).T.clip(0)
    ax.barh(y, q, xerr=err, color=[colours.get(r["input"], "0.4") for r in order], capsize=2)
    ax.set_yticks(y, [f"{r['model']} ({r['input']})" for r in order], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("quadratic weighted kappa on the test images (bars: 95 % bootstrap interval)")
    fig.tight_layout()
    return fig


def plot_confusion(cm: np.ndarray, classes: list[str], title: str):
    """Counts, coloured by the share of each true grade."""
    cm = np.asarray(cm, float)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8, color="w" if share[i, j] > 0.5 else "k")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted grade")
    ax.set_ylabel("true grade")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_recall(rows: list[dict], classes: list[str]):
    """Recall per grade for the given models (grouped bars)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    w = 0.8 / max(len(rows), 1)
    x = np.arange(len(classes))
    for i, r in enumerate(rows):
        ax.bar(x + (i - (len(rows) - 1) / 2) * w, [r[f"recall {c}"] for c in classes], w, label=f"{r['model']} ({r['input']})")
    ax.set_xticks(x, classes, fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("recall (share of the grade found)")
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    fig.tight_layout()
    return fig


def plot_augment_comparison(rows: list[dict], other_name: str | None):
    """Per augmentation: fundus QWK change, fundus accuracy change and (if known) the other dataset's accuracy change."""
    keys = [("fundus QWK change (this task)", 100, "fundus QWK x100"), ("fundus accuracy change (pp, augment task)", 1, "fundus accuracy (pp)")]
    if other_name:
        keys.append((f"{other_name} accuracy change (pp)", 1, f"{other_name} accuracy (pp)"))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    y = np.arange(len(rows))
    h = 0.8 / len(keys)
    for i, (k, scale, label) in enumerate(keys):
        vals = [np.nan if r.get(k) is None else r[k] * scale for r in rows]
        ax.barh(y + (i - (len(keys) - 1) / 2) * h, vals, h, label=label)
    ax.set_yticks(y, [r["augmentation"] for r in rows], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("change against training without augmentation")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# =============================================================================================
# Findings
# =============================================================================================


def _best(rows: list[dict], kind: str | None = None) -> dict | None:
    rs = [r for r in rows if kind is None or r["input"] == kind]
    return max(rs, key=lambda r: r["qwk"]) if rs else None


def model_findings(rows: list[dict], y_te: np.ndarray, y_tr: np.ndarray, classes: list[str], balance: str) -> list[str]:
    best = _best(rows)
    majority = int(np.bincount(y_tr).argmax())
    maj_acc = float(np.mean(y_te == majority))
    out = [f"The best grader is the {best['model']} on {best['input']}: quadratic weighted kappa {best['qwk']:.3f} "
           f"(95 % bootstrap interval {best['qwk_low']:.3f}-{best['qwk_high']:.3f}), accuracy {100 * best['accuracy']:.1f} % "
           f"against {100 * maj_acc:.1f} % for always answering the commonest grade ({classes[majority]}, whose kappa is 0)."]
    kinds = [(k, _best(rows, k)) for k in ("pixels", "features", "network", "classify task")]
    kinds = [(k, b) for k, b in kinds if b is not None]
    if len(kinds) > 1:
        out.append("Best kappa per input: " + "; ".join(f"{k}: {b['model']} {b['qwk']:.3f}" for k, b in kinds) + ".")
    rec = {c: best[f"recall {c}"] for c in classes}
    lo = min(rec, key=rec.get)
    counts = np.bincount(y_tr, minlength=len(classes))
    out.append(f"Per grade, the best model finds {', '.join(f'{c} {100 * v:.0f} %' for c, v in rec.items())}; the weakest is "
               f"{lo}, which has {counts[classes.index(lo)]:,} training images "
               f"({'oversampled to the largest grade' if balance == 'oversample' else 'no rebalancing'}).")
    out.append(f"As a referral decision (grade >= 2, moderate NPDR or worse) the best model has sensitivity "
               f"{100 * best['referable_sensitivity']:.1f} % and specificity {100 * best['referable_specificity']:.1f} %; "
               f"{100 * best['within_one']:.1f} % of its grades are at most one step off (mean error {best['mae_grades']:.2f} grades).")
    acc_best = max(rows, key=lambda r: r["accuracy"])
    if acc_best["model"] != best["model"] or acc_best["input"] != best["input"]:
        out.append(f"Accuracy and kappa rank differently: the {acc_best['model']} on {acc_best['input']} has the highest accuracy "
                   f"({100 * acc_best['accuracy']:.1f} %) but kappa {acc_best['qwk']:.3f}, because kappa charges distant "
                   "grade errors more and discounts agreement expected by chance.")
    return out


def augment_findings(aug_rows: list[dict], comp: list[dict], other_name: str | None, meta: dict, other_meta: dict) -> list[str]:
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
        out.append(f"Trained with one augmentation at a time, the base CNN's kappa moves from {base['qwk']:.3f} without "
                   f"augmentation: {'; '.join(parts)} (noise: twice the bootstrap SE of the baseline's kappa, {noise:.3f}).")
    swaps = other_meta.get("label_swaps_under_rotation") or []
    pair = f"a {swaps[0][0]} into a {swaps[0][1]}" if swaps else "one symbol into another"
    geo = "keep the grade" if meta.get("flip_preserves_label") and meta.get("large_rotation_preserves_label") else "may change the label"
    out.append(f"Why the domains differ: flips and large rotations {geo} of a fundus photograph (left and right eyes are mirror "
               f"images, cameras sit at any angle, and lesions count wherever they are), while on {other_name or 'MNIST'} a "
               f"180-degree rotation turns {pair} and a mirrored digit is no digit; colour jitter imitates "
               "differences between fundus cameras and exposures, which matter for photographs, whereas greyscale ink has no "
               "colour to vary.")
    if other_name:
        flips = [r for r in comp if r["augmentation"] in ("hflip", "vflip", "rotate_large")
                 and r.get(f"{other_name} accuracy change (pp)") is not None]
        if flips:
            out.append("Measured side by side (accuracy change in points, " + other_name + " vs fundus): " + "; ".join(
                f"{r['augmentation']} {r[f'{other_name} accuracy change (pp)']:+.2f} vs "
                + ("n/a" if r["fundus accuracy change (pp, augment task)"] is None else f"{r['fundus accuracy change (pp, augment task)']:+.2f}")
                for r in flips) + ".")
    return out


# =============================================================================================
# run
# =============================================================================================


def how_to(ctx: TaskContext) -> TaskResult:
    reason = (f"{ctx.dataset.name} is not a fundus dataset (its metadata says kind = {ctx.dataset.meta.get('kind', 'unknown')!r}), "
              "so diabetic-retinopathy grading does not apply to it. To run this section: " + HOW_TO + ".")
    return TaskResult(title=TITLE, summary=reason, headline="Not applicable: this section grades fundus photographs.",
                      findings=[reason], metrics={"skipped": True, "reason": reason})


def _upstream_classify(ctx: TaskContext) -> list[dict]:
    """The classify task's models scored as graders on their own test images (predictions.npz)."""
    from digitlab.names import model_name

    try:
        up = ctx.upstream("classify")
    except ConfigError:
        return []
    f = up.file("predictions.npz")
    if not f.is_file():
        return []
    d = np.load(f, allow_pickle=False)
    ds, rows = ctx.dataset, []
    for m in [str(x) for x in d["models"]]:
        proba = d[f"proba__{m}"] if f"proba__{m}" in d.files else None
        scores = d[f"scores__{m}"] if f"scores__{m}" in d.files else None
        rows.append(grading_row(model_name(m), "classify task", d["y_true"], d[f"y_pred__{m}"], ds.n_classes, ds.classes,
                                proba=proba, scores=scores, seed=ctx.seed))
    return rows


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    cfg.validate()
    ds = ctx.dataset
    if ds.meta.get("kind") != "fundus":
        return how_to(ctx)
    from digitlab.augment import plot_gallery
    from digitlab.runtime import limit_threads
    from digitlab.fundus_features import downsample, fundus_features
    from digitlab.study.common import progress

    t_start = time.perf_counter()
    part = split(ctx, cfg.n_train, cfg.n_test)
    y_tr, y_te = part.y_train, part.y_test
    bal = training_indices(y_tr, cfg.balance, ctx.seed)
    figures, tables, notes = [], [], list(part.notes)
    classes = list(ds.classes)

    # --- classic zoo on downsampled pixels and on colour/texture features ---
    inputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    t0 = time.perf_counter()
    if "pixels" in cfg.inputs:
        inputs["pixels"] = (downsample(part.x_train, cfg.pixel_size)[bal], downsample(part.x_test, cfg.pixel_size))
    feat_names: list[str] = []
    if "features" in cfg.inputs:
        with status(ctx.progress, "fundus: colour and texture features"):
            f_tr, feat_names = fundus_features(part.x_train)
            f_te, _ = fundus_features(part.x_test)
        inputs["features"] = tuple(a for a in standardised(f_tr[bal], f_te))  # type: ignore[assignment]
    prep_s = time.perf_counter() - t0
    size = cfg.net_size or ds.image_shape[0]
    x_net_tr, x_net_te = downsample(part.x_train, size)[bal], downsample(part.x_test, size)
    aug_names = list(cfg.augmentations)
    total = len(cfg.models) * len(inputs) + (len(cfg.nets) + len(aug_names)) * cfg.n_seeds
    # One thread by default: on a 2-core machine shared with another busy process, the quick profile's
    # nets took 168 s with torch's 2 threads against 15 s with 1 (measured back to back).
    with progress(ctx, "fundus", total) as step, limit_threads(cfg.threads):
        rows = classic_rows(ctx, cfg, inputs, y_tr[bal], y_te, step)
        net_aug = make_augment(list(cfg.net_augment), cfg.train_p)
        for net in cfg.nets:
            outs = []
            for s in range(cfg.n_seeds):
                outs.append(train_net(ctx, cfg, net, size, x_net_tr, y_tr[bal], x_net_te, y_te, net_aug, ctx.seed + s))
                step(description=f"fundus: {net} seed {s}")
                ctx.log.info("fundus: %s (seed %d) trained in %.1f s: accuracy %.4f", net, ctx.seed + s,
                             outs[-1]["train_seconds"], outs[-1]["test_acc"])
            rows.append(net_row(ctx, cfg, {"cnn": "CNN", "resnet": "ResNet", "convmixer": "ConvMixer"}[net], "network", outs, y_te))
        aug_rows = []
        for a in aug_names:
            outs = []
            for s in range(cfg.n_seeds):
                outs.append(train_net(ctx, cfg, "cnn", size, x_net_tr, y_tr[bal], x_net_te, y_te, make_augment([a], cfg.train_p),
                                      ctx.seed + s))
                step(description=f"fundus: CNN with {a}")
                ctx.log.info("fundus: CNN with %s (seed %d) trained in %.1f s: accuracy %.4f", a, ctx.seed + s,
                             outs[-1]["train_seconds"], outs[-1]["test_acc"])
            r = net_row(ctx, cfg, "CNN", "network", outs, y_te, augmentation=a)
            r["augmentation"] = a
            aug_rows.append(r)
    up_rows = _upstream_classify(ctx)

    # --- tables ---
    cols = ["model", "input", "qwk", "qwk_low", "qwk_high", "accuracy", "balanced_accuracy", "f1_macro", "mae_grades",
            "within_one", "referable_sensitivity", "referable_specificity", "roc_auc_ovr", "fit_s"]
    public = lambda r: {k: v for k, v in r.items() if not k.startswith("_")}  # noqa: E731
    all_rows = rows + up_rows
    tables.append(Table("grading", [public(r) for r in rows],
                        f"Every grader on the same {len(y_te):,} test images ({len(bal):,} training rows after "
                        f"{'oversampling' if cfg.balance == 'oversample' else 'no rebalancing'} of {len(y_tr):,} images). "
                        "QWK: quadratic weighted kappa with its 95 % bootstrap interval.", cols))
    rec_cols = ["model", "input"] + [f"recall {c}" for c in classes]
    tables.append(Table("per_grade_recall", [public(r) for r in all_rows], "Recall per grade: the share of each grade's test images "
                                                                            "given that grade.", rec_cols))
    best = _best(rows)
    cm = np.asarray(best["_cm"])
    tables.append(Table("confusion_best", [{"true grade": classes[i], **{classes[j]: int(cm[i, j]) for j in range(len(classes))}}
                                           for i in range(len(classes))],
                        f"Confusion matrix of the best grader ({best['model']} on {best['input']}): rows true grade, columns predicted."))
    if up_rows:
        tables.append(Table("classify_as_graders", [public(r) for r in up_rows],
                            "The classify task's models (full-resolution pixels, no rebalancing, its own test subset) scored as graders.",
                            ["model", "qwk", "qwk_low", "qwk_high", "accuracy", "balanced_accuracy", "f1_macro",
                             "referable_sensitivity", "referable_specificity"]))
    if feat_names:
        from scipy.stats import spearmanr

        rho = [spearmanr(f_tr[:, i], y_tr).statistic if f_tr[:, i].std() > 0 else 0.0 for i in range(f_tr.shape[1])]
        top = np.argsort(-np.abs(np.nan_to_num(rho)))[:10]
        tables.append(Table("features_vs_grade", [{"feature": feat_names[i], "spearman_rho": round(float(rho[i]), 3)} for i in top],
                            "The ten colour/texture features most rank-correlated with the grade (training images)."))

    # --- augmentations across domains ---
    fundus_acc: dict[str, float] = {}
    try:
        fundus_acc = augment_deltas(ctx.upstream("augment").result)
    except ConfigError:
        pass
    other, other_meta, other_name = None, None, None
    if cfg.compare_run:
        other, other_meta, other_name = read_compare(cfg.compare_run)
    from digitlab.data.registry import MNIST_META

    other_meta = other_meta or dict(MNIST_META)
    comp = comparison_rows(aug_names, aug_rows, fundus_acc, other, other_meta, ds.meta, other_name or "MNIST") if aug_rows else []
    if comp:
        tables.append(Table("augmentation_domains", comp,
                            "Augmentations across domains: whether each keeps the label (from each dataset's metadata) and what it "
                            "changes: " + (f"{other_name}'s accuracy (augment task of {cfg.compare_run}), " if other_name else "")
                            + "fundus accuracy (this run's augment task) and fundus QWK (the base CNN here)."))
        tables.append(Table("augmentation_runs", [public(r) for r in aug_rows], "The base CNN trained with each augmentation.",
                            ["augmentation", "qwk", "qwk_low", "qwk_high", "accuracy", "balanced_accuracy", "fit_s"]))

    # --- figures ---
    gal = [a for a in dict.fromkeys(list(aug_names) + list(cfg.net_augment)) if a != "none"]
    if gal:
        idx = np.random.default_rng(ctx.seed).choice(len(ds.y_test), min(cfg.gallery_n, len(ds.y_test)), replace=False)
        add_figure(figures, plot_gallery(ds.x_test[np.sort(idx)], gal, seed=ctx.seed), ctx.out_dir, "fundus_gallery",
                   "Test photographs under the augmentations compared here (each applied with p=1), original in the first row.")
    add_figure(figures, plot_qwk(all_rows), ctx.out_dir, "qwk", "Quadratic weighted kappa of every grader (95 % bootstrap interval).")
    add_figure(figures, plot_confusion(cm, classes, f"{best['model']} on {best['input']}"), ctx.out_dir, "confusion_best",
               "Confusion matrix of the best grader (counts; colour: share of the true grade).")
    per_kind = [b for b in (_best(rows, k) for k in ("pixels", "features", "network")) if b is not None]
    add_figure(figures, plot_recall(per_kind, classes), ctx.out_dir, "recall_per_grade",
               "Recall per grade of the best model of each input kind.")
    if comp:
        add_figure(figures, plot_augment_comparison(comp, other_name), ctx.out_dir, "augmentation_domains",
                   "Change against training without augmentation, per augmentation and domain.")

    findings = model_findings(rows + up_rows, y_te, y_tr, classes, cfg.balance)
    if aug_rows:
        findings += augment_findings(aug_rows, comp, other_name, ds.meta, other_meta)
    notes += method_notes(cfg, size, len(feat_names), prep_s)
    if not cfg.compare_run:
        notes.append("No MNIST run was named (fundus.compare_run), so the digits side of the comparison comes from MNIST's "
                     "metadata; name a run folder whose study ran the augment task to put its measured numbers beside these.")
    if ds.meta.get("synthetic"):
        notes.append("These photographs are synthetic (digitlab's generator, for tests and demonstrations): lesions are drawn "
                     "with a number and kind that grow with the grade, so the numbers say how well the pipeline recovers that "
                     "rule, not how well it grades real retinas.")
    return TaskResult(
        title=TITLE,
        summary=(f"Grading diabetic retinopathy (0 no DR to 4 proliferative) on {len(y_tr):,} training and {len(y_te):,} test "
                 f"photographs: the classic zoo on {cfg.pixel_size}-px pixels and on {len(feat_names)} colour/texture features, "
                 f"{len(cfg.nets)} network families at {size} px, class imbalance handled by "
                 f"{'oversampling' if cfg.balance == 'oversample' else 'nothing (balance = none)'}, scored by quadratic "
                 "weighted kappa; and which augmentations suit photographs rather than digits."),
        headline=findings[0],
        findings=findings,
        tables=tables,
        figures=figures,
        notes=notes,
        metrics={"best_model": best["model"], "best_input": best["input"], "best_qwk": best["qwk"],
                 "best_accuracy": best["accuracy"], "n_train": len(y_tr), "n_test": len(y_te), "n_train_balanced": int(len(bal)),
                 "n_seeds": cfg.n_seeds, "net_size": size, "seconds_total": round(time.perf_counter() - t_start, 2),
                 "qwk": {f"{r['model']} ({r['input']})": r["qwk"] for r in all_rows}},
    )


def method_notes(cfg: Config, size: int, n_features: int, prep_s: float) -> list[str]:
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
