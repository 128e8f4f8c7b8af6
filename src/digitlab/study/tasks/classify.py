"""Model comparison on the official train/test split: the classic zoo against a CNN.

Every model is trained on the same (optionally stratified-subsampled) training images and scored
on the official test set with the whole metrics suite: accuracy with a bootstrap confidence
interval, balanced accuracy, macro/micro/weighted precision, recall and F1, Cohen's kappa,
Matthews correlation, one-vs-rest ROC-AUC and PR-AUC, top-2 accuracy, log loss, Brier score and
expected calibration error, plus fit/predict time and model size. Pairwise McNemar tests say which
accuracy differences are real. Per-model test predictions are stored in ``predictions.npz`` so
other tasks can study the images every model gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitlab import metrics as M
from digitlab import plots as P
from digitlab.exceptions import ConfigError
from digitlab.models.classic import CLASSIC_MODELS
from digitlab.names import model_name
from digitlab.models.zoo import ZooSettings, check_models, describe_model, recipe
from digitlab.plots import plot_confusion_matrix
from digitlab.experiments import Data, compare_models, plot_accuracy
from digitlab.plots import plain_log_ticks
from digitlab.study.common import split
from digitlab.study.task import Figure, Table, TaskContext, TaskResult, save_png

NAME = "classify"
TITLE = "Model comparison: classic models and a CNN"

DEFAULT_MODELS = ["logreg", "linear_svm", "gnb", "tree", "knn", "random_forest", "extra_trees", "hgb", "rbf_svm", "numpy_mlp", "cnn"]


@dataclass
class Config:
    """Settings of the classify task; defaults are the standard profile."""

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))  # keys of CLASSIC_MODELS, or "cnn"
    n_train: int = 0  # training images (stratified subset); 0 = the full official training set
    n_test: int = 0  # test images (stratified subset); 0 = the full official test set
    svm_n_train: int = 0  # cap on the RBF SVM's training images (its fit is quadratic); 0 = no cap
    svm_search_size: int = 4000  # images per C/gamma candidate in the SVM's validation search
    svm_C: list[float] = field(default_factory=lambda: [2.0, 5.0, 10.0])  # RBF SVM C candidates
    svm_gamma: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.04])  # RBF SVM gamma candidates (PCA-50 of pixels/255)
    svm_pca: int = 50  # PCA components in front of the RBF SVM (0 = raw pixels)
    n_estimators: int = 100  # trees of the random forest and extra trees (the zoo's default 300 adds ~0.1 point for 3x the time)
    hgb_max_iter: int = 200  # boosting rounds cap (early stopping usually stops sooner)
    hgb_pca: int = 50  # PCA components in front of boosting (0 = raw pixels: ~40x slower)
    mlp_epochs: int = 15  # epochs of the NumPy MLP (learning rate halves every 5)
    cnn_recipe: str = "strong"  # "strong" (digitlab.train.STRONG_RECIPE), "fast" (FAST_RECIPE) or "wide" (WIDE_RECIPE)
    cnn_augment: str = ""  # the CNN's training augmentation: "" = the recipe's; catalogue names joined by "+", e.g. "shift+hflip"
    cnn_epochs: int = 0  # override the recipe's epochs (0 = keep)
    cnn_max_seconds: float = 0.0  # wall-time cap of CNN training (0 = none)
    n_boot: int = 2000  # bootstrap resamples of the accuracy confidence interval
    ece_bins: int = 15  # equal-width confidence bins of the calibration error
    alpha: float = 0.05  # significance level of the pairwise McNemar tests (Holm-corrected)
    save_models: bool = True  # save every trained model under models/<name>/ (digitlab predict loads them)
    save_max_mb: float = 100.0  # skip saving a model whose serialised size exceeds this (MB; big forests)

    def validate(self) -> None:
        check_models(self.models, "classify.models")
        recipe(settings(self))
        for key in ("n_boot", "ece_bins", "n_estimators", "hgb_max_iter", "svm_search_size", "mlp_epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key classify.{key}: {getattr(self, key)} must be at least 1")
        for key in ("svm_pca", "hgb_pca", "svm_n_train", "cnn_epochs"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config key classify.{key}: {getattr(self, key)} must be at least 0 (0 = the default)")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"config key classify.alpha: {self.alpha} must be in (0, 1); e.g. 0.05")
        if self.save_max_mb <= 0:
            raise ConfigError(f"config key classify.save_max_mb: {self.save_max_mb} must be positive; e.g. 100")


PROFILES = {
    "quick": {"n_train": 5000, "n_estimators": 60, "hgb_max_iter": 30, "svm_search_size": 1500, "svm_C": [5.0],
              "svm_gamma": [0.02, 0.04], "mlp_epochs": 8, "cnn_recipe": "fast", "cnn_epochs": 6,
              "n_boot": 500},
    "full": {"n_estimators": 500, "hgb_max_iter": 500, "hgb_pca": 0, "svm_search_size": 10000, "svm_C": [1.0, 2.0, 5.0, 10.0, 20.0],
             "svm_gamma": [0.01, 0.015, 0.02, 0.03, 0.04], "mlp_epochs": 30, "n_boot": 5000},
}


# Per-dataset settings on top of a profile's (study.config applies them before the TOML file's and
# --set values). Fashion-MNIST (standard and full): the wide CNN recipe with mirror images (a mirrored
# garment keeps its class), 93.59 % against the strong recipe's 92.27 % (seed 0, see
# digitlab.train.WIDE_RECIPE); the RBF SVM with the Fashion-MNIST benchmark's C = 10 and gamma =
# "scale" (1 / (features x variance) = 0.016 on PCA-100 of pixels/255), on PCA-100: 89.93 % against
# 89.17 % on PCA-50 with the same C and gamma (the published raw-pixel figure is 89.7 %).
FASHION = {"cnn_recipe": "wide", "cnn_augment": "shift+hflip", "svm_pca": 100, "svm_C": [10.0], "svm_gamma": [0.016]}
DATASET_PROFILES = {"fashion-mnist": {"standard": FASHION, "full": FASHION}}


def settings(cfg: Config) -> ZooSettings:
    return ZooSettings.from_config(cfg)


def model_description(name: str, cfg: Config) -> str:
    return describe_model(name, settings(cfg))


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def score_rows(runs: list[dict], mets: dict[str, dict], cis: dict[str, dict]) -> list[dict]:
    """The label-based scores per model, best accuracy first."""
    rows = []
    for r in runs:
        m, ci = mets[r["name"]], cis[r["name"]]
        rows.append({"model": r["name"], "accuracy": _r(m["accuracy"]), "acc_ci_low": _r(ci["low"]), "acc_ci_high": _r(ci["high"]),
                     "balanced_acc": _r(m["balanced_accuracy"]),
                     "precision_macro": _r(m["precision_macro"]), "recall_macro": _r(m["recall_macro"]),
                     "f1_macro": _r(m["f1_macro"]), "f1_micro": _r(m["f1_micro"]), "f1_weighted": _r(m["f1_weighted"]),
                     "kappa": _r(m["cohen_kappa"]), "mcc": _r(m["mcc"])})
    return sorted(rows, key=lambda row: -row["accuracy"])


def probability_rows(runs: list[dict], mets: dict[str, dict]) -> list[dict]:
    """Ranking and probability scores per model (None where the model gives no probabilities)."""
    rows = []
    for r in runs:
        m = mets[r["name"]]
        rows.append({"model": r["name"], "outputs": "probabilities" if r["proba"] is not None else "decision scores",
                     "roc_auc_ovr": _r(m["roc_auc_ovr"], 5), "pr_auc": _r(m["pr_auc"], 5), "top2_accuracy": _r(m["top2_accuracy"]),
                     "log_loss": _r(m["log_loss"]), "brier": _r(m["brier"]), "ece": _r(m["ece"])})
    return rows


def per_class_rows(runs: list[dict], mets: dict[str, dict], classes: list[str]) -> list[dict]:
    """Per-class F1 of every model (one row per model, one column per class)."""
    return [{"model": r["name"], **{f"F1 {c}": _r(v) for c, v in zip(classes, mets[r["name"]]["f1"])}} for r in runs]


def cost_rows(runs: list[dict], cfg: Config, x_train: np.ndarray | None = None) -> list[dict]:
    """Training size, input, fit and predict time, training GFLOP (networks only), and model size per model."""
    return [{"model": r["name"], "setup": model_description(r["name"], cfg), "n_train": r["n_train"],
             "fit_s": _r(r["fit_s"], 2), "train_gflop": _train_gflop(r["model"], x_train), "predict_s": _r(r["predict_s"], 2),
             "parameters": r["size"]["parameters"], "size_kb": _r(r["size"]["bytes"] / 1024, 1),
             "chosen": _chosen_params(r["model"])} for r in runs]


def _train_gflop(model: Any, x_train: np.ndarray | None) -> float | None:
    """Training GFLOP of a fitted CNNClassifier (FLOPs per training image x images seen); None for classic models."""
    res = getattr(model, "train_result_", None)
    if res is None or x_train is None:
        return None
    from digitlab.grid import input_shape
    from digitlab.flops import train_flops

    per_image = train_flops(model.model_, input_shape(x_train[:1]), min(model.batch_size, max(2, len(x_train))))  # (C, H, W)
    return _r(per_image * res.n_train_images_seen / 1e9, 3)


def _chosen_params(model: Any) -> str:
    best = getattr(model, "best_params_", None)
    return ", ".join(f"{k.split('__')[-1]}={v:g}" for k, v in best.items()) if best else ""


def mcnemar_rows(frame) -> list[dict]:
    """McNemar's test for every pair of models, with Holm-adjusted p-values (compare_models' ``mcnemar``), rounded."""
    return [{"model_a": r["model_a"], "model_b": r["model_b"], "acc_a": _r(r["acc_a"]), "acc_b": _r(r["acc_b"]),
             "a_only_right": int(r["a_only_right"]), "b_only_right": int(r["b_only_right"]), "method": r["method"],
             "p_value": float(f"{r['p_value']:.3g}"), "p_holm": float(f"{r['p_holm']:.3g}"), "significant": bool(r["significant"])}
            for r in frame.to_dict("records")]


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def fig_accuracy(rows: list[dict], out_dir) -> str:
    rows = sorted(rows, key=lambda r: r["accuracy"])
    fig = plot_accuracy([r["model"] for r in rows], [r["accuracy"] for r in rows], [r["acc_ci_low"] for r in rows],
                        [r["acc_ci_high"] for r in rows])
    return save_png(fig, out_dir, "accuracy")


def fig_confusion(cm: np.ndarray, classes: list[str], model: str, out_dir) -> str:
    """Counts and row-normalised confusion matrix of ``model``, saved as ``confusion_<model>.png``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    plot_confusion_matrix(cm, classes=classes, ax=axes[0], title=f"{model}: counts")
    plot_confusion_matrix(cm, classes=classes, normalize=True, ax=axes[1], title=f"{model}: % of the true class (recall on the diagonal)")
    return save_png(fig, out_dir, f"confusion_{model}")


