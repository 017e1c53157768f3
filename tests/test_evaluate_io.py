"""evaluate_file and ``fastbce evaluate`` (issue #5 items 3-4).

- Parquet, CSV and .npy columns give the in-memory ``evaluate`` report (1e-12
  relative), whatever the batch size; .npy batches give exactly what an
  Evaluator fed the same slices gives;
- bad files raise the documented errors, naming the path, column and row;
- the command line: table, --json, --plot, exit statuses;
- bounded memory: peak RSS does not grow with the file's size.
"""
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastbce import _evaluate_io
from fastbce._evaluate import Evaluator, evaluate
from fastbce._evaluate_io import evaluate_file
from fastbce.__main__ import main

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # the .npy tests run without pyarrow
    pa = pq = None

needs_pyarrow = pytest.mark.skipif(pa is None, reason="pyarrow is not installed")

RTOL = 1e-12
N = 5_003
BINS = 16
GROUP_NAMES = np.array(["north", "south", "east", "west", "middle"])


# ---------------------------------------------------------------- data and helpers

def make_columns(n=N, seed=0):
    """Label (int8), score (probabilities, exact 0 and 1 included), logit (float32), weight, groups."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.35).astype(np.int8)
    logit = (rng.normal(0.0, 1.5, n) + 1.3 * label).astype(np.float32)
    score = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
    score[:3] = [0.0, 1.0, 0.5]
    weight = rng.random(n) * 2.0
    region_code = rng.integers(0, len(GROUP_NAMES), n)
    return {"label": label, "score": score, "logit": logit, "weight": weight,
            "region": GROUP_NAMES[region_code], "region_code": region_code.astype(np.int64)}


COLUMNS = make_columns()


def assert_reports_close(actual, expected, rtol=RTOL, path="report"):
    """Two to_dict() reports equal: numbers within rtol (nan == nan), the rest exactly."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), (path, actual.keys(), expected.keys())
        for key in expected:
            assert_reports_close(actual[key], expected[key], rtol, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_reports_close(a, e, rtol, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, str):
        if math.isnan(expected):
            assert math.isnan(actual), (path, actual)
        else:
            assert abs(actual - expected) <= rtol * abs(expected), (path, actual, expected)
    else:
        assert actual == expected, (path, actual, expected)


def in_memory(columns=COLUMNS, y_pred="score", weight=True, groups="region", **kw):
    return evaluate(columns["label"], columns[y_pred],
                    sample_weight=columns["weight"] if weight else None,
                    groups=None if groups is None else columns[groups], **kw)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same columns as Parquet (several row groups), CSV and a directory of .npy files."""
    root = tmp_path_factory.mktemp("evaluate_io")
    paths = {}
    npy = root / "columns"
    npy.mkdir()
    for name, values in COLUMNS.items():
        np.save(npy / f"{name}.npy", values)
    paths["npy"] = str(npy)
    if pa is not None:
        table = pa.table(COLUMNS)
        pq.write_table(table, root / "data.parquet", row_group_size=1_500)
        paths["parquet"] = str(root / "data.parquet")
        import pyarrow.csv as pa_csv
        pa_csv.write_csv(table, root / "data.csv")
        paths["csv"] = str(root / "data.csv")
    return paths


def source(files, kind):
    if kind in ("parquet", "csv") and pa is None:
        pytest.skip("pyarrow is not installed")
    return files[kind]


FORMATS = ["parquet", "csv", "npy"]


# ---------------------------------------------------------------- equal to in-memory evaluate

@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("batch_size", [7, 1_000, 1_000_000])
def test_file_report_equals_in_memory_report(files, kind, batch_size):
    report = evaluate_file(source(files, kind), "label", "score", sample_weight="weight",
                           groups="region", bins=BINS, batch_size=batch_size, progress=False)
    assert_reports_close(report.to_dict(), in_memory(bins=BINS).to_dict())


def columns_as_stored(files, kind):
    """The columns as the file holds them: float32 logits in a CSV are decimal text, which
    reads back as the nearest float64, not as the float32 value."""
    if kind != "csv":
        return COLUMNS
    import pyarrow.csv as pa_csv
    table = pa_csv.read_csv(files["csv"])
    return {name: table.column(name).to_numpy() for name in table.column_names}


@pytest.mark.parametrize("kind", FORMATS)
def test_file_report_with_logits_integer_groups_and_keywords(files, kind):
    keywords = dict(from_logits=True, threshold=0.3, pos_weight=2.5, class_weight="balanced", bins=10)
    report = evaluate_file(source(files, kind), "label", "logit", groups="region_code",
                           batch_size=999, progress=False, **keywords)
    expected = in_memory(columns_as_stored(files, kind), y_pred="logit", weight=False,
                         groups="region_code", **keywords)
    assert_reports_close(report.to_dict(), expected.to_dict())
    assert list(report.groups) == list(range(len(GROUP_NAMES)))


@pytest.mark.parametrize("kind", FORMATS)
def test_file_report_without_weights_or_groups(files, kind):
    report = evaluate_file(source(files, kind), progress=False, y_pred="score")
    assert report.groups is None
    assert_reports_close(report.to_dict(), in_memory(weight=False, groups=None).to_dict())


def test_npy_batches_are_exactly_an_evaluator_fed_the_same_slices(files):
    batch = 1_234
    evaluator = Evaluator(bins=BINS)
    for start in range(0, N, batch):
        part = slice(start, start + batch)
        evaluator.update(COLUMNS["label"][part], COLUMNS["score"][part],
                         sample_weight=COLUMNS["weight"][part], groups=COLUMNS["region"][part])
    report = evaluate_file(files["npy"], sample_weight="weight", groups="region", bins=BINS,
                           batch_size=batch, progress=False)
    assert_reports_close(report.to_dict(), evaluator.result().to_dict(), rtol=0.0)


def test_npy_mapping_of_paths_and_arrays(files):
    mapping = {"y": os.path.join(files["npy"], "label.npy"), "p": COLUMNS["score"]}
    report = evaluate_file(mapping, "y", "p", batch_size=500, progress=False)
    assert_reports_close(report.to_dict(), in_memory(weight=False, groups=None).to_dict())


@needs_pyarrow
def test_compressed_csv_and_tsv(tmp_path):
    import gzip
    rows = "".join(f"{y},{float(p)!r}\n" for y, p in zip(COLUMNS["label"][:300], COLUMNS["score"][:300]))
    with gzip.open(tmp_path / "data.csv.gz", "wt") as f:
        f.write("label,score\n" + rows)
    (tmp_path / "data.tsv").write_text("label\tscore\n" + rows.replace(",", "\t"))
    expected = evaluate(COLUMNS["label"][:300], COLUMNS["score"][:300]).to_dict()
    for name in ("data.csv.gz", "data.tsv"):
        assert_reports_close(evaluate_file(tmp_path / name, progress=False).to_dict(), expected)


@needs_pyarrow
def test_csv_groups_that_turn_to_text_after_the_first_block(tmp_path, monkeypatch):
    # the first block makes pyarrow infer integers; a later one holds text:
    # the file is read again with the groups as strings
    monkeypatch.setattr(_evaluate_io, "CSV_BLOCK_SIZE", 1 << 12)
    n = 3_000
    groups = np.where(np.arange(n) < n - 5, np.arange(n) % 3, -1).astype(object)
    groups[groups == -1] = "late"
    lines = [f"{y},{float(p)!r},{g}" for y, p, g in zip(COLUMNS["label"][:n], COLUMNS["score"][:n], groups)]
    (tmp_path / "data.csv").write_text("label,score,g\n" + "\n".join(lines) + "\n")
    report = evaluate_file(tmp_path / "data.csv", groups="g", progress=False)
    expected = evaluate(COLUMNS["label"][:n], COLUMNS["score"][:n], groups=groups.astype(str))
    assert list(report.groups) == ["0", "1", "2", "late"]
    assert_reports_close(report.to_dict(), expected.to_dict())


@needs_pyarrow
def test_parquet_bool_labels_float32_scores_and_dictionary_groups(tmp_path):
    table = pa.table({"label": COLUMNS["label"].astype(bool), "score": COLUMNS["score"].astype(np.float32),
                      "region": pa.array(COLUMNS["region"]).dictionary_encode()})
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=1_000)
    report = evaluate_file(tmp_path / "data.parquet", groups="region", batch_size=700, progress=False)
    expected = evaluate(COLUMNS["label"].astype(bool), COLUMNS["score"].astype(np.float32),
                        groups=COLUMNS["region"])
    assert_reports_close(report.to_dict(), expected.to_dict())


@needs_pyarrow
def test_progress_bar_counts_rows(files, capsys):
    pytest.importorskip("tqdm")
    evaluate_file(files["parquet"], progress=True, batch_size=1_000)
    err = capsys.readouterr().err
    assert "evaluate" in err and "/5.00k" in err and "row" in err, err


# ---------------------------------------------------------------- bad files

@pytest.mark.parametrize("name", ["missing.parquet", "missing.csv", "missing_dir", "missing.xyz"])
def test_missing_file_names_the_path(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(FileNotFoundError, match=name) as info:
        evaluate_file(path)
    assert info.value.filename == str(path)


def test_missing_npy_file_in_a_mapping_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npy"):
        evaluate_file({"label": COLUMNS["label"], "score": tmp_path / "nowhere.npy"})


@pytest.mark.parametrize("kind", FORMATS)
def test_missing_column_is_named_with_the_available_ones(files, kind):
    with pytest.raises(ValueError, match=r"no column 'prob'.*its columns are: 'label'.*'score'"):
        evaluate_file(source(files, kind), "label", "prob")


@pytest.mark.parametrize("name", ["data.txt", "data.json", "data.npz", "README"])
def test_unknown_file_type(tmp_path, name):
    (tmp_path / name).write_text("label,score\n1,0.5\n")
    with pytest.raises(ValueError, match="unknown file type"):
        evaluate_file(tmp_path / name)


def test_single_npy_file_says_what_to_pass(tmp_path):
    np.save(tmp_path / "score.npy", COLUMNS["score"])
    with pytest.raises(ValueError, match="directory of .npy files"):
        evaluate_file(tmp_path / "score.npy")


def test_npy_columns_of_different_lengths(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        evaluate_file({"label": COLUMNS["label"], "score": COLUMNS["score"][:-1]})


@needs_pyarrow
def test_null_in_parquet_names_column_and_row(tmp_path):
    score = pa.array(COLUMNS["score"], mask=np.arange(N) == 3_210)
    pq.write_table(pa.table({"label": COLUMNS["label"], "score": score}), tmp_path / "data.parquet",
                   row_group_size=1_000)
    with pytest.raises(ValueError, match=r"column 'score' has a missing value \(null\) at row 3210"):
        evaluate_file(tmp_path / "data.parquet", batch_size=600)


@needs_pyarrow
@pytest.mark.parametrize("missing", ["", "NA", "NaN"])
def test_null_in_csv_names_column_and_row(tmp_path, missing):
    lines = [f"{y},{float(p)!r}" for y, p in zip(COLUMNS["label"], COLUMNS["score"])]
    lines[4_321] = f"1,{missing}"
    (tmp_path / "data.csv").write_text("label,score\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"column 'score' has a missing value \(null\) at row 4321"):
        evaluate_file(tmp_path / "data.csv", batch_size=1_000)


@needs_pyarrow
def test_non_numeric_parquet_column_names_column_and_type(files):
    with pytest.raises(TypeError, match=r"column 'region' is not numeric \(type string"):
        evaluate_file(files["parquet"], "label", "region")


@needs_pyarrow
@pytest.mark.parametrize("row", [0, 4_900])
def test_non_numeric_csv_column_names_column_type_and_row(tmp_path, monkeypatch, row):
    # row 4900 is in a later block than the one pyarrow infers the types from
    monkeypatch.setattr(_evaluate_io, "CSV_BLOCK_SIZE", 1 << 14)
    lines = [f"{y},{float(p)!r}" for y, p in zip(COLUMNS["label"], COLUMNS["score"])]
    lines[row] = "1,high"
    (tmp_path / "data.csv").write_text("label,score\n" + "\n".join(lines) + "\n")
    with pytest.raises(TypeError, match=rf"column 'score' is not numeric \(type string; .* row {row}: 'high'"):
        evaluate_file(tmp_path / "data.csv")


def test_non_numeric_npy_column(tmp_path):
    with pytest.raises(TypeError, match=r"column 'score' is not numeric \(type <U"):
        evaluate_file({"label": COLUMNS["label"], "score": COLUMNS["region"]})


@pytest.mark.parametrize("kind", FORMATS)
def test_invalid_value_names_column_row_and_value(files, tmp_path, kind):
    if kind != "npy":
        source(files, kind)  # skips without pyarrow
    score = COLUMNS["score"].copy()
    score[2_345] = 1.5
    if kind == "npy":
        path = {"label": COLUMNS["label"], "score": score}
    elif kind == "parquet":
        path = tmp_path / "bad.parquet"
        pq.write_table(pa.table({"label": COLUMNS["label"], "score": score}), path)
    else:
        import pyarrow.csv as pa_csv
        path = tmp_path / "bad.csv"
        pa_csv.write_csv(pa.table({"label": COLUMNS["label"], "score": score}), path)
    with pytest.raises(ValueError, match=r"column 'score', row 2345 = 1.5: probabilities must be in \[0, 1\]"):
        evaluate_file(path, batch_size=1_000)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_file({"label": [1], "score": [0.5]}, batch_size=0)
    with pytest.raises(ValueError, match="pos_weight must be a number"):
        evaluate_file({"label": [1], "score": [0.5]}, pos_weight=[1.0])
    with pytest.raises(TypeError, match="sample_weight must be a column name"):
        evaluate_file({"label": [1], "score": [0.5]}, sample_weight=np.ones(1))
    with pytest.raises(ValueError, match="threshold"):
        evaluate_file({"label": [1], "score": [0.5]}, threshold=2.0)


# ---------------------------------------------------------------- the command line

def cli(capsys, *args):
    status = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("kind", FORMATS)
def test_cli_prints_the_report_table(files, capsys, kind):
    status, out, err = cli(capsys, source(files, kind), "--y-true", "label", "--y-pred", "score",
                           "--groups", "region", "--weight", "weight", "--bins", 10, "--no-progress")
    assert status == 0, err
    expected = in_memory(bins=10)
    assert "overall" in out and "log_loss" in out and "roc_auc" in out
    assert f"{expected.log_loss:.4f}" in out
    for name in GROUP_NAMES:
        assert name in out


def test_cli_json_is_the_report(files, capsys):
    status, out, err = cli(capsys, files["npy"], "--y-pred", "logit", "--logits", "--threshold", 0.4,
                           "--groups", "region_code", "--bins", 8, "--json")
    assert status == 0, err
    expected = in_memory(y_pred="logit", weight=False, groups="region_code", from_logits=True,
                         threshold=0.4, bins=8).to_dict()
    expected = _evaluate_io._strict_json(expected)  # nan -> null
    assert_reports_close(json.loads(out), expected)


def test_cli_plot_writes_a_png(files, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    for args in (["--groups", "region"], []):
        out_png = tmp_path / f"report{len(args)}.png"
        status, out, err = cli(capsys, files["npy"], "--weight", "weight", *args, "--plot", out_png)
        assert status == 0, err
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "No such file or directory"),
    (["{npy}", "--y-pred", "prob"], "no column 'prob'"),
    (["{npy}", "--y-pred", "region"], "is not numeric"),
    (["{npy}", "--y-true", "weight"], "labels must be in [0, 1]"),
])
def test_cli_data_errors_exit_1_with_one_line(files, capsys, tmp_path, args, message):
    args = [a.format(missing=tmp_path / "missing.parquet", npy=files["npy"]) for a in args]
    status, out, err = cli(capsys, *args)
    assert status == 1
    assert err.startswith("fastbce evaluate: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args", [
    [], ["{npy}", "--bins", "0"], ["{npy}", "--threshold", "1.5"], ["{npy}", "--no-such-option"],
    ["{npy}", "--format", "xlsx"], ["{npy}", "--batch-size", "many"],
])
def test_cli_usage_errors_exit_2(files, capsys, args):
    status, out, err = cli(capsys, *[a.format(npy=files["npy"]) for a in args])
    assert status == 2
    assert "usage: fastbce evaluate" in err


def test_cli_help_exits_0(capsys):
    status, out, err = cli(capsys, "--help")
    assert status == 0 and "--y-pred" in out


def test_cli_without_subcommand_still_reports_the_build(capsys):
    assert main([]) == 0
    assert "self-check" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2


# ---------------------------------------------------------------- bounded memory

MEMORY_SCRIPT = textwrap.dedent("""
    import sys
    from fastbce._evaluate_io import evaluate_file

    def peak():
        # VmHWM: this process's peak RSS (getrusage's ru_maxrss would count
        # the parent's, inherited through fork)
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    small, large = sys.argv[1], sys.argv[2]
    # the libraries' own memory (pyarrow imports pandas, if installed, on a first to_numpy())
    import pyarrow as pa, pyarrow.parquet
    pa.array([0.5]).to_numpy()
    imported = peak()
    evaluate_file(small, batch_size=100_000, progress=False)
    after_small = peak()
    report = evaluate_file(large, batch_size=100_000, progress=False)
    after_large = peak()
    assert report.n == 16_000_000
    print(imported, after_small, after_large)
""")


def write_parquet(path, n):
    """n rows of int8 labels and float64 scores, uncompressed, in row groups of 250,000."""
    schema = pa.schema([("label", pa.int8()), ("score", pa.float64())])
    rng = np.random.default_rng(0)
    step = 500_000
    score = rng.random(step)
    part = pa.table({"label": (rng.random(step) < score).astype(np.int8), "score": score}, schema=schema)
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        for _ in range(n // step):
            writer.write_table(part, row_group_size=250_000)


@needs_pyarrow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc (Linux)")
def test_parquet_memory_does_not_grow_with_the_file(tmp_path):
    """Reading a 180 MB Parquet file (16e6 rows, batches of 1e5) takes a fixed amount of memory:
    well under half the file, and no more than an 11 MB file (1e6 rows) takes."""
    small, large = tmp_path / "small.parquet", tmp_path / "large.parquet"
    write_parquet(small, 1_000_000)
    write_parquet(large, 16_000_000)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(_evaluate_io.__file__))),
         os.environ.get("PYTHONPATH", "")]))
    # (from tmp_path: `python -c` puts the working folder first on sys.path,
    # and a source checkout's fastbce/ has no compiled kernels)
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(small), str(large)],
                            capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    imported, after_small, after_large = map(int, result.stdout.split())
    large_bytes = os.path.getsize(large)
    assert large_bytes > 180e6
    figures = dict(imported=imported, after_small=after_small, after_large=after_large,
                   large_bytes=large_bytes)
    # reading the small file costs a fixed amount (a batch, the reader's
    # buffers, allocator pools: about 40 MB here); 16x more rows add next to
    # nothing to the peak: up to about 10 MB of allocator noise (seen once at
    # 10.5 MB under load), where keeping even one 0.9 MB batch of each of the
    # 160 would add 144 MB
    assert after_small - imported < large_bytes / 2, figures
    assert after_large - after_small < large_bytes / 8, figures


@needs_pyarrow
def test_an_error_stops_the_reader_thread(files, tmp_path):
    import threading
    score = COLUMNS["score"].copy()
    score[10] = -1.0
    pq.write_table(pa.table({"label": COLUMNS["label"], "score": score}), tmp_path / "bad.parquet",
                   row_group_size=500)
    with pytest.raises(ValueError, match="row 10 = -1.0"):
        evaluate_file(tmp_path / "bad.parquet", batch_size=100)
    assert not [t for t in threading.enumerate() if t.name == "fastbce-evaluate-file-reader"]
