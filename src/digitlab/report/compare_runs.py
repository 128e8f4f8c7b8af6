"""Compare two run folders: what differs in the setup, what differs in the results, and whether it is real.

A student changes one thing (the augmentation, the learning rate, the training size) and wants to
know what it changed and whether the change is more than noise. :func:`compare_runs` reads two
folders written by ``digitlab run`` and returns a :class:`Comparison` whose tables are pandas
DataFrames::

    from digitlab.report.compare_runs import compare_runs
    c = compare_runs("runs/20261123-101500-baseline", "runs/20261123-113000-variant")
    c.headline            # the significant changes, largest first, as sentences
    c.config              # the config keys that differ, with both values
    c.tests               # per model: both accuracies, the difference, its 95 % interval, McNemar
    c.metrics             # every model x metric of both runs with difference and interval
    c.write("out", pdf=True)   # compare.html (+ compare.pdf) and the tables as CSV

Statistics. The classify task stores every model's test predictions (``predictions.npz``). When
both runs scored the same test images (the same rows of the same dataset's test set), the
differences are paired: McNemar's test on the images exactly one run gets right, with Holm's
correction across models, and a paired bootstrap (the same resampled images for both runs) for the
95 % interval of every metric's difference. When they did not, the comparison says so and uses an
unpaired bootstrap (each run's test images resampled independently), whose percentile test gives
the p-value. Sweep tables that report a mean and standard deviation over seeds get Welch intervals.
Single measurements (seconds, sizes) and counts (FLOPs) get a difference but no interval.

Bad input: a folder that is not a run or whose ``summary.json`` is unreadable, or two runs of
different datasets, raise a one-line :class:`~digitlab.exceptions.DigitlabError`; a missing or corrupt
task result, a task or model present in one run only, or different test images limit the
comparison to what can honestly be compared, and :attr:`Comparison.notes` says what was left out and why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from digitlab.exceptions import DigitlabError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ALPHA = 0.05
N_BOOT = 1000
# Study keys that name or place a run but cannot change its results.
BOOKKEEPING = ("study.name", "study.output_dir", "study.cache_dir", "study.use_cache", "study.pdf")
# Classify's tables compared model by model with intervals (the rest of its tables go through the generic path).
CLASSIFY_SCORE_TABLES = ("scores", "probabilistic")
CLASSIFY_SKIP_TABLES = ("scores", "probabilistic", "cost", "mcnemar")
# metrics.classification_metrics key -> the column name of classify's tables
METRIC_NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_acc",
    "precision_macro": "precision_macro",
    "recall_macro": "recall_macro",
    "f1_macro": "f1_macro",
    "f1_micro": "f1_micro",
    "f1_weighted": "f1_weighted",
    "cohen_kappa": "kappa",
    "mcc": "mcc",
    "roc_auc_ovr": "roc_auc_ovr",
    "pr_auc": "pr_auc",
    "top2_accuracy": "top2_accuracy",
    "log_loss": "log_loss",
    "brier": "brier",
    "ece": "ece",
}
# The headline's non-accuracy scores (the label-based ones move with accuracy).
PROBABILITY_METRICS = ("top2_accuracy", "log_loss", "brier", "ece")
METRIC_WORDS = {
    "top2_accuracy": "top-2 accuracy",
    "log_loss": "log loss",
    "brier": "Brier score",
    "ece": "calibration error (ECE)",
}
NOT_BOOTSTRAPPED = (
    "roc_auc_ovr",
    "pr_auc",
)  # ranking metrics: one sort per class and resample; left without interval
LOWER_IS_BETTER = ("log_loss", "brier", "ece", "fit_s", "predict_s", "train_gflop", "size_kb", "parameters")
COST_COLUMNS = ("n_train", "fit_s", "train_gflop", "predict_s", "parameters", "size_kb")
MODEL_WORDS = {
    "logreg": "logistic regression",
    "linear_svm": "linear SVM",
    "gnb": "Gaussian naive Bayes",
    "tree": "decision tree",
    "knn": "k-NN",
    "random_forest": "random forest",
    "extra_trees": "extra trees",
    "hgb": "gradient boosting (HGB)",
    "rbf_svm": "RBF SVM",
    "numpy_mlp": "NumPy MLP",
    "cnn": "CNN",
}


def model_words(name: str) -> str:
    """A model's name in words for prose ("random forest", not ``random_forest``)."""
    return MODEL_WORDS.get(name, name.replace("_", " "))


# =============================================================================================
# Reading run folders
# =============================================================================================


@dataclass
class RunFolder:
    """What a run folder holds, as far as it could be read."""

    path: Path
    summary: dict
    env: dict
    config: dict
    results: dict[str, Any]  # task -> TaskResult, for the tasks whose result.json could be read
    problems: list[str] = field(default_factory=list)  # what could not be read, one sentence each

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def tasks(self) -> list[str]:
        return [t["task"] for t in self.summary.get("tasks", [])]

    @property
    def dataset(self) -> dict:
        return self.summary.get("dataset", {})

    def task_dir(self, task: str) -> Path:
        return self.path / "results" / task


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_run(path: str | Path) -> RunFolder:
    """Read a run folder; a folder that is not a finished run is a one-line :class:`DigitlabError`."""
    from digitlab.study.cache import result_from_json

    path = Path(path)
    if not path.is_dir():
        raise DigitlabError(
            f"{path}: no such folder; pass a run folder written by `digitlab run` (runs/<timestamp>-<name>)"
        )
    if not (path / "summary.json").is_file():
        raise DigitlabError(
            f"{path}: not a digitlab run folder (no summary.json); pass a folder written by `digitlab run`"
        )
    try:
        summary = json.loads((path / "summary.json").read_text())
        if (
            not isinstance(summary, dict)
            or not isinstance(summary.get("tasks"), list)
            or "dataset" not in summary
        ):
            raise ValueError("it lacks the tasks or dataset entries")
    except (OSError, ValueError) as exc:
        raise DigitlabError(
            f"{path}/summary.json: unreadable ({_first_line(exc)}); the run did not finish or the file is damaged, "
            "rerun it"
        ) from None
    run = RunFolder(path, summary, {}, {}, {})
    try:
        run.env = json.loads((path / "environment.json").read_text())
    except (OSError, ValueError) as exc:
        run.problems.append(
            f"its environment.json is unreadable ({_first_line(exc)}), so environment differences are unknown"
        )
    try:
        run.config = tomllib.loads((path / "config.toml").read_text())
    except (OSError, ValueError) as exc:
        run.problems.append(
            f"its config.toml is unreadable ({_first_line(exc)}), so config differences are unknown"
        )
    for task in run.tasks:
        file = run.task_dir(task) / "result.json"
        try:
            run.results[task] = result_from_json(file.read_text())
        except FileNotFoundError:
            run.problems.append(
                f"its {task} result is missing (results/{task}/result.json not found), so {task} is left out"
            )
        except (OSError, ValueError, TypeError, KeyError) as exc:
            run.problems.append(
                f"its {task} result is corrupt (results/{task}/result.json: {_first_line(exc)}), so {task} is left out"
            )
    return run