def fig_per_class_f1(runs: list[dict], mets: dict[str, dict], classes: list[str], out_dir) -> str:
    import matplotlib.pyplot as plt

    names = [r["name"] for r in runs]
    f1 = np.array([mets[n]["f1"] for n in names])
    fig, ax = plt.subplots(figsize=(0.6 * len(classes) + 2.5, 0.4 * len(names) + 1.5))
    im = ax.imshow(f1, cmap="viridis", aspect="auto", vmin=max(0.0, f1.min()), vmax=1.0)
    for i, j in np.ndindex(f1.shape):
        ax.text(j, i, f"{f1[i, j]:.3f}", ha="center", va="center", fontsize=7, color="white" if f1[i, j] < f1.mean() else "black")
    ax.set(xticks=range(len(classes)), xticklabels=classes, yticks=range(len(names)), yticklabels=names, xlabel="class",
           title="per-class F1")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return save_png(fig, out_dir, "per_class_f1")


def fig_reliability(runs: list[dict], y_test: np.ndarray, n_bins: int, out_dir) -> str | None:
    prob_runs = [r for r in runs if r["proba"] is not None]
    if not prob_runs:
        return None
    fig = P.plot_reliability_diagrams(y_test, {r["name"]: r["proba"] for r in prob_runs}, n_bins,
                                      labels={r["name"]: model_name(r["name"]) for r in prob_runs})
    return save_png(fig, out_dir, "reliability")


