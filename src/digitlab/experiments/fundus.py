"""Diabetic-retinopathy grading on fundus photographs (DDR, Bonus 2): one experiment, :func:`fundus_grading`.

1. **Grading models.** The classic zoo on downsampled pixels and on hand-crafted colour/texture features
   (:mod:`digitlab.fundus_features`), and the CNN family (the configurable CNN, ResNet, ConvMixer) trained
   through :func:`digitlab.grid.run_grid` / :func:`digitlab.grid.fit_and_score`. Class imbalance is handled by
   random oversampling of the training indices (every grade drawn up to the largest grade's count).
2. **Metrics that fit grading.** Quadratic weighted kappa (QWK) with a bootstrap interval, per-grade recall,
   the confusion matrix, the referable-DR decision (grade >= 2) and the usual suite. Predictions of other
   models (the classify task's) can be scored the same way.
3. **Augmentations across domains.** The base CNN trained with each of a few augmentations, compared by
   QWK, beside accuracy changes measured elsewhere (another dataset's augment study) and whether each
   augmentation keeps the label (from each dataset's metadata).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from digitlab.experiments.base import StudyResult, as_data
from digitlab.plots import single

NET_FAMILIES = ("cnn", "resnet", "convmixer")
NET_WORDS = {"cnn": "CNN", "resnet": "ResNet", "convmixer": "ConvMixer"}
INPUTS = ("pixels", "features")
BALANCE = ("oversample", "none")
log = logging.getLogger("digitlab")


# =============================================================================================
# Data: balancing, the inputs of each model kind
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


def grading_row(
    model: str,
    kind: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int,
    classes: list[str],
    proba=None,
    scores=None,
    seed: int = 0,
    **extra: Any,
) -> dict:
    """One table row: QWK (with its bootstrap interval), accuracy, balanced accuracy, macro F1, grade error,
    referable-DR sensitivity/specificity, recall per grade; the confusion matrix under ``_cm``."""
    from digitlab.fundus_features import grading_metrics, qwk_bootstrap

    m = grading_metrics(y_true, y_pred, proba=proba, scores=scores, n_classes=n_classes)
    boot = qwk_bootstrap(y_true, y_pred, n_classes, n_boot=500, seed=seed)
    row = {
        "model": model,
        "input": kind,
        "qwk": round(m["qwk"], 4),
        "qwk_low": round(boot["low"], 4),
        "qwk_high": round(boot["high"], 4),
        "qwk_se": round(boot["se"], 4),
        "accuracy": round(m["accuracy"], 4),
        "balanced_accuracy": round(m["balanced_accuracy"], 4),
        "f1_macro": round(m["f1_macro"], 4),
        "mae_grades": round(m["mae_grades"], 4),
        "within_one": round(m["within_one"], 4),
        "referable_sensitivity": round(m["referable_sensitivity"], 4),
        "referable_specificity": round(m["referable_specificity"], 4),
        "roc_auc_ovr": None if m["roc_auc_ovr"] is None else round(float(m["roc_auc_ovr"]), 4),
    }
    row.update({f"recall {classes[c]}": round(float(m["recall"][c]), 4) for c in range(n_classes)})
    row.update(extra)
    row["_cm"] = np.asarray(m["confusion_matrix"]).tolist()
    return row


def _classic_point(
    point: dict, seed: int, threads: int, inputs: dict, y_tr: np.ndarray, zoo: Any, n_jobs: int, device: str
) -> dict[str, Any]:
    """One grid job: classic model ``point["model"]`` fitted on input kind ``point["input"]``."""
    from digitlab.models.zoo import run_model

    x_tr, x_te = inputs[point["input"]]
    over = (
        ({"pca": 0} if point["input"] == "features" else {})
        if point["model"] in ("hgb", "knn", "rbf_svm")
        else {}
    )
    run = run_model(
        point["model"], x_tr, y_tr, x_te, zoo, seed=seed, n_jobs=n_jobs, device=device, **over
    )  # ~70 features: no PCA
    return {"y_pred": run.y_pred, "proba": run.proba, "scores": run.scores, "fit_s": run.fit_s}


def net_params(name: str, width: int, size: int) -> dict:
    if name == "cnn":
        return {"width": width, "n_blocks": 4 if size >= 96 else 3}
    if (
        name == "resnet"
    ):  # half the width: it keeps full resolution through its first stage (~4x the CNN's cost at equal width)
        return {"width": max(4, width // 2), "n_stages": 3}
    return {"dim": 4 * width, "depth": 4, "patch_size": max(2, size // 16), "kernel_size": 5}


def make_augment(names: list[str], p: float):
    """One callable applying each named augmentation with probability ``p`` (None for none)."""
    from digitlab.augment import compose, get_augmentation

    augs = [get_augmentation(n, p=p) for n in names if n != "none"]
    return compose(*augs) if augs else None


def _net_point(
    point: dict, seed: int, threads: int, x_tr, y_tr, x_te, y_te, device: str, n_classes: int
) -> dict[str, Any]:
    """One grid job: network ``point["net"]`` trained with the augmentations ``point["augment"]`` and ``seed``."""
    from digitlab.grid import fit_and_score
    from digitlab.train import TrainConfig

    # No validation split: the oversampled training set would leak repeats into it; the last step is kept.
    # ResNet trains in the default (NCHW) layout: on torch 2.13's CPU build the backward pass of its 1x1
    # stride-2 shortcut conv in channels_last crashes the process (segfault) for odd batch sizes >= 3.
    net = point["net"]
    tcfg = TrainConfig(
        epochs=1, **point["train"], val_fraction=0.0, device=device, channels_last=net != "resnet"
    )
    out = fit_and_score(
        net,
        point["net_params"],
        x_tr,
        y_tr,
        {"test": (x_te, y_te)},
        tcfg,
        seed=seed,
        augment=make_augment(point["augment"], point["p"]),
        n_classes=n_classes,
        keep_proba=True,
    )
    log.info(
        "fundus: %s (seed %d) trained in %.1f s: accuracy %.4f",
        net,
        seed,
        out["train_seconds"],
        out["test_acc"],
    )
    return out


def net_row(
    label: str,
    kind: str,
    outs: list[dict],
    y_te: np.ndarray,
    n_classes: int,
    classes: list[str],
    seed: int,
    **extra,
) -> dict:
    """A grading row for a network: predictions of the first seed; QWK and accuracy averaged over seeds."""
    from digitlab.fundus_features import quadratic_weighted_kappa

    first = outs[0]
    row = grading_row(
        label,
        kind,
        y_te,
        first["test_pred"],
        n_classes,
        classes,
        proba=first.get("test_proba"),
        seed=seed,
        fit_s=round(float(np.mean([o["train_seconds"] for o in outs])), 2),
        params=first["params"],
        steps=first["steps"],
        **extra,
    )
    if len(outs) > 1:
        q = [quadratic_weighted_kappa(y_te, o["test_pred"], n_classes) for o in outs]
        row.update(
            qwk=round(float(np.mean(q)), 4),
            qwk_seed_sd=round(float(np.std(q, ddof=1)), 4),
            accuracy=round(float(np.mean([o["test_acc"] for o in outs])), 4),
            n_seeds=len(outs),
        )
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


def comparison_rows(
    names: list[str],
    aug_rows: list[dict],
    fundus_acc: dict[str, float],
    other: dict[str, float] | None,
    other_meta: dict,
    meta: dict,
    other_name: str,
) -> list[dict]:
    """Side by side per augmentation: does it keep the label (other dataset, fundus), the other dataset's
    accuracy change, the fundus accuracy change (augment task) and the fundus QWK change (this task)."""
    base = next(r for r in aug_rows if r["augmentation"] == "none")
    by_aug = {r["augmentation"]: r for r in aug_rows}
    rows = []
    for a in dict.fromkeys(list(names) + list(fundus_acc) + list(other or {})):
        if a == "none":
            continue
        row = {
            "augmentation": a,
            f"keeps label: {other_name}": keeps_label(a, other_meta, False),
            "keeps grade: fundus": keeps_label(a, meta, True),
        }
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
# Tables with rows of different keys
# =============================================================================================


def _frame(rows: list[dict]) -> pd.DataFrame:
    """A DataFrame of ``rows`` (object columns: values kept as given); the keys a row lacks are remembered."""
    df = pd.DataFrame(rows, dtype=object)
    df.attrs["absent"] = [[c for c in df.columns if c not in r] for r in rows]
    return df


def records(df: pd.DataFrame) -> list[dict]:
    """The rows of a result table as dicts, without the cells their row did not have."""
    absent = df.attrs.get("absent") or [[] for _ in range(len(df))]
    return [{k: v for k, v in r.items() if k not in gone} for r, gone in zip(df.to_dict("records"), absent)]


def best_of(rows: list[dict], kind: str | None = None) -> dict | None:
    """The row of highest QWK (of input ``kind`` when given)."""
    rs = [r for r in rows if kind is None or r["input"] == kind]
    return max(rs, key=lambda r: r["qwk"]) if rs else None


# =============================================================================================
# Figures
# =============================================================================================


def plot_qwk(rows: list[dict], ax=None):
    """QWK per model with its bootstrap interval, coloured by input."""
    colours = {"pixels": "tab:blue", "features": "tab:orange", "network": "tab:green", "classify task": "0.6"}
    order = sorted(rows, key=lambda r: r["qwk"])
    fig, ax = single(ax, (6.8, 0.3 * len(order) + 1.2))
    y = np.arange(len(order))
    q = np.array([r["qwk"] for r in order])
    err = np.array([[r["qwk"] - r["qwk_low"], r["qwk_high"] - r["qwk"]] for r in order]).T.clip(0)
    ax.barh(y, q, xerr=err, color=[colours.get(r["input"], "0.4") for r in order], capsize=2)
    ax.set_yticks(y, [f"{r['model']} ({r['input']})" for r in order], fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("quadratic weighted kappa on the test images (bars: 95 % bootstrap interval)")
    fig.tight_layout()
    return fig


def plot_confusion(cm: np.ndarray, classes: list[str], title: str, ax=None):
    """Counts, coloured by the share of each true grade."""
    cm = np.asarray(cm, float)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = single(ax, (4.8, 4.2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}",
                ha="center",
                va="center",
                fontsize=8,
                color="w" if share[i, j] > 0.5 else "k",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted grade")
    ax.set_ylabel("true grade")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_recall(rows: list[dict], classes: list[str], ax=None):
    """Recall per grade for the given models (grouped bars)."""
    fig, ax = single(ax, (7, 3.2))
    w = 0.8 / max(len(rows), 1)
    x = np.arange(len(classes))
    for i, r in enumerate(rows):
        ax.bar(
            x + (i - (len(rows) - 1) / 2) * w,
            [r[f"recall {c}"] for c in classes],
            w,
            label=f"{r['model']} ({r['input']})",
        )
    ax.set_xticks(x, classes, fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("recall (share of the grade found)")
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    fig.tight_layout()
    return fig


def plot_augment_comparison(rows: list[dict], other_name: str | None, ax=None):
    """Per augmentation: fundus QWK change, fundus accuracy change and (if known) the other dataset's accuracy change."""
    keys = [
        ("fundus QWK change (this task)", 100, "fundus QWK x100"),
        ("fundus accuracy change (pp, augment task)", 1, "fundus accuracy (pp)"),
    ]
    if other_name:
        keys.append((f"{other_name} accuracy change (pp)", 1, f"{other_name} accuracy (pp)"))
    fig, ax = single(ax, (7, 0.45 * len(rows) + 1.4))
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
# The result
# =============================================================================================


