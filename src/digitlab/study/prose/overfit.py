"""Sentences of the over-fitting section (task ``overfit``): findings, captions, notes; numbers in, strings out."""

from __future__ import annotations

from typing import Any

import numpy as np

from digitlab.experiments.regularisation import NET_WORDS, PLACE_WORDS, RUNG_WORDS, best_on_val


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def pts(x: float) -> str:
    return f"{100 * x:+.2f} points"


def penalty_findings(name: str, kind: str, res: dict[float, dict]) -> list[str]:
    zero, best = res[0.0], best_on_val(res)
    top = max(res)
    what = "L2 (coupled, λ·Σw²)" if kind == "l2" else "L1 (λ·Σ|w|)"
    s = (
        f"{NET_WORDS[name]}, {what}: the strength best on validation is λ = {best:g} (validation {pct(res[best]['val_acc'])}); "
        f"on test it scores {pct(res[best]['test_acc'])} against {pct(zero['test_acc'])} without a penalty "
        f"({pts(res[best]['test_acc'] - zero['test_acc'])}), and the train-test gap goes from {100 * zero['gap']:.2f} to "
        f"{100 * res[best]['gap']:.2f} points. At the largest strength (λ = {top:g}) training accuracy is "
        f"{pct(res[top]['train_acc'])} and test {pct(res[top]['test_acc'])}"
    )
    s += (
        ": the penalty has become too strong (under-fitting)."
        if res[top]["train_acc"] < zero["train_acc"] - 0.01
        else "."
    )
    if kind == "l2":
        ratio = zero["l2_sum"] / max(res[top]["l2_sum"], 1e-12)
        s += (
            f" The sum of squared weights falls from {zero['l2_sum']:.1f} (λ = 0) to {res[top]['l2_sum']:.3g} "
            + (f"({ratio:.0f}x smaller)." if ratio < 1e3 else "(the weights have collapsed towards zero).")
        )
    else:
        s += (
            f" The share of weights below 10⁻³ in magnitude rises from {100 * zero['small_frac']:.1f} % to "
            f"{100 * res[top]['small_frac']:.1f} %: L1 drives weights to (near) zero."
        )
    return [s]


def logreg_findings(res: dict[tuple[str, float], dict], none: dict) -> list[str]:
    out = []
    for pen in sorted({p for p, _ in res}):
        mine = {c: m for (p, c), m in res.items() if p == pen}
        c = best_on_val(mine)
        m = mine[c]
        out.append(
            f"Logistic regression, {pen.upper()}: C = {c:g} is best on validation ({pct(m['val_acc'])}); test "
            f"{pct(m['test_acc'])} against {pct(none['test_acc'])} without a penalty ({pts(m['test_acc'] - none['test_acc'])}); "
            f"train-test gap {100 * m['gap']:.2f} points (no penalty: {100 * none['gap']:.2f}); "
            f"{100 * m['nonzero_frac']:.0f} % of its coefficients are non-zero."
        )
    return out


def dropout_findings(res: dict[tuple[str, float], dict]) -> list[str]:
    zero = next(m for (pl, r), m in res.items() if r == 0.0)
    nonzero = {k: m for k, m in res.items() if k[1] > 0}
    if not nonzero:
        return []
    (place, rate) = best_on_val(nonzero)
    m = nonzero[(place, rate)]
    out = [
        f"Dropout: the best setting on validation is rate {rate:g} {PLACE_WORDS[place]} (validation {pct(m['val_acc'])}, test "
        f"{pct(m['test_acc'])}, {pts(m['test_acc'] - zero['test_acc'])} over no dropout); it narrows the train-test gap from "
        f"{100 * zero['gap']:.2f} to {100 * m['gap']:.2f} points."
    ]
    per_place = []
    for pl in dict.fromkeys(k[0] for k in nonzero):
        ms = [m for k, m in nonzero.items() if k[0] == pl]
        per_place.append(
            f"{PLACE_WORDS[pl]} {100 * np.mean([x['test_acc'] - zero['test_acc'] for x in ms]):+.2f}"
        )
    top = max(k[1] for k in nonzero)
    worst = min((k for k in nonzero if k[1] == top), key=lambda k: nonzero[k]["train_acc"])
    out.append(
        f"Mean change in test accuracy over the non-zero rates, by placement (points): {'; '.join(per_place)}. At rate "
        f"{top:g} {PLACE_WORDS[worst[0]]} the training accuracy is {pct(nonzero[worst]['train_acc'])} "
        f"(no dropout: {pct(zero['train_acc'])})."
    )
    return out


