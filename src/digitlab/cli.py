"""Command line: ``digitlab run | report | compare | data | config``. Thin: parses, calls the library, prints.

Any :class:`~digitlab.errors.DigitlabError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from digitlab.errors import DigitlabError


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="TOML config file (see configs/)")
    p.add_argument("--profile", "-p", choices=["quick", "standard", "full"], help="size of the study (default: standard)")
    p.add_argument("--dataset", "-d", help="dataset name: mnist (default), fashion-mnist, digits, ddr, folder")
    p.add_argument("--data-dir", help="folder holding the dataset's files")
    p.add_argument("--tasks", help="comma-separated tasks to run, in order (default: all)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set classify.n_train=5000 (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--jobs", "-j", type=int, dest="n_jobs", help="parallel jobs (-1 = all cores)")
    p.add_argument("--name", help="run name (default: <dataset>-<profile>)")
    p.add_argument("--output", dest="output_dir", help="folder for run folders (default: runs)")
    p.add_argument("--cache-dir", help="folder of cached task results (default: .digitlab-cache)")


def _report_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report title page (kept in the run's summary.json for later rebuilds)")
    g.add_argument("--title", help="the report's title")
    g.add_argument("--author", help="author name(s) on the title page")
    g.add_argument("--course", help="course name on the title page")


def _report_meta(args: argparse.Namespace) -> dict:
    return {"title": args.title, "author": args.author, "course": args.course}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (reusable by scripts)."""
    parser = argparse.ArgumentParser(prog="digitlab", description="Run a complete image-classification study and write HTML + PDF reports.")
    parser.add_argument("--version", action="version", version=f"digitlab {__import__('digitlab').__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a study and write its reports")
    _study_args(run)
    run.add_argument("--no-cache", action="store_true", help="recompute every task (results are still stored)")
    run.add_argument("--no-pdf", action="store_true", help="skip report.pdf")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    _report_args(run)

    cfg = sub.add_parser("config", help="print the resolved config as TOML")
    _study_args(cfg)

    rep = sub.add_parser("report", help="rebuild the reports of a run folder from its stored results")
    rep.add_argument("run_dir")
    rep.add_argument("--no-pdf", action="store_true")
    _report_args(rep)

    cmp_ = sub.add_parser("compare", help="compare two run folders: setup differences, result differences and their significance")
    cmp_.add_argument("run_a", help="the baseline run folder")
    cmp_.add_argument("run_b", help="the variant run folder (differences are B - A)")
    cmp_.add_argument("--output", "-o", help="folder for compare.html (default: a new compare-<A>-vs-<B> folder beside run A)")
    cmp_.add_argument("--pdf", action="store_true", help="also write compare.pdf")
    cmp_.add_argument("--alpha", type=float, default=0.05, help="significance level of the Holm-corrected tests (default 0.05)")
    cmp_.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the intervals (default 1000)")

    data = sub.add_parser("data", help="datasets: list, info, verify")
    dsub = data.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("list", help="registered datasets")
    for name in ("info", "verify"):
        d = dsub.add_parser(name, help="sizes, class counts, pixel statistics" if name == "info" else "check checksums")
        d.add_argument("name", nargs="?" if name == "verify" else None, default="mnist")
        d.add_argument("--data-dir")
    syn = dsub.add_parser("synth-fundus", help="write a synthetic DDR-layout folder of fundus images (tests, demos)")
    syn.add_argument("dir", help="output folder; DR_grading/ is written inside it (use it as --data-dir)")
    syn.add_argument("--n", type=int, default=600, help="images over train/valid/test in DDR's proportions (default 600)")
    syn.add_argument("--size", type=int, default=256, help="image height in pixels (default 256)")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--overwrite", action="store_true", help="replace an existing DR_grading/")
    return parser


def _resolve(args: argparse.Namespace):
    from digitlab.study.config import load_toml, resolve

    data = load_toml(args.config) if args.config else {}
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    return resolve(data, args.overrides, profile=args.profile, dataset=args.dataset, data_dir=args.data_dir,
                   tasks=tasks, seed=args.seed, device=args.device, n_jobs=args.n_jobs, name=args.name,
                   output_dir=args.output_dir, cache_dir=args.cache_dir)


def cmd_run(args: argparse.Namespace) -> int:
    from digitlab.study.runner import run_study

    cfg = _resolve(args)
    if args.no_cache:
        cfg.study.use_cache = False
    if args.no_pdf:
        cfg.study.pdf = False
    out = run_study(cfg, quiet=args.quiet, build_report=False)
    from digitlab.report.build import build_reports

    out.html, out.pdf = build_reports(out.run_dir, pdf=cfg.study.pdf, **_report_meta(args))
    print(f"run folder: {out.run_dir}")
    print(f"HTML report: {out.html}")
    if out.pdf:
        print(f"PDF report: {out.pdf}")
    print(f"total: {out.seconds:.1f} s ({sum(out.cached.values())} of {len(out.cached)} tasks from cache)")
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
        print(f"{ds.name}: all files verified" if all(v == "ok" for v in ds.checksums.values()) else f"{ds.name}: loaded (no published checksums to verify)")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "config":
            from digitlab.study.config import to_toml

            print(to_toml(_resolve(args)))
            return 0
        if args.command == "report":
            from digitlab.report.build import build_reports

            html, pdf = build_reports(Path(args.run_dir), pdf=not args.no_pdf, **_report_meta(args))
            print(f"HTML report: {html}" + (f"\nPDF report: {pdf}" if pdf else ""))
            return 0
        if args.command == "compare":
            from digitlab.compare import compare_runs

            comparison = compare_runs(args.run_a, args.run_b, alpha=args.alpha, n_boot=args.n_boot)
            html, pdf = comparison.write(args.output, pdf=args.pdf)
            comparison.print_summary()
            print(f"comparison: {html}" + (f"\nPDF: {pdf}" if pdf else ""))
            return 0
        return cmd_data(args)
    except DigitlabError as exc:
        print(f"digitlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitlab: interrupted; finished tasks are kept in the cache", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
