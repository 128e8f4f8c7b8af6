"""Names of models, networks and metrics in words, for prose, table cells and headings.

Code and config files use short identifiers (``random_forest``, ``rbf_svm``); a reader of the report
should see "random forest" and "RBF SVM". This module is the one mapping: the report uses it for
table cells and headings, and tasks use it when they write sentences::

    from digitlab.names import model_name
    f"The {model_name('rbf_svm')} beats the {model_name('tree')} by 8 points."

It imports nothing from digitlab, so any module may import it.
"""

from __future__ import annotations

import re

# Model identifiers of the zoo (digitlab.models.classic, "cnn") and of digitlab.models.nets.
MODEL_NAMES: dict[str, str] = {
    "logreg": "logistic regression",
    "linear_svm": "linear SVM",
    "rbf_svm": "RBF SVM",
    "svm": "SVM",
    "knn": "k-NN",
    "tree": "decision tree",
    "decision_tree": "decision tree",
    "random_forest": "random forest",
    "extra_trees": "extra trees",
    "hgb": "gradient boosting",
    "gnb": "Gaussian naive Bayes",
    "numpy_mlp": "NumPy MLP",
    "mlp": "MLP",
    "perceptron": "perceptron",
    "cnn": "CNN",
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

# The same models in Chinese (the report's --lang zh).
MODEL_NAMES_ZH: dict[str, str] = {
    "logreg": "逻辑回归", "linear_svm": "线性 SVM", "rbf_svm": "RBF 核 SVM", "svm": "SVM", "knn": "k 近邻",
    "tree": "决策树", "decision_tree": "决策树", "random_forest": "随机森林", "extra_trees": "极端随机树",
    "hgb": "梯度提升树", "gnb": "高斯朴素贝叶斯", "numpy_mlp": "NumPy 多层感知机", "mlp": "多层感知机",
    "perceptron": "感知机", "cnn": "CNN", "lenet5": "LeNet-5", "resnet": "ResNet", "convmixer": "ConvMixer",
    "kmeans": "k 均值", "agglomerative": "层次聚类", "gmm": "高斯混合模型", "spectral": "谱聚类",
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
# "svm" are not: they are ordinary words too).
_PROSE_IDS = ("random_forest", "extra_trees", "rbf_svm", "linear_svm", "logreg", "numpy_mlp", "hgb", "gnb",
              "knn", "cnn", "lenet5", "convmixer", "resnet", "decision_tree")
_PROSE_RE = re.compile(r"(?<![\w./-])(" + "|".join(_PROSE_IDS) + r")(?![\w/-]|\.\w)")


def model_name(name: str, lang: str = "en") -> str:
    """``name`` in words ("random_forest" -> "random forest"); unknown names have '_' turned into spaces.
    ``lang="zh"`` gives the Chinese name where there is one."""
    key = str(name)
    if lang == "zh" and key in MODEL_NAMES_ZH:
        return MODEL_NAMES_ZH[key]
    if key in MODEL_NAMES:
        return MODEL_NAMES[key]
    low = key.lower()
    return MODEL_NAMES.get(low, key.replace("_", " "))


def column_name(name: str) -> str:
    """A table column's header in words ("f1_macro" -> "F1 macro"); unknown names have '_' as spaces."""
    key = str(name)
    if key in COLUMN_NAMES:
        return COLUMN_NAMES[key]
    return key.replace("_", " ")


def cell_name(value: str) -> str:
    """A table cell that is exactly a model identifier, in words; any other text unchanged."""
    return MODEL_NAMES.get(value, value) if isinstance(value, str) else value


def humanize(text: str) -> str:
    """Replace the distinctive model identifiers inside a sentence by their names in words.

    Only identifiers that cannot be ordinary words are replaced (``random_forest``, ``rbf_svm``, ``cnn``,
    ...), never inside file names, paths or code (``proba__cnn``, ``results/cnn``)."""
    if not isinstance(text, str) or not text:
        return text
    return _PROSE_RE.sub(lambda m: MODEL_NAMES[m.group(1)], text)


__all__ = ["MODEL_NAMES", "MODEL_NAMES_ZH", "COLUMN_NAMES", "model_name", "column_name", "cell_name", "humanize"]
