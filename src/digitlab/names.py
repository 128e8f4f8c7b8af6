"""Names of models, networks and metrics in words, for prose, table cells and headings.

Code and config files use short identifiers (``random_forest``, ``rbf_svm``); a reader of the report
should see "random forest" and "RBF SVM". This module is the one mapping: the report uses it for
table cells and headings, and tasks use it when they write sentences::

    from digitlab.names import model_name
    f"The {model_name('rbf_svm')} beats the {model_name('tree')} by 8 points."

The zoo's models take their words from their registry entry (:class:`digitlab.models.zoo.ModelSpec`),
read when a name is looked up; this module keeps the words of the other identifiers.
"""

from __future__ import annotations

import re

# Identifiers that are not models of the zoo (the zoo's models take their words from their registry
# entry, digitlab.models.zoo.ModelSpec): other spellings, networks of digitlab.models.nets, clusterings.
MODEL_NAMES: dict[str, str] = {
    "svm": "SVM",
    "decision_tree": "decision tree",
    "mlp": "MLP",
    "perceptron": "perceptron",
    "lenet5": "LeNet-5",
    "resnet": "ResNet",
    "convmixer": "ConvMixer",
    "kmeans": "k-means",
    "agglomerative": "agglomerative clustering",
    "gmm": "Gaussian mixture",
    "spectral": "spectral clustering",
    "dbscan": "DBSCAN",
    "hdbscan": "HDBSCAN",
}

# The same in Chinese (the report's --lang zh).
MODEL_NAMES_ZH: dict[str, str] = {
    "svm": "SVM",
    "decision_tree": "决策树",
    "mlp": "多层感知机",
    "perceptron": "感知机",
    "lenet5": "LeNet-5",
    "resnet": "ResNet",
    "convmixer": "ConvMixer",
    "kmeans": "k 均值",
    "agglomerative": "层次聚类",
    "gmm": "高斯混合模型",
    "spectral": "谱聚类",
}

# Column names and metric identifiers that read better in words (table headers).
COLUMN_NAMES: dict[str, str] = {
    "model": "model",
    "accuracy": "accuracy",
    "acc": "accuracy",
    "balanced_accuracy": "balanced acc.",
    "f1_macro": "F1 macro",
    "f1_weighted": "F1 weighted",
    "f1_micro": "F1 micro",
    "precision_macro": "precision macro",
    "recall_macro": "recall macro",
    "kappa": "Cohen's kappa",
    "cohen_kappa": "Cohen's kappa",
    "mcc": "MCC",
    "roc_auc": "ROC-AUC",
    "roc_auc_ovr": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "top2": "top-2 acc.",
    "top_2_accuracy": "top-2 acc.",
    "log_loss": "log loss",
    "brier": "Brier",
    "ece": "ECE",
    "n_train": "training images",
    "n_test": "test images",
    "n_seeds": "seeds",
    "fit_s": "fit (s)",
    "predict_s": "predict (s)",
    "train_acc": "train acc.",
    "val_acc": "validation acc.",
    "test_acc": "test acc.",
    "train_loss": "train loss",
    "val_loss": "validation loss",
    "test_loss": "test loss",
    "p_holm": "p (Holm)",
    "p_value": "p",
}

# Identifiers distinctive enough to be replaced inside sentences written with raw names ("tree" and
# "svm" are not: they are ordinary words too); the zoo's models say so in their entry (in_prose).
_PROSE_IDS = ("lenet5", "convmixer", "resnet", "decision_tree")


def _zoo() -> list:
    """The zoo's registry entries (read when a name is looked up, so a model registered later is known)."""
    from digitlab.models.zoo import registered_models

    return registered_models()


def words(lang: str = "en") -> dict[str, str]:
    """Identifier -> name in words of every known model: the zoo's registry entries and the other
    identifiers (``lang="zh"``: only those with a Chinese name)."""
    if lang == "zh":
        return {**MODEL_NAMES_ZH, **{s.name: s.words_zh for s in _zoo() if s.words_zh}}
    return {**MODEL_NAMES, **{s.name: s.words for s in _zoo()}}


_PROSE_CACHE: dict[tuple, re.Pattern] = {}


def _prose_re() -> tuple[re.Pattern, dict[str, str]]:
    zoo = _zoo()
    ids = tuple(s.name for s in zoo if s.in_prose) + _PROSE_IDS
    if ids not in _PROSE_CACHE:
        _PROSE_CACHE.clear()
        _PROSE_CACHE[ids] = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, ids)) + r")(?![\w/-]|\.\w)")
    return _PROSE_CACHE[ids], words()


def model_name(name: str, lang: str = "en") -> str:
    """``name`` in words ("random_forest" -> "random forest"); unknown names have '_' turned into spaces.
    ``lang="zh"`` gives the Chinese name where there is one."""
    key = str(name)
    zh = words("zh") if lang == "zh" else {}
    if key in zh:
        return zh[key]
    en = words()
    if key in en:
        return en[key]
    return en.get(key.lower(), key.replace("_", " "))


def column_name(name: str) -> str:
    """A table column's header in words ("f1_macro" -> "F1 macro"); unknown names have '_' as spaces."""
    key = str(name)
    if key in COLUMN_NAMES:
        return COLUMN_NAMES[key]
    return key.replace("_", " ")


def cell_name(value: str) -> str:
    """A table cell that is exactly a model identifier, in words; any other text unchanged."""
    return words().get(value, value) if isinstance(value, str) else value


def humanize(text: str) -> str:
    """Replace the distinctive model identifiers inside a sentence by their names in words.

    Only identifiers that cannot be ordinary words are replaced (``random_forest``, ``rbf_svm``, ``cnn``,
    ...), never inside file names, paths or code (``proba__cnn``, ``results/cnn``)."""
    if not isinstance(text, str) or not text:
        return text
    pattern, names = _prose_re()
    return pattern.sub(lambda m: names[m.group(1)], text)


__all__ = [
    "MODEL_NAMES",
    "MODEL_NAMES_ZH",
    "COLUMN_NAMES",
    "words",
    "model_name",
    "column_name",
    "cell_name",
    "humanize",
]
