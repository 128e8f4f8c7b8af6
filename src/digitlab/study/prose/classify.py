"""Sentences of the ``classify`` task: findings, method notes, captions, filled in from the numbers.

Inputs are plain numbers: ``acc`` (model -> test accuracy), ``cis`` (model -> bootstrap interval),
``params`` (model -> fitted numbers), ``fit_s`` (model -> fit seconds), table rows of the McNemar
tests and the calibration frame's records.
"""

from __future__ import annotations

import statistics


def headline(best: str, words: str, acc: float, ci: dict, n_test: int) -> str:
    return (
        f"Best model: {words} at {100 * acc:.2f} % test accuracy (95 % CI {100 * ci['low']:.2f}-"
        f"{100 * ci['high']:.2f}) on {n_test:,} test images."
    )


def summary(n_models: int, n_train: int, dataset: str, n_test: int) -> str:
    return (
        f"{n_models} models trained on {n_train:,} training images of {dataset} and scored on "
        f"{n_test:,} test images of the official split with the full metrics suite."
    )


def best_worst(acc: dict, cis: dict) -> list[str]:
    err = {n: 1 - a for n, a in acc.items()}
    order = sorted(acc, key=acc.get, reverse=True)
    best, worst = order[0], order[-1]
    return [
        f"{best} is the most accurate model at {100 * acc[best]:.2f} % (95 % bootstrap CI {100 * cis[best]['low']:.2f}-"
        f"{100 * cis[best]['high']:.2f} %); {worst} is the least accurate at {100 * acc[worst]:.2f} %, "
        f"{err[worst] / max(err[best], 1e-9):.1f}x the error rate of {best}."
    ]


def family_findings(acc: dict, family: dict) -> list[str]:
    err = {n: 1 - a for n, a in acc.items()}
    out = []
    best_of = {f: max((n for n in acc if family[n] == f), key=acc.get) for f in set(family.values())}
    nonlinear = [
        best_of[f] for f in ("kernel", "neighbours", "ensemble") if f in best_of
    ]  # classic; the CNN comes below
    if "linear" in best_of and nonlinear:
        lin, nl = best_of["linear"], max(nonlinear, key=acc.get)
        out.append(
            f"Linear models top out at {100 * acc[lin]:.2f} % ({lin}) while the best non-linear classic model ({nl}) "
            f"reaches {100 * acc[nl]:.2f} %: one linear boundary per class in pixel space leaves "
            f"{err[lin] / max(err[nl], 1e-9):.1f}x as many errors, because the same object drawn a little shifted, slanted "
            "or thicker lands elsewhere in pixel space, and no single hyperplane follows those curved class regions."
        )
    ensembles = [n for n in ("random_forest", "extra_trees", "hgb") if n in acc]
    if "tree" in acc and ensembles:
        e = max(ensembles, key=acc.get)
        out.append(
            f"A single decision tree reaches {100 * acc['tree']:.2f} %; the ensemble {e} reaches {100 * acc[e]:.2f} %, "
            f"removing {100 * (1 - err[e] / max(err['tree'], 1e-9)):.0f} % of the tree's errors: averaging (or boosting) many "
            f"trees cancels the variance of one deep tree."
        )
    if "cnn" in acc:
        classic = [n for n in acc if n != "cnn"]
        if classic:
            c = max(classic, key=acc.get)
            ratio = err[c] / max(err["cnn"], 1e-9)
            out.append(
                f"The CNN ({100 * acc['cnn']:.2f} %) {'beats' if ratio > 1 else 'does not beat'} the best classic model "
                f"{c} ({100 * acc[c]:.2f} %): {max(ratio, 1 / max(ratio, 1e-9)):.1f}x {'fewer' if ratio > 1 else 'more'} errors"
                + (
                    " from weights shared across positions (translation structure) and local receptive fields."
                    if ratio > 1
                    else "; at this training budget its convolutional prior does not pay off."
                )
            )
    return out