@dataclass
class FundusGrading(StudyResult):
    """What :func:`fundus_grading` measured.

    ``grading``: one row per grader trained here (``model``, ``input``: "pixels", "features" or "network"):
    QWK with its bootstrap interval (``qwk_low``, ``qwk_high``, ``qwk_se``), accuracy, balanced accuracy, macro
    F1, mean grade error, share within one grade, referable-DR sensitivity / specificity, one-vs-rest ROC AUC,
    ``recall <grade>`` per grade, ``fit_s`` and the confusion matrix under ``_cm``. ``classify``: the same for
    the predictions handed in (``input`` "classify task"). ``augmentation_runs``: the base CNN per training
    augmentation. ``comparison``: per augmentation whether it keeps the label on each dataset and what it
    changes. ``features_vs_grade``: the ten features most rank-correlated with the grade. Use :func:`records`
    for a table's rows as dicts (cells a row lacks left out).
    """

    grading: pd.DataFrame
    classify: pd.DataFrame
    augmentation_runs: pd.DataFrame
    comparison: pd.DataFrame
    features_vs_grade: pd.DataFrame
    classes: list[str]
    y_train: np.ndarray
    y_test: np.ndarray
    n_train_balanced: int
    net_size: int
    n_features: int
    prep_seconds: float
    other_name: str | None = None
    gallery_images: np.ndarray | None = None
    gallery_augmentations: list[str] = field(default_factory=list)
    seed: int = 0
    _main = "grading"

    def best(self, kind: str | None = None) -> dict | None:
        """The grader trained here of highest QWK (of input ``kind``: "pixels", "features", "network")."""
        return best_of(records(self.grading), kind)

    def all_rows(self) -> list[dict]:
        return records(self.grading) + records(self.classify)

    def plot(self, ax=None):
        return self.plot_qwk(ax)

    def plot_qwk(self, ax=None):
        """QWK of every grader (bootstrap interval), coloured by input."""
        return plot_qwk(self.all_rows(), ax)

    def plot_confusion(self, ax=None):
        """Confusion matrix of the best grader (counts, colour: share of the true grade)."""
        b = self.best()
        return plot_confusion(np.asarray(b["_cm"]), self.classes, f"{b['model']} on {b['input']}", ax)

    def plot_recall(self, ax=None):
        """Recall per grade of the best grader of each input kind."""
        rows = [b for b in (self.best(k) for k in ("pixels", "features", "network")) if b is not None]
        return plot_recall(rows, self.classes, ax)

    def plot_augment_comparison(self, ax=None):
        """Change against training without augmentation per augmentation and domain."""
        return plot_augment_comparison(records(self.comparison), self.other_name, ax)

    def plot_gallery(self, ax=None):
        """Test photographs under the augmentations compared (each with p=1), originals in the first row."""
        from digitlab.augment import plot_gallery

        return plot_gallery(self.gallery_images, self.gallery_augmentations, seed=self.seed, ax=ax)


