"""Evaluate predictions stored in a file, streamed in batches: bounded memory.

:func:`evaluate_file` reads only the columns it needs, a batch of rows at a
time, and feeds each batch to an :class:`~fastbce._evaluate.Evaluator`; the
result is the one :func:`~fastbce._evaluate.evaluate` gives on the whole
columns in memory (within 1e-12 relative, whatever the batch size).

Sources (the format is told by the path, or by ``format=``):

- Parquet (``.parquet``, ``.pq``, ``.parq``): ``ParquetFile.iter_batches`` on
  the needed columns; a column without nulls becomes a NumPy array without a
  copy.
- CSV (``.csv``, ``.tsv``, also compressed: ``.csv.gz``, ``.csv.bz2``,
  ``.csv.zst``...): pyarrow's streaming CSV reader, converting only the needed
  columns; label, prediction and weight columns are parsed as float64.
- NumPy columns: a directory holding one ``.npy`` file per column (the column
  is named by the file's stem: ``label.npy`` is column ``"label"``), or a
  mapping ``{column name: path to a .npy file or an array}``.  Each file is
  memory-mapped (``numpy.load(mmap_mode="r")``) and read in slices.
- Arrow streams, in place of a path: any object with ``__arrow_c_stream__``
  (the Arrow PyCapsule interface: a pyarrow ``RecordBatchReader`` or
  ``Table``, a DuckDB relation, a Polars ``DataFrame``, a pandas DataFrame),
  a ``pyarrow.dataset`` ``Dataset`` or ``Scanner``, and a Polars
  ``LazyFrame`` (run by Polars' streaming engine, ``collect_batches``:
  Polars 1.33 or newer). Read batch by batch through
  ``pyarrow.RecordBatchReader`` (pyarrow 15 or newer), never whole: the
  needed columns are selected first where the producer can do it (pyarrow,
  DuckDB, Polars), and a stream is read once.

Memory: a few batches of the needed columns (``batch_size`` rows: the one
being evaluated and the one read ahead), plus what the reader buffers (for
Parquet, 1 MiB per column at a time; for CSV, a 4 MiB block per thread).
Measured on a 2-core box (1e8 rows, int8 label + float64 score, 840 MB of
Parquet): peak RSS 196 MB, of which about 110 MB is Python, NumPy, pyarrow and
the pandas that pyarrow imports; a file 16x larger adds nothing.

Speed: Parquet and CSV batches are read on a background thread while the
kernel evaluates the previous one, on one thread by default (it outruns the
decoding; a team of OpenMP threads spinning between batches would take the
cores pyarrow decodes on).  Measured there: 1.7x the time of reading the two
columns with pyarrow alone (Parquet), 1.1x (CSV).

Rows are numbered from 0 in the order of the file (of the whole stream), not
counting a CSV header; errors that concern one row name it so.
"""
import errno
import os
import re
import sys

import numpy as np

from ._evaluate import Evaluator

__all__ = ["evaluate_file"]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv")
# compressed CSV: pyarrow tells the codec from the last extension
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4", ".br")
FORMATS = ("parquet", "csv", "npy")
# CSV: bytes of text that pyarrow parses at once (its default is 1 MiB); a
# block is also the most that the reader holds in memory, times its threads
CSV_BLOCK_SIZE = 1 << 22

# Parquet: read column chunks through a buffer of this size instead of whole,
# so that a file written as one huge row group does not need its column chunk
# in memory at once.
PARQUET_BUFFER_SIZE = 1 << 20


def _file_not_found(path):
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))


def _require_pyarrow(what):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError(f"reading {what} files needs pyarrow (pip install pyarrow)") from None


def _missing_columns_error(missing, available, where):
    names = ", ".join(repr(name) for name in missing)
    listed = ", ".join(repr(name) for name in available) or "none"
    plural = "s" if len(missing) > 1 else ""
    return ValueError(f"no column{plural} {names} in {where}; its columns are: {listed}")


def _null_error(column, row):
    return ValueError(f"column {column!r} has a missing value (null) at row {row}; "
                      f"fill or drop missing values first")


def _not_numeric_error(column, type_name, row=None, value=None):
    where = "" if row is None else f"; the first value that is not a number is at row {row}: {value!r}"
    return TypeError(f"column {column!r} is not numeric (type {type_name}{where}): labels, "
                     f"predictions and weights must be bool, integer or floating-point numbers")


# -- Arrow -> NumPy -------------------------------------------------------------------------


def _arrow_is_numeric(type_):
    import pyarrow as pa
    return (pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_boolean(type_)
            or pa.types.is_decimal(type_))


