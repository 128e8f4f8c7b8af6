"""Task ``overview``: read and inspect the data (sizes, class balance, pixel statistics, samples)."""

from __future__ import annotations

from dataclasses import dataclass

from digitlab.exceptions import ConfigError
from digitlab.experiments.overview import data_overview
from digitlab.study.common import add_figure
from digitlab.study.prose import overview as P
from digitlab.study.task import Table, TaskContext, TaskResult

NAME = "overview"
TITLE = "The data: sizes, class balance, pixel statistics and samples"


@dataclass
class Config:
    samples_per_class: int = 10  # images per class in the sample grid

    def validate(self) -> None:
        if not 1 <= self.samples_per_class <= 30:
            raise ConfigError(
                f"config key overview.samples_per_class: {self.samples_per_class} out of range; use 1 to 30"
            )


PROFILES: dict[str, dict] = {"quick": {"samples_per_class": 8}, "full": {}}


def run(ctx: TaskContext, cfg: Config) -> TaskResult:
    ds = ctx.dataset
    ov = data_overview(ds, seed=ctx.seed)
    s = ov.summary
    rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in ov.classes.to_dict("records")
    ]
    findings = P.findings(ds, s, rows, ov.imbalance, ov.duplicates)
    figs: list = []
    add_figure(
        figs,
        ov.plot_samples(cfg.samples_per_class, ctx.seed),
        ctx.out_dir,
        "samples",
        P.samples_caption(cfg.samples_per_class),
    )
    add_figure(figs, ov.plot_class_counts(), ctx.out_dir, "class_counts", P.CLASS_COUNTS)
    add_figure(figs, ov.plot_pixel_histogram(), ctx.out_dir, "pixel_hist", P.PIXEL_HIST)
    info = [
        {"property": k, "value": v if isinstance(v, (int, float)) else str(v)}
        for k, v in s.items()
        if k not in ("train_class_counts", "test_class_counts", "classes")
    ]
    return TaskResult(
        title=TITLE,
        summary=P.SUMMARY,
        headline=findings[0] + " " + findings[1],
        findings=findings,
        tables=[
            Table("dataset", info, P.DATASET_TABLE),
            Table("classes", rows, P.CLASSES_TABLE, ["class", "train", "test", "train %", "mean pixel"]),
        ],
        figures=figs,
        metrics={
            "n_train": s["n_train"],
            "n_test": s["n_test"],
            "imbalance_ratio": round(float(ov.imbalance), 3),
            "duplicates_in_sample": ov.duplicates["duplicates"],
        },
    )