# =============================================================================================
# The experiment
# =============================================================================================


def fundus_grading(
    data: Any,
    *,
    n_train: int = 0,
    n_test: int = 0,
    seed: int = 0,
    balance: str = "oversample",
    models: Sequence[str] = ("logreg", "random_forest", "hgb", "knn"),
    inputs: Sequence[str] = INPUTS,
    pixel_size: int = 32,
    n_estimators: int = 200,
    hgb_max_iter: int = 200,
    nets: Sequence[str] = NET_FAMILIES,
    net_size: int = 0,
    width: int = 16,
    steps: int = 400,
    batch_size: int = 32,
    lr: float = 0.003,
    net_augment: Sequence[str] = ("hflip", "rotate_large"),
    train_p: float = 0.5,
    augmentations: Sequence[str] = ("none", "hflip", "rotate_large", "colour_jitter", "elastic"),
    n_seeds: int = 1,
    threads: int = 1,
    classify_predictions: Mapping[str, Mapping[str, Any]] | None = None,
    augment_deltas: Mapping[str, float] | None = None,
    other_deltas: Mapping[str, float] | None = None,
    other_meta: Mapping | None = None,
    other_name: str = "MNIST",
    gallery_n: int = 6,
    n_jobs: int = 1,
    backend: str = "loky",
    device: str = "cpu",
    progress: bool = False,
    cache_dir: Any = None,
) -> FundusGrading:
    """Grade diabetic retinopathy on a fundus dataset (a Dataset whose ``meta`` has ``kind = "fundus"``, or arrays).

    The classic ``models`` on ``inputs`` ("pixels": area-averaged to ``pixel_size``; "features": the colour /
    texture features standardised with the training statistics), the network families ``nets`` at ``net_size``
    px (0: as given), each trained for ``steps`` optimiser steps with ``net_augment`` (probability ``train_p``
    each), and the base CNN with each of ``augmentations`` ("none" first) alone; ``n_seeds`` seeds per network.
    ``balance`` "oversample" draws every grade up to the largest grade's count for every model.

    Every fit is one job of :func:`digitlab.grid.run_grid` (``threads`` torch/BLAS threads per job, 0 = the
    runner's share of the cores; ``cache_dir``: store and reuse finished points). ``classify_predictions``:
    ``{model: {"y_true", "y_pred", "proba", "scores"}}`` of other models, scored as graders too.
    ``augment_deltas`` (this data's accuracy change per augmentation, e.g. from an augment study),
    ``other_deltas`` / ``other_meta`` / ``other_name`` (another dataset's) fill the ``comparison`` table.
    """
    from digitlab.fundus_features import downsample, fundus_features
    from digitlab.grid import run_grid
    from digitlab.models.zoo import ZooSettings
    from digitlab.names import model_name

    gallery = None
    if hasattr(data, "x_test"):  # the gallery's photographs come from the whole test set
        idx = np.random.default_rng(seed).choice(
            len(data.y_test), min(gallery_n, len(data.y_test)), replace=False
        )
        gallery = np.asarray(data.x_test[np.sort(idx)])
    d = as_data(data, n_train, n_test, seed)
    meta, classes, k = dict(d.meta), list(d.classes), d.n_classes
    y_tr, y_te = d.y_train, d.y_test
    bal = training_indices(y_tr, balance, seed)

    # --- classic zoo on downsampled pixels and on colour/texture features ---
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    t0 = time.perf_counter()
    if "pixels" in inputs:
        feats["pixels"] = (downsample(d.x_train, pixel_size)[bal], downsample(d.x_test, pixel_size))
    feat_names: list[str] = []
    if "features" in inputs:
        f_tr, feat_names = fundus_features(d.x_train)
        f_te, _ = fundus_features(d.x_test)
        feats["features"] = tuple(a for a in standardised(f_tr[bal], f_te))  # type: ignore[assignment]
    prep_s = time.perf_counter() - t0
    size = net_size or d.x_train.shape[1]
    x_net_tr, x_net_te = downsample(d.x_train, size)[bal], downsample(d.x_test, size)

    zoo = ZooSettings(n_estimators=n_estimators, hgb_max_iter=hgb_max_iter)
    classic = [{"model": m, "input": kind} for kind in feats for m in models]
    # One job at a time: each model uses n_jobs cores itself.
    out = run_grid(
        _classic_point,
        classic,
        [seed],
        args=(feats, y_tr[bal], zoo, n_jobs, device),
        n_jobs=1,
        backend=backend,
        device=device,
        threads_per_job=threads,
        progress=progress,
        description="fundus: classic models",
        cache_dir=cache_dir,
    )
    rows = []
    for r in out:
        rows.append(
            grading_row(
                model_name(r["model"]),
                r["input"],
                y_te,
                r["y_pred"],
                k,
                classes,
                proba=r["proba"],
                scores=r["scores"],
                seed=seed,
                fit_s=round(r["fit_s"], 2),
            )
        )
        log.info(
            "fundus: %s on %s fitted in %.1f s: QWK %.3f", r["model"], r["input"], r["fit_s"], rows[-1]["qwk"]
        )

    train = {"min_steps": steps, "batch_size": batch_size, "lr": lr}
    fam = [
        {
            "net": n,
            "net_params": net_params(n, width, size),
            "augment": list(net_augment),
            "p": train_p,
            "train": train,
        }
        for n in nets
    ]
    aug_names = list(augmentations)
    augs = [
        {
            "net": "cnn",
            "net_params": net_params("cnn", width, size),
            "augment": [a],
            "p": train_p,
            "train": train,
        }
        for a in aug_names
    ]
    seeds = [seed + s for s in range(n_seeds)]
    nets_out = run_grid(
        _net_point,
        fam + augs,
        seeds,
        args=(x_net_tr, y_tr[bal], x_net_te, y_te, device, k),
        n_jobs=n_jobs,
        backend=backend,
        device=device,
        threads_per_job=threads,
        progress=progress,
        description="fundus: networks",
        cache_dir=cache_dir,
    )
    per_point = [nets_out[i * n_seeds : (i + 1) * n_seeds] for i in range(len(fam) + len(augs))]
    for n, outs in zip(nets, per_point):
        rows.append(net_row(NET_WORDS[n], "network", outs, y_te, k, classes, seed))
    aug_rows = []
    for a, outs in zip(aug_names, per_point[len(fam) :]):
        r = net_row("CNN", "network", outs, y_te, k, classes, seed, augmentation=a)
        r["augmentation"] = a
        aug_rows.append(r)

    up_rows = []
    for m, p in (classify_predictions or {}).items():
        up_rows.append(
            grading_row(
                model_name(m),
                "classify task",
                p["y_true"],
                p["y_pred"],
                k,
                classes,
                proba=p.get("proba"),
                scores=p.get("scores"),
                seed=seed,
            )
        )
    top = pd.DataFrame(columns=["feature", "spearman_rho"])
    if feat_names:
        from scipy.stats import spearmanr

        rho = [
            spearmanr(f_tr[:, i], y_tr).statistic if f_tr[:, i].std() > 0 else 0.0
            for i in range(f_tr.shape[1])
        ]
        order = np.argsort(-np.abs(np.nan_to_num(rho)))[:10]
        top = pd.DataFrame(
            [{"feature": feat_names[i], "spearman_rho": round(float(rho[i]), 3)} for i in order]
        )
    comp = []
    if aug_rows:
        from digitlab.data.registry import MNIST_META

        comp = comparison_rows(
            aug_names,
            aug_rows,
            dict(augment_deltas or {}),
            None if other_deltas is None else dict(other_deltas),
            dict(other_meta or MNIST_META),
            meta,
            other_name,
        )
    gal = [a for a in dict.fromkeys(aug_names + list(net_augment)) if a != "none"]
    return FundusGrading(
        grading=_frame(rows),
        classify=_frame(up_rows),
        augmentation_runs=_frame(aug_rows),
        comparison=_frame(comp),
        features_vs_grade=top,
        classes=classes,
        y_train=y_tr,
        y_test=y_te,
        n_train_balanced=int(len(bal)),
        net_size=size,
        n_features=len(feat_names),
        prep_seconds=prep_s,
        other_name=other_name if other_deltas is not None else None,
        gallery_images=gallery,
        gallery_augmentations=gal,
        seed=seed,
    )


__all__ = [
    "fundus_grading",
    "FundusGrading",
    "records",
    "best_of",
    "oversample",
    "training_indices",
    "standardised",
    "grading_row",
    "net_params",
    "make_augment",
    "keeps_label",
    "comparison_rows",
    "plot_qwk",
    "plot_confusion",
    "plot_recall",
    "plot_augment_comparison",
    "NET_FAMILIES",
    "INPUTS",
    "BALANCE",
]


def augment_accuracy_changes(result) -> dict[str, float]:
    """Per training augmentation, its clean-accuracy change against 'none' from an augment task result."""
    tables = {
        t["name"] if isinstance(t, dict) else t.name: (t["rows"] if isinstance(t, dict) else t.rows)
        for t in (result["tables"] if isinstance(result, dict) else result.tables)
    }
    return {r["train_augmentation"]: float(r["delta_clean_vs_none"]) for r in tables.get("effectiveness", [])}