@dataclass
class Predictions:
    """Per-model test predictions of a classify run (``predictions.npz``)."""

    y_true: np.ndarray
    test_index: np.ndarray | None
    models: list[str]
    pred: dict[str, np.ndarray]
    proba: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]

    def reorder(self, order: np.ndarray) -> Predictions:
        """The same predictions with the test images in ``order``."""
        take = lambda d: {k: v[order] for k, v in d.items()}  # noqa: E731
        return Predictions(
            self.y_true[order],
            None if self.test_index is None else self.test_index[order],
            self.models,
            take(self.pred),
            take(self.proba),
            take(self.scores),
        )


def read_predictions(run: RunFolder, problems: list[str], side: str) -> Predictions | None:
    """The classify predictions of ``run``, or None with a sentence in ``problems``."""
    file = run.task_dir("classify") / "predictions.npz"
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        models = [str(m) for m in arrays["models"]]
        y = np.asarray(arrays["y_true"], np.int64)
        pred = {m: np.asarray(arrays[f"y_pred__{m}"], np.int64) for m in models}
        proba = {m: np.asarray(arrays[f"proba__{m}"], np.float64) for m in models if f"proba__{m}" in arrays}
        scores = {
            m: np.asarray(arrays[f"scores__{m}"], np.float64) for m in models if f"scores__{m}" in arrays
        }
        if any(len(v) != len(y) for d in (pred, proba, scores) for v in d.values()):
            raise ValueError("arrays of different lengths")
        index = np.asarray(arrays["test_index"], np.int64) if "test_index" in arrays else None
    except FileNotFoundError:
        problems.append(
            f"Run {side} has no classify predictions (results/classify/predictions.npz), so its scores are taken "
            "from its result tables and their differences get no interval or test."
        )
        return None
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        zipfile.BadZipFile,
    ) as exc:  # a damaged .npz is a zip error
        problems.append(
            f"Run {side}'s classify predictions are unreadable (predictions.npz: {_first_line(exc)}), so its scores "
            "are taken from its result tables and their differences get no interval or test."
        )
        return None
    return Predictions(y, index, models, pred, proba, scores)


# =============================================================================================
# Setup differences
# =============================================================================================


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = d
    return out


def _same(a: Any, b: Any) -> bool:
    if (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return float(a) == float(b)
    return a == b


def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, str):
        return v
    return json.dumps(v) if isinstance(v, bool) or v is None else str(v)


