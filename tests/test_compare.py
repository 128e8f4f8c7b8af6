"""digitlab compare: two real quick runs on the digits dataset, and constructed variants of them."""

import json
import shutil

import numpy as np
import pytest
from scipy import stats

from digitlab import metrics as M
from digitlab.cli import main
from digitlab.exceptions import DigitlabError
from digitlab.report.compare_runs import _ModelSample, _welch, bootstrap_p_value, compare_runs

MODELS = "classify.models=['gnb','knn']"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four quick runs: a baseline, the same settings recomputed, fewer training images, fewer test images."""
    from digitlab.study.config import resolve
    from digitlab.study.runner import run_study

    root = tmp_path_factory.mktemp("runs")

    def make(name, *overrides, use_cache=True):
        study = {
            "dataset": "digits",
            "profile": "quick",
            "tasks": ["overview", "classify"],
            "output_dir": str(root / "runs"),
            "cache_dir": str(root / "cache"),
            "name": name,
            "n_jobs": 1,
            "device": "cpu",
            "pdf": False,
            "use_cache": use_cache,
        }
        return run_study(resolve({"study": study}, [MODELS, *overrides]), quiet=True).run_dir

    return {
        "base": make("base"),
        "same": make("same", use_cache=False),
        "n_train": make("small", "classify.n_train=300"),
        "n_test": make("fewtest", "classify.n_test=200"),
        "root": root,
    }


def _copy(run, root, name):
    dest = root / "variants" / name
    shutil.copytree(run, dest)
    return dest


def _rewrite_predictions(run_dir, **arrays):
    file = run_dir / "results" / "classify" / "predictions.npz"
    with np.load(file) as z:
        data = {k: z[k] for k in z.files}
    data.update(arrays)
    np.savez_compressed(file, **data)


def test_one_changed_key_is_named_and_tested_paired(runs):
    c = compare_runs(runs["base"], runs["n_train"])
    assert c.config["key"].tolist() == ["classify.n_train"]
    assert c.config.iloc[0][["a", "b"]].tolist() == ["5000", "300"]
    assert "study.name" in c.config_bookkeeping["key"].tolist()  # the name differs but cannot change results
    assert c.paired is True
    assert set(c.tests["model"]) == {"gnb", "knn"}
    assert all(m.startswith("McNemar") for m in c.tests["method"])
    # the table's numbers agree with the runs' own reports and with McNemar on the stored predictions
    for run, col in ((runs["base"], "acc_a"), (runs["n_train"], "acc_b")):
        acc = json.loads((run / "results/classify/result.json").read_text())["metrics"]["accuracy"]
        for r in c.tests.to_dict("records"):
            assert r[col] == pytest.approx(acc[r["model"]], abs=1e-5)
    with (
        np.load(runs["base"] / "results/classify/predictions.npz") as za,
        np.load(runs["n_train"] / "results/classify/predictions.npz") as zb,
    ):
        assert np.array_equal(za["test_index"], zb["test_index"])
        t = M.mcnemar(za["y_true"], za["y_pred__knn"], zb["y_pred__knn"])
    row = c.tests.set_index("model").loc["knn"]
    assert (row["only_a_right"], row["only_b_right"], row["p_value"]) == (
        t["b"],
        t["c"],
        pytest.approx(t["p_value"]),
    )
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert c.headline and all(isinstance(s, str) and s.endswith(".") for s in c.headline)
    assert not c.environment["key"].str.startswith("packages").any()  # same machine, same packages


def test_identical_settings_show_no_significant_change(runs):
    c = compare_runs(runs["base"], runs["same"])
    assert c.config.empty
    assert c.paired is True and not c.tests["significant"].any()
    assert (c.tests["diff"] == 0).all()
    scores = c.metrics[c.metrics["kind"] == "score"]
    assert not scores["significant"].fillna(False).astype(bool).any()
    assert c.headline[0].startswith("No accuracy change")
    assert not c.notes  # nothing left out


def test_different_test_sets_fall_back_to_an_unpaired_bootstrap(runs):
    c = compare_runs(runs["base"], runs["n_test"])
    assert c.config["key"].tolist() == ["classify.n_test"]
    assert c.paired is False
    assert (c.tests["method"] == "unpaired bootstrap").all()
    assert c.tests["n_a"].iloc[0] == 450 and c.tests["n_b"].iloc[0] == 200
    assert any("No paired test" in n and "450" in n and "200" in n for n in c.notes)
    assert c.tests["only_a_right"].isna().all()
    assert (c.tests["ci_low"] < c.tests["ci_high"]).all()


def test_shuffled_test_order_is_still_paired(runs):
    b = _copy(runs["base"], runs["root"], "shuffled")
    with np.load(b / "results/classify/predictions.npz") as z:
        perm = np.random.default_rng(1).permutation(len(z["y_true"]))
        arrays = {k: z[k][perm] for k in z.files if k != "models"}
    _rewrite_predictions(b, **arrays)
    c = compare_runs(runs["base"], b)
    assert c.paired is True and (c.tests["only_a_right"] == 0).all() and (c.tests["diff"] == 0).all()


def test_constructed_predictions_give_scipys_mcnemar(runs):
    """B's k-NN predictions are A's with chosen images flipped: the discordant counts, statistic and p-value
    are those of the textbook McNemar test (chi-square with continuity correction; exact binomial by scipy)."""
    with np.load(runs["base"] / "results/classify/predictions.npz") as z:
        y, pred = z["y_true"], z["y_pred__knn"].copy()
    right, wrong = np.flatnonzero(pred == y), np.flatnonzero(pred != y)
    for name, n_break, n_fix in (("chi2", 30, min(3, len(wrong))), ("exact", 6, min(1, len(wrong)))):
        new = pred.copy()
        new[right[:n_break]] = (y[right[:n_break]] + 1) % 10  # A right, B wrong
        new[wrong[:n_fix]] = y[wrong[:n_fix]]  # A wrong, B right
        b = _copy(runs["base"], runs["root"], f"flipped-{name}")
        _rewrite_predictions(b, y_pred__knn=new)
        c = compare_runs(runs["base"], b)
        row = c.tests.set_index("model").loc["knn"]
        assert (row["only_a_right"], row["only_b_right"]) == (n_break, n_fix)
        n = n_break + n_fix
        if name == "chi2":
            stat = (abs(n_break - n_fix) - 1) ** 2 / n
            assert row["statistic"] == pytest.approx(stat)
            assert row["p_value"] == pytest.approx(stats.chi2.sf(stat, 1))
            assert row["significant"]
            assert c.headline[0].startswith("k-NN: test accuracy fell from")
            assert (
                f"run B gets {n_fix} right that run A got wrong and {n_break} the other way round"
                in c.headline[0]
            )
        else:
            assert row["method"] == "McNemar, exact binomial"
            assert row["p_value"] == pytest.approx(stats.binomtest(n_fix, n, 0.5).pvalue)
        assert row["diff"] == pytest.approx((n_fix - n_break) / len(y))


def test_bootstrap_formulas_equal_the_metrics_suite_at_the_full_sample(runs):
    with np.load(runs["base"] / "results/classify/predictions.npz") as z:
        y, pred, proba = z["y_true"], z["y_pred__gnb"], z["proba__gnb"].astype(float)
    scores = np.log(np.clip(proba, 1e-9, None)) + np.random.default_rng(0).normal(0, 0.1, proba.shape)
    for p, s, yp in ((proba, None, pred), (None, scores, scores.argmax(1))):
        ref = M.classification_metrics(y, yp, p, 10, scores=s, n_bins=15)
        got = _ModelSample(y, yp, p, s, 10, 15).metrics(np.ones((1, len(y))))
        for key, values in got.items():
            assert values[0] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key


def test_bootstrap_p_value_and_welch_interval():
    assert bootstrap_p_value(np.zeros(999)) == 1.0
    assert bootstrap_p_value(np.full(999, 0.1)) == pytest.approx(2 / 1000)
    for ma, mb in ((97.0, 97.4), (97.0, 98.5)):
        lo, hi = _welch(ma, 0.3, 3, mb, 0.4, 3)
        p = stats.ttest_ind_from_stats(mb, 0.4, 3, ma, 0.3, 3, equal_var=False).pvalue
        assert (lo > 0) == (p < 0.05)
    assert _welch(97.0, 0.0, 1, 98.0, 0.0, 1) is None  # one seed: no interval


def test_training_flops_change_is_reported(runs):
    a, b = _copy(runs["base"], runs["root"], "flops-a"), _copy(runs["base"], runs["root"], "flops-b")
    for run, gflop in ((a, 10.0), (b, 25.0)):
        file = run / "results/classify/result.json"
        res = json.loads(file.read_text())
        cost = next(t for t in res["tables"] if t["name"] == "cost")
        next(r for r in cost["rows"] if r["model"] == "knn")["train_gflop"] = (
            gflop  # as if k-NN were a network
        )
        file.write_text(json.dumps(res))
    c = compare_runs(a, b)
    row = c.metrics[(c.metrics["metric"] == "train_gflop")].iloc[0]
    assert (row["a"], row["b"], row["interval"]) == (10.0, 25.0, "count")
    assert any("training cost rose from 10 to 25 GFLOP (2.50x)" in s for s in c.headline)


def test_missing_and_corrupt_results_are_left_out_with_a_note(runs):
    b = _copy(runs["base"], runs["root"], "corrupt")
    (b / "results/classify/result.json").write_text("{ not json")
    c = compare_runs(runs["base"], b)
    assert c.tests.empty and c.metrics.empty
    assert any("classify result is corrupt" in n and "left out" in n for n in c.notes)
    assert "overview" in set(c.tables["task"])  # the rest is still compared
    b2 = _copy(runs["base"], runs["root"], "nopred")
    (b2 / "results/classify/predictions.npz").unlink()
    c2 = compare_runs(runs["base"], b2)
    assert c2.paired is None and c2.tests.empty
    scores = c2.metrics[c2.metrics["kind"] == "score"]
    assert (
        len(scores)
        and (scores["interval"] == "no per-image predictions").all()
        and scores["ci_low"].isna().all()
    )
    assert any("no classify predictions" in n for n in c2.notes)


def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys):
    (tmp_path / "notarun").mkdir()
    assert main(["compare", str(runs["base"]), str(tmp_path / "notarun")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a digitlab run folder" in err
    assert main(["compare", str(tmp_path / "missing"), str(runs["base"])]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    other = _copy(runs["base"], runs["root"], "otherdata")
    summary = json.loads((other / "summary.json").read_text())
    summary["dataset"]["name"] = "mnist"
    (other / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(DigitlabError, match="different datasets"):
        compare_runs(runs["base"], other)
    broken = _copy(runs["base"], runs["root"], "brokensummary")
    (broken / "summary.json").write_text("{")
    assert main(["compare", str(runs["base"]), str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "summary.json: unreadable" in err


def test_cli_writes_html_pdf_and_tables(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(runs["base"]),
                str(runs["n_train"]),
                "--output",
                str(out),
                "--pdf",
                "--n-boot",
                "200",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "classify.n_train" in printed and "headline" in printed
    html = (out / "compare.html").read_text()
    assert "classify.n_train" in html and "McNemar" in html and "data:image/png;base64," in html
    assert 'src="http' not in html and "<script src" not in html  # self-contained
    assert (out / "compare.pdf").read_bytes()[:4] == b"%PDF"
    meta = json.loads((out / "compare.json").read_text())
    assert meta["paired"] is True and meta["headline"]
    for name in ("config", "tests", "metrics", "wall_times"):
        assert (out / f"{name}.csv").stat().st_size > 0
    # the default output is a new folder beside run A
    c = compare_runs(runs["base"], runs["n_train"], n_boot=200)
    html_path, pdf_path = c.write()
    assert (
        html_path.parent.parent == runs["base"].parent
        and html_path.parent.name.startswith("compare-")
        and pdf_path is None
    )
    assert c.write()[0].parent != html_path.parent  # never overwrites an earlier comparison
