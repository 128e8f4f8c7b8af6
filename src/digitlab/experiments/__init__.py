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

from digitlab.experiments.augmentation import (
    AugmentationEffect,
    AugmentationShift,
    augmentation_catalogue,
    augmentation_effect,
    augmentation_shift,
)
from digitlab.experiments.base import Data, StudyResult, as_data, plot_accuracy
from digitlab.experiments.clustering import ImageClustering, LayerClustering, cluster_images, cluster_layers
from digitlab.experiments.cnn_sweep import CNNSweep, cnn_sweep
from digitlab.experiments.embedding import EmbeddingStudy, embedding_study
from digitlab.experiments.error_analysis import ErrorAnalysis, LabelIssues, error_analysis, label_issues
from digitlab.experiments.feature_study import FeatureStudy, feature_study
from digitlab.experiments.fundus import FundusGrading, fundus_grading
from digitlab.experiments.learning_curve import FirstLook, LearningCurve, first_look, learning_curve
from digitlab.experiments.model_comparison import ModelComparison, compare_models
from digitlab.experiments.overview import DataOverview, data_overview
from digitlab.experiments.regularisation import Regularisation, regularisation

# in the brief's order
__all__ = [
    "Data", "as_data", "StudyResult", "plot_accuracy",
    "data_overview", "DataOverview",                                   # Task 1
    "feature_study", "FeatureStudy",                                   # Task 1: discriminative features
    "embedding_study", "EmbeddingStudy",                               # Task 1: t-SNE, UMAP
    "augmentation_catalogue", "augmentation_shift", "AugmentationShift",
    "augmentation_effect", "AugmentationEffect",                       # Task 2
    "compare_models", "ModelComparison",                               # Task 3
    "cnn_sweep", "CNNSweep",                                           # Task 3: hyper-parameters, depth
    "first_look", "FirstLook", "learning_curve", "LearningCurve",      # Task 4
    "error_analysis", "ErrorAnalysis", "label_issues", "LabelIssues",  # Task 4: hard samples
    "regularisation", "Regularisation",                                # Task 5
    "cluster_images", "ImageClustering", "cluster_layers", "LayerClustering",  # Bonus 1
    "fundus_grading", "FundusGrading",                                 # Bonus 2
]  # fmt: skip