def config_differences(a: RunFolder, b: RunFolder, notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(settings that differ, bookkeeping keys that differ): columns key, a, b."""
    cols = ["key", "a", "b"]
    if not a.config or not b.config:
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=cols)
    sections_a, sections_b = set(a.config), set(b.config)
    for s in sorted(sections_a ^ sections_b):
        notes.append(
            f"Config section [{s}] exists only in run {'A' if s in sections_a else 'B'} (that task ran only there); "
            "its keys are not listed as differences."
        )
    fa, fb = (
        _flatten({s: a.config[s] for s in sections_a & sections_b}),
        _flatten({s: b.config[s] for s in sections_a & sections_b}),
    )
    rows, book = [], []
    for key in list(fa) + [k for k in fb if k not in fa]:
        va, vb = fa.get(key, "(not set)"), fb.get(key, "(not set)")
        if not _same(va, vb):
            (book if key in BOOKKEEPING else rows).append({"key": key, "a": _show(va), "b": _show(vb)})
    return pd.DataFrame(rows, columns=cols), pd.DataFrame(book, columns=cols)


def environment_differences(a: RunFolder, b: RunFolder) -> pd.DataFrame:
    """Environment entries (packages, device, threads, code version, ...) that differ: key, a, b."""
    cols = ["key", "a", "b"]
    if not a.env or not b.env:
        return pd.DataFrame(columns=cols)
    fa, fb = _flatten(a.env), _flatten(b.env)
    rows = [
        {"key": k, "a": _show(fa.get(k, "(not recorded)")), "b": _show(fb.get(k, "(not recorded)"))}
        for k in list(fa) + [k for k in fb if k not in fa]
        if not _same(fa.get(k), fb.get(k))
    ]
    return pd.DataFrame(rows, columns=cols)


def dataset_fingerprint(ds: dict) -> tuple[str, str]:
    """``(fingerprint, what it is)``: the recorded content fingerprint, else a hash of the dataset summary."""
    if ds.get("fingerprint"):
        return str(ds["fingerprint"]), "content fingerprint"
    keep = {k: v for k, v in ds.items() if k not in ("source", "meta", "checksums")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ], "summary hash"


def dataset_table(a: RunFolder, b: RunFolder) -> pd.DataFrame:
    ra, rb = a.dataset, b.dataset
    rows = []
    for key in (
        "name",
        "source",
        "image_shape",
        "n_train",
        "n_test",
        "n_classes",
        "classes",
        "pixel_mean",
        "pixel_std",
    ):
        if key in ra or key in rb:
            rows.append(
                {
                    "property": key,
                    "a": _show(ra.get(key, "")),
                    "b": _show(rb.get(key, "")),
                    "same": _same(ra.get(key), rb.get(key)),
                }
            )
    (fa, kind_a), (fb, kind_b) = dataset_fingerprint(ra), dataset_fingerprint(rb)
    rows.append(
        {
            "property": "fingerprint"
            if kind_a == kind_b == "content fingerprint"
            else "fingerprint (summary hash)",
            "a": fa,
            "b": fb,
            "same": fa == fb,
        }
    )
    return pd.DataFrame(rows, columns=["property", "a", "b", "same"])


def wall_time_table(a: RunFolder, b: RunFolder) -> pd.DataFrame:
    ta = {t["task"]: t for t in a.summary.get("tasks", [])}
    tb = {t["task"]: t for t in b.summary.get("tasks", [])}

    def row(task: str, sa: float | None, sb: float | None, ca: bool | None, cb: bool | None) -> dict:
        return {
            "task": task,
            "a_s": sa,
            "b_s": sb,
            "diff_s": None if sa is None or sb is None else round(sb - sa, 2),
            "ratio": round(sb / sa, 2) if sa and sb is not None else None,
            "a_cached": ca,
            "b_cached": cb,
        }

    rows = [
        row(
            task,
            ta.get(task, {}).get("seconds"),
            tb.get(task, {}).get("seconds"),
            ta.get(task, {}).get("cached"),
            tb.get(task, {}).get("cached"),
        )
        for task in list(ta) + [t for t in tb if t not in ta]
    ]
    rows.append(row("total", a.summary.get("seconds"), b.summary.get("seconds"), None, None))
    return pd.DataFrame(rows, columns=["task", "a_s", "b_s", "diff_s", "ratio", "a_cached", "b_cached"])


# =============================================================================================
# Per-image scores and the bootstrap
# =============================================================================================


class _ModelSample:
    """One model's per-image results, arranged so that any bootstrap resample's metrics are weighted sums.

    A resample is a count vector ``w`` (how often each test image was drawn); the confusion matrix
    of the resample is ``w`` summed per (true, predicted) cell, and the probability metrics are
    weighted means of per-image terms, so ``B`` resamples cost two matrix products.
    """

    def __init__(
        self,
        y: np.ndarray,
        pred: np.ndarray,
        proba: np.ndarray | None,
        scores: np.ndarray | None,
        k: int,
        n_bins: int,
    ):
        from scipy import sparse

        self.n, self.k = len(y), k
        code = y * k + pred
        self.cells = sparse.csr_matrix((np.ones(self.n), (code, np.arange(self.n))), shape=(k * k, self.n))
        cols, self.names = [], []
        rank = proba if proba is not None else scores
        if rank is not None:
            true_score = rank[np.arange(self.n), y]
            cols.append(
                ((rank >= true_score[:, None]).sum(1) - 1 < 2).astype(float)
            )  # ties count against the model
            self.names.append("top2_accuracy")
        self.n_bins = 0
        if proba is not None:
            p = np.clip(proba, 0.0, 1.0) if proba.min() >= -1e-9 and proba.max() <= 1 + 1e-9 else proba
            eps = np.finfo(np.float64).eps
            cols.append(-np.log(np.clip(p[np.arange(self.n), y], eps, 1 - eps)))
            onehot = np.eye(k)[y]
            cols.append(((p - onehot) ** 2).sum(1))
            self.names += ["log_loss", "brier"]
            conf = p.max(1)
            correct = (p.argmax(1) == y).astype(float)
            bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
            gap = sparse.csr_matrix((correct - conf, (bins, np.arange(self.n))), shape=(n_bins, self.n))
            self.n_bins = n_bins
        # (terms, n) sparse: the per-image terms as rows, then the calibration gap per confidence bin
        rows = [sparse.csr_matrix(np.vstack(cols))] if cols else []
        self.terms = sparse.vstack(rows + ([gap] if self.n_bins else []), format="csr") if rows else None

    def metrics(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """Every bootstrapped metric for resample weights ``w`` (B, n): name -> (B,)."""
        k, n = self.k, self.n
        c = np.asarray((self.cells @ w.T).T).reshape(len(w), k, k)
        d = np.diagonal(c, axis1=1, axis2=2)
        t, p = c.sum(2), c.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rec = np.where(t > 0, d / t, 0.0)
            prec = np.where(p > 0, d / p, 0.0)
            f1 = np.where(t + p > 0, 2 * d / (t + p), 0.0)
            present = t > 0
            acc = d.sum(1) / n
            pe = (t * p).sum(1) / n**2
            kappa = np.where(pe < 1, (acc - pe) / (1 - pe), 0.0)
            cov_tp, cov_pp, cov_tt = d.sum(1) * n - (t * p).sum(1), n**2 - (p**2).sum(1), n**2 - (t**2).sum(1)
            mcc = np.where(cov_pp * cov_tt > 0, cov_tp / np.sqrt(cov_pp * cov_tt), 0.0)
            out = {
                "accuracy": acc,
                "balanced_accuracy": (rec * present).sum(1) / present.sum(1),
                "precision_macro": prec.mean(1),
                "recall_macro": rec.mean(1),
                "f1_macro": f1.mean(1),
                "f1_micro": acc,
                "f1_weighted": (t * f1).sum(1) / n,
                "cohen_kappa": kappa,
                "mcc": mcc,
            }
        if self.terms is not None:
            means = np.asarray((self.terms @ w.T).T) / n
            for i, name in enumerate(self.names):
                out[name] = means[:, i]
            if self.n_bins:
                out["ece"] = np.abs(means[:, len(self.names) :]).sum(1)
        return out


def _resample_weights(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` bootstrap resamples of ``n`` images as count vectors (size, n)."""
    flat = rng.integers(0, n, (size, n)) + np.arange(size)[:, None] * n
    return np.bincount(flat.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def bootstrap_differences(
    samples_a: dict[str, _ModelSample],
    samples_b: dict[str, _ModelSample],
    paired: bool,
    n_boot: int = N_BOOT,
    seed: int = 0,
    chunk: int = 100,
) -> dict[str, dict[str, np.ndarray]]:
    """Bootstrap distribution of ``metric(B) - metric(A)`` per model and metric.

    Paired: one resample of the (shared, aligned) test images serves both runs. Unpaired: each
    run's test images are resampled independently.
    """
    rng = np.random.default_rng(seed)
    na = next(iter(samples_a.values())).n
    nb = next(iter(samples_b.values())).n
    parts: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in samples_a}
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        wa = _resample_weights(rng, na, size)
        wb = wa if paired else _resample_weights(rng, nb, size)
        for m in samples_a:
            ma, mb = samples_a[m].metrics(wa), samples_b[m].metrics(wb)
            for name in ma.keys() & mb.keys():
                parts[m].setdefault(name, []).append(mb[name] - ma[name])
    return {m: {name: np.concatenate(v) for name, v in d.items()} for m, d in parts.items()}


def _interval(diffs: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    lo, hi = np.nanpercentile(diffs, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(lo), float(hi)


def bootstrap_p_value(diffs: np.ndarray) -> float:
    """Two-sided percentile-bootstrap p-value of "no difference": twice the smaller tail beyond 0 (add-one)."""
    d = diffs[np.isfinite(diffs)]
    tail = min(np.sum(d <= 0), np.sum(d >= 0))
    return float(min(1.0, 2 * (tail + 1) / (len(d) + 1)))


# =============================================================================================
# Pairing the test sets
# =============================================================================================


def pair_test_sets(pa: Predictions, pb: Predictions, same_data: bool) -> tuple[np.ndarray | None, str]:
    """The order of B's test images that lines them up with A's, or None and why they cannot be paired."""
    na, nb = len(pa.y_true), len(pb.y_true)
    if not same_data:
        return None, (
            "the two runs' datasets differ in content (different fingerprints), so equal test indices need not be "
            "the same images"
        )
    if pa.test_index is None or pb.test_index is None:
        return (
            None,
            "a run's predictions.npz records no test_index, so it is unknown which test images it scored",
        )
    ia, ib = pa.test_index, pb.test_index
    if (
        na != nb
        or len(np.unique(ia)) != na
        or len(np.unique(ib)) != nb
        or not np.array_equal(np.sort(ia), np.sort(ib))
    ):
        common = len(np.intersect1d(ia, ib))
        return None, (
            f"run A scored {na:,} test images and run B {nb:,} ({common:,} in common), so they did not score the "
            "same test images"
        )
    pos_b = {int(v): i for i, v in enumerate(ib)}
    order = np.array([pos_b[int(v)] for v in ia])
    if not np.array_equal(pa.y_true, pb.y_true[order]):
        return (
            None,
            "the two runs give different labels to the same test indices, so their test images differ",
        )
    return order, ""


# =============================================================================================
# The comparison
# =============================================================================================


@dataclass
class FigurePair:
    task: str
    name: str
    caption: str
    file_a: Path
    file_b: Path
    identical: bool


@dataclass
class Comparison:
    """Everything :func:`compare_runs` found; tables are pandas DataFrames (``b - a`` differences)."""

    a: RunFolder
    b: RunFolder
    config: pd.DataFrame  # settings that differ: key, a, b
    config_bookkeeping: pd.DataFrame  # run name, output and cache folders that differ (cannot change results)
    environment: pd.DataFrame  # key, a, b
    dataset: pd.DataFrame  # property, a, b, same
    wall_times: pd.DataFrame  # task, a_s, b_s, diff_s, ratio, a_cached, b_cached
    tests: (
        pd.DataFrame
    )  # per model: accuracies, difference, interval, the test and its (Holm-adjusted) p-value
    metrics: (
        pd.DataFrame
    )  # task, model, metric, kind, a, b, diff, ci_low, ci_high, interval, p_value, p_holm, significant
    tables: pd.DataFrame  # other tasks' table cells: task, table, row, column, a, b, diff, ci_low, ci_high
    numbers: pd.DataFrame  # other tasks' headline numbers (TaskResult.metrics): task, key, a, b, diff
    figures: list[FigurePair]
    headline: list[str]
    notes: list[str]  # what was left out or limited, and why
    paired: bool | None  # classify predictions paired (same test images); None without classify in both runs
    alpha: float = ALPHA
    n_boot: int = N_BOOT
    methods: list[str] = field(default_factory=list)  # how the numbers were computed

    @property
    def significant(self) -> pd.DataFrame:
        """The rows of :attr:`tests` whose change is significant."""
        return self.tests[self.tests["significant"] == True] if len(self.tests) else self.tests  # noqa: E712

    def to_html(self, interactive: bool = True) -> str:
        return render_html(self, interactive)

    def write(self, output: str | Path | None = None, pdf: bool = False) -> tuple[Path, Path | None]:
        """Write ``compare.html`` (and ``compare.pdf``), ``compare.json`` and the tables as CSV into ``output``
        (default: a new folder ``compare-<A>-vs-<B>`` beside run A). Returns (html, pdf or None)."""
        return write_comparison(self, output, pdf)

    def print_summary(self, console: Any = None) -> None:
        print_summary(self, console)


def compare_runs(
    a: str | Path, b: str | Path, *, alpha: float = ALPHA, n_boot: int = N_BOOT, seed: int = 0
) -> Comparison:
    """Compare run folder ``a`` (the baseline) with run folder ``b`` (the variant); differences are ``b - a``.

    Raises a one-line :class:`DigitlabError` for a folder that is not a finished run or for runs of
    different datasets; everything else that cannot be compared is left out with a note.
    """
    if not 0 < alpha < 1:
        raise DigitlabError(f"alpha {alpha}: must be in (0, 1); e.g. 0.05")
    if n_boot < 100:
        raise DigitlabError(f"n_boot {n_boot}: must be at least 100 for a 95 % interval; e.g. 1000")
    ra, rb = read_run(a), read_run(b)
    da, db = ra.dataset, rb.dataset
    if da.get("name") != db.get("name") or da.get("classes") != db.get("classes"):
        raise DigitlabError(
            f"runs {ra.label} and {rb.label} used different datasets ({da.get('name')} vs {db.get('name')}): their "
            "results are not comparable; compare two runs of the same dataset"
        )
    notes: list[str] = [f"Run A {p}." for p in ra.problems] + [f"Run B {p}." for p in rb.problems]
    same_data = dataset_fingerprint(da)[0] == dataset_fingerprint(db)[0]
    if not same_data:
        notes.append(
            f"Both runs use a dataset named {da.get('name')}, but its fingerprints differ ({dataset_fingerprint(da)[0]} vs "
            f"{dataset_fingerprint(db)[0]}): the data changed between the runs, so no test pairs their images."
        )
    config, bookkeeping = config_differences(ra, rb, notes)
    both = [t for t in ra.tasks if t in rb.tasks and t in ra.results and t in rb.results]
    for t in ra.tasks:
        if t not in rb.tasks:
            notes.append(f"Task {t} ran only in run A; it is left out.")
    for t in rb.tasks:
        if t not in ra.tasks:
            notes.append(f"Task {t} ran only in run B; it is left out.")
    tests, metrics, paired = _classify_comparison(ra, rb, both, same_data, alpha, n_boot, seed, notes)
    tables = _table_comparison(ra, rb, both, notes)
    numbers = _number_comparison(ra, rb, both)
    figures = _figure_pairs(ra, rb, both, notes)
    comp = Comparison(
        ra,
        rb,
        config,
        bookkeeping,
        environment_differences(ra, rb),
        dataset_table(ra, rb),
        wall_time_table(ra, rb),
        tests,
        metrics,
        tables,
        numbers,
        figures,
        [],
        notes,
        paired,
        alpha,
        n_boot,
    )
    comp.headline = headline(comp)
    comp.methods = method_notes(comp)
    return comp


# ---------------------------------------------------------------------------------------------
# classify: model by model
# ---------------------------------------------------------------------------------------------


def _table_rows(result: Any, name: str) -> dict[str, dict]:
    for t in result.tables:
        if t.name == name:
            return {str(r.get("model")): r for r in t.rows if "model" in r}
    return {}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    return None


def _classify_comparison(
    ra: RunFolder,
    rb: RunFolder,
    both: list[str],
    same_data: bool,
    alpha: float,
    n_boot: int,
    seed: int,
    notes: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, bool | None]:
    from digitlab import metrics as M

    test_cols = [
        "model",
        "n_a",
        "n_b",
        "acc_a",
        "acc_b",
        "diff",
        "ci_low",
        "ci_high",
        "method",
        "only_a_right",
        "only_b_right",
        "statistic",
        "p_value",
        "p_holm",
        "significant",
    ]
    metric_cols = [
        "task",
        "model",
        "metric",
        "kind",
        "a",
        "b",
        "diff",
        "ci_low",
        "ci_high",
        "interval",
        "p_value",
        "p_holm",
        "significant",
    ]
    if "classify" not in both:
        if "classify" in ra.tasks or "classify" in rb.tasks:
            notes.append(
                "The classify task's results are not in both runs, so no model's scores are compared."
            )
        return pd.DataFrame(columns=test_cols), pd.DataFrame(columns=metric_cols), None
    res_a, res_b = ra.results["classify"], rb.results["classify"]
    models_a = [str(m) for m in res_a.metrics.get("models", _table_rows(res_a, "scores"))]
    models_b = [str(m) for m in res_b.metrics.get("models", _table_rows(res_b, "scores"))]
    models = [m for m in models_a if m in models_b]
    for side, own, other in (("A", models_a, models_b), ("B", models_b, models_a)):
        only = [m for m in own if m not in other]
        if only:
            notes.append(
                f"Model{'s' if len(only) > 1 else ''} {', '.join(model_words(m) for m in only)} ran only in run {side}; "
                "left out of the model comparison."
            )
    pa, pb = read_predictions(ra, notes, "A"), read_predictions(rb, notes, "B")
    if pa is not None and pb is not None and not all(m in pa.models and m in pb.models for m in models):
        notes.append(
            "predictions.npz lacks some models' predictions; scores are taken from the result tables without intervals."
        )
        pa = pb = None
    rows: list[dict] = []
    test_rows: list[dict] = []
    paired: bool | None = None
    if pa is not None and pb is not None and models:
        order, why = pair_test_sets(pa, pb, same_data)
        paired = order is not None
        if paired:
            pb = pb.reorder(order)
        else:
            notes.append(
                f"No paired test: {why}. McNemar's test needs both runs to score the same images, so accuracy differences "
                "are tested with an unpaired bootstrap (each run's test images resampled independently) and every interval "
                "is an unpaired one."
            )
        k = int(ra.dataset.get("n_classes") or max(pa.y_true.max(), pb.y_true.max()) + 1)
        bins_a = int(ra.config.get("classify", {}).get("ece_bins", 15))
        bins_b = int(rb.config.get("classify", {}).get("ece_bins", 15))
        samples_a = {
            m: _ModelSample(pa.y_true, pa.pred[m], pa.proba.get(m), pa.scores.get(m), k, bins_a)
            for m in models
        }
        samples_b = {
            m: _ModelSample(pb.y_true, pb.pred[m], pb.proba.get(m), pb.scores.get(m), k, bins_b)
            for m in models
        }
        boot = bootstrap_differences(samples_a, samples_b, paired, n_boot, seed)
        interval = "paired bootstrap" if paired else "unpaired bootstrap"
        for m in models:
            va = M.classification_metrics(
                pa.y_true, pa.pred[m], pa.proba.get(m), k, scores=pa.scores.get(m), n_bins=bins_a
            )
            vb = M.classification_metrics(
                pb.y_true, pb.pred[m], pb.proba.get(m), k, scores=pb.scores.get(m), n_bins=bins_b
            )
            if paired:
                t = M.mcnemar(pa.y_true, pa.pred[m], pb.pred[m])
                test = {
                    "method": f"McNemar, {t['method']}",
                    "only_a_right": t["b"],
                    "only_b_right": t["c"],
                    "statistic": t["statistic"],
                    "p_value": t["p_value"],
                }
            else:
                test = {
                    "method": "unpaired bootstrap",
                    "only_a_right": None,
                    "only_b_right": None,
                    "statistic": None,
                    "p_value": bootstrap_p_value(boot[m]["accuracy"]),
                }
            lo, hi = _interval(boot[m]["accuracy"])
            test_rows.append(
                {
                    "model": m,
                    "n_a": len(pa.y_true),
                    "n_b": len(pb.y_true),
                    "acc_a": va["accuracy"],
                    "acc_b": vb["accuracy"],
                    "diff": vb["accuracy"] - va["accuracy"],
                    "ci_low": lo,
                    "ci_high": hi,
                    **test,
                }
            )
            for key, col in METRIC_NAMES.items():
                xa, xb = _num(va.get(key)), _num(vb.get(key))
                if xa is None or xb is None:
                    continue
                row = {
                    "task": "classify",
                    "model": m,
                    "metric": col,
                    "kind": "score",
                    "a": xa,
                    "b": xb,
                    "diff": xb - xa,
                    "ci_low": None,
                    "ci_high": None,
                    "interval": "",
                    "p_value": None,
                    "p_holm": None,
                    "significant": None,
                }
                if key in boot[m]:
                    row["ci_low"], row["ci_high"] = _interval(boot[m][key])
                    row["interval"] = interval
                    row["p_value"] = bootstrap_p_value(boot[m][key])
                elif key in NOT_BOOTSTRAPPED:
                    row["interval"] = "not bootstrapped"
                rows.append(row)
        if test_rows:
            for r, p in zip(test_rows, M.holm_adjust([r["p_value"] for r in test_rows])):
                r["p_holm"] = float(p)
                r["significant"] = bool(p < alpha)
            by_model = {r["model"]: r for r in test_rows}
            for row in rows:
                if row["metric"] == "accuracy":
                    t = by_model[row["model"]]
                    row["p_value"], row["p_holm"], row["significant"] = (
                        t["p_value"],
                        t["p_holm"],
                        t["significant"],
                    )
            for metric in {
                r["metric"] for r in rows if r["metric"] != "accuracy" and r["p_value"] is not None
            }:
                group = [r for r in rows if r["metric"] == metric and r["p_value"] is not None]
                for r, p in zip(
                    group, M.holm_adjust([r["p_value"] for r in group])
                ):  # Holm across models, per metric
                    r["p_holm"], r["significant"] = float(p), bool(p < alpha)
    elif models:
        # no per-image predictions: the values the runs reported, without intervals
        for m in models:
            for table in CLASSIFY_SCORE_TABLES:
                ta, tb = _table_rows(res_a, table).get(m, {}), _table_rows(res_b, table).get(m, {})
                for col in ta:
                    xa, xb = _num(ta.get(col)), _num(tb.get(col))
                    if col in ("acc_ci_low", "acc_ci_high") or xa is None or xb is None:
                        continue
                    rows.append(
                        {
                            "task": "classify",
                            "model": m,
                            "metric": col,
                            "kind": "score",
                            "a": xa,
                            "b": xb,
                            "diff": xb - xa,
                            "ci_low": None,
                            "ci_high": None,
                            "interval": "no per-image predictions",
                            "p_value": None,
                            "p_holm": None,
                            "significant": None,
                        }
                    )
    for m in models:  # cost: one measurement (seconds) or a count (FLOPs, parameters); no interval
        ca, cb = _table_rows(res_a, "cost").get(m, {}), _table_rows(res_b, "cost").get(m, {})
        for col in COST_COLUMNS:
            xa, xb = _num(ca.get(col)), _num(cb.get(col))
            if xa is None or xb is None:
                continue
            rows.append(
                {
                    "task": "classify",
                    "model": m,
                    "metric": col,
                    "kind": "cost",
                    "a": xa,
                    "b": xb,
                    "diff": xb - xa,
                    "ci_low": None,
                    "ci_high": None,
                    "interval": "count"
                    if col in ("train_gflop", "parameters", "n_train")
                    else "one measurement",
                    "p_value": None,
                    "p_holm": None,
                    "significant": None,
                }
            )
    return pd.DataFrame(test_rows, columns=test_cols), pd.DataFrame(rows, columns=metric_cols), paired


# ---------------------------------------------------------------------------------------------
# Other tasks: table cells, headline numbers, figures
# ---------------------------------------------------------------------------------------------

COUNT_COLUMNS = ("seeds", "n_seeds", "n")


def _row_keys(rows: list[dict], key_cols: list[str]) -> list[str] | None:
    keys = [" / ".join(_show(r.get(c)) for c in key_cols) for r in rows]
    return keys if len(set(keys)) == len(keys) else None


def _welch(
    ma: float, sa: float, na: float, mb: float, sb: float, nb: float, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Welch interval of ``mb - ma`` from means, sample SDs and counts (None with fewer than 2 per side)."""
    from scipy import stats

    if na < 2 or nb < 2:
        return None
    va, vb = sa**2 / na, sb**2 / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return (mb - ma, mb - ma)
    df = (va + vb) ** 2 / ((va**2) / (na - 1) + (vb**2) / (nb - 1)) if va + vb > 0 else na + nb - 2
    h = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return (mb - ma - h, mb - ma + h)


def _table_comparison(ra: RunFolder, rb: RunFolder, both: list[str], notes: list[str]) -> pd.DataFrame:
    cols = ["task", "table", "row", "column", "a", "b", "diff", "ci_low", "ci_high", "interval"]
    out: list[dict] = []
    for task in both:
        tables_b = {t.name: t for t in rb.results[task].tables}
        for ta in ra.results[task].tables:
            if (
                (task == "classify" and ta.name in CLASSIFY_SKIP_TABLES)
                or ta.name not in tables_b
                or not ta.rows
            ):
                continue
            tb = tables_b[ta.name]
            if not tb.rows:
                continue
            columns = [c for c in (ta.columns or list(ta.rows[0])) if any(c in r for r in tb.rows)]
            textual = [c for c in columns if all(isinstance(r.get(c), str) for r in ta.rows + tb.rows)]
            key_cols = textual or columns[:1]
            ka, kb = _row_keys(ta.rows, key_cols), _row_keys(tb.rows, key_cols)
            if ka is None or kb is None:
                notes.append(
                    f"Table {task}/{ta.name}: its rows have no unique label, so they cannot be matched between runs; left out."
                )
                continue
            rows_b = dict(zip(kb, tb.rows))
            count_col = next((c for c in COUNT_COLUMNS if c in columns), None)
            for key, row_a in zip(ka, ta.rows):
                row_b = rows_b.get(key)
                if row_b is None:
                    continue
                for c in columns:
                    if c in key_cols or c == count_col:
                        continue
                    xa, xb = _num(row_a.get(c)), _num(row_b.get(c))
                    if xa is None or xb is None:
                        continue
                    rec = {
                        "task": task,
                        "table": ta.name,
                        "row": key,
                        "column": c,
                        "a": xa,
                        "b": xb,
                        "diff": xb - xa,
                        "ci_low": None,
                        "ci_high": None,
                        "interval": "",
                    }
                    if c.endswith("_mean") and count_col:
                        base = c[: -len("_mean")]
                        sd = next((s for s in (f"{base}_std", f"{base}_sd") if s in columns), None)
                        if sd is not None:
                            iv = _welch(
                                xa,
                                _num(row_a.get(sd)) or 0.0,
                                _num(row_a.get(count_col)) or 0,
                                xb,
                                _num(row_b.get(sd)) or 0.0,
                                _num(row_b.get(count_col)) or 0,
                            )
                            if iv is not None:
                                rec["ci_low"], rec["ci_high"], rec["interval"] = (
                                    iv[0],
                                    iv[1],
                                    "Welch over seeds",
                                )
                    out.append(rec)
    return pd.DataFrame(out, columns=cols)


def _number_comparison(ra: RunFolder, rb: RunFolder, both: list[str]) -> pd.DataFrame:
    rows = []
    for task in both:
        if task == "classify":
            continue
        fa, fb = _flatten(ra.results[task].metrics), _flatten(rb.results[task].metrics)
        for key, va in fa.items():
            xa, xb = _num(va), _num(fb.get(key))
            if xa is not None and xb is not None:
                rows.append({"task": task, "key": key, "a": xa, "b": xb, "diff": xb - xa})
    return pd.DataFrame(rows, columns=["task", "key", "a", "b", "diff"])


def _figure_pairs(ra: RunFolder, rb: RunFolder, both: list[str], notes: list[str]) -> list[FigurePair]:
    pairs = []
    for task in both:
        figs_b = {f.name: f for f in rb.results[task].figures}
        for fa in ra.results[task].figures:
            fb = figs_b.get(fa.name)
            if fb is None:
                continue
            pa, pb = ra.task_dir(task) / fa.file, rb.task_dir(task) / fb.file
            if not pa.is_file() or not pb.is_file():
                notes.append(
                    f"Figure {task}/{fa.name} is missing from run {'A' if not pa.is_file() else 'B'}'s folder; not shown."
                )
                continue
            pairs.append(
                FigurePair(
                    task,
                    fa.name,
                    fa.caption if fa.caption == fb.caption else f"A: {fa.caption} B: {fb.caption}",
                    pa,
                    pb,
                    pa.read_bytes() == pb.read_bytes(),
                )
            )
    return pairs


# ---------------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _pts(x: float) -> str:
    return f"{100 * x:+.2f}"


def _p(p: float) -> str:
    """``p = 0.012`` or ``p < 0.0001``."""
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 0.0001"


def headline(c: Comparison) -> list[str]:
    """The significant changes, largest first: test accuracy per model (and sweep means over seeds), then the
    probability scores; then, when no accuracy changed, the largest change and its p-value; then training FLOPs."""
    acc_items: list[tuple[float, str]] = []  # (size in accuracy points, sentence)
    t, m = c.tests, c.metrics
    for r in t.to_dict("records") if len(t) else []:
        if not r["significant"]:
            continue
        if c.paired:
            detail = (
                f"on the same {r['n_a']:,} test images, run B gets {r['only_b_right']} right that run A got wrong and "
                f"{r['only_a_right']} the other way round ({r['method']}, Holm-adjusted {_p(r['p_holm'])})"
            )
        else:
            detail = (
                f"run A scored {r['n_a']:,} test images, run B {r['n_b']:,} (unpaired bootstrap, Holm-adjusted "
                f"{_p(r['p_holm'])})"
            )
        acc_items.append(
            (
                abs(r["diff"]),
                f"{model_words(r['model'])}: test accuracy {'rose' if r['diff'] > 0 else 'fell'} from "
                f"{_pct(r['acc_a'])} to {_pct(r['acc_b'])} ({_pts(r['diff'])} points, 95 % CI "
                f"{_pts(r['ci_low'])} to {_pts(r['ci_high'])}); {detail}.",
            )
        )
    sweeps = c.tables[c.tables["interval"] == "Welch over seeds"] if len(c.tables) else c.tables
    for r in sweeps.to_dict("records") if len(sweeps) else []:
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            in_percent = (
                max(abs(r["a"]), abs(r["b"])) > 1.5
            )  # sweep tables report accuracy in %, others as fractions
            acc_items.append(
                (
                    abs(r["diff"]) / (100 if in_percent else 1),
                    f"{r['task']} {r['table']}, {r['row']}: {r['column'].replace('_', ' ')} "
                    f"{'rose' if r['diff'] > 0 else 'fell'} from {r['a']:.4g} to {r['b']:.4g} ({r['diff']:+.3g}, Welch "
                    f"95 % CI {r['ci_low']:+.3g} to {r['ci_high']:+.3g} over seeds).",
                )
            )
    prob_items: list[tuple[float, str]] = []  # (largest relative change, one sentence per model)
    prob = (
        m[(m["kind"] == "score") & m["metric"].isin(PROBABILITY_METRICS) & m["significant"].astype(bool)]
        if len(m)
        else m
    )  # noqa: E712
    for model, group in prob.groupby("model", sort=False) if len(prob) else []:
        rs = sorted(group.to_dict("records"), key=lambda r: -abs(r["diff"]) / max(abs(r["a"]), 1e-12))
        better = [(r["diff"] < 0) == (r["metric"] in LOWER_IS_BETTER) for r in rs]
        verdict = "better" if all(better) else "worse" if not any(better) else "mixed"
        parts = ", ".join(
            f"{METRIC_WORDS.get(r['metric'], r['metric'])} {r['a']:.3g} → {r['b']:.3g}" for r in rs
        )
        prob_items.append(
            (
                abs(rs[0]["diff"]) / max(abs(rs[0]["a"]), 1e-12),
                f"{model_words(model)}: its probabilities got {verdict}: {parts} ({rs[0]['interval']}: "
                + (
                    "every 95 % interval excludes zero, "
                    if all(r["ci_low"] > 0 or r["ci_high"] < 0 for r in rs)
                    else ""
                )
                + f"Holm-adjusted {_p(max(r['p_holm'] for r in rs)).replace('=', '≤')}).",
            )
        )
    out = [s for _, s in sorted(acc_items, key=lambda it: -it[0])]
    if len(t) and not t["significant"].any():
        if c.paired and (t["only_a_right"] == 0).all() and (t["only_b_right"] == 0).all():
            out.append(
                f"No accuracy change: all {len(t)} models got exactly the same test images right in both runs "
                f"({int(t['n_a'].iloc[0]):,} images)."
            )
        else:
            big = t.iloc[int(np.argmax(np.abs(t["diff"].to_numpy())))]
            test = "McNemar" if c.paired else "unpaired bootstrap"
            out.append(
                f"No model's test accuracy changed significantly ({test}, Holm-corrected across {len(t)} models, alpha "
                f"{c.alpha:g}): the largest change is {model_words(big['model'])}'s, {_pts(big['diff'])} points (95 % CI "
                f"{_pts(big['ci_low'])} to {_pts(big['ci_high'])}, adjusted {_p(big['p_holm'])})."
            )
    out += [s for _, s in sorted(prob_items, key=lambda it: -it[0])]
    for r in m[m["metric"] == "train_gflop"].to_dict("records") if len(m) else []:
        if r["a"] and abs(r["b"] / r["a"] - 1) > 1e-3:
            out.append(
                f"{model_words(r['model'])}: training cost {'rose' if r['b'] > r['a'] else 'fell'} from {r['a']:,.4g} to "
                f"{r['b']:,.4g} GFLOP ({r['b'] / r['a']:.2f}x); FLOPs are counted, not measured, so this is no noise."
            )
    if not out:
        out.append(
            "No model scores are in both runs, so there is no result to test; see the setup differences."
        )
    return out


def method_notes(c: Comparison) -> list[str]:
    notes = []
    if c.paired is not None:
        if c.paired:
            notes.append(
                f"Both runs scored the same {int(c.tests['n_a'].iloc[0]) if len(c.tests) else 0:,} test images: accuracy "
                "changes are tested with McNemar's test on the images exactly one run classifies correctly (exact "
                "binomial below 25 such images, otherwise chi-square with continuity correction), Holm-corrected "
                f"across the {len(c.tests)} models at alpha {c.alpha:g}; every interval is a paired percentile bootstrap "
                f"({c.n_boot:,} resamples of the test images, the same resample for both runs)."
            )
        else:
            notes.append(
                f"Intervals are percentile bootstraps ({c.n_boot:,} independent resamples of each run's test images); the "
                "accuracy p-value is twice the smaller bootstrap tail beyond zero, Holm-corrected across models."
            )
        notes.append(
            "Differences are run B minus run A. Every other bootstrapped score is tested with the percentile-bootstrap "
            "p-value (twice the smaller tail beyond zero), Holm-corrected across models for each score separately; the "
            "headline lists accuracy and the probability scores (top-2, log loss, Brier, ECE), since the label-based "
            "scores move with accuracy. The 95 % intervals are per model and uncorrected, so an interval can exclude "
            "zero while the Holm-corrected test is not significant. ROC-AUC and PR-AUC get no interval (not "
            "bootstrapped). Seconds are single measurements on possibly different, possibly busy machines; FLOPs "
            "and parameter counts are exact counts."
        )
    if len(c.config_bookkeeping):
        notes.append(
            "Keys that name or place the run and cannot change its results also differ: "
            + ", ".join(f"{r['key']} ({r['a']} vs {r['b']})" for r in c.config_bookkeeping.to_dict("records"))
            + "."
        )
    welch = c.tables[c.tables["interval"] == "Welch over seeds"] if len(c.tables) else c.tables
    if len(welch):
        notes.append(
            "Sweep means over seeds get a Welch 95 % interval of the difference from the two runs' means, standard "
            "deviations and seed counts (not corrected for the number of sweep points)."
        )
    return notes


# =============================================================================================
# Output: HTML, PDF, CSV, terminal
# =============================================================================================


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0:
            return "0"
        if abs(v) < 1e-3 or abs(v) >= 1e6:
            return f"{v:.3g}"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.2f}".rstrip("0").rstrip(".")
    return str(v)


def _records(df: pd.DataFrame, limit: int | None = None) -> list[dict]:
    recs = df.astype(object).where(df.notna(), None).to_dict("records")
    return recs[:limit] if limit else recs


def _aspect(png: Path) -> float:
    """Width / height of a PNG file, read from its header (1.0 if it is not a PNG)."""
    head = png.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return 1.0
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return w / h if h else 1.0


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


MAX_ROWS = 60


def render_html(c: Comparison, interactive: bool = True) -> str:
    import jinja2

    templates = Path(__file__).parent / "templates"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates), autoescape=jinja2.select_autoescape(["j2", "html"])
    )
    env.filters["cell"] = _fmt
    css_file = templates / "report.css"  # the report's look, when it is there (read only)
    css = css_file.read_text() if css_file.is_file() else ""
    changed_tables = c.tables[c.tables["diff"] != 0] if len(c.tables) else c.tables
    changed_numbers = c.numbers[c.numbers["diff"] != 0] if len(c.numbers) else c.numbers
    tables_by_task = []
    for task, df in changed_tables.groupby("task", sort=False) if len(changed_tables) else []:
        tables_by_task.append(
            {"task": task, "rows": _records(df, MAX_ROWS), "more": max(0, len(df) - MAX_ROWS)}
        )
    figures = [
        {
            "task": f.task,
            "name": f.name,
            "caption": f.caption,
            "a": _data_uri(f.file_a),
            "b": _data_uri(f.file_b),
            "stack": max(_aspect(f.file_a), _aspect(f.file_b)) > 1.5,
        }
        for f in c.figures
        if not f.identical
    ]
    identical = [f"{f.task}/{f.name}" for f in c.figures if f.identical]
    return env.get_template("compare.html.j2").render(
        c=c,
        a=c.a,
        b=c.b,
        css=jinja2.utils.markupsafe.Markup(css),
        interactive=interactive,
        config=_records(c.config),
        environment=_records(c.environment),
        dataset=_records(c.dataset),
        wall=_records(c.wall_times),
        tests=_records(c.tests),
        tables_by_task=tables_by_task,
        scores=_records(c.metrics[c.metrics["kind"] == "score"]) if len(c.metrics) else [],
        costs=_records(c.metrics[c.metrics["kind"] == "cost"]) if len(c.metrics) else [],
        n_tables=len(c.tables),
        n_unchanged=len(c.tables) - len(changed_tables),
        numbers=_records(changed_numbers, MAX_ROWS),
        n_numbers=len(c.numbers),
        figures=figures,
        identical=identical,
        words=model_words,
    )


def default_output(c: Comparison) -> Path:
    base = c.a.path.parent / f"compare-{c.a.label}-vs-{c.b.label}"
    out, i = base, 2
    while out.exists():
        out, i = Path(f"{base}-{i}"), i + 1
    return out


def write_comparison(
    c: Comparison, output: str | Path | None = None, pdf: bool = False
) -> tuple[Path, Path | None]:
    from digitlab.io import atomic_write_bytes

    out = Path(output) if output else default_output(c)
    if out.exists() and not out.is_dir():
        raise DigitlabError(f"--output {out}: exists and is not a folder; pass a folder path")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config", "environment", "dataset", "wall_times", "tests", "metrics", "tables", "numbers"):
        getattr(c, name).to_csv(out / f"{name}.csv", index=False)
    meta = {
        "run_a": str(c.a.path),
        "run_b": str(c.b.path),
        "paired": c.paired,
        "alpha": c.alpha,
        "n_boot": c.n_boot,
        "headline": c.headline,
        "notes": c.notes,
        "methods": c.methods,
    }
    atomic_write_bytes(out / "compare.json", json.dumps(meta, indent=1).encode())
    html = out / "compare.html"
    atomic_write_bytes(html, render_html(c, interactive=True).encode())
    pdf_path = None
    if pdf:
        import logging

        import weasyprint

        for noisy in ("weasyprint", "fontTools"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        pdf_path = out / "compare.pdf"
        atomic_write_bytes(
            pdf_path, weasyprint.HTML(string=render_html(c, interactive=False), base_url=str(out)).write_pdf()
        )
    return html, pdf_path


def print_summary(c: Comparison, console: Any = None, max_rows: int = 12) -> None:
    """A short terminal summary: setup differences, the pairing, the headline, what was left out."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    con.print(f"[bold]A[/bold] {c.a.path}  [bold]B[/bold] {c.b.path}  (dataset {c.a.dataset.get('name')})")
    if len(c.config):
        tab = Table(title="config keys that differ", title_justify="left")
        for col in ("key", "A", "B"):
            tab.add_column(col)
        for r in _records(c.config, max_rows):
            tab.add_row(r["key"], r["a"], r["b"])
        con.print(tab)
        if len(c.config) > max_rows:
            con.print(f"... and {len(c.config) - max_rows} more keys (config.csv)")
    else:
        con.print(
            "config: no setting differs"
            + (" (only the run's name or folders)" if len(c.config_bookkeeping) else "")
        )
    if len(c.environment):
        con.print(
            "environment differs in: "
            + ", ".join(c.environment["key"].astype(str).tolist()[:8])
            + (" ..." if len(c.environment) > 8 else "")
        )
    if c.paired is not None:
        con.print(
            "test images: "
            + (
                "the same in both runs (paired: McNemar, Holm)"
                if c.paired
                else "not the same (unpaired bootstrap; see the notes)"
            )
        )
    con.print("[bold]headline[/bold]")
    for s in c.headline:
        con.print(f" - {s}", highlight=False)
    for n in c.notes:
        con.print(f" [yellow]note[/yellow] {n}", highlight=False)


__all__ = [
    "compare_runs",
    "Comparison",
    "RunFolder",
    "Predictions",
    "FigurePair",
    "read_run",
    "read_predictions",
    "pair_test_sets",
    "bootstrap_differences",
    "bootstrap_p_value",
    "config_differences",
    "environment_differences",
    "dataset_fingerprint",
    "model_words",
    "print_summary",
    "write_comparison",
    "render_html",
]