def _arrow_to_numpy(array, column, first_row):
    """One Arrow array as a NumPy array: without a copy for integers and floats (no nulls)."""
    import pyarrow as pa
    if array.null_count:
        first_null = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise _null_error(column, first_row + first_null)
    type_ = array.type
    if pa.types.is_dictionary(type_):
        try:
            array = array.dictionary_decode()
        except pa.ArrowNotImplementedError:  # e.g. string_view values (Polars' Categorical)
            values = array.dictionary.to_numpy(zero_copy_only=False)
            return values[array.indices.to_numpy(zero_copy_only=False)]
        type_ = array.type
    if pa.types.is_decimal(type_):
        array = array.cast(pa.float64())
        type_ = array.type
    # integers and floats are read in place; bool (bit-packed), strings and
    # the like need a copy
    zero_copy = pa.types.is_integer(type_) or pa.types.is_floating(type_)
    return array.to_numpy(zero_copy_only=zero_copy)


# -- sources ---------------------------------------------------------------------------------


class _Source:
    """A table of columns read in batches of rows.

    Subclasses set `columns` (the names available), `num_rows` (None when
    unknown before reading) and `description`, and implement `_numeric_check`
    and `batches`.
    """

    description = "the file"
    columns = ()
    num_rows = None

    def check(self, value_columns, other_columns):
        """Errors for missing columns, and non-numeric value columns, before reading."""
        needed = list(dict.fromkeys(value_columns + other_columns))
        missing = [name for name in needed if name not in self.columns]
        if missing:
            raise _missing_columns_error(missing, self.columns, self.description)
        for name in dict.fromkeys(value_columns):
            self._numeric_check(name)

    def _numeric_check(self, name):
        raise NotImplementedError

    def close(self):
        """Release what the source holds open (a stream), when reading stops early or never starts."""

    def batches(self, value_columns, other_columns, batch_size):
        """Yield (first row, {column: ndarray}) for consecutive batches of rows."""
        raise NotImplementedError


class _ParquetSource(_Source):
    def __init__(self, path):
        _require_pyarrow("Parquet")
        import pyarrow as pa
        import pyarrow.parquet as pq
        self.path = path
        self.description = f"Parquet file {str(path)!r}"
        try:
            self.file = pq.ParquetFile(path, buffer_size=PARQUET_BUFFER_SIZE, pre_buffer=False)
        except pa.ArrowInvalid as error:
            raise ValueError(f"cannot read {self.description}: {error}") from None
        self.schema = self.file.schema_arrow
        self.columns = list(self.schema.names)
        self.num_rows = self.file.metadata.num_rows

    def _numeric_check(self, name):
        import pyarrow as pa
        type_ = self.schema.field(name).type
        value_type = type_.value_type if pa.types.is_dictionary(type_) else type_
        if pa.types.is_null(type_):
            if self.num_rows:
                raise _null_error(name, 0)
        elif not _arrow_is_numeric(value_type):
            raise _not_numeric_error(name, type_)

    def batches(self, value_columns, other_columns, batch_size):
        needed = list(dict.fromkeys(value_columns + other_columns))
        first_row = 0
        for batch in self.file.iter_batches(batch_size=batch_size, columns=needed):
            yield first_row, {name: _arrow_to_numpy(batch.column(name), name, first_row)
                              for name in needed}
            first_row += batch.num_rows


class _StringGroupsNeeded(Exception):
    """The CSV groups column changed type after its first block: read it again as strings."""


