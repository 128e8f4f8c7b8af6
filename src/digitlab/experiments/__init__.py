"""The study's experiments, one function per experiment of the brief.

Each function takes a :class:`~digitlab.data.dataset.Dataset` (or the arrays ``(x_train, y_train,
x_test, y_test)``) and explicit keyword parameters (``random_state``/``seed``, ``n_jobs``, budgets) and
returns a result object whose tables are pandas DataFrames and whose ``plot_*(ax=None)`` methods return
a matplotlib Figure. The CLI's tasks call these same functions, so a notebook and the report compute
the same numbers::

    from digitlab.data import load_dataset
    from digitlab.experiments import compare_models

    ds = load_dataset("mnist")
    cmp = compare_models(ds, ["logreg", "random_forest", "cnn"], n_train=5000)
    cmp.scores
"""

from digitlab.experiments.augmentation import AugmentationEffect, augmentation_effect
from digitlab.experiments.base import Data, StudyResult, as_data, plot_accuracy
from digitlab.experiments.clustering import ImageClustering, LayerClustering, cluster_images, cluster_layers
from digitlab.experiments.cnn_sweep import CNNSweep, cnn_sweep
from digitlab.experiments.error_analysis import ErrorAnalysis, LabelIssues, error_analysis, label_issues
from digitlab.experiments.learning_curve import LearningCurve, learning_curve
from digitlab.experiments.model_comparison import ModelComparison, compare_models

__all__ = [
    "Data",
    "as_data",
    "StudyResult",
    "plot_accuracy",
    "compare_models",
    "ModelComparison",
    "error_analysis",
    "ErrorAnalysis",
    "label_issues",
    "LabelIssues",
    "learning_curve",
    "LearningCurve",
    "cnn_sweep",
    "CNNSweep",
    "augmentation_effect",
    "AugmentationEffect",
    "cluster_images",
    "ImageClustering",
    "cluster_layers",
    "LayerClustering",
]