def pair_findings(acc: dict, params: dict, fit_s: dict, pareto: list[str]) -> list[str]:
    """Comparisons that isolate one design choice: kernel vs neighbours, MLP vs CNN, and cost."""
    err = {n: 1 - a for n, a in acc.items()}
    out = []
    if "rbf_svm" in acc and "knn" in acc:
        s, k = "rbf_svm", "knn"
        out.append(
            f"On the same PCA-50 features the RBF SVM ({100 * acc[s]:.2f} %) "
            f"{'beats' if acc[s] > acc[k] else 'trails'} 3-nearest-neighbours ({100 * acc[k]:.2f} %): both compare an image "
            f"with stored training images, but the SVM keeps {params[s]:,} numbers (support vectors and "
            f"weights) against k-NN's {params[k]:,} and learns how much each stored image counts."
        )
    if "numpy_mlp" in acc and "cnn" in acc:
        m, c = params["numpy_mlp"], params["cnn"]
        ratio = err["numpy_mlp"] / max(err["cnn"], 1e-9)
        out.append(
            f"The fully connected NumPy MLP ({m:,} parameters) reaches {100 * acc['numpy_mlp']:.2f} % and "
            f"the CNN ({c:,} parameters) {100 * acc['cnn']:.2f} %: "
            + (
                f"the CNN makes {ratio:.1f}x fewer errors with {m / max(c, 1):.1f}x "
                "fewer parameters, the value of local filters shared across positions (translation equivariance) over "
                "one weight per pixel and unit."
                if ratio > 1
                else f"the MLP makes {1 / max(ratio, 1e-9):.1f}x fewer errors here, so the CNN's training budget, not its "
                "architecture, limits it at this setting."
            )
        )
    out.append(
        "Fit time against error, the models no other model beats on both are: "
        + ", ".join(f"{n} ({fit_s[n]:.1f} s, {100 * err[n]:.2f} % error)" for n in pareto)
        + "."
    )
    return out


def calibration_findings(calibration: dict[str, dict]) -> list[str]:
    """``calibration``: model -> log_loss, ece, accuracy, confidence_gap, confident_share (models with probabilities)."""
    if len(calibration) < 2:
        return []
    ll = {n: c["log_loss"] for n, c in calibration.items()}
    ece = {n: c["ece"] for n, c in calibration.items()}
    worst_ll, best_ll = max(ll, key=ll.get), min(ll, key=ll.get)
    gap = {n: c["confidence_gap"] for n, c in calibration.items()}
    over = [f"{n} (+{100 * g:.1f} points)" for n, g in sorted(gap.items(), key=lambda t: -t[1]) if g > 0.01]
    under = [f"{n} ({100 * g:.1f} points)" for n, g in sorted(gap.items(), key=lambda t: t[1]) if g < -0.01]
    out = [
        f"Log loss ranges from {ll[best_ll]:.3f} ({best_ll}) to {ll[worst_ll]:.3f} ({worst_ll}); expected calibration "
        f"error from {min(ece.values()):.3f} ({min(ece, key=ece.get)}) to {max(ece.values()):.3f} ({max(ece, key=ece.get)}). "
        f"Mean confidence minus accuracy: overconfident {', '.join(over) or 'none'}; underconfident "
        f"{', '.join(under) or 'none'}"
        + (
            " (forests average the votes of trees that disagree, which pulls their probabilities towards the middle)."
            if any(u.split()[0] in ("random_forest", "extra_trees") for u in under)
            else "."
        )
    ]
    if "gnb" in ll:
        g = calibration["gnb"]
        others = statistics.median([ll[n] for n in ll if n != "gnb"])
        out.append(
            f"Gaussian naive Bayes multiplies 784 per-pixel likelihoods as if pixels were independent, so correlated "
            f"neighbouring pixels are counted many times over: {100 * g['confident_share']:.1f} % of its predictions have "
            f"confidence above 0.99, yet its accuracy is only {100 * g['accuracy']:.1f} %, giving a log loss of "
            f"{ll['gnb']:.2f} against a median {others:.3f} for the other probabilistic models (ECE {ece['gnb']:.3f})."
        )
    return out


def significance_findings(rows: list[dict], alpha: float) -> list[str]:
    if not rows:
        return []
    sig = [r for r in rows if r["significant"]]
    out = [
        f"{len(sig)} of {len(rows)} model pairs differ significantly in accuracy (McNemar, Holm-corrected, alpha {alpha:g})."
    ]
    not_sig = [r for r in rows if not r["significant"]]
    if not_sig:
        r = max(not_sig, key=lambda r: abs(r["acc_a"] - r["acc_b"]))
        out.append(
            f"The largest difference that is not significant is {r['model_a']} vs {r['model_b']} "
            f"({100 * abs(r['acc_a'] - r['acc_b']):.2f} points, {r['a_only_right']} vs {r['b_only_right']} discordant images, "
            f"adjusted p = {r['p_holm']:.3g}): such models should be treated as tied on this test set."
        )
    if sig:
        r = min(sig, key=lambda r: abs(r["acc_a"] - r["acc_b"]))
        out.append(
            f"The smallest significant difference is {r['model_a']} vs {r['model_b']} "
            f"({100 * abs(r['acc_a'] - r['acc_b']):.2f} points, adjusted p = {r['p_holm']:.3g})."
        )
    return out