class _CsvSource(_Source):
    def __init__(self, path, delimiter=None, groups_as_string=False):
        _require_pyarrow("CSV")
        import pyarrow as pa
        import pyarrow.csv as pa_csv
        self.path = path
        self.description = f"CSV file {str(path)!r}"
        name = os.path.basename(str(path)).lower()
        for suffix in COMPRESSION_SUFFIXES:
            if name.endswith(suffix):
                name = name[:-len(suffix)]
        if delimiter is None:
            delimiter = "\t" if name.endswith(".tsv") else ","
        self.parse_options = pa_csv.ParseOptions(delimiter=delimiter)
        self.read_options = pa_csv.ReadOptions(block_size=CSV_BLOCK_SIZE)
        self.groups_as_string = groups_as_string
        # the header and the types pyarrow infers from the first block
        try:
            reader = pa_csv.open_csv(path, read_options=self.read_options, parse_options=self.parse_options)
        except pa.ArrowInvalid as error:
            raise ValueError(f"cannot read {self.description}: {error}") from None
        try:
            self.inferred = reader.schema
        finally:
            reader.close()
        self.columns = list(self.inferred.names)

    def _numeric_check(self, name):
        # a column that the first block shows as text is not numbers; later
        # blocks are checked as they are converted (see _conversion_error)
        type_ = self.inferred.field(name).type
        import pyarrow as pa
        if not _arrow_is_numeric(type_) and not pa.types.is_null(type_):
            raise _not_numeric_error(name, type_, *self._first_non_number(name))

    def _open(self, value_columns, other_columns, string_columns=()):
        import pyarrow as pa
        import pyarrow.csv as pa_csv
        needed = list(dict.fromkeys(value_columns + other_columns))
        # labels, predictions and weights are parsed as float64 in every block:
        # inferring from the first block could make a column int64 that has
        # fractions further down
        column_types = {name: pa.float64() for name in value_columns}
        column_types.update({name: pa.string() for name in string_columns})
        convert = pa_csv.ConvertOptions(include_columns=needed, column_types=column_types,
                                        strings_can_be_null=True)
        return pa_csv.open_csv(self.path, read_options=self.read_options,
                               parse_options=self.parse_options, convert_options=convert)

    def _first_non_number(self, name):
        """(row, text) of the first value of `name` that does not parse as a float, or (None, None)."""
        import pyarrow as pa
        import pyarrow.compute as pc
        first_row = 0
        for batch in self._open([], [name], string_columns=[name]):
            texts = batch.column(0)
            try:
                pc.cast(texts, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                # bisect for the first prefix that does not convert
                good, bad = 0, len(texts)
                while bad - good > 1:
                    middle = (good + bad) // 2
                    try:
                        pc.cast(texts.slice(0, middle), pa.float64())
                        good = middle
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        bad = middle
                return first_row + bad - 1, texts[bad - 1].as_py()
            first_row += batch.num_rows
        return None, None

    def _conversion_error(self, error, value_columns, groups_column):
        """The error to raise for a conversion failure in some block of the CSV."""
        for name in dict.fromkeys(value_columns):
            row, value = self._first_non_number(name)
            if row is not None:
                return _not_numeric_error(name, "string", row, value)
        if groups_column is not None and not self.groups_as_string:
            return _StringGroupsNeeded()
        return ValueError(f"cannot read {self.description}: {error}")

    def batches(self, value_columns, other_columns, batch_size):
        import pyarrow as pa
        groups_column = other_columns[0] if other_columns else None
        string_columns = [groups_column] if self.groups_as_string and groups_column else []
        needed = list(dict.fromkeys(value_columns + other_columns))
        reader = self._open(value_columns, other_columns, string_columns)
        first_row = 0
        while True:
            try:
                block = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as error:
                raise self._conversion_error(error, value_columns, groups_column) from None
            # a block is what pyarrow parses at once (block_size bytes of
            # text); longer ones are cut, shorter ones are not combined
            for start in range(0, block.num_rows, batch_size):
                piece = block.slice(start, batch_size)
                yield first_row, {name: _arrow_to_numpy(piece.column(name), name, first_row)
                                  for name in needed}
                first_row += piece.num_rows


class _NpySource(_Source):
    def __init__(self, columns, description):
        self.arrays = {}
        for name, value in columns.items():
            if isinstance(value, np.ndarray):
                array = value
            else:
                if not os.path.isfile(value):
                    raise _file_not_found(value)
                array = np.load(value, mmap_mode="r", allow_pickle=False)
            self.arrays[str(name)] = array
        self.description = description
        self.columns = list(self.arrays)
        self.num_rows = None

    def check(self, value_columns, other_columns):
        super().check(value_columns, other_columns)
        needed = list(dict.fromkeys(value_columns + other_columns))
        for name in needed:
            if self.arrays[name].ndim != 1:
                raise ValueError(f"column {name!r} of {self.description} has shape "
                                 f"{self.arrays[name].shape}: expected one dimension")
        lengths = {name: len(self.arrays[name]) for name in needed}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name!r} {length}" for name, length in lengths.items())
            raise ValueError(f"columns of {self.description} differ in length: {listed}")
        self.num_rows = next(iter(lengths.values()))

    def _numeric_check(self, name):
        dtype = self.arrays[name].dtype
        if dtype.kind not in "biuf":
            raise _not_numeric_error(name, dtype)

    def batches(self, value_columns, other_columns, batch_size):
        needed = list(dict.fromkeys(value_columns + other_columns))
        for start in range(0, self.num_rows, batch_size):
            yield start, {name: self.arrays[name][start:start + batch_size] for name in needed}