def ladder_findings(res: dict[str, dict]) -> list[str]:
    best = best_on_val(res)
    widest = max(res, key=lambda r: res[r]["gap"])
    cells = "; ".join(
        f"{RUNG_WORDS[r]} {res[r]['params']:,.0f} parameters, train {100 * res[r]['train_acc']:.1f} %, test "
        f"{100 * res[r]['test_acc']:.2f} %, gap {100 * res[r]['gap']:.1f}"
        for r in res
    )
    return [
        f"Complexity ladder ({cells}). The widest train-test gap is the {RUNG_WORDS[widest]}'s ({100 * res[widest]['gap']:.1f} "
        f"points); the model to pick on validation is the {RUNG_WORDS[best]} (validation {pct(res[best]['val_acc'])}, test "
        f"{pct(res[best]['test_acc'])}, gap {100 * res[best]['gap']:.1f} points)."
    ]


def remedies_findings(rem: list[dict]) -> tuple[list[str], str]:
    base = rem[0]
    others = rem[1:]
    gains = "; ".join(f"{r['remedy']} {r['d_test']:+.2f} points on test, gap {r['gap']:.2f}" for r in others)
    best = max(others, key=lambda r: r["d_test"])
    text = (
        f"Over-fitting setting (the small CNN without regularisation, last epoch): training {base['train_acc']:.2f} %, test "
        f"{base['test_acc']:.2f} %, a gap of {base['gap']:.2f} points. Recovered: {gains}."
    )
    head = (
        f"Trained without regularisation on {base['n_train']:,} images, the CNN reaches {base['train_acc']:.1f} % training but "
        f"{base['test_acc']:.2f} % test accuracy (a {base['gap']:.1f}-point gap); {best['remedy']} recovers the most "
        f"({best['d_test']:+.2f} points on test, gap {best['gap']:.1f})."
    )
    return [text], head


def curve_finding(history: list[dict], kept: int, patience: int) -> str:
    v = np.array([h["val_loss"] for h in history])
    a = np.array([h["val_acc"] for h in history])
    tl = np.array([h["train_loss"] for h in history])
    e_loss = int(np.argmin(v)) + 1
    best, since, stop = -1.0, 0, len(history)
    for i, acc in enumerate(a):
        best, since = (acc, 0) if acc > best else (best, since + 1)
        if since >= patience:
            stop = i + 1
            break
    return (
        f"Training curves of the over-fitting setting: validation loss is lowest at epoch {e_loss} ({v.min():.3f}) and ends at "
        f"{v[-1]:.3f} after {len(history)} epochs while the training loss falls from {tl[e_loss - 1]:.3f} to {tl[-1]:.4f}; "
        f"early stopping keeps epoch {kept}, the best on validation accuracy (ties go to the lower validation loss)"
        + (", which is the last epoch, so here it changes nothing" if kept == len(history) else "")
        + f". Stopping after {patience} epochs without a better validation accuracy would end training at epoch {stop} "
        f"of {len(history)}."
    )


def remedy_setting(remedy: str, l2_best: float, dropout_best: tuple[str, float], augment: str) -> str:
    return {
        "none": "no regularisation, last epoch",
        "early_stopping": "checkpoint of the epoch with the best validation accuracy",
        "l2": f"λ = {l2_best:g}, chosen on validation",
        "dropout": f"rate {dropout_best[1]:g} {PLACE_WORDS[dropout_best[0]]}, chosen on validation",
        "augmentation": f"random {augment} of every training batch",
    }[remedy]


def ladder_headline(res_lad: dict[str, dict]) -> str:
    pick = best_on_val(res_lad)
    return (
        f" Of the ladder from softmax regression to a deeper CNN, validation picks the {RUNG_WORDS[pick]} "
        f"({pct(res_lad[pick]['test_acc'])} on test, gap {100 * res_lad[pick]['gap']:.1f} points)."
    )