def fig_mcnemar(runs: list[dict], rows: list[dict], out_dir) -> str | None:
    import matplotlib.pyplot as plt

    if len(runs) < 2:
        return None
    names = [r["name"] for r in runs]
    pos = {n: i for i, n in enumerate(names)}
    mat = np.full((len(names), len(names)), np.nan)
    for row in rows:
        i, j = pos[row["model_a"]], pos[row["model_b"]]
        mat[i, j] = mat[j, i] = row["p_holm"]
    fig, ax = plt.subplots(figsize=(0.6 * len(names) + 2.5, 0.55 * len(names) + 1.5))
    im = ax.imshow(np.log10(np.clip(mat, 1e-10, 1)), cmap="magma", vmin=-10, vmax=0)
    for i, j in np.ndindex(mat.shape):
        if i != j:
            ax.text(j, i, f"{mat[i, j]:.2g}" if mat[i, j] >= 1e-10 else "<1e-10", ha="center", va="center", fontsize=6,
                    color="white" if mat[i, j] < 1e-5 else "black")
    ax.set(xticks=range(len(names)), xticklabels=names, yticks=range(len(names)), yticklabels=names,
           title="McNemar: Holm-adjusted p-values (colour: log10)")
    ax.tick_params(axis="x", rotation=60)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return save_png(fig, out_dir, "mcnemar")