class _ArrowStreamSource(_Source):
    """An object exporting an Arrow stream of record batches (``__arrow_c_stream__``),
    a pyarrow Dataset or Scanner, or a Polars LazyFrame: read batch by batch,
    never whole.

    The needed columns are selected before reading where the producer can do
    it (pyarrow Table, Dataset and Scanner, DuckDB relation, Polars
    DataFrame and LazyFrame); other streams are read with all their columns,
    and the unneeded ones dropped batch by batch. A stream is read once.
    """

    def __init__(self, obj, kind):
        _require_pyarrow_streams()
        import pyarrow as pa
        self.obj = obj
        self.kind = kind
        self.reader = None
        self.description = f"the {type(obj).__name__} stream"
        if kind == "reader":
            self.reader = obj
            self.schema = obj.schema
        elif kind == "table":
            self.schema = obj.schema
            self.num_rows = obj.num_rows
        elif kind == "dataset":
            self.schema = obj.schema
        elif kind == "scanner":
            self.schema = obj.projected_schema
        elif kind == "duckdb":
            self.schema = pa.RecordBatchReader.from_stream(obj.limit(0)).schema
        elif kind == "polars":
            self.schema = pa.RecordBatchReader.from_stream(obj.head(0)).schema
            self.num_rows = obj.height
        elif kind == "lazyframe":
            if not hasattr(obj, "collect_batches"):
                raise TypeError(
                    "this Polars has no LazyFrame.collect_batches (Polars 1.33 or newer streams a "
                    "LazyFrame batch by batch): upgrade Polars, or pass lf.collect(engine='streaming') "
                    "(a DataFrame: the whole result in memory)")
            import polars as pl
            self.schema = pa.RecordBatchReader.from_stream(pl.DataFrame(schema=obj.collect_schema())).schema
        else:  # any other __arrow_c_stream__: opened now, for its schema
            try:
                self.reader = pa.RecordBatchReader.from_stream(obj)
            except pa.ArrowInvalid as error:
                if "non-struct" not in str(error):
                    raise ValueError(f"cannot read {self.description}: {error}") from None
                raise TypeError(
                    f"evaluate_file reads a table of named columns (a stream of record batches); "
                    f"this {type(obj).__name__} is a single column: pass its columns to "
                    f"fastbce.evaluate, or a table holding them") from None
            self.schema = self.reader.schema
        self.columns = list(self.schema.names)
        self.not_numeric = []

    def _numeric_check(self, name):
        # a non-numeric column is reported at its first value (row and value),
        # once the first batch is read: see batches()
        import pyarrow as pa
        type_ = self.schema.field(name).type
        value_type = type_.value_type if pa.types.is_dictionary(type_) else type_
        if not pa.types.is_null(type_) and not _arrow_is_numeric(value_type):
            self.not_numeric.append(name)

    def _open(self, needed, batch_size):
        import pyarrow as pa
        obj, kind = self.obj, self.kind
        if self.reader is not None:
            return self.reader
        if kind == "table":
            return obj.select(needed).to_reader(max_chunksize=batch_size)
        if kind == "dataset":
            return obj.scanner(columns=needed, batch_size=batch_size).to_reader()
        if kind == "scanner":
            return obj.to_reader()
        if kind == "duckdb":
            quoted = ['"' + name.replace('"', '""') + '"' for name in needed]
            return obj.project(", ".join(quoted)).to_arrow_reader(batch_size)
        if kind == "polars":
            return pa.RecordBatchReader.from_stream(obj.select(needed))
        if kind == "lazyframe":
            return pa.RecordBatchReader.from_stream(
                obj.select(needed).collect_batches(chunk_size=batch_size, lazy=True))
        raise AssertionError(kind)

    def close(self):
        if self.reader is not None:
            self.reader.close()

    def batches(self, value_columns, other_columns, batch_size):
        needed = list(dict.fromkeys(value_columns + other_columns))
        reader = self.reader = self._open(needed, batch_size)
        first_row = 0
        batch = piece = None
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                if self.not_numeric:
                    self._raise_not_numeric(batch, first_row)
                # a producer's batch may be longer than batch_size: cut
                for start in range(0, batch.num_rows, batch_size):
                    piece = batch.slice(start, batch_size) if batch.num_rows > batch_size else batch
                    yield first_row, {name: _arrow_to_numpy(piece.column(name), name, first_row)
                                      for name in needed}
                    first_row += piece.num_rows
                batch = piece = None  # not held while the next one is read
            if self.not_numeric:  # an empty stream
                name = self.not_numeric[0]
                raise _not_numeric_error(name, self.schema.field(name).type)
        finally:
            reader.close()

    def _raise_not_numeric(self, batch, first_row):
        """The error for the first non-numeric column, naming its first value that is not null."""
        name = self.not_numeric[0]
        column = batch.column(name)
        if len(column) == 0:
            return
        if column.null_count:
            valid = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
            if not len(valid) or valid[0] > 0:  # a null comes first
                raise _null_error(name, first_row)
        raise _not_numeric_error(name, column.type, first_row, column[0].as_py())


