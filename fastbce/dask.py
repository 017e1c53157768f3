"""Binary cross-entropy and evaluation of Dask collections, computed where the data is.

    >>> import dask.array as da
    >>> import fastbce.dask
    >>> y = da.from_array(labels, chunks=1_000_000)
    >>> p = da.from_array(scores, chunks=1_000_000)
    >>> fastbce.dask.bce(y, p)                   # a float, as fastbce.bce(labels, scores)
    >>> fastbce.dask.evaluate(y, p, bins=100)    # an Evaluation, as fastbce.evaluate(...)

Inputs are Dask arrays (blocks aligned by rechunking the others to the
predictions' chunks; NumPy arrays are wrapped) or Dask DataFrame columns
(``ddf["label"]``, ``ddf["score"]``: Series of one DataFrame, so that their
partitions match).

The compiled kernel runs on each block on the workers and returns a small
partial: ``(loss sum, weight sum, count)`` for :func:`bce`, an
:class:`~fastbce._evaluate.Evaluator` for :func:`evaluate`.  The partials are
combined in block order by one task, so the result does not depend on which
worker finished first: :func:`evaluate` gives exactly what an Evaluator fed the
same blocks in order gives, and :func:`bce` adds the block sums with
``math.fsum`` (correctly rounded, any order).  Both equal the in-memory
:func:`fastbce.bce` / :func:`fastbce.evaluate` within 1e-12 relative.

``compute=False`` returns a ``dask.delayed`` object instead of the result (for
``reduction="none"``, :func:`bce` always returns a lazy Dask collection).
"""
import functools
import math
import re
import warnings

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError:  # pragma: no cover - the tests skip without dask
    raise ImportError("fastbce.dask needs dask: pip install 'dask[array]' "
                      "(and 'dask[dataframe]' for DataFrame columns)") from None

import fastbce

from ._evaluate import Evaluator

__all__ = ["bce", "evaluate"]


# -- lining up blocks -------------------------------------------------------------------------


def _is_frame_like(x):
    """A Dask DataFrame or Series (duck-typed: dask.dataframe may not be installed)."""
    return (not isinstance(x, da.Array) and dask.is_dask_collection(x)
            and hasattr(x, "npartitions") and hasattr(x, "divisions"))