CAPTIONS = {
    "logreg": "Multinomial logistic regression on the same training images: accuracy against the penalty strength 1/C (L1 with "
    "the saga solver, L2 with lbfgs; 0 = no penalty), and the share of non-zero coefficients.",
    "dropout": "Dropout placed after every conv block, in the classifier head (on the dense hidden layer) or both, at each rate: "
    "test accuracy (left) and the train-test gap (right). Rate 0 is one run shared by the three rows.",
    "ladder": "Models of growing complexity, all trained without regularisation for the same budget: training, validation and "
    "test accuracy (left) and the train-test gap (right).",
    "remedies": "Left: training and validation loss and accuracy per epoch of the over-fitting setting (the small CNN, no "
    "regularisation). Right: test accuracy and train-test gap without a remedy and with each remedy.",
}
TABLE_CAPTIONS = {
    "penalties": "L1 and L2 penalties on the CNN and the MLP: accuracy (%) and cross-entropy on training, validation and test "
    "images, train-test gap (points), sum of squared and absolute weights, share of weights below 1e-3, parameters; "
    "mean over seeds, last epoch.",
    "logreg": "Logistic regression with an L1 or L2 penalty over C (inverse strength): accuracy (%), cross-entropy, gap, share of "
    "non-zero coefficients and solver iterations.",
    "dropout": "Dropout rate and placement: accuracy (%), cross-entropy and gap (points); mean over seeds, last epoch.",
    "ladder": "Complexity ladder: parameters, accuracy (%), cross-entropy and gap (points).",
    "remedies": "The over-fitting setting and each remedy: accuracy (%), cross-entropy, gap (points), change in test accuracy and "
    "gap against no remedy, epochs and optimiser steps.",
    "curves": "Per-epoch training and validation cross-entropy and accuracy (%) of the over-fitting setting (first seed); training "
    "figures are running means over the epoch's batches.",
}


def penalty_captions(name: str, n_train: int) -> tuple[str, str]:
    """Captions of the penalty figure and the weight-histogram figure of network ``name``."""
    return (
        f"{NET_WORDS[name]} on {n_train:,} training images: accuracy (top) and cross-entropy (bottom) on the training, "
        "validation and test images against the strength of the L1 and L2 penalties (0 drawn at the left end of the log axis).",
        f"{NET_WORDS[name]}: distribution of the penalised weights' magnitudes (log10 |w|) without a penalty, at the "
        "non-zero strength best on validation, and at the largest strength.",
    )


def summary(n_train: int, n_val: int, n_test: int, dataset: str) -> str:
    return (
        f"On {n_train:,} training images of {dataset} (a stratified subset), with "
        f"{n_val:,} other training images for validation and {n_test:,} test images: "
        "L1 and L2 penalties on a CNN and an MLP, logistic regression over C, dropout by rate and placement, a "
        "ladder of models from softmax regression to a deeper CNN, and what early stopping, L2, dropout and "
        "augmentation recover from a deliberately over-fitted CNN."
    )


def method_notes(
    cfg: Any, steps: list[int], n_networks: int, n_logreg: int, cpu: float, wall: float
) -> list[str]:
    """The section's notes; ``cfg``: the task's Config."""
    return [
        "L2 here is the coupled penalty λ·Σw² over the weight matrices and convolution kernels (not biases), added to the "
        "training loss; L1 is λ·Σ|w|. It is not AdamW's weight decay, which shrinks weights outside the adaptive step "
        "(decoupled): every network here trains with AdamW at weight decay 0, so the penalty varied is the only one.",
        f"Every network trains for {cfg.epochs} epochs of batches of {cfg.batch_size} and at least {cfg.min_steps} optimiser steps "
        f"(runs had {', '.join(map(str, steps))} steps), one-cycle learning rate peaking at {cfg.lr:g}; the weights of the last "
        "epoch are scored, so nothing is chosen on the test images. Validation images choose the strength, rate and model.",
        f"The CNN has {cfg.cnn_blocks} conv blocks (3x3 conv, ReLU, 2x2 max-pool; {cfg.cnn_width} channels doubling per block), a "
        f"dense hidden layer of {cfg.cnn_hidden} units and no batch normalisation"
        + (
            " (kept off because with it the scale of a kernel does not change the function, so a penalty on kernels would only "
            "change the effective step size)."
            if not cfg.cnn_batch_norm
            else "."
        )
        + f" The MLP has hidden layers {list(cfg.mlp_hidden)}, the deep MLP {list(cfg.deep_mlp_hidden)}; softmax regression "
        f"is the MLP without hidden layer; the deeper CNN has {cfg.deeper_cnn_convs} convs per block.",
        "Dropout 'after every conv block' zeroes activations of the feature maps after each block's pooling; 'in the head' "
        "zeroes units of the dense hidden layer before the output layer; the model is scored with dropout off.",
        "Early stopping keeps the weights of the epoch with the best validation accuracy, judged on the same validation images "
        "the other runs are scored on; the other remedies take the L2 strength and dropout setting best on validation.",
        f"Logistic regression: L1 uses the saga solver (at most {cfg.logreg_max_iter} passes, so at large C it may stop before "
        "converging), L2 and no penalty lbfgs; strength is 1/C.",
        f"{n_networks} distinct networks x {cfg.n_seeds} seed(s) and {n_logreg} logistic regressions; {cpu:.0f} CPU "
        f"seconds in {wall:.0f} s of wall time.",
    ]