def _require_pyarrow_streams():
    try:
        import pyarrow as pa
    except ImportError:
        raise ImportError("reading an Arrow stream needs pyarrow (pip install pyarrow)") from None
    if not hasattr(pa.RecordBatchReader, "from_stream"):
        raise ImportError(f"reading an Arrow stream needs pyarrow 15 or newer "
                          f"(installed: {pa.__version__}); pip install -U pyarrow")


def _stream_kind(obj):
    """How to read `obj` as a stream of record batches, or None if it is not one."""
    cls = type(obj)
    if isinstance(obj, (str, bytes, os.PathLike, dict)):
        return None
    module = cls.__module__.partition(".")[0] if isinstance(cls.__module__, str) else ""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        if isinstance(obj, pa.RecordBatchReader):
            return "reader"
        if isinstance(obj, pa.Table):
            return "table"
        dataset = sys.modules.get("pyarrow.dataset")
        if dataset is not None:
            if isinstance(obj, dataset.Dataset):
                return "dataset"
            if isinstance(obj, dataset.Scanner):
                return "scanner"
    if module == "duckdb" and hasattr(obj, "to_arrow_reader") and hasattr(obj, "project"):
        return "duckdb"
    if module == "polars":
        polars = sys.modules["polars"]
        if isinstance(obj, polars.LazyFrame):
            return "lazyframe"
        if isinstance(obj, polars.DataFrame):
            return "polars"
    if hasattr(cls, "__arrow_c_stream__"):
        return "stream"
    return None


def _format_of(path):
    """'parquet', 'csv' or 'npy' from a path's extension (or its being a directory)."""
    if os.path.isdir(path):
        return "npy"
    name = os.path.basename(str(path)).lower()
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(".npy"):
        raise ValueError(
            f"{str(path)!r} is a single .npy file: pass a directory of .npy files, one per "
            f"column (label.npy, score.npy...), or a mapping {{column: path}}")
    raise ValueError(
        f"unknown file type for {str(path)!r}: expected Parquet ({', '.join(PARQUET_SUFFIXES)}), "
        f"CSV ({', '.join(CSV_SUFFIXES)}, optionally compressed), a directory of .npy files "
        f"or a mapping {{column: .npy path}}; or pass format= one of {FORMATS}")


def _open_source(path, format, delimiter):
    kind = _stream_kind(path)
    if kind is not None:
        if format is not None or delimiter is not None:
            raise ValueError(f"format= and delimiter= are for files; {type(path).__name__} is read "
                             f"as an Arrow stream")
        return _ArrowStreamSource(path, kind)
    if isinstance(path, dict) or (hasattr(path, "keys") and hasattr(path, "__getitem__")):
        if format not in (None, "npy"):
            raise ValueError(f"a mapping of columns is read as format='npy', not {format!r}")
        columns = {name: (value if isinstance(value, np.ndarray) else os.fspath(value))
                   for name, value in path.items()}
        return _NpySource(columns, "the given .npy columns")
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"evaluate_file reads a file path, a mapping {{column: .npy path or array}}, or a table "
            f"exporting an Arrow stream (__arrow_c_stream__: a pyarrow Table or RecordBatchReader, "
            f"a DuckDB relation, a Polars DataFrame or LazyFrame...); got {type(path).__name__}") from None
    if not os.path.exists(path):
        raise _file_not_found(path)
    if format is None:
        format = _format_of(path)
    elif format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None, got {format!r}")
    if format == "parquet":
        return _ParquetSource(path)
    if format == "csv":
        return _CsvSource(path, delimiter)
    if not os.path.isdir(path):
        raise ValueError(f"format='npy' reads a directory of .npy files, one per column; "
                         f"{path!r} is not a directory")
    files = sorted(entry for entry in os.listdir(path) if entry.endswith(".npy"))
    if not files:
        raise ValueError(f"directory {path!r} holds no .npy files (one per column: label.npy, score.npy...)")
    return _NpySource({entry[:-len(".npy")]: os.path.join(path, entry) for entry in files},
                      f"directory {path!r}")


# -- errors raised by the kernels, with rows of the file ----------------------------------

_INVALID_ELEMENT = re.compile(r"^(y_true|y_pred|sample_weight)\[(\d+)\] = (.*)$", re.DOTALL)


_NAN_GROUP = re.compile(r"^groups must not contain NaN \(at index (\d+)\)$")