def fig_cost(cost: list[dict], scores: list[dict], out_dir) -> str:
    import matplotlib.pyplot as plt

    acc = {r["model"]: r["accuracy"] for r in scores}
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in cost:
        ax.scatter(max(r["fit_s"], 1e-2), 100 * (1 - acc[r["model"]]), s=30)
        ax.annotate(r["model"], (max(r["fit_s"], 1e-2), 100 * (1 - acc[r["model"]])), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="fit time (s, log)", ylabel="test error % (log)", title="cost against error")
    plain_log_ticks(ax.xaxis)
    plain_log_ticks(ax.yaxis)
    return save_png(fig, out_dir, "cost")


def cnn_curve_rows(history: list[dict]) -> list[dict]:
    """The CNN's per-epoch training history (``CNNClassifier.history_``) as table rows, accuracies in %."""
    return [{"epoch": h["epoch"], "train_loss": _r(h["train_loss"]), "train_acc": _r(100 * h["train_acc"], 2),
             "val_loss": _r(h["val_loss"]), "val_acc": _r(100 * h["val_acc"], 2), "lr": float(f"{h['lr']:.3g}")}
            for h in history]  # fmt: skip


def fig_cnn_curves(history: list[dict], out_dir) -> str:
    """Training and validation loss (left) and accuracy (right) of the CNN per epoch, best epoch marked."""
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    best = ep[int(np.nanargmax([h["val_acc"] for h in history]))] if any(np.isfinite(h["val_acc"]) for h in history) else None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, m, label, scale in ((axes[0], "loss", "cross-entropy", 1), (axes[1], "acc", "accuracy (%)", 100)):
        ax.plot(ep, [scale * h[f"train_{m}"] for h in history], "o-", ms=3, label="training (running mean over the epoch)")
        ax.plot(ep, [scale * h[f"val_{m}"] for h in history], "o-", ms=3, label="validation")
        if best is not None:
            ax.axvline(best, color="0.5", ls="--", lw=1, label=f"best validation epoch ({best}, kept)")
        ax.set(xlabel="epoch", ylabel=label)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    fig.tight_layout()
    return save_png(fig, out_dir, "cnn_curves")


# ---------------------------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------------------------


def findings(runs: list[dict], mets: dict[str, dict], cis: dict[str, dict], mc_rows: list[dict], classes: list[str],
             y_test: np.ndarray, alpha: float) -> list[str]:
    """Sentences computed from the measured numbers."""
    acc = {r["name"]: mets[r["name"]]["accuracy"] for r in runs}
    err = {n: 1 - a for n, a in acc.items()}
    order = sorted(acc, key=acc.get, reverse=True)
    best, worst = order[0], order[-1]
    out = [f"{best} is the most accurate model at {100 * acc[best]:.2f} % (95 % bootstrap CI {100 * cis[best]['low']:.2f}-"
           f"{100 * cis[best]['high']:.2f} %); {worst} is the least accurate at {100 * acc[worst]:.2f} %, "
           f"{err[worst] / max(err[best], 1e-9):.1f}x the error rate of {best}."]
    family = {n: ("neural" if n == "cnn" else CLASSIC_MODELS[n].family) for n in acc}
    out += _family_findings(acc, err, family)
    out += _model_pair_findings(runs, acc, err)
    out += _calibration_findings(runs, mets)
    out += _significance_findings(mc_rows, alpha)
    out += _class_findings(runs, mets, classes, best)
    wrong_all = np.all(np.stack([r["y_pred"] != y_test for r in runs]), axis=0)
    out.append(f"{int(wrong_all.sum())} of {len(y_test)} test images ({100 * wrong_all.mean():.2f} %) are misclassified by "
               f"all {len(runs)} models; stored in predictions.npz for the error analysis.")
    return out


