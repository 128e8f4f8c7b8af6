"""Command line: ``digitlab run | report | compare | data | config``. Thin: parses, calls the library, prints.

Any :class:`~digitlab.exceptions.DigitlabError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from digitlab.exceptions import DigitlabError


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="TOML config file (see configs/)")
    p.add_argument(
        "--profile", "-p", choices=["quick", "standard", "full"], help="size of the study (default: standard)"
    )
    p.add_argument(
        "--dataset", "-d", help="dataset name: mnist (default), fashion-mnist, digits, ddr, folder"
    )
    p.add_argument("--data-dir", help="folder holding the dataset's files")
    p.add_argument("--tasks", help="comma-separated tasks to run, in order (default: all)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set classify.n_train=5000 (repeatable)",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        help="networks' forward pass (default auto: bf16 where the CPU/GPU runs it natively)",
    )
    p.add_argument("--jobs", "-j", type=int, dest="n_jobs", help="parallel jobs (-1 = all cores)")
    p.add_argument("--name", help="run name (default: <dataset>-<profile>)")
    p.add_argument("--output", dest="output_dir", help="folder for run folders (default: runs)")
    p.add_argument("--cache-dir", help="folder of cached task results (default: .digitlab-cache)")


def _report_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report title page (kept in the run's summary.json for later rebuilds)")
    g.add_argument("--title", help="the report's title")
    g.add_argument("--author", help="author name(s) on the title page")
    g.add_argument("--course", help="course name on the title page")
    g.add_argument(
        "--lang",
        choices=["en", "zh"],
        help="report language: en (default) or zh (Chinese; the PDF needs a CJK "
        "font, e.g. apt-get install fonts-wqy-microhei)",
    )


def _report_meta(args: argparse.Namespace) -> dict:
    return {"title": args.title, "author": args.author, "course": args.course, "lang": args.lang}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (reusable by scripts)."""
    parser = argparse.ArgumentParser(
        prog="digitlab", description="Run a complete image-classification study and write HTML + PDF reports."
    )
    parser.add_argument(
        "--version", action="version", version=f"digitlab {__import__('digitlab').__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a study and write its reports")
    _study_args(run)
    run.add_argument(
        "--no-cache", action="store_true", help="recompute every task (results are still stored)"
    )
    run.add_argument("--no-pdf", action="store_true", help="skip report.pdf")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    _report_args(run)

    cfg = sub.add_parser("config", help="print the resolved config as TOML")
    _study_args(cfg)

    rep = sub.add_parser("report", help="rebuild the reports of a run folder from its stored results")
    rep.add_argument("run_dir")
    rep.add_argument("--no-pdf", action="store_true")
    _report_args(rep)

    pred = sub.add_parser(
        "predict",
        help="classify image files with a model a run saved",
        description="Classify pictures of digits (PNG/JPEG of any size, either polarity; folders; .npy or "
        "IDX arrays) with a model saved by a run. Example: digitlab predict seven.png "
        "--run runs/<run> --model cnn",
    )
    pred.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, folders of images, .npy or IDX files (a run folder given first is taken as --run)",
    )
    pred.add_argument(
        "--run",
        help="run folder whose saved model to use (default: the newest run in runs/ that saved models)",
    )
    pred.add_argument("--model", help="saved model name (default: the run's best; see `digitlab models`)")
    pred.add_argument("--top", type=int, default=3, help="classes shown per image (default 3)")
    pred.add_argument("--json", action="store_true", help="print JSON (one object per image) instead of text")
    pred.add_argument("--runs-dir", default="runs", help="where to look for the newest run (default: runs)")

    mods = sub.add_parser("models", help="list the models a run saved (for digitlab predict)")
    mods.add_argument(
        "run", nargs="?", help="run folder (default: the newest run in runs/ that saved models)"
    )
    mods.add_argument("--runs-dir", default="runs", help="where to look for the newest run (default: runs)")

    cmp_ = sub.add_parser(
        "compare",
        help="compare two run folders: setup differences, result differences and their significance",
    )
    cmp_.add_argument("run_a", help="the baseline run folder")
    cmp_.add_argument("run_b", help="the variant run folder (differences are B - A)")
    cmp_.add_argument(
        "--output",
        "-o",
        help="folder for compare.html (default: a new compare-<A>-vs-<B> folder beside run A)",
    )
    cmp_.add_argument("--pdf", action="store_true", help="also write compare.pdf")
    cmp_.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of the Holm-corrected tests (default 0.05)",
    )
    cmp_.add_argument(
        "--n-boot", type=int, default=1000, help="bootstrap resamples of the intervals (default 1000)"
    )

    data = sub.add_parser("data", help="datasets: list, info, verify")
    dsub = data.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("list", help="registered datasets")
    for name in ("info", "verify"):
        d = dsub.add_parser(
            name, help="sizes, class counts, pixel statistics" if name == "info" else "check checksums"
        )
        d.add_argument("name", nargs="?" if name == "verify" else None, default="mnist")
        d.add_argument("--data-dir")
    syn = dsub.add_parser(
        "synth-fundus", help="write a synthetic DDR-layout folder of fundus images (tests, demos)"
    )
    syn.add_argument("dir", help="output folder; DR_grading/ is written inside it (use it as --data-dir)")
    syn.add_argument(
        "--n", type=int, default=600, help="images over train/valid/test in DDR's proportions (default 600)"
    )
    syn.add_argument("--size", type=int, default=256, help="image height in pixels (default 256)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--overwrite", action="store_true", help="replace an existing DR_grading/")
    return parser