def class_findings(mean_f1: dict[str, float], confusion: tuple[str, str, int]) -> list[str]:
    """``mean_f1``: class -> F1 averaged over models; ``confusion``: the best model's (true, predicted, images)."""
    hard, easy = min(mean_f1, key=mean_f1.get), max(mean_f1, key=mean_f1.get)
    t, p, n = confusion
    return [
        f"Averaged over models, class {hard} is the hardest (mean F1 {mean_f1[hard]:.3f}) and class "
        f"{easy} the easiest ({mean_f1[easy]:.3f}); the best model's most frequent confusion is true {t} "
        f"predicted as {p} ({n} images)."
    ]


def all_wrong_finding(n_wrong: int, n_test: int, n_models: int) -> str:
    return (
        f"{n_wrong} of {n_test} test images ({100 * (n_wrong / n_test):.2f} %) are misclassified by "
        f"all {n_models} models; stored in predictions.npz for the error analysis."
    )


def data_note(n_train: int, total_train: int, n_test: int, total_test: int, dataset: str) -> str:
    subset = lambda n, total: f" (a seeded stratified subset of the official {total:,})" if n < total else ""  # noqa: E731
    return (
        f"Every model is trained on the same {n_train:,} training images{subset(n_train, total_train)} and evaluated "
        f"once on {n_test:,} test images{subset(n_test, total_test)} of {dataset}'s official split; nothing is tuned on "
        "the test set. "
        "Hyper-parameter searches use validation images carved from the training set. Times are wall-clock seconds "
        "on the machine that ran the study, with BLAS threads limited to the study's n_jobs."
    )


def search_note(model: str, results: list[dict], chosen: str) -> str:
    cells = "; ".join(
        ", ".join(f"{k.split('__')[-1]}={v:g}" for k, v in row.items() if k != "val_accuracy")
        + f": {100 * row['val_accuracy']:.1f} %"
        for row in results
    )
    return f"{model} validation search ({len(results)} settings, chosen {chosen}): {cells}."


def cnn_note(recipe: str, budget: dict | None, max_seconds: float, val_fraction: float) -> str:
    """``budget``: epochs_run, steps, batch_size, min_steps, configured_epochs (None = no training record)."""
    text = ""
    if budget:
        text = f": {budget['epochs_run']} epochs, {budget['steps']:,} optimiser steps of batch {budget['batch_size']}"
        if budget["stretched"]:
            text += (
                f" (the recipe's budget of at least {budget['min_steps']:,} steps stretched the {budget['configured_epochs']} "
                "configured epochs)"
            )
    return (
        f"The CNN uses the {recipe} training recipe"
        + text
        + (f", capped at {max_seconds:g} s of training" if max_seconds else "")
        + f"; it holds out {100 * val_fraction:g} % of its training images to pick the best "
        "epoch's checkpoint, so it fits on fewer images than the classic models."
    )


SCORES_NOTE = (
    "Models without probabilities (the SVMs) are ranked by their decision scores for ROC-AUC, PR-AUC and top-2; "
    "Platt scaling would cost five extra fits. predictions.npz stores y_pred and probabilities or scores per model."
)

CAPTIONS = {
    "accuracy": "Test error of every model with its 95 % bootstrap confidence interval.",
    "confusion_best": "Confusion matrix of the best model ({best}): counts and row-normalised; off-diagonal cells are coloured.",
    "per_class_f1": "Per-class F1 of every model.",
    "reliability": "Reliability diagrams ({bins} equal-width confidence bins) of the models that output probabilities; the "
    "dashed diagonal is perfect calibration.",
    "mcnemar": "Pairwise McNemar tests: Holm-adjusted p-values (dark = significant).",
    "cost": "Fit time against test error (both log scale).",
    "cnn_curves": "The CNN's training curves: cross-entropy (log scale) and accuracy per epoch on its training images and on "
    "the {val:g} % of them held out for validation; the weights of the best validation epoch are the ones tested.",
}

TABLES = {
    "scores": "Label-based scores on the test set, best first (accuracy CI: percentile bootstrap, {n_boot} resamples).",
    "probabilistic": "Ranking and probability scores; models without probabilities are ranked by their decision scores, and "
    "log loss / Brier / ECE are left empty for them.",
    "per_class_f1": "F1 per class and model (the heatmap's numbers).",
    "cost": "Training images, setup, fit and predict time (this machine), training GFLOP (the CNN only: PyTorch's FLOP count "
    "of one training step per image times the images seen; classic models have no FLOP counter and keep seconds "
    "only), and model size (fitted numbers and pickled size; parameters and their bytes for the CNN).",
    "mcnemar": "Pairwise McNemar tests on the test set (exact binomial below 25 discordant images, otherwise chi-square with "
    "continuity correction) with Holm-adjusted p-values.",
    "cnn_curves": "The CNN's training history ({n} epochs): training loss and accuracy (running means over each epoch's "
    "batches), validation loss and accuracy, and the learning rate at the epoch's start.",
}