def _family_findings(acc: dict, err: dict, family: dict) -> list[str]:
    out = []
    best_of = {f: max((n for n in acc if family[n] == f), key=acc.get) for f in set(family.values())}
    nonlinear = [best_of[f] for f in ("kernel", "neighbours", "ensemble") if f in best_of]  # classic; the CNN comes below
    if "linear" in best_of and nonlinear:
        lin, nl = best_of["linear"], max(nonlinear, key=acc.get)
        out.append(f"Linear models top out at {100 * acc[lin]:.2f} % ({lin}) while the best non-linear classic model ({nl}) "
                   f"reaches {100 * acc[nl]:.2f} %: one linear boundary per class in pixel space leaves "
                   f"{err[lin] / max(err[nl], 1e-9):.1f}x as many errors, because the same object drawn a little shifted, slanted "
                   "or thicker lands elsewhere in pixel space, and no single hyperplane follows those curved class regions.")
    ensembles = [n for n in ("random_forest", "extra_trees", "hgb") if n in acc]
    if "tree" in acc and ensembles:
        e = max(ensembles, key=acc.get)
        out.append(f"A single decision tree reaches {100 * acc['tree']:.2f} %; the ensemble {e} reaches {100 * acc[e]:.2f} %, "
                   f"removing {100 * (1 - err[e] / max(err['tree'], 1e-9)):.0f} % of the tree's errors: averaging (or boosting) many "
                   f"trees cancels the variance of one deep tree.")
    if "cnn" in acc:
        classic = [n for n in acc if n != "cnn"]
        if classic:
            c = max(classic, key=acc.get)
            ratio = err[c] / max(err["cnn"], 1e-9)
            out.append(f"The CNN ({100 * acc['cnn']:.2f} %) {'beats' if ratio > 1 else 'does not beat'} the best classic model "
                       f"{c} ({100 * acc[c]:.2f} %): {max(ratio, 1 / max(ratio, 1e-9)):.1f}x {'fewer' if ratio > 1 else 'more'} errors"
                       + (" from weights shared across positions (translation structure) and local receptive fields."
                          if ratio > 1 else "; at this training budget its convolutional prior does not pay off."))
    return out


def _model_pair_findings(runs: list[dict], acc: dict, err: dict) -> list[str]:
    """Comparisons that isolate one design choice: kernel vs neighbours, MLP vs CNN, and cost."""
    out = []
    by = {r["name"]: r for r in runs}
    if "rbf_svm" in acc and "knn" in acc:
        s, k = "rbf_svm", "knn"
        out.append(f"On the same PCA-50 features the RBF SVM ({100 * acc[s]:.2f} %) "
                   f"{'beats' if acc[s] > acc[k] else 'trails'} 3-nearest-neighbours ({100 * acc[k]:.2f} %): both compare an image "
                   f"with stored training images, but the SVM keeps {by[s]['size']['parameters']:,} numbers (support vectors and "
                   f"weights) against k-NN's {by[k]['size']['parameters']:,} and learns how much each stored image counts.")
    if "numpy_mlp" in acc and "cnn" in acc:
        m, c = by["numpy_mlp"], by["cnn"]
        ratio = err["numpy_mlp"] / max(err["cnn"], 1e-9)
        out.append(f"The fully connected NumPy MLP ({m['size']['parameters']:,} parameters) reaches {100 * acc['numpy_mlp']:.2f} % and "
                   f"the CNN ({c['size']['parameters']:,} parameters) {100 * acc['cnn']:.2f} %: "
                   + (f"the CNN makes {ratio:.1f}x fewer errors with {m['size']['parameters'] / max(c['size']['parameters'], 1):.1f}x "
                      "fewer parameters, the value of local filters shared across positions (translation equivariance) over "
                      "one weight per pixel and unit." if ratio > 1 else
                      f"the MLP makes {1 / max(ratio, 1e-9):.1f}x fewer errors here, so the CNN's training budget, not its "
                      "architecture, limits it at this setting."))
    front, best_err = [], np.inf
    for r in sorted(runs, key=lambda r: r["fit_s"]):  # Pareto front: each model faster than all more accurate ones
        if err[r["name"]] < best_err:
            front.append(r["name"])
            best_err = err[r["name"]]
    out.append("Fit time against error, the models no other model beats on both are: "
               + ", ".join(f"{n} ({by[n]['fit_s']:.1f} s, {100 * err[n]:.2f} % error)" for n in front) + ".")
    return out


