"""The Arrow PyCapsule interface: arrays in, streams evaluated out of core.

- any object with ``__arrow_c_array__`` / ``__arrow_c_stream__`` (a Polars
  Series, a pyarrow array, a capsule-only wrapper) is an input of every entry
  point, read without a copy where the layout allows; nulls are refused
  naming the argument and the row;
- ``evaluate_file`` reads a stream of record batches (pyarrow
  RecordBatchReader, Table, Dataset; DuckDB relations; Polars DataFrame and
  LazyFrame) batch by batch, giving the in-memory ``evaluate`` report;
- null, NaN, infinity and non-numeric values name the column, the row of the
  whole stream (from 0) and the value, and stop the reader thread;
- bounded memory: a 2e7-row stream generated batch by batch.

pyarrow, Polars and DuckDB are optional peers: each test skips without them.
"""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastbce
from fastbce import _api, _evaluate_io, _interop
from fastbce._evaluate import evaluate
from fastbce._evaluate_io import evaluate_file

pa = pytest.importorskip("pyarrow")
if not hasattr(pa.RecordBatchReader, "from_stream"):
    pytest.skip("pyarrow 15 or newer reads Arrow streams", allow_module_level=True)

RTOL = 1e-12
N = 10_007
BATCH = 1_000
GROUP_NAMES = np.array(["north", "south", "east", "west", "middle"])


def make_columns(n=N, seed=0):
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.35).astype(np.int8)
    logit = rng.normal(0.0, 1.5, n) + 1.3 * label
    score = 1.0 / (1.0 + np.exp(-logit))
    score[:3] = [0.0, 1.0, 0.5]
    return {"label": label, "score": score, "logit": logit, "weight": rng.random(n) * 2.0,
            "region": GROUP_NAMES[rng.integers(0, len(GROUP_NAMES), n)],
            "other": rng.random(n)}


COLUMNS = make_columns()


def table(columns=COLUMNS):
    return pa.table(columns)