def _in_file_terms(error, first_row, arguments):
    """A kernel's 'y_pred[12] = nan: ...' as "column 'score', row 1012 = nan: ..."."""
    match = _INVALID_ELEMENT.match(str(error))
    if match is not None and arguments.get(match.group(1)) is not None:
        argument, index, rest = match.groups()
        return ValueError(f"column {arguments[argument]!r}, row {first_row + int(index)} = {rest}")
    match = _NAN_GROUP.match(str(error))
    if match is not None and arguments.get("groups") is not None:
        return ValueError(f"column {arguments['groups']!r} (groups) is NaN at row "
                          f"{first_row + int(match.group(1))}")
    return error


# -- reading ahead ---------------------------------------------------------------------------

_END = object()


def _read_ahead(batches, depth=1):
    """Iterate `batches` on a background thread, up to `depth` items ahead of the caller.

    pyarrow decodes and the kernels compute without the GIL, so reading the
    next batch overlaps evaluating this one. Errors of the reader are raised
    here, in the caller's thread; closing this generator (an error of the
    caller, say) stops the reader.
    """
    import queue
    import threading

    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in batches:
                if not offer((item, None)):
                    break
            else:
                offer((_END, None))
        except BaseException as error:  # handed to the caller
            offer((_END, error))
        finally:
            batches.close()

    reader = threading.Thread(target=produce, name="fastbce-evaluate-file-reader", daemon=True)
    reader.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        reader.join()


# -- the entry point -------------------------------------------------------------------------


def _progress_bar(progress, total):
    """A tqdm bar, or None. progress=None: a bar when stderr is a terminal and tqdm is installed."""
    if progress is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm (pip install tqdm)") from None
        return None
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        if not (isatty and isatty()):
            return None
    return tqdm(total=total, unit="row", unit_scale=True, desc="evaluate", leave=False)


