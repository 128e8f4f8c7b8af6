"""The report's outline: the course brief's sections, in its order, and the digitlab tasks that answer each.

This is the one place that maps the brief (Task 1-5, Bonus 1-2) to task names. Each part carries the
brief's question in our own words; the builder fills in method, results, findings and an answer
computed from the stored results. A task added to the study appears in the report once it is listed
here (tasks that are not listed land in "Other results" at the end).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """A numbered sub-section (e.g. "3.2"): one question of the brief and the tasks that answer it."""

    number: str  # "3.2"
    title: str
    question: str  # the brief's question, paraphrased
    tasks: tuple[str, ...] = ()  # digitlab tasks whose results are shown here, in this order
    special: str = ""  # a part the builder assembles itself: "metrics" (3.1), "cnn_vs_classic"


@dataclass(frozen=True)
class Section:
    """A top-level section of the brief (Task 1 ... Bonus 2)."""

    key: str  # HTML anchor: "task1", "bonus2"
    label: str  # "Task 1", "Bonus 1"
    title: str
    parts: tuple[Part, ...]
    how_to_run: str = ""  # shown when none of its tasks is in the run
    optional: bool = False  # a bonus: absent without being a gap of the run

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for p in self.parts for t in p.tasks)


OUTLINE: tuple[Section, ...] = (
    Section(
        "task1",
        "Task 1",
        "Data preprocessing",
        (
            Part(
                "1.1",
                "Reading the data and a first look",
                "Load the images and labels, check their sizes and classes, look at examples and the pixel values, "
                "and move between the 28×28 image and the 784-long vector a classic model reads.",
                ("overview",),
            ),
            Part(
                "1.2",
                "Simple statistical features",
                "Compute simple image statistics (mean intensity, share of inked pixels after thresholding, and similar) "
                "and find out which of them carry real information about the digit.",
                ("features",),
            ),
        ),
        how_to_run="digitlab run --tasks overview,features",
    ),
    Section(
        "task2",
        "Task 2",
        "Visualisation and augmentation",
        (
            Part(
                "2.1",
                "Dimension reduction",
                "Project the images to two dimensions (PCA, t-SNE, UMAP), draw the classes, describe how the samples "
                "are spread out and explain the likely reasons.",
                ("embed",),
            ),
            Part(
                "2.2",
                "Data augmentation",
                "Apply transformations such as noise, flips and crops, see how they move the data's distribution, judge "
                "whether each one helps a classifier and explain why some of them do not suit handwritten digits.",
                ("augment",),
            ),
        ),
        how_to_run="digitlab run --tasks embed,augment",
    ),
    Section(
        "task3",
        "Task 3",
        "Classification on the official split",
        (
            Part(
                "3.1",
                "Performance metrics",
                "Which measures describe a classifier's performance, how is each one computed, and what does it tell "
                "us in practice?",
                (),
                special="metrics",
            ),
            Part(
                "3.2",
                "Classic models",
                "Train at least three classic methods (e.g. decision tree, random forest, SVM, logistic regression), "
                "compare them on every metric and explain why they rank as they do on this data.",
                ("classify",),
            ),
            Part(
                "3.3",
                "A convolutional network",
                "Train a CNN, compare it with the classic methods, and measure how its hyper-parameters, its depth and "
                "its architecture change the result.",
                ("cnn_sweeps",),
                special="cnn_vs_classic",
            ),
        ),
        how_to_run="digitlab run --tasks classify,cnn_sweeps",
    ),
    Section(
        "task4",
        "Task 4",
        "How much training data is needed",
        (
            Part(
                "4.1",
                "Accuracy against training-set size",
                "Start from about a hundred images per digit, grow the training set step by step, follow each model's "
                "accuracy and convergence, see where the gains level off and judge which size is enough; compare "
                "models trained on 1,000, 10,000 and all images on the same test set.",
                ("datasize",),
            ),
        ),
        how_to_run="digitlab run --tasks datasize",
    ),
    Section(
        "task5",
        "Task 5",
        "Errors, under-fitting and over-fitting",
        (
            Part(
                "5.1",
                "The images the models get wrong",
                "Collect each model's misclassified test images, place them in the 2-D map, check whether different "
                "models fail on the same images and describe what makes those images hard.",
                ("errors",),
            ),
            Part(
                "5.2",
                "Regularisation and model complexity",
                "Vary L1 and L2 penalties and dropout (per layer), compare models from a perceptron to a deep network, "
                "and compare training, validation and test scores to choose a model that fits without over-fitting.",
                ("overfit",),
            ),
        ),
        how_to_run="digitlab run --tasks errors,overfit",
    ),
    Section(
        "bonus1",
        "Bonus 1",
        "Clustering",
        (
            Part(
                "B1",
                "Clusters of images and of network layers",
                "Cluster the images with at least two methods, show the clusters in the 2-D map and measure their "
                "agreement with the labels; repeat on every convolutional layer's output and follow how the agreement "
                "changes with depth.",
                ("cluster",),
            ),
        ),
        how_to_run="digitlab run --tasks cluster",
        optional=True,
    ),
    Section(
        "bonus2",
        "Bonus 2",
        "Diabetic-retinopathy grading",
        (
            Part(
                "B2",
                "The same study on fundus photographs",
                "Replace the digits by fundus photographs graded in five levels (DDR), train and score the same models, "
                "see whether the metrics differ markedly, and check how the digit augmentations behave there.",
                ("fundus",),
            ),
        ),
        how_to_run="digitlab run --dataset ddr --data-dir DIR (DIR holds DDR's DR_grading/; `digitlab data synth-fundus "
        "DIR` writes a synthetic stand-in)",
        optional=True,
    ),
)


# What the PDF prints of each task: the brief asks for a concise report, so the PDF carries each task's
# key figures and tables and names the others, which stay in report.html (and result.json). "*" = all.
# A task not listed prints its first DEFAULT_PDF_FIGURES figures and DEFAULT_PDF_TABLES tables (a task
# orders them by importance); a listed name the task does not produce is ignored, and when none of a
# task's listed names exists, the default applies, so a renamed figure is never silently dropped.
PDF_SELECTION: dict[str, tuple[tuple[str, ...] | str, tuple[str, ...] | str]] = {
    "overview": (("samples", "class_counts", "pixel_hist"), ("classes",)),
    "features": (("feature_scores", "distributions", "class_means"), ("accuracy", "class_means")),
    "embed": (("maps",), ("methods", "own_class")),
    "augment": (
        ("gallery", "shift_map", "clean_delta", "robustness_heatmap", "flip_confusions"),
        ("distribution_shift", "effectiveness", "flip_confusions"),
    ),
    "classify": (
        ("accuracy", "confusion_best", "per_class_f1", "reliability", "cost"),
        ("scores", "probabilistic", "cost"),
    ),
    "cnn_sweeps": ("*", ("params_vs_accuracy",)),
    "datasize": (("first_look", "growth", "convergence", "class_gain"), ("first_look", "milestones")),
    "errors": (
        ("error_map", "jaccard", "hard_gallery", "label_issues_test"),
        ("models", "traits", "label_issues_test"),
    ),
    "overfit": (
        ("penalties_cnn", "logreg", "dropout", "ladder", "remedies"),
        ("penalties", "dropout", "ladder", "remedies"),
    ),
    "cluster": (("contingency", "assignments_umap", "layer_scores"), ("methods", "layers")),
}
DEFAULT_PDF_FIGURES = 4
DEFAULT_PDF_TABLES = 3
# The PDF prints a task's first PDF_FINDINGS findings (a task lists them most important first; the part's
# answer box carries its conclusion) and says how many more report.html holds, where every finding stays.
PDF_FINDINGS = 6


def in_pdf(task: str, kind: str, names: list[str]) -> list[bool]:
    """Which of a task's figures (``kind="figures"``) or tables (``"tables"``) the PDF prints."""
    chosen = PDF_SELECTION.get(task, (None, None))[0 if kind == "figures" else 1]
    if chosen == "*":
        return [True] * len(names)
    if chosen and any(n in chosen for n in names):
        return [n in chosen for n in names]
    limit = DEFAULT_PDF_FIGURES if kind == "figures" else DEFAULT_PDF_TABLES
    return [i < limit for i in range(len(names))]


def outline_tasks() -> tuple[str, ...]:
    """Every task name the outline places, in the brief's order."""
    return tuple(t for s in OUTLINE for t in s.tasks)


def section_of(task: str) -> Section | None:
    for s in OUTLINE:
        if task in s.tasks:
            return s
    return None


__all__ = [
    "Part",
    "Section",
    "OUTLINE",
    "PDF_SELECTION",
    "PDF_FINDINGS",
    "in_pdf",
    "outline_tasks",
    "section_of",
]
