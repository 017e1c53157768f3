"""fastbce.dask: bce and evaluate of Dask arrays and Dask DataFrame columns (issue #5 item 5).

On a real distributed.LocalCluster of 2 worker processes: the kernel runs on
each block on the workers, the partials are combined in block order, and the
result equals the in-memory one (1e-12 relative); evaluate equals, bit for
bit, an Evaluator fed the same blocks in order.
"""
import math
import os
import warnings

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
# (ImportError too: a distributed release that does not match the installed dask)
distributed = pytest.importorskip("distributed", exc_type=ImportError)

import fastbce  # noqa: E402
import fastbce.dask as fdask  # noqa: E402
from fastbce._evaluate import Evaluator, evaluate  # noqa: E402

try:
    import dask.dataframe as dd
    import pandas as pd
except ImportError:
    dd = pd = None

needs_dataframe = pytest.mark.skipif(dd is None, reason="dask.dataframe / pandas not installed")

RTOL = 1e-12
N = 30_011
CHUNK = 4_000


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes (one thread each), for the whole module."""
    # the workers import fastbce from this checkout, as the test process does
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastbce.__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def make_data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int8)
    logit = rng.normal(0.0, 2.0, n) + 1.5 * y
    p = 1.0 / (1.0 + np.exp(-logit))
    w = rng.random(n) * 2.0
    g = rng.integers(0, 6, n)
    return dict(y=y, p=p, logit=logit, w=w, g=g, names=np.array(list("abcdef"))[g])


DATA = make_data()


def arrays(*names, chunks=CHUNK):
    return [da.from_array(DATA[name], chunks=chunks) for name in names]


def assert_reports_close(actual, expected, rtol=RTOL, path="report"):
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), path
        for key in expected:
            assert_reports_close(actual[key], expected[key], rtol, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_reports_close(a, e, rtol, f"{path}[{i}]")
    elif isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual), path
        else:
            assert abs(actual - expected) <= rtol * abs(expected), (path, actual, expected)
    else:
        assert actual == expected, (path, actual, expected)


def test_runs_on_the_cluster(client):
    assert len(client.scheduler_info()["workers"]) == 2
    assert distributed.get_client() is client
    y, p = arrays("y", "p")
    fdask.bce(y, p)
    fdask.evaluate(y, p)
    prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "bce_block" in prefixes and "evaluate_block" in prefixes, prefixes


# ---------------------------------------------------------------- bce

@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("keywords", [
    {}, {"sample_weight": "w"}, {"pos_weight": 2.5}, {"label_smoothing": 0.1, "eps": 1e-3},
    {"from_logits": True}, {"pos_weight": "w"},
])
def test_bce_of_dask_arrays_equals_in_memory(client, reduction, keywords):
    from_logits = keywords.get("from_logits", False)
    y, p = arrays("y", "logit" if from_logits else "p")
    dask_kw = {k: (da.from_array(DATA[v] + 0.5, chunks=3_000) if k == "pos_weight" and v == "w"
                   else da.from_array(DATA[v], chunks=CHUNK) if v == "w" else v)
               for k, v in keywords.items()}
    numpy_kw = {k: (DATA[v] + 0.5 if k == "pos_weight" and v == "w" else DATA[v] if v == "w" else v)
                for k, v in keywords.items()}
    expected = fastbce.bce(DATA["y"], DATA["logit" if from_logits else "p"], reduction=reduction, **numpy_kw)
    actual = fdask.bce(y, p, reduction=reduction, **dask_kw)
    assert type(actual) is float
    assert abs(actual - expected) <= RTOL * abs(expected)


def test_bce_is_the_same_for_every_chunking(client):
    expected = fastbce.bce(DATA["y"], DATA["p"], sample_weight=DATA["w"])
    for chunks in (1_000, 7_777, N):
        y, p, w = arrays("y", "p", "w", chunks=chunks)
        assert abs(fdask.bce(y, p, sample_weight=w) - expected) <= RTOL * expected


def test_bce_aligns_differently_chunked_inputs(client):
    y = da.from_array(DATA["y"], chunks=3_001)
    p = da.from_array(DATA["p"], chunks=5_000)
    assert abs(fdask.bce(y, p) - fastbce.bce(DATA["y"], DATA["p"])) <= RTOL * fastbce.bce(DATA["y"], DATA["p"])


def test_bce_elementwise_is_a_lazy_dask_array(client):
    y, p = arrays("y", "p")
    losses = fdask.bce(y, p, reduction="none", pos_weight=2.0)
    assert isinstance(losses, da.Array)
    np.testing.assert_array_equal(losses.compute(), fastbce.bce(DATA["y"], DATA["p"], reduction="none",
                                                               pos_weight=2.0))


def test_bce_compute_false_is_delayed(client):
    y, p = arrays("y", "p")
    lazy = fdask.bce(y, p, compute=False)
    assert dask.is_dask_collection(lazy)
    assert lazy.compute() == fdask.bce(y, p)


def test_bce_invalid_value_names_the_index_in_the_whole_array(client):
    p = DATA["p"].copy()
    p[12_345] = np.nan
    with pytest.raises(ValueError, match=r"y_pred\[12345\] = nan"):
        fdask.bce(da.from_array(DATA["y"], chunks=CHUNK), da.from_array(p, chunks=CHUNK))


def test_two_dimensional_arrays(client):
    y = DATA["y"][:30_000].reshape(300, 100)
    p = DATA["p"][:30_000].reshape(300, 100).copy()
    y_dask, p_dask = da.from_array(y, chunks=(70, 30)), da.from_array(p, chunks=(100, 25))
    expected = fastbce.bce(y, p)
    assert abs(fdask.bce(y_dask, p_dask) - expected) <= RTOL * expected
    assert_reports_close(fdask.evaluate(y_dask, p_dask, bins=8).to_dict(), evaluate(y, p, bins=8).to_dict())
    p[210, 37] = -0.5
    with pytest.raises(ValueError, match=r"y_pred\[210, 37\] = -0.5"):
        fdask.bce(y_dask, da.from_array(p, chunks=(100, 25)))


def test_bce_bad_keywords_fail_before_computing():
    y, p = arrays("y", "p")
    with pytest.raises(ValueError, match="reduction"):
        fdask.bce(y, p, reduction="median")
    with pytest.raises(ValueError, match="label_smoothing"):
        fdask.bce(y, p, label_smoothing=1.5)
    with pytest.raises(ValueError, match="shapes differ"):
        fdask.bce(y, p[:-1])


def test_bce_mean_of_empty_input_warns(client):
    empty = da.zeros(0, chunks=1)
    with pytest.warns(RuntimeWarning, match="empty input"):
        assert math.isnan(fdask.bce(empty, empty))
    assert fdask.bce(empty, empty, reduction="sum") == 0.0


# ---------------------------------------------------------------- evaluate

@pytest.mark.parametrize("keywords", [
    {}, {"bins": 20}, {"from_logits": True, "threshold": 0.3, "bins": 10},
    {"class_weight": "balanced", "pos_weight": 2.0, "bins": 7},
])
def test_evaluate_of_dask_arrays_equals_in_memory(client, keywords):
    pred = "logit" if keywords.get("from_logits") else "p"
    y, p, w, g = arrays("y", pred, "w", "g")
    actual = fdask.evaluate(y, p, sample_weight=w, groups=g, **keywords)
    expected = evaluate(DATA["y"], DATA[pred], sample_weight=DATA["w"], groups=DATA["g"], **keywords)
    assert_reports_close(actual.to_dict(), expected.to_dict())


def test_evaluate_is_bit_identical_to_an_evaluator_fed_the_blocks_in_order(client):
    y, p, w, g = arrays("y", "p", "w", "names", chunks=3_333)
    actual = fdask.evaluate(y, p, sample_weight=w, groups=g, bins=16)
    evaluator = Evaluator(bins=16)
    for start in range(0, N, 3_333):
        part = slice(start, start + 3_333)
        evaluator.update(DATA["y"][part], DATA["p"][part], sample_weight=DATA["w"][part],
                         groups=DATA["names"][part])
    assert_reports_close(actual.to_dict(), evaluator.result().to_dict(), rtol=0.0)
    # and the same on every run
    again = fdask.evaluate(y, p, sample_weight=w, groups=g, bins=16)
    assert_reports_close(again.to_dict(), actual.to_dict(), rtol=0.0)


def test_evaluate_for_any_chunking_is_within_rounding(client):
    expected = evaluate(DATA["y"], DATA["p"], bins=32).to_dict()
    for chunks in (997, 10_000):
        y, p = arrays("y", "p", chunks=chunks)
        assert_reports_close(fdask.evaluate(y, p, bins=32).to_dict(), expected)


def test_evaluate_invalid_value_names_the_index_in_the_whole_array(client):
    y = DATA["y"].astype(np.float64)
    y[23_456] = 2.0
    with pytest.raises(ValueError, match=r"y_true\[23456\] = 2.0"):
        fdask.evaluate(da.from_array(y, chunks=CHUNK), arrays("p")[0])


def test_evaluate_bad_keywords_fail_before_computing():
    y, p = arrays("y", "p")
    with pytest.raises(ValueError, match="threshold"):
        fdask.evaluate(y, p, threshold=1.5)
    with pytest.raises(ValueError, match="pos_weight must be a number"):
        fdask.evaluate(y, p, pos_weight=np.ones(N))


def test_evaluate_compute_false_is_delayed(client):
    y, p = arrays("y", "p")
    lazy = fdask.evaluate(y, p, compute=False)
    assert dask.is_dask_collection(lazy)
    assert lazy.compute().log_loss == fdask.evaluate(y, p).log_loss


# ---------------------------------------------------------------- DataFrame columns

@pytest.fixture(scope="module")
def frame():
    if dd is None:
        pytest.skip("dask.dataframe / pandas not installed")
    table = pd.DataFrame({"label": DATA["y"], "score": DATA["p"], "weight": DATA["w"],
                          "region": DATA["names"]})
    return dd.from_pandas(table, npartitions=7)


@needs_dataframe
def test_evaluate_of_dataframe_columns_equals_in_memory(client, frame):
    actual = fdask.evaluate(frame["label"], frame["score"], sample_weight=frame["weight"],
                            groups=frame["region"], bins=12)
    expected = evaluate(DATA["y"], DATA["p"], sample_weight=DATA["w"], groups=DATA["names"], bins=12)
    assert_reports_close(actual.to_dict(), expected.to_dict())
    assert list(actual.groups) == list("abcdef")


@needs_dataframe
def test_bce_of_dataframe_columns_equals_in_memory(client, frame):
    expected = fastbce.bce(DATA["y"], DATA["p"], sample_weight=DATA["w"], pos_weight=1.5)
    actual = fdask.bce(frame["label"], frame["score"], sample_weight=frame["weight"], pos_weight=1.5)
    assert abs(actual - expected) <= RTOL * expected
    losses = fdask.bce(frame["label"], frame["score"], reduction="none").compute()
    np.testing.assert_array_equal(losses.to_numpy(), fastbce.bce(DATA["y"], DATA["p"], reduction="none"))


@needs_dataframe
def test_dataframe_columns_that_do_not_line_up(frame):
    other = dd.from_pandas(pd.Series(DATA["p"]), npartitions=3)
    with pytest.raises(ValueError, match="partitions do not line up"):
        fdask.bce(frame["label"], other)
    with pytest.raises(TypeError, match="pass columns of one Dask DataFrame"):
        fdask.bce(frame["label"], arrays("p")[0])


@needs_dataframe
def test_dataframe_invalid_value_names_the_partition(client, frame):
    bad = frame["score"].map_partitions(lambda s: s.where(s.index != 20_000, np.nan),
                                        meta=frame["score"]._meta)
    with pytest.raises(ValueError, match=r"in partition \d+: y_pred\[\d+\] = nan"):
        fdask.bce(frame["label"], bad)


def test_without_a_cluster_the_local_scheduler_gives_the_same():
    with dask.config.set(scheduler="sync"):
        y, p = arrays("y", "p")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            expected = fastbce.bce(DATA["y"], DATA["p"])
            assert abs(fdask.bce(y, p) - expected) <= RTOL * expected