def evaluate_file(path, y_true="label", y_pred="score", *, sample_weight=None, groups=None,
                  batch_size=1_000_000, progress=None, format=None, delimiter=None, **evaluate_kw):
    """Evaluate the predictions stored in a file or an Arrow stream, reading it in batches
    (bounded memory).

    Parameters
    ----------
    path : str, os.PathLike, mapping or Arrow stream
        A Parquet file (``.parquet``, ``.pq``, ``.parq``), a CSV file (``.csv``,
        ``.tsv``, optionally compressed: ``.csv.gz``...), a directory holding one
        ``.npy`` file per column (``label.npy``, ``score.npy``...), or a mapping
        ``{column name: .npy path or array}``.  ``.npy`` files are memory-mapped.
        Or, in place of a path, a table streamed batch by batch: any object
        with ``__arrow_c_stream__`` (a pyarrow ``RecordBatchReader`` or
        ``Table``, a DuckDB relation, a Polars or pandas ``DataFrame``), a
        ``pyarrow.dataset.Dataset`` or ``Scanner``, or a Polars ``LazyFrame``
        (run by Polars' streaming engine).  The whole table is never
        materialized; a stream is consumed (read once).
    y_true, y_pred : str
        Names of the label and prediction columns.
    sample_weight, groups : str, optional
        Names of a sample-weight column and of a column of group keys (results
        per group, as ``evaluate(..., groups=)``).
    batch_size : int
        Rows per batch: memory is about ``batch_size`` times the bytes of a row
        of the needed columns, whatever the file's size.  The result does not
        depend on it (within 1e-12 relative).
    progress : bool or None
        Show a tqdm progress bar; None (default): when stderr is a terminal and
        tqdm is installed.
    format : {"parquet", "csv", "npy"}, optional
        Overrides the format told by the path (not for streams).
    delimiter : str, optional
        CSV field delimiter (default: tab for ``.tsv``, else comma).
    **evaluate_kw
        The keywords of :func:`fastbce.evaluate` other than ``sample_weight``
        and ``groups``: ``from_logits``, ``threshold``, ``class_weight``,
        ``pos_weight`` (a number), ``eps``, ``bins``, ``num_threads`` (default
        for Parquet, CSV and streams: 1, beside the reader's thread; for .npy: all).

    Returns
    -------
    Evaluation
        As :func:`fastbce.evaluate` on the whole columns.

    Raises
    ------
    FileNotFoundError
        No such file (the path is named).
    ValueError
        Unknown file type; a missing column (named, with the available ones);
        a missing value (null; the column and its row are named); an invalid
        value (label or probability outside [0, 1], NaN, negative weight: the
        column, row and value are named).
    TypeError
        A label, prediction or weight column that is not numbers (its name and
        type, and for CSV and streams the first row that is not a number and its
        value); a source that is neither a path nor a table.
    ImportError
        Parquet, CSV or a stream without pyarrow (streams: pyarrow 15 or newer).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    for keyword in ("y_true", "y_pred"):
        if not isinstance(locals()[keyword], str):
            raise TypeError(f"{keyword} must be a column name (str), got {type(locals()[keyword]).__name__}")
    for keyword in ("sample_weight", "groups"):
        if locals()[keyword] is not None and not isinstance(locals()[keyword], str):
            raise TypeError(f"{keyword} must be a column name (str) or None, "
                            f"got {type(locals()[keyword]).__name__}")
    if evaluate_kw.get("pos_weight") is not None and np.ndim(evaluate_kw["pos_weight"]) != 0:
        raise ValueError("pos_weight must be a number for evaluate_file (one for every row)")
    # build the evaluator first: bad keywords fail before any reading
    evaluator = Evaluator(**evaluate_kw)
    source = _open_source(path, format, delimiter)
    reads_ahead = isinstance(source, (_ParquetSource, _CsvSource, _ArrowStreamSource))
    if reads_ahead and evaluate_kw.get("num_threads") is None:
        # one kernel thread, beside the reader's: the kernel outruns the
        # decoding, and a team of OpenMP threads spinning between batches
        # would take the cores that pyarrow decodes on
        evaluate_kw = dict(evaluate_kw, num_threads=1)
        evaluator = Evaluator(**evaluate_kw)
    value_columns = [y_true, y_pred] + ([sample_weight] if sample_weight is not None else [])
    other_columns = [groups] if groups is not None else []
    try:
        source.check(value_columns, other_columns)
    except BaseException:
        source.close()
        raise
    arguments = {"y_true": y_true, "y_pred": y_pred, "sample_weight": sample_weight, "groups": groups}
    while True:
        bar = _progress_bar(progress, source.num_rows)
        try:
            batches = source.batches(value_columns, other_columns, int(batch_size))
            for first_row, batch in (_read_ahead(batches) if reads_ahead else batches):
                try:
                    evaluator.update(batch[y_true], batch[y_pred],
                                     sample_weight=None if sample_weight is None else batch[sample_weight],
                                     groups=None if groups is None else batch[groups])
                except ValueError as error:
                    raise _in_file_terms(error, first_row, arguments) from None
                if bar is not None:
                    bar.update(len(batch[y_pred]))
            return evaluator.result()
        except _StringGroupsNeeded:
            # the groups column of a CSV held text after numbers: read it all
            # again, as strings (group keys of one type for the whole file)
            evaluator = Evaluator(**evaluate_kw)
            source = _CsvSource(source.path, delimiter, groups_as_string=True)
        finally:
            if bar is not None:
                bar.close()


# -- the command line: fastbce evaluate ------------------------------------------------------

# --plot without --bins: bins for the reliability curve and the threshold panel
PLOT_BINS = 20
# the per-group panel shows at most this many groups (those of most weight)
PLOT_MAX_GROUPS = 30


def _probability(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def _positive_int(text):
    import argparse
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _command_parser():
    import argparse
    parser = argparse.ArgumentParser(
        prog="fastbce evaluate",
        description="Evaluate binary predictions stored in a file (Parquet, CSV, or a directory of "
                    ".npy columns), read in batches with bounded memory: log loss, Brier score, "
                    "confusion counts and scores, with --bins ROC AUC, average precision and "
                    "calibration, with --groups the same per group.",
        epilog="Exit status: 0 done, 1 the data could not be read or is invalid (a one-line "
               "message), 2 a usage error.")
    parser.add_argument("file", metavar="FILE",
                        help="a .parquet/.pq file, a .csv/.tsv file (optionally compressed: .csv.gz ...), "
                             "or a directory holding one .npy file per column")
    parser.add_argument("--y-true", metavar="COL", default="label", help="label column (default: label)")
    parser.add_argument("--y-pred", metavar="COL", default="score", help="prediction column (default: score)")
    parser.add_argument("--logits", action="store_true", help="predictions are logits, not probabilities")
    parser.add_argument("--threshold", metavar="T", type=_probability, default=0.5,
                        help="a prediction is positive when p >= T (default 0.5)")
    parser.add_argument("--groups", metavar="COL", help="column of group keys: the report per group too")
    parser.add_argument("--weight", metavar="COL", help="sample-weight column")
    parser.add_argument("--pos-weight", metavar="PW", type=_positive_float, help="weight of the positive class in the log loss")
    parser.add_argument("--bins", metavar="K", type=_positive_int,
                        help=f"probability bins for ROC AUC, average precision and calibration "
                             f"(with --plot, default {PLOT_BINS})")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON (undefined figures as null)")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="draw the reliability curve, precision and recall against the threshold "
                             "and (with --groups) the log loss per group (needs matplotlib)")
    parser.add_argument("--format", choices=FORMATS, help="the file's format, if its name does not tell")
    parser.add_argument("--batch-size", metavar="ROWS", type=_positive_int, default=1_000_000,
                        help="rows per batch (default 1,000,000): memory is bounded by it")
    parser.add_argument("--threads", metavar="N", type=_positive_int, help="threads of the kernels")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (shown by default when stderr is a terminal and tqdm is installed)")
    return parser


def _strict_json(value):
    """to_dict() output with nan and infinities as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    return value