def _calibration_findings(runs: list[dict], mets: dict) -> list[str]:
    prob = [r["name"] for r in runs if mets[r["name"]]["log_loss"] is not None]
    if len(prob) < 2:
        return []
    ll = {n: mets[n]["log_loss"] for n in prob}
    ece = {n: mets[n]["ece"] for n in prob}
    worst_ll, best_ll = max(ll, key=ll.get), min(ll, key=ll.get)
    gap = {r["name"]: float(r["proba"].max(1).mean() - mets[r["name"]]["accuracy"]) for r in runs if r["name"] in ll}
    over = [f"{n} (+{100 * g:.1f} points)" for n, g in sorted(gap.items(), key=lambda t: -t[1]) if g > 0.01]
    under = [f"{n} ({100 * g:.1f} points)" for n, g in sorted(gap.items(), key=lambda t: t[1]) if g < -0.01]
    out = [f"Log loss ranges from {ll[best_ll]:.3f} ({best_ll}) to {ll[worst_ll]:.3f} ({worst_ll}); expected calibration "
           f"error from {min(ece.values()):.3f} ({min(ece, key=ece.get)}) to {max(ece.values()):.3f} ({max(ece, key=ece.get)}). "
           f"Mean confidence minus accuracy: overconfident {', '.join(over) or 'none'}; underconfident "
           f"{', '.join(under) or 'none'}"
           + (" (forests average the votes of trees that disagree, which pulls their probabilities towards the middle)."
              if any(u.split()[0] in ("random_forest", "extra_trees") for u in under) else ".")]
    if "gnb" in ll:
        r = next(r for r in runs if r["name"] == "gnb")
        conf = r["proba"].max(1)
        sure = conf > 0.99
        y_true_acc = mets["gnb"]["accuracy"]
        others = np.median([ll[n] for n in prob if n != "gnb"])
        out.append(f"Gaussian naive Bayes multiplies 784 per-pixel likelihoods as if pixels were independent, so correlated "
                   f"neighbouring pixels are counted many times over: {100 * sure.mean():.1f} % of its predictions have confidence "
                   f"above 0.99, yet its accuracy is only {100 * y_true_acc:.1f} %, giving a log loss of {ll['gnb']:.2f} against a "
                   f"median {others:.3f} for the other probabilistic models (ECE {ece['gnb']:.3f}).")
    return out


def _significance_findings(rows: list[dict], alpha: float) -> list[str]:
    if not rows:
        return []
    sig = [r for r in rows if r["significant"]]
    out = [f"{len(sig)} of {len(rows)} model pairs differ significantly in accuracy (McNemar, Holm-corrected, alpha {alpha:g})."]
    not_sig = [r for r in rows if not r["significant"]]
    if not_sig:
        r = max(not_sig, key=lambda r: abs(r["acc_a"] - r["acc_b"]))
        out.append(f"The largest difference that is not significant is {r['model_a']} vs {r['model_b']} "
                   f"({100 * abs(r['acc_a'] - r['acc_b']):.2f} points, {r['a_only_right']} vs {r['b_only_right']} discordant images, "
                   f"adjusted p = {r['p_holm']:.3g}): such models should be treated as tied on this test set.")
    if sig:
        r = min(sig, key=lambda r: abs(r["acc_a"] - r["acc_b"]))
        out.append(f"The smallest significant difference is {r['model_a']} vs {r['model_b']} "
                   f"({100 * abs(r['acc_a'] - r['acc_b']):.2f} points, adjusted p = {r['p_holm']:.3g}).")
    return out