def _resolve(args: argparse.Namespace):
    from digitlab.study.config import load_toml, resolve

    data = load_toml(args.config) if args.config else {}
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    return resolve(
        data,
        args.overrides,
        profile=args.profile,
        dataset=args.dataset,
        data_dir=args.data_dir,
        tasks=tasks,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        n_jobs=args.n_jobs,
        name=args.name,
        output_dir=args.output_dir,
        cache_dir=args.cache_dir,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from digitlab.study.runner import run_study

    cfg = _resolve(args)
    if args.no_cache:
        cfg.study.use_cache = False
    if args.no_pdf:
        cfg.study.pdf = False
    out = run_study(cfg, quiet=args.quiet)
    from digitlab.report.build import PdfError, build_reports

    print(f"run folder: {out.run_dir}")
    try:
        out.html, out.pdf = build_reports(out.run_dir, pdf=cfg.study.pdf, **_report_meta(args))
    except PdfError as exc:
        print(f"HTML report: {exc.html}")
        raise
    print(f"HTML report: {out.html}")
    if out.pdf:
        print(f"PDF report: {out.pdf}")
    print(f"total: {out.seconds:.1f} s ({sum(out.cached.values())} of {len(out.cached)} tasks from cache)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from digitlab.predict import (
        PredictError,
        Predictor,
        format_prediction,
        is_run_dir,
        latest_run,
        read_inputs,
    )

    inputs, run = list(args.inputs), args.run
    if run is None and len(inputs) > 1 and is_run_dir(inputs[0]):
        run, inputs = inputs[0], inputs[1:]
    if not 1 <= args.top <= 100:
        raise PredictError(f"--top {args.top}: give 1 to 100 classes")
    run = Path(run) if run else latest_run(args.runs_dir)
    predictor = Predictor.from_run(run, args.model)
    names, images = read_inputs(inputs, predictor.image_shape)
    results = predictor.predict(images, names, k=args.top)
    if args.json:
        print(
            json.dumps(
                {"run": str(run), "model": predictor.name, "predictions": [r.to_dict() for r in results]},
                indent=1,
            )
        )
    else:
        print(f"model {predictor.name} of {run}")
        for r in results:
            print(format_prediction(r))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from digitlab.names import model_name
    from digitlab.predict import latest_run, saved_models

    run = Path(args.run) if args.run else latest_run(args.runs_dir)
    models = saved_models(run)
    if not models:
        print(f"{run}: no saved models")
        return 0
    print(f"models saved by {run}:")
    for m in models:
        acc = f"{100 * m.accuracy:6.2f} %" if m.accuracy is not None else "      –"
        print(
            f"  {m.name:15s} {model_name(m.name):22s} {m.kind:8s} test accuracy {acc}{'  (best)' if m.best else ''}"
        )
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from digitlab.data.registry import DESCRIPTIONS, load_dataset

    if args.data_command == "list":
        for name, desc in DESCRIPTIONS.items():
            print(f"{name:15s} {desc}")
        return 0
    if args.data_command == "synth-fundus":
        return _synth_fundus(args)
    ds = load_dataset(args.name, args.data_dir)
    if args.data_command == "verify":
        for part, status in ds.checksums.items():
            print(f"{part:14s} {status}")
        print(
            f"{ds.name}: all files verified"
            if all(v == "ok" for v in ds.checksums.values())
            else f"{ds.name}: loaded (no published checksums to verify)"
        )
        return 0
    print(json.dumps(ds.summary(), indent=1))
    return 0


def _synth_fundus(args: argparse.Namespace) -> int:
    from digitlab.data.fundus import synth_fundus

    if args.n < 18:
        raise DigitlabError(f"--n {args.n}: too few; use at least 18 (one image per grade and split)")
    counts = synth_fundus(args.dir, args.n, size=args.size, seed=args.seed, overwrite=args.overwrite)
    for split, per_grade in counts.items():
        print(f"{split:6s} {sum(per_grade):6,d} images, grades 0-5: {per_grade}")
    print(f"wrote {Path(args.dir) / 'DR_grading'} (synthetic, for tests and demonstrations)")
    print(f"run the study on it: digitlab run --dataset ddr --data-dir {args.dir}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; ``predict`` takes options between its inputs too (``predict RUN --model m x.png``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv and argv[0] == "predict":
        sub = next(a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
        args = sub.choices["predict"].parse_intermixed_args(argv[1:])
        args.command = "predict"
        return args
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "config":
            from digitlab.study.config import to_toml

            print(to_toml(_resolve(args)))
            return 0
        if args.command == "report":
            from digitlab.report.build import PdfError, build_reports

            try:
                html, pdf = build_reports(Path(args.run_dir), pdf=not args.no_pdf, **_report_meta(args))
            except PdfError as exc:
                print(f"HTML report: {exc.html}")
                raise
            print(f"HTML report: {html}" + (f"\nPDF report: {pdf}" if pdf else ""))
            return 0
        if args.command == "predict":
            return cmd_predict(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "compare":
            from digitlab.report.compare_runs import compare_runs

            comparison = compare_runs(args.run_a, args.run_b, alpha=args.alpha, n_boot=args.n_boot)
            html, pdf = comparison.write(args.output, pdf=args.pdf)
            comparison.print_summary()
            print(f"comparison: {html}" + (f"\nPDF: {pdf}" if pdf else ""))
            return 0
        return cmd_data(args)
    except DigitlabError as exc:
        print(f"digitlab: error: {exc}", file=sys.stderr)
        return 2
    except (
        OSError
    ) as exc:  # the file system refused (disk full, permissions changed mid-run): one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"digitlab: error: {where}{exc.strerror or exc}; check the folder's permissions and free space",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("digitlab: interrupted; finished tasks are kept in the cache", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