def _aligned_arrays(operands):
    """The operands (name -> array-like, y_pred among them) as Dask arrays with y_pred's chunks."""
    arrays = {name: da.asarray(x) for name, x in operands.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes differ: {listed} (Dask inputs must have the same shape)")
    chunks = arrays["y_pred"].chunks
    return {name: a if a.chunks == chunks else a.rechunk(chunks) for name, a in arrays.items()}


def _aligned_blocks(operands):
    """Blocks of the operands (a dict of name -> collection or None), in order.

    Returns (blocks, places): blocks is a list of dicts {name: Delayed or
    None}, one per block; places[i] is the index of block i's first element
    in the whole array (a tuple), or where unknown (DataFrames, unknown chunk
    sizes) a name for the block ("partition 3"), for error messages.
    """
    present = {name: x for name, x in operands.items() if x is not None}
    frames = [name for name, x in present.items() if _is_frame_like(x)]
    if frames:
        others = [name for name in present if name not in frames]
        if others:
            raise TypeError(f"{', '.join(frames)} are Dask DataFrame columns but "
                            f"{', '.join(others)} not: pass columns of one Dask DataFrame")
        counts = {name: x.npartitions for name, x in present.items()}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{name} {n}" for name, n in counts.items())
            raise ValueError(f"partitions do not line up ({listed} partitions): pass columns of "
                             f"one Dask DataFrame, or repartition them alike")
        known = {name: x.divisions for name, x in present.items() if x.known_divisions}
        if len(known) > 1 and len(set(known.values())) > 1:
            raise ValueError("partitions do not line up (different divisions): pass columns of one "
                             "Dask DataFrame, or repartition them alike")
        parts = {name: x.to_delayed() for name, x in present.items()}
        n = next(iter(counts.values()))
        blocks = [{name: (parts[name][i] if name in parts else None) for name in operands}
                  for i in range(n)]
        return blocks, [f"partition {i}" for i in range(n)]

    arrays = _aligned_arrays(present)
    reference = arrays["y_pred"]
    parts = {name: a.to_delayed().ravel() for name, a in arrays.items()}
    n = len(parts["y_pred"])
    blocks = [{name: (parts[name][i] if name in parts else None) for name in operands}
              for i in range(n)]
    if any(math.isnan(size) for sizes in reference.chunks for size in sizes):
        return blocks, [f"block {index}" for index in np.ndindex(*reference.numblocks)]
    starts = [np.cumsum((0,) + sizes[:-1]) for sizes in reference.chunks]
    return blocks, [tuple(int(starts[axis][i]) for axis, i in enumerate(index))
                    for index in np.ndindex(*reference.numblocks)]


def _values(block):
    """A block as an array: NumPy as it is, pandas through to_numpy() (no copy where it can)."""
    if block is None or isinstance(block, np.ndarray):
        return block
    if hasattr(block, "columns"):  # a one-column pandas DataFrame
        if len(block.columns) != 1:
            raise ValueError(f"expected a column (Series), got a DataFrame with columns {list(block.columns)}")
        block = block.iloc[:, 0]
    return block.to_numpy() if hasattr(block, "to_numpy") else np.asarray(block)


_INVALID_ELEMENT = re.compile(r"^(y_true|y_pred|sample_weight|pos_weight)\[([\d, ]+)\] = (.*)$", re.DOTALL)


def _in_whole_terms(error, place):
    """A block's 'y_pred[12] = nan: ...' with the index in the whole array (or the block named)."""
    match = _INVALID_ELEMENT.match(str(error))
    if match is not None and isinstance(place, tuple):
        name, index, rest = match.groups()
        index = [int(i) for i in index.split(",")]
        if len(index) == len(place):
            whole = ", ".join(str(start + i) for start, i in zip(place, index))
            return ValueError(f"{name}[{whole}] = {rest}")
    return ValueError(f"in {place}: {error}")


# -- evaluate ---------------------------------------------------------------------------------


def _evaluate_block(options, place, y_true, y_pred, sample_weight, groups):
    """One block's Evaluator (runs on a worker)."""
    evaluator = Evaluator(**options)
    try:
        evaluator.update(_values(y_true), _values(y_pred), sample_weight=_values(sample_weight),
                         groups=_values(groups))
    except ValueError as error:
        raise _in_whole_terms(error, place) from None
    return evaluator


def _merge_in_order(options, partials):
    """The blocks' Evaluators merged in block order (one task: the order is fixed)."""
    total = Evaluator(**options)
    for partial in partials:
        total.merge(partial)
    return total


def _result(evaluator):
    return evaluator.result()


def evaluate(y_true, y_pred, *, sample_weight=None, groups=None, compute=True, **evaluate_kw):
    """:func:`fastbce.evaluate` on Dask arrays or Dask DataFrame columns.

    Each block is evaluated on the worker that holds it (an Evaluator per
    block); the partial Evaluators are merged in block order.  The result
    equals ``fastbce.evaluate`` on the whole arrays in memory (within 1e-12
    relative) and is the same, bit for bit, on every run and every cluster.

    Parameters
    ----------
    y_true, y_pred, sample_weight, groups
        Dask arrays of one shape (others are rechunked to y_pred's chunks;
        NumPy arrays are wrapped), or Dask Series whose partitions line up
        (columns of one Dask DataFrame).
    compute : bool
        False: return a ``dask.delayed`` object that computes the Evaluation.
    **evaluate_kw
        The other keywords of :func:`fastbce.evaluate`: ``from_logits``,
        ``threshold``, ``class_weight``, ``pos_weight``, ``eps``, ``bins``,
        ``num_threads`` (threads per block on the worker).
    """
    if evaluate_kw.get("pos_weight") is not None and np.ndim(evaluate_kw["pos_weight"]) != 0:
        raise ValueError("pos_weight must be a number for fastbce.dask.evaluate (one for every element)")
    Evaluator(**evaluate_kw)  # bad keywords fail here, not on a worker
    blocks, offsets = _aligned_blocks({"y_true": y_true, "y_pred": y_pred,
                                       "sample_weight": sample_weight, "groups": groups})
    block_task = dask.delayed(_evaluate_block, pure=True)
    partials = [block_task(evaluate_kw, place, block["y_true"], block["y_pred"],
                           block["sample_weight"], block["groups"])
                for block, place in zip(blocks, offsets)]
    merged = dask.delayed(_merge_in_order, pure=True)(evaluate_kw, partials)
    if not compute:
        return dask.delayed(_result, pure=True)(merged)
    # the report is made here, so that its warnings (empty input) reach the caller
    return merged.compute().result()


# -- bce --------------------------------------------------------------------------------------


def _bce_block(options, place, y_true, y_pred, sample_weight, pos_weight):
    """(sum of the weighted losses, sum of the weights, count) of one block (runs on a worker)."""
    y_true, y_pred = _values(y_true), _values(y_pred)
    sample_weight, pos_weight = _values(sample_weight), _values(pos_weight)
    if pos_weight is None:
        pos_weight = options.get("pos_weight")
    keywords = {k: v for k, v in options.items() if k != "pos_weight"}
    try:
        loss_sum = fastbce.bce(y_true, y_pred, reduction="sum", sample_weight=sample_weight,
                               pos_weight=pos_weight, **keywords)
    except ValueError as error:
        raise _in_whole_terms(error, place) from None
    count = int(np.size(y_pred))
    weight_sum = float(count) if sample_weight is None else float(np.sum(sample_weight, dtype=np.float64))
    return loss_sum, weight_sum, count


def _combine_sums(partials):
    """The blocks' partial sums added up (math.fsum: correctly rounded, in any order)."""
    return (math.fsum(p[0] for p in partials), math.fsum(p[1] for p in partials),
            sum(p[2] for p in partials))


def _reduced_loss(reduction, totals):
    """The loss from the total (loss sum, weight sum, count)."""
    loss_sum, weight_sum, count = totals
    if reduction == "sum":
        return loss_sum
    if count == 0 or weight_sum == 0:
        what = "empty input" if count == 0 else "sum of sample_weight is zero"
        warnings.warn(f"mean of {what}: the result is nan", RuntimeWarning, stacklevel=2)
        return math.nan
    return loss_sum / weight_sum


def _bce_none_block(options, y_true, y_pred, sample_weight, pos_weight):
    options = dict(options)
    if pos_weight is None:
        pos_weight = options.pop("pos_weight", None)
    return fastbce.bce(y_true, y_pred, reduction="none", sample_weight=sample_weight,
                       pos_weight=pos_weight, **options)


def _bce_none_named_blocks(options, names, *blocks):
    """_bce_none_block on the blocks of the operands named (da.map_blocks passes them in order)."""
    operands = dict.fromkeys(("y_true", "y_pred", "sample_weight", "pos_weight"))
    operands.update(zip(names, blocks))
    return _bce_none_block(options, **operands)


def _bce_none_partition(y_pred, y_true, sample_weight, pos_weight, options):
    import pandas as pd
    values = _bce_none_block(options, _values(y_true), _values(y_pred), _values(sample_weight),
                             _values(pos_weight))
    return pd.Series(values, index=y_pred.index, name=getattr(y_pred, "name", None))


def bce(y_true, y_pred, *, reduction="mean", sample_weight=None, pos_weight=None, compute=True,
        **bce_kw):
    """:func:`fastbce.bce` on Dask arrays or Dask DataFrame columns.

    ``reduction="mean"`` (default) or ``"sum"``: each block's weighted loss
    sum and weight sum are computed on its worker, then added with
    ``math.fsum``; a float, equal to ``fastbce.bce`` on the whole arrays
    within 1e-12 relative (the same on every run).  ``reduction="none"``: a
    lazy Dask array (or Series) of element-wise losses.

    ``pos_weight`` is a number or a collection like the others; the other
    keywords (``from_logits``, ``label_smoothing``, ``eps``, ``num_threads``)
    are those of :func:`fastbce.bce`.  ``compute=False`` returns a
    ``dask.delayed`` object for a reduced loss.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be one of ('mean', 'sum', 'none'), got {reduction!r}")
    # a number goes to every block with the keywords; a collection is split like the others
    per_element = pos_weight is not None and (dask.is_dask_collection(pos_weight) or np.ndim(pos_weight) > 0)
    options = dict(bce_kw)
    if pos_weight is not None and not per_element:
        options["pos_weight"] = pos_weight
    # bad keywords fail here rather than on a worker
    fastbce.bce(np.zeros(0), np.zeros(0), reduction="sum", **options)
    operands = {"y_true": y_true, "y_pred": y_pred, "sample_weight": sample_weight,
                "pos_weight": pos_weight if per_element else None}

    if reduction == "none":
        if _is_frame_like(y_pred):
            _aligned_blocks(operands)  # the same checks as reduced
            dtype = np.float32 if getattr(y_pred, "dtype", None) == np.float32 else np.float64
            return y_pred.map_partitions(_bce_none_partition, y_true, sample_weight,
                                         operands["pos_weight"], options,
                                         meta=(getattr(y_pred, "name", None), dtype))
        arrays = _aligned_arrays({name: x for name, x in operands.items() if x is not None})
        dtype = np.float32 if arrays["y_pred"].dtype == np.float32 else np.float64
        return da.map_blocks(functools.partial(_bce_none_named_blocks, options, tuple(arrays)),
                             *arrays.values(), dtype=dtype)

    blocks, offsets = _aligned_blocks(operands)
    block_task = dask.delayed(_bce_block, pure=True)
    partials = [block_task(options, place, block["y_true"], block["y_pred"],
                           block["sample_weight"], block["pos_weight"])
                for block, place in zip(blocks, offsets)]
    totals = dask.delayed(_combine_sums, pure=True)(partials)
    if not compute:
        return dask.delayed(_reduced_loss, pure=True)(reduction, totals)
    # reduced here, so that the warning of an empty mean reaches the caller
    return _reduced_loss(reduction, totals.compute())