def _class_findings(runs: list[dict], mets: dict, classes: list[str], best: str) -> list[str]:
    f1 = np.array([mets[r["name"]]["f1"] for r in runs])
    mean_f1 = f1.mean(axis=0)
    hard, easy = int(mean_f1.argmin()), int(mean_f1.argmax())
    cm = mets[best]["confusion_matrix"].copy()
    np.fill_diagonal(cm, 0)
    i, j = np.unravel_index(cm.argmax(), cm.shape)
    return [f"Averaged over models, class {classes[hard]} is the hardest (mean F1 {mean_f1[hard]:.3f}) and class "
            f"{classes[easy]} the easiest ({mean_f1[easy]:.3f}); the best model's most frequent confusion is true {classes[i]} "
            f"predicted as {classes[j]} ({int(cm[i, j])} images)."]


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def method_notes(runs: list[dict], cfg: Config, n_train: int, n_test: int, ds) -> list[str]:
    """How the comparison was run: data, model set-up, searches, what the timings mean."""
    subset = lambda n, total: f" (a seeded stratified subset of the official {total:,})" if n < total else ""  # noqa: E731
    notes = [f"Every model is trained on the same {n_train:,} training images{subset(n_train, len(ds.y_train))} and evaluated "
             f"once on {n_test:,} test images{subset(n_test, len(ds.y_test))} of {ds.name}'s official split; nothing is tuned on "
             "the test set. "
             "Hyper-parameter searches use validation images carved from the training set. Times are wall-clock seconds "
             "on the machine that ran the study, with BLAS threads limited to the study's n_jobs."]
    for r in runs:
        res = getattr(r["model"], "search_results_", None)
        if res:
            cells = "; ".join(", ".join(f"{k.split('__')[-1]}={v:g}" for k, v in row.items() if k != "val_accuracy")
                              + f": {100 * row['val_accuracy']:.1f} %" for row in res)
            notes.append(f"{r['name']} validation search ({len(res)} settings, chosen {_chosen_params(r['model'])}): {cells}.")
    cnn = next((r for r in runs if r["name"] == "cnn"), None)
    if cnn is not None:
        tr = getattr(cnn["model"], "train_result_", None)
        budget = (f": {tr.epochs_run} epochs, {tr.steps:,} optimiser steps of batch {cnn['model'].batch_size}"
                  + (f" (the recipe's budget of at least {cnn['model'].min_steps:,} steps stretched the {cfg.cnn_epochs or tr.epochs_planned} "
                     "configured epochs)" if getattr(cnn["model"], "min_steps", 0) and tr.epochs_run > (cfg.cnn_epochs or 0) > 0 else "")
                  if tr is not None and getattr(tr, "steps", None) else "")
        notes.append(f"The CNN uses the {cfg.cnn_recipe} training recipe" + budget
                     + (f", capped at {cfg.cnn_max_seconds:g} s of training" if cfg.cnn_max_seconds else "")
                     + f"; it holds out {100 * recipe(settings(cfg))[2].val_fraction:g} % of its training images to pick the best "
                     "epoch's checkpoint, so it fits on fewer images than the classic models.")
    notes.append("Models without probabilities (the SVMs) are ranked by their decision scores for ROC-AUC, PR-AUC and top-2; "
                 "Platt scaling would cost five extra fits. predictions.npz stores y_pred and probabilities or scores per model.")
    return notes


def save_models(runs: list, out_dir, cfg: Config) -> dict[str, str]:
    """Save each trained model under ``models/<name>/`` (networks as weights + JSON, classic models as
    skops); returns name -> folder, or the reason a model was not saved."""
    from digitlab.models.zoo import save_model

    saved = {}
    for r in runs:
        mb = r.size["bytes"] / 2**20
        if mb > cfg.save_max_mb:
            saved[r.name] = f"not saved: {mb:,.0f} MB exceeds classify.save_max_mb = {cfg.save_max_mb:g}"
            continue
        save_model(out_dir / "models" / r.name, r.name, r.model)
        saved[r.name] = f"models/{r.name}"
    return saved