def _draw_report(evaluation, path, title):
    """One figure: reliability curve, precision/recall against threshold, log loss per group."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    group_items = list((evaluation.groups or {}).items())
    panels = 3 if group_items else 2
    figure = Figure(figsize=(5.2 * panels, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels)
    figure.suptitle(title, fontsize=10)

    reliability = evaluation.reliability
    ax = axes[0]
    ax.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.plot(reliability.mean_predicted, reliability.observed_rate, marker="o", markersize=3,
            label=f"model (ECE {evaluation.ece:.4f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability", ylabel="observed positive rate",
           title=f"Reliability ({evaluation.bins} bins)")
    ax.legend(loc="upper left", fontsize=8)

    table = evaluation.threshold_table
    ax = axes[1]
    ax.plot(table.threshold, table.precision, label="precision")
    ax.plot(table.threshold, table.recall, label="recall")
    ax.plot(table.threshold, table.f1, label="F1", linestyle=":")
    ax.axvline(evaluation.threshold, color="0.6", linewidth=1, linestyle="--",
               label=f"threshold {evaluation.threshold:g}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="threshold (p >= t is positive)",
           title=f"Precision and recall (ROC AUC {evaluation.roc_auc:.4f}, AP {evaluation.average_precision:.4f})")
    ax.legend(loc="lower left", fontsize=8)

    if group_items:
        ax = axes[2]
        shown = group_items
        note = ""
        if len(group_items) > PLOT_MAX_GROUPS:
            shown = sorted(group_items, key=lambda item: -item[1].weight_sum)[:PLOT_MAX_GROUPS]
            shown.sort(key=lambda item: group_items.index(item))
            note = f", {PLOT_MAX_GROUPS} of {len(group_items)} (most weight)"
        labels = [str(value) for value, _ in shown]
        ax.bar(range(len(shown)), [group.log_loss for _, group in shown])
        ax.axhline(evaluation.log_loss, color="0.3", linewidth=1, linestyle="--",
                   label=f"overall {evaluation.log_loss:.4f}")
        ax.set_xticks(range(len(shown)), labels, rotation=45 if len(shown) > 6 else 0,
                      ha="right" if len(shown) > 6 else "center", fontsize=8)
        ax.set(ylabel="log loss", title=f"Log loss per group{note}")
        ax.legend(fontsize=8)
    figure.savefig(path, dpi=110)


def main(argv=None):
    """``fastbce evaluate FILE ...``: returns the exit status (0 ok, 1 data error, 2 usage error)."""
    parser = _command_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exit:  # argparse: usage errors (2) and --help (0)
        return exit.code if isinstance(exit.code, int) else 2

    def fail(message):
        text = " ".join(str(message).split())  # one line
        print(f"fastbce evaluate: error: {text}", file=sys.stderr)
        return 1

    bins = args.bins
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return fail("--plot needs matplotlib (pip install matplotlib)")
        if bins is None:
            bins = PLOT_BINS
    try:
        evaluation = evaluate_file(
            args.file, args.y_true, args.y_pred, sample_weight=args.weight, groups=args.groups,
            batch_size=args.batch_size, progress=False if args.no_progress else None,
            format=args.format, from_logits=args.logits, threshold=args.threshold,
            pos_weight=args.pos_weight, bins=bins, num_threads=args.threads)
    except (OSError, ValueError, TypeError, ImportError) as error:
        return fail(error)
    if args.json:
        import json
        print(json.dumps(_strict_json(evaluation.to_dict()), indent=2))
    else:
        print(f"{args.file}: {args.y_pred} ({'logits' if args.logits else 'probabilities'}) "
              f"against {args.y_true}" + (f", weighted by {args.weight}" if args.weight else "")
              + (f", grouped by {args.groups}" if args.groups else ""))
        print(repr(evaluation))
    if args.plot:
        try:
            _draw_report(evaluation, args.plot, f"{os.path.basename(os.path.normpath(args.file))}: "
                                                f"{args.y_pred} against {args.y_true}")
        except OSError as error:
            return fail(f"cannot write {args.plot!r}: {error}")
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0