def assert_reports_close(actual, expected, rtol=RTOL, path="report"):
    """to_dict() reports equal: floats within rtol (nan == nan), integers and the rest exactly."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), path
        for key in expected:
            assert_reports_close(actual[key], expected[key], rtol, f"{path}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_reports_close(a, e, rtol, f"{path}[{i}]")
    elif isinstance(expected, float):
        if np.isnan(expected):
            assert np.isnan(actual), path
        else:
            assert actual == pytest.approx(expected, rel=rtol, abs=1e-300), path
    else:
        assert type(actual) is type(expected) and actual == expected, path


# ---------------------------------------------------------------- sources of one table

def _polars():
    return pytest.importorskip("polars")


def _duckdb():
    return pytest.importorskip("duckdb")


def source_of(kind, t, tmp_path):
    """The table `t` as a stream of the given kind."""
    if kind == "reader":
        return t.to_reader(max_chunksize=777)
    if kind == "generator_reader":
        return pa.RecordBatchReader.from_batches(t.schema, iter(t.to_batches(max_chunksize=1234)))
    if kind == "table":
        return t
    if kind == "chunked_table":
        return pa.concat_tables([t.slice(0, 3000), t.slice(3000)])
    if kind == "dataset":
        import pyarrow.dataset as ds
        return ds.dataset(t)
    if kind == "scanner":
        import pyarrow.dataset as ds
        return ds.dataset(t).scanner(batch_size=2000)
    if kind == "capsule_stream":
        return StreamOnly(t)
    if kind == "duckdb_table":
        duckdb = _duckdb()
        connection = duckdb.connect()
        connection.register("t", t)
        return connection.sql("select * from t")
    if kind == "duckdb_parquet":
        duckdb = _duckdb()
        import pyarrow.parquet as pq
        path = tmp_path / "data.parquet"
        pq.write_table(t, path, row_group_size=3000)
        return duckdb.read_parquet(str(path))
    if kind == "polars":
        return _polars().from_arrow(t)
    if kind == "polars_lazy":
        return _polars().from_arrow(t).lazy()
    raise AssertionError(kind)


class StreamOnly:
    """Nothing but ``__arrow_c_stream__`` (as a third-party producer would offer)."""

    def __init__(self, data):
        self.data = pa.chunked_array([data]) if isinstance(data, pa.Array) else data

    def __arrow_c_stream__(self, requested_schema=None):
        return self.data.__arrow_c_stream__(requested_schema)


class ArrayOnly:
    """Nothing but ``__arrow_c_array__``."""

    def __init__(self, array):
        self.array = array

    def __arrow_c_array__(self, requested_schema=None):
        return self.array.__arrow_c_array__(requested_schema)


KINDS = ["reader", "generator_reader", "table", "chunked_table", "dataset", "scanner", "capsule_stream",
         "duckdb_table", "duckdb_parquet", "polars", "polars_lazy"]


@pytest.mark.parametrize("kind", KINDS)
def test_stream_report_equals_in_memory_report(kind, tmp_path):
    c = COLUMNS
    expected = evaluate(c["label"], c["score"], sample_weight=c["weight"], groups=c["region"], bins=16)
    actual = evaluate_file(source_of(kind, table(), tmp_path), sample_weight="weight", groups="region",
                           bins=16, batch_size=BATCH, progress=False)
    assert actual.n == N
    assert_reports_close(actual.to_dict(), expected.to_dict())


@pytest.mark.parametrize("kind", ["reader", "duckdb_table", "polars_lazy"])
def test_stream_logits_threshold_and_column_names(kind, tmp_path):
    c = COLUMNS
    expected = evaluate(c["label"], c["logit"], from_logits=True, threshold=0.3, bins=8)
    actual = evaluate_file(source_of(kind, table(), tmp_path), "label", "logit", from_logits=True,
                           threshold=0.3, bins=8, batch_size=4096, progress=False)
    assert_reports_close(actual.to_dict(), expected.to_dict())


def test_duckdb_sql_query_streams():
    duckdb = _duckdb()
    n = 50_000
    relation = duckdb.sql(f"select (i % 3 = 0)::int as label, ((i * 7919) % 1000)::double / 1000 as score, "
                          f"(i % 4)::bigint as g from range({n}) t(i) order by i")
    i = np.arange(n)
    expected = evaluate((i % 3 == 0).astype(np.int32), ((i * 7919) % 1000) / 1000, groups=i % 4, bins=10)
    actual = evaluate_file(relation, groups="g", bins=10, batch_size=7000, progress=False)
    assert_reports_close(actual.to_dict(), expected.to_dict())


def test_polars_categorical_groups_and_boolean_labels():
    pl = _polars()
    c = COLUMNS
    frame = pl.DataFrame({"label": c["label"].astype(bool), "score": c["score"],
                          "region": pl.Series(c["region"]).cast(pl.Categorical)})
    expected = evaluate(c["label"].astype(bool), c["score"], groups=c["region"], bins=4)
    actual = evaluate_file(frame, groups="region", bins=4, batch_size=BATCH, progress=False)
    assert_reports_close(actual.to_dict(), expected.to_dict())


def test_progress_bar_counts_the_stream(capsys):
    pytest.importorskip("tqdm")
    report = evaluate_file(table(), batch_size=BATCH, progress=True)
    assert report.n == N


def test_a_stream_is_not_a_file_format():
    with pytest.raises(ValueError, match="format= and delimiter= are for files"):
        evaluate_file(table(), format="parquet")


def test_missing_column_names_the_stream_and_its_columns():
    with pytest.raises(ValueError, match=r"no column 'nope' in the Table stream; its columns are: 'label'"):
        evaluate_file(table(), y_pred="nope")


def test_pandas_dataframe_and_quoted_column_names():
    pd = pytest.importorskip("pandas")
    c = COLUMNS
    frame = pd.DataFrame({"the label": c["label"], 'a "score"': c["score"]})
    expected = evaluate(c["label"], c["score"], bins=4)
    assert_reports_close(evaluate_file(frame, "the label", 'a "score"', bins=4).to_dict(), expected.to_dict())
    duckdb = pytest.importorskip("duckdb")
    connection = duckdb.connect()
    connection.register("frame", frame)
    relation = connection.sql("select * from frame")
    assert_reports_close(evaluate_file(relation, "the label", 'a "score"', bins=4, batch_size=BATCH).to_dict(),
                         expected.to_dict())


def test_a_single_column_stream_or_other_object_is_refused_clearly():
    with pytest.raises(TypeError, match=r"reads a table of named columns .* ChunkedArray is a single column"):
        evaluate_file(pa.chunked_array([COLUMNS["score"]]))
    with pytest.raises(TypeError, match=r"reads a file path, a mapping .* got list"):
        evaluate_file([0.5, 0.5])


def test_polars_without_collect_batches_says_what_to_do(monkeypatch):
    pl = _polars()
    monkeypatch.delattr(pl.LazyFrame, "collect_batches", raising=False)
    with pytest.raises(TypeError, match=r"no LazyFrame.collect_batches .* lf.collect\(engine='streaming'\)"):
        evaluate_file(pl.from_arrow(table()).lazy())


# ---------------------------------------------------------------- errors name column, row, value

BAD_ROW = 2345  # in the third batch of 1,000


def with_value(column, value):
    values = COLUMNS[column].astype(np.float64)
    data = dict(COLUMNS)
    data[column] = pa.array(values, mask=np.arange(N) == BAD_ROW) if value is None else \
        np.where(np.arange(N) == BAD_ROW, value, values)
    return table(data)


ERROR_KINDS = ["reader", "table", "duckdb_table", "polars", "polars_lazy"]


@pytest.mark.parametrize("kind", ERROR_KINDS)
@pytest.mark.parametrize("column, value, error", [
    ("score", None, rf"^column 'score' has a missing value \(null\) at row {BAD_ROW};"),
    ("label", None, rf"^column 'label' has a missing value \(null\) at row {BAD_ROW};"),
    ("weight", None, rf"^column 'weight' has a missing value \(null\) at row {BAD_ROW};"),
    ("score", np.nan, rf"^column 'score', row {BAD_ROW} = nan: probabilities must be in \[0, 1\]"),
    ("score", np.inf, rf"^column 'score', row {BAD_ROW} = inf: probabilities must be in \[0, 1\]"),
    ("label", np.nan, rf"^column 'label', row {BAD_ROW} = nan:"),
    ("weight", -np.inf, rf"^column 'weight', row {BAD_ROW} = -inf:"),
])
def test_invalid_values_name_column_row_and_value(kind, column, value, error, tmp_path):
    source = source_of(kind, with_value(column, value), tmp_path)
    with pytest.raises(ValueError, match=error):
        evaluate_file(source, sample_weight="weight", batch_size=BATCH, progress=False)
    assert not reader_threads()


def test_null_groups_name_the_row():
    data = dict(COLUMNS)
    data["region"] = pa.array(COLUMNS["region"], mask=np.arange(N) == BAD_ROW)
    with pytest.raises(ValueError, match=rf"^column 'region' has a missing value \(null\) at row {BAD_ROW};"):
        evaluate_file(table(data), groups="region", batch_size=BATCH)


@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_non_numeric_column_names_its_type_first_row_and_value(kind, tmp_path):
    source = source_of(kind, table(), tmp_path)
    with pytest.raises(TypeError, match=r"^column 'region' is not numeric \(type \w+; the first value "
                                        r"that is not a number is at row 0: '(north|south|east|west|middle)'\)"):
        evaluate_file(source, y_pred="region", batch_size=BATCH, progress=False)
    assert not reader_threads()


def test_numbers_as_text_are_not_numbers():
    data = dict(COLUMNS, score=COLUMNS["score"].astype(str))
    with pytest.raises(TypeError, match=r"^column 'score' is not numeric \(type string; .* at row 0: '0.0'"):
        evaluate_file(table(data))


def test_an_all_null_column_is_a_missing_value():
    data = dict(COLUMNS)
    data["score"] = pa.nulls(N)
    with pytest.raises(ValueError, match=r"^column 'score' has a missing value \(null\) at row 0;"):
        evaluate_file(table(data), batch_size=BATCH)


def reader_threads():
    return [t for t in threading.enumerate() if t.name == "fastbce-evaluate-file-reader"]


def test_an_error_stops_the_reader_thread_and_the_stream():
    pulled = []

    def batches():
        for i, batch in enumerate(with_value("score", -1.0).to_batches(max_chunksize=BATCH)):
            pulled.append(i)
            yield batch

    reader = pa.RecordBatchReader.from_batches(table().schema, batches())
    with pytest.raises(ValueError, match=rf"row {BAD_ROW} = -1.0"):
        evaluate_file(reader, batch_size=BATCH)
    assert not reader_threads()
    assert len(pulled) < N // BATCH  # not read to its end


def test_a_polars_lazy_query_error_stops_the_reader_thread():
    pl = _polars()
    frame = pl.from_arrow(with_value("score", 2.0)).lazy().with_columns(pl.col("score") * 1.0)
    with pytest.raises(ValueError, match=rf"^column 'score', row {BAD_ROW} = 2.0"):
        evaluate_file(frame, batch_size=BATCH)
    assert not reader_threads()


# ---------------------------------------------------------------- arrays through the capsule interface

def _data(n=N):
    return COLUMNS["label"], COLUMNS["score"]


def test_polars_series_in_every_entry_point():
    pl = _polars()
    y, p = _data()
    ys, ps = pl.Series("label", y), pl.Series("score", p)
    assert fastbce.bce(ys, ps) == fastbce.bce(y, p)
    assert np.array_equal(fastbce.bce(ys, ps, reduction="none"), fastbce.bce(y, p, reduction="none"))
    assert np.array_equal(fastbce.bce_grad(ys, ps), fastbce.bce_grad(y, p))
    assert fastbce.metrics.log_loss(ys, ps) == fastbce.metrics.log_loss(y, p)
    assert_reports_close(fastbce.evaluate(ys, ps, bins=8).to_dict(), fastbce.evaluate(y, p, bins=8).to_dict(),
                         rtol=0)


@pytest.mark.parametrize("dtype", ["Int8", "Int32", "Int64", "UInt8", "Float32", "Float64", "Boolean"])
def test_polars_series_of_each_dtype(dtype):
    pl = _polars()
    y, p = _data()
    series = pl.Series("label", y).cast(getattr(pl, dtype))
    expected_labels = y.astype(bool) if dtype == "Boolean" else y.astype(series.to_numpy().dtype)
    assert fastbce.bce(series, p) == fastbce.bce(expected_labels, p)
    array = _api._as_numeric_array(series, "y_true")
    if dtype != "Boolean":  # bit-packed booleans are unpacked (a copy); the rest read in place
        assert np.shares_memory(array, series.to_numpy())


def test_polars_series_null_is_a_missing_value_not_an_invalid_probability():
    pl = _polars()
    y, p = _data()
    score = pl.Series("score", p).scatter([17, 40], None)
    for call in (lambda: fastbce.bce(y, score), lambda: fastbce.evaluate(y, score),
                 lambda: fastbce.bce_grad(y, score), lambda: fastbce.bce_and_grad(y, score)):
        with pytest.raises(ValueError, match=r"^y_pred \(Series 'score'\) has a missing value \(NA/null\) at "
                                             r"row 17 \(the first of 2\): .*fill_null"):
            call()
    with pytest.raises(ValueError, match=r"^y_true has a missing value \(NA/null\) at row 3:"):
        fastbce.bce(pl.Series([True, False, True, None] + [False] * (N - 4)), p)


def test_metrics_polars_series_null_is_a_missing_value():
    pl = _polars()
    y, p = _data()
    score = pl.Series("score", p).scatter([17, 40], None)
    with pytest.raises(ValueError, match=r"^y_pred \(Series 'score'\) has a missing value \(NA/null\) at row 17"):
        fastbce.metrics.log_loss(y, score)


def test_polars_dataframe_is_a_table_and_its_nulls_are_named():
    pl = _polars()
    frame = pl.DataFrame({"a": [0.1, 0.2, 0.3], "b": [0.4, None, 0.6]})
    y = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"^y_pred \(DataFrame column 'b'\) has a missing value "
                                         r"\(NA/null\) at row 1"):
        fastbce.bce(y, frame)
    frame = frame.fill_null(0.5)
    assert np.array_equal(fastbce.bce(y, frame, reduction="none"),
                          fastbce.bce(y, frame.to_numpy(), reduction="none"))


def test_non_numeric_polars_series_is_refused_naming_its_type():
    pl = _polars()
    with pytest.raises(TypeError, match=r"^y_pred \(Series 's'\) has unsupported dtype .*string.* \(Arrow\)"):
        fastbce.bce([0, 1], pl.Series("s", ["a", "b"]))


@pytest.mark.parametrize("wrap", [ArrayOnly, StreamOnly])
def test_capsule_only_objects_are_read_in_place_at_their_offset(wrap):
    y, p = _data()
    sliced = pa.array(p).slice(100, 5000)
    array = _api._as_numeric_array(wrap(sliced), "y_pred")
    assert np.shares_memory(array, sliced.to_numpy())
    assert np.array_equal(array, p[100:5100])
    assert fastbce.bce(wrap(pa.array(y).slice(100, 5000)), wrap(sliced)) == fastbce.bce(y[100:5100], p[100:5100])


@pytest.mark.parametrize("wrap", [ArrayOnly, StreamOnly])
def test_capsule_only_nulls_and_types(wrap):
    with pytest.raises(ValueError, match=r"^y_pred has a missing value \(NA/null\) at row 1:"):
        fastbce.bce([0, 1, 1], wrap(pa.array([0.5, None, 0.5])))
    with pytest.raises(TypeError, match=r"^y_true has unsupported dtype string \(Arrow\)"):
        fastbce.bce(wrap(pa.array(["0", "1"])), [0.5, 0.5])
    labels = wrap(pa.array([True, False, True]))  # bit-packed: unpacked
    assert fastbce.bce(labels, [0.9, 0.2, 0.6]) == fastbce.bce([1, 0, 1], [0.9, 0.2, 0.6])


def test_nanoarrow_arrays():
    na = pytest.importorskip("nanoarrow")
    y, p = _data()
    assert fastbce.bce(na.Array(pa.array(y)), na.Array(pa.array(p))) == fastbce.bce(y, p)
    arrow = pa.array(p)
    assert np.shares_memory(_api._as_numeric_array(na.Array(arrow), "y_pred"), arrow.to_numpy())
    with pytest.raises(ValueError, match=r"^y_pred has a missing value \(NA/null\) at row 1:"):
        fastbce.bce([0, 1, 0], na.Array(pa.array([0.5, None, 0.2])))


def test_without_pyarrow_capsule_objects_fall_back_to_array_or_say_what_is_needed(monkeypatch):
    pl = _polars()
    monkeypatch.setattr(_interop, "_pyarrow_with_capsules", lambda: None)
    y, p = _data()
    assert fastbce.bce(pl.Series(y), pl.Series(p)) == fastbce.bce(y, p)  # through __array__
    with pytest.raises(TypeError, match=r"exports the Arrow PyCapsule interface: reading it needs pyarrow"):
        fastbce.bce(y[:3], ArrayOnly(pa.array(p[:3])))


# ---------------------------------------------------------------- bounded memory

MEMORY_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import pyarrow as pa
    from fastbce._evaluate_io import evaluate_file

    def peak():
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    BATCH = 100_000
    schema = pa.schema([("label", pa.int8()), ("score", pa.float64())])

    def stream(n):
        def batches():
            rng = np.random.default_rng(0)
            for _ in range(n // BATCH):
                score = rng.random(BATCH)
                yield pa.record_batch([(rng.random(BATCH) < score).astype(np.int8), score], schema=schema)
        return pa.RecordBatchReader.from_batches(schema, batches())

    pa.array([0.5]).to_numpy()
    imported = peak()
    evaluate_file(stream(1_000_000), batch_size=BATCH, progress=False)
    after_small = peak()
    report = evaluate_file(stream(20_000_000), batch_size=BATCH, progress=False)
    after_large = peak()
    assert report.n == 20_000_000
    print(imported, after_small, after_large)
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc (Linux)")
def test_stream_memory_does_not_grow_with_its_length(tmp_path):
    """2e7 rows (180 MB of int8 labels and float64 scores) generated batch by batch: the
    peak grows no more than for 1e6 rows, give or take allocator noise."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(_evaluate_io.__file__))),
         os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True,
                            env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    imported, after_small, after_large = map(int, result.stdout.split())
    data_bytes = 20_000_000 * 9
    figures = dict(imported=imported, after_small=after_small, after_large=after_large)
    assert after_small - imported < data_bytes / 4, figures
    assert after_large - after_small < data_bytes / 8, figures