def save_predictions(runs: list[dict], y_test: np.ndarray, test_index: np.ndarray, out_dir) -> str:
    """Write ``predictions.npz``: y_true, test_index (rows of the official test set), model names, and per
    model ``y_pred__<name>`` plus ``proba__<name>`` (or ``scores__<name>`` for models without probabilities)."""
    arrays: dict[str, np.ndarray] = {"y_true": y_test, "test_index": test_index, "models": np.array([r["name"] for r in runs])}
    for r in runs:
        arrays[f"y_pred__{r['name']}"] = r["y_pred"]
        if r["proba"] is not None:
            arrays[f"proba__{r['name']}"] = r["proba"].astype(np.float32)
        elif r["scores"] is not None:
            arrays[f"scores__{r['name']}"] = r["scores"].astype(np.float32)
    np.savez_compressed(out_dir / "predictions.npz", **arrays)
    return "predictions.npz"


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    """Train every configured model on the official split and compare them."""
    cfg.validate()
    data = split(ctx, cfg.n_train, cfg.n_test)
    x_train, y_train, x_test, y_test, test_index = data.x_train, data.y_train, data.x_test, data.y_test, data.test_index
    classes = list(ctx.dataset.classes)
    images = Data(x_train, y_train, x_test, y_test, classes, data.train_index, test_index, ctx.dataset.name, ctx.dataset.meta)
    cmp = compare_models(images, cfg.models, seed=ctx.seed, settings=settings(cfg), n_jobs=ctx.n_jobs, device=ctx.device,
                         n_boot=cfg.n_boot, alpha=cfg.alpha, ece_bins=cfg.ece_bins, progress=ctx.progress, log=ctx.log)
    runs, mets, cis = list(cmp.runs.values()), cmp.metrics, cmp.ci
    scores, probs, cost = score_rows(runs, mets, cis), probability_rows(runs, mets), cost_rows(runs, cfg, x_train)
    mc = mcnemar_rows(cmp.mcnemar)
    best = scores[0]["model"]
    out = ctx.out_dir
    figures = [Figure("accuracy", fig_accuracy(scores, out), "Test error of every model with its 95 % bootstrap confidence interval."),
               Figure("confusion_best", fig_confusion(mets[best]["confusion_matrix"], classes, best, out),
                      f"Confusion matrix of the best model ({best}): counts and row-normalised; off-diagonal cells are coloured."),
               Figure("per_class_f1", fig_per_class_f1(runs, mets, classes, out), "Per-class F1 of every model.")]
    rel = fig_reliability(runs, y_test, cfg.ece_bins, out)
    if rel:
        figures.append(Figure("reliability", rel, f"Reliability diagrams ({cfg.ece_bins} equal-width confidence bins) of the models "
                                                  "that output probabilities; the dashed diagonal is perfect calibration."))
    mcf = fig_mcnemar(runs, mc, out)
    if mcf:
        figures.append(Figure("mcnemar", mcf, "Pairwise McNemar tests: Holm-adjusted p-values (dark = significant)."))
    figures.append(Figure("cost", fig_cost(cost, scores, out), "Fit time against test error (both log scale)."))
    cnn_run = next((r for r in runs if r["name"] == "cnn"), None)
    history = list(getattr(cnn_run.model, "history_", None) or []) if cnn_run is not None else []
    if history:
        figures.append(Figure("cnn_curves", fig_cnn_curves(history, out), f"The CNN's training curves: cross-entropy (log scale) "
                              f"and accuracy per epoch on its training images and on the {100 * recipe(settings(cfg))[2].val_fraction:g} % "
                              "of them held out for validation; the weights of the best validation epoch are the ones tested."))
    pred_file = save_predictions(runs, y_test, test_index, out)
    saved = save_models(runs, out, cfg) if cfg.save_models else {}
    all_wrong = cmp.all_wrong  # positions of the test images every model gets wrong
    tables = [Table("scores", scores, "Label-based scores on the test set, best first (accuracy CI: percentile bootstrap, "
                                      f"{cfg.n_boot} resamples)."),
              Table("probabilistic", probs, "Ranking and probability scores; models without probabilities are ranked by their "
                                            "decision scores, and log loss / Brier / ECE are left empty for them."),
              Table("per_class_f1", per_class_rows(runs, mets, classes), "F1 per class and model (the heatmap's numbers)."),
              Table("cost", cost, "Training images, setup, fit and predict time (this machine), training GFLOP (the CNN only: "
                                  "PyTorch's FLOP count of one training step per image times the images seen; classic models have "
                                  "no FLOP counter and keep seconds only), and model size (fitted numbers "
                                  "and pickled size; parameters and their bytes for the CNN)."),
              Table("mcnemar", mc, "Pairwise McNemar tests on the test set (exact binomial below 25 discordant images, otherwise "
                                   "chi-square with continuity correction) with Holm-adjusted p-values.")]
    if history:
        tables.append(Table("cnn_curves", cnn_curve_rows(history), f"The CNN's training history ({len(history)} epochs): training "
                            "loss and accuracy (running means over each epoch's batches), validation loss and accuracy, and the "
                            "learning rate at the epoch's start.", ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]))
    acc = {r["name"]: round(float(mets[r["name"]]["accuracy"]), 5) for r in runs}
    return TaskResult(
        title=TITLE,
        summary=(f"{len(runs)} models trained on {len(y_train):,} training images of {ctx.dataset.name} and scored on "
                 f"{len(y_test):,} test images of the official split with the full metrics suite."),
        findings=findings(runs, mets, cis, mc, classes, y_test, cfg.alpha),
        tables=tables, figures=figures, notes=data.notes + method_notes(runs, cfg, len(y_train), len(y_test), ctx.dataset) + M.metric_notes(),
        headline=(f"Best model: {model_name(best)} at {100 * acc[best]:.2f} % test accuracy (95 % CI {100 * cis[best]['low']:.2f}-"
                  f"{100 * cis[best]['high']:.2f}) on {len(y_test):,} test images."),
        metrics={"best_model": best, "best_accuracy": acc[best], "accuracy": acc, "models": [r["name"] for r in runs],
                 "n_train": int(len(y_train)), "n_test": int(len(y_test)), "predictions_file": pred_file, "saved_models": saved,
                 "all_models_wrong": len(all_wrong), "all_models_wrong_index": test_index[all_wrong].tolist(),
                 "f1_macro": {n: round(float(mets[n]["f1_macro"]), 5) for n in acc},
                 "fit_seconds": {r["name"]: round(r["fit_s"], 2) for r in runs}})
