# The loops of fastbce: one fused pass over the data, in fixed-size blocks.
#
# This file is compiled once per CPU target (_kernels_<target>.pyx include
# it; setup.py gives each its flags) and fastbce/_kernels.py picks the best
# one at import. docs/kernels.md describes the design.
#
# The per-element math lives in _math.pxd; this module only walks the data.
# Operands arrive as 2-D strided NumPy views (the Python layer broadcasts and
# coalesces any N-d input into rows x cols). The pass is cut into blocks of
# BLOCK elements, each block into chunks of CHUNK elements. A chunk of an
# operand is read in place when it is contiguous and already of the compute
# type (float32 or float64, the predictions' type); otherwise it is loaded
# into a small buffer, converted from its own type on the way (labels of any
# integer or float type, weights of the other float type), so that the math
# always runs over contiguous memory of one type. Only the compute type is a
# compile-time specialization (two copies of each loop); the operands' types
# are a runtime code, dispatched once per chunk in the load step.
#
# Each block yields float64 partial sums; partials are added in block order,
# so a reduced result does not depend on the number of threads. Invalid
# values are flagged in the same pass; only the first flagged block is
# scanned again, to name the first bad element.
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from libc.math cimport log, INFINITY
cimport numpy as cnp

from fastbce._math cimport (
    floating, half_label_to_float, smooth_label, clip_probability, loss_probability, grad_probability,
    loss_probability_binary, grad_probability_binary,
    loss_logit, grad_logit, loss_and_grad_logit, invalid_label, invalid_probability, invalid_logit,
    invalid_sample_weight, invalid_pos_weight, times_or_zero, plus_exact_product, sigmoid_, softplus_, log_sigmoid_,
    grad_hess_logit, logit_parts, logit_own_parts, probability_parts, abs_,
)

cnp.import_array()

cdef extern from "_omp.h" nogil:
    int fb_openmp_enabled()
    int fb_max_threads()
    void fb_note_parallel()
    int fb_forked_after_parallel()
    int fb_register_atfork()

fb_register_atfork()

cdef extern from *:
    """
    /* Labels of the predictions' own float type and no weights: AVX-512
       compiles the float-label loops to faster code than narrowing the
       labels to int8 first (logits 1.10x-1.19x, 0/1 labels with
       probabilities 1.03x-1.14x); AVX2 and SSE2 the other way round
       (0.81x-0.95x), see docs/kernels.md */
    #if defined(__AVX512F__)
    #define FB_FLOAT_LABELS_IN_PLACE 1
    #else
    #define FB_FLOAT_LABELS_IN_PLACE 0
    #endif
    /* The evaluation report's general loop stores the terms a call does not
       read only where a masked store is cheap (AVX-512): elsewhere those
       stores are unconditional, since a conditional store kept the loop
       scalar on SSE2 (3x slower) and slower on AVX2 (1.5x), see
       docs/kernels.md */
    #if defined(__AVX512F__)
    #define FB_MASKED_STORES 1
    #else
    #define FB_MASKED_STORES 0
    #endif
    """
    const bint FB_FLOAT_LABELS_IN_PLACE
    const bint FB_MASKED_STORES

# float16 values arrive as their 16 bits
ctypedef uint16_t half_bits

# the labels the math loops read: integer labels narrowed to int8 (0 and 1
# stay, any other value becomes 2), or float labels in the compute type
ctypedef fused label_t:
    int8_t
    float
    double

# the element types an operand may have in memory (see convert_run)
ctypedef fused source_t:
    int8_t
    int16_t
    int32_t
    int64_t
    half_bits
    float
    double

# What an operand's elements are (Operand.type). Unsigned integers and bool
# are read as the signed type of their width: 0 and 1 stay 0 and 1, every
# other value stays invalid (errors show the value as given).
cdef enum:
    TYPE_INT8
    TYPE_INT16
    TYPE_INT32
    TYPE_INT64
    TYPE_HALF
    TYPE_FLOAT
    TYPE_DOUBLE

cdef enum:
    CHUNK = 1024             # elements per chunk: its buffers stay in L1/L2
    BLOCK = 16 * CHUNK       # elements per partial sum, fixed whatever the thread count
    BLOCKS_PER_ROUND = 4096  # blocks per parallel round: bounds the partials' memory
    LANES = 16               # independent float64 accumulators in a block (two AVX-512 registers:
                             # two addition chains)
    WIDE = 16                # accumulators in the input's type within an evaluation chunk
    PARTIALS_PER_ROUND = 1 << 22  # float64 partials a round may hold (32 MB)

# what a pass computes (Job.mode)
cdef enum:
    MODE_BCE                 # loss (summed or element-wise) and/or gradient (and hessian)
    MODE_ELEMENTWISE         # one of the functions below, element-wise
    MODE_EVALUATE            # the evaluation report's sums
    MODE_MULTICLASS          # multi-class log loss: one row of class probabilities per sample

# MODE_ELEMENTWISE functions
cdef enum:
    FUNCTION_SIGMOID
    FUNCTION_LOG_SIGMOID
    FUNCTION_SOFTPLUS
ELEMENTWISE_FUNCTIONS = {"sigmoid": FUNCTION_SIGMOID, "log_sigmoid": FUNCTION_LOG_SIGMOID,
                         "softplus": FUNCTION_SOFTPLUS}

# MODE_EVALUATE: the sums kept per group, each split in a negative part (the
# element counts with factor 1 - y) and a positive part (factor y); their
# order in a group's row of the output (see fastbce/_evaluate.py)
cdef enum:
    SUM_COUNT = 0            # 1 - y, y (unweighted)
    SUM_WEIGHT = 2           # w (1 - y), w y
    SUM_LOSS = 4             # w (1 - y) (-log(1 - p)), w pw y (-log p)
    SUM_BRIER = 6            # w (1 - y) p^2, w y (1 - p)^2
    SUM_PROB = 8             # w (1 - y) p, w y p
    SUM_ABOVE = 10           # w (1 - y), w y where p >= threshold
    SUM_BELOW = 12           # ... where p < threshold
    N_SUMS = 14
    CLASS_SUMS = 7           # while the kernel runs, a row keeps a class's sums side by side (row_at)
    N_BIN_SUMS = 4           # per bin: w (1 - y), w y, w (1 - y) p, w y p (in the table; while the
                             # kernel runs, each class's two side by side: see table_order)
    BIN_CLASS = 2            # ... the running order: class c's weight at BIN_CLASS * c, its p after it
    EVAL_CHUNK = 256         # elements per evaluation chunk: its N_SUMS buffers stay in L1
                             # (and a float32 lane adds up at most 16 terms)
#: longest row that bce_kernel sums per row (row_loss=)
MAX_ROW_SUM_LENGTH = BLOCK
SUM_NAMES = ("count", "weight", "loss", "brier", "prob", "above", "below")
BIN_SUM_NAMES = ("bin_weight", "bin_prob")

# MODE_MULTICLASS: a block's partials (the counts let the Python layer raise
# scikit-learn's error for the first problem in scikit-learn's order, with a
# NumPy scan that only runs when one is set)
cdef enum:
    MC_LOSS = 0              # sum of w * -log(clip(p[i, code_i]))
    MC_WEIGHT                # sum of w (the row count without weights)
    MC_BAD_PROBABILITY       # probabilities that are NaN or outside [0, 1]
    MC_BAD_CODE              # class codes outside [0, k)
    MC_NOT_ONE               # rows whose sum is off 1 by more than the tolerance
    MC_BAD_WEIGHT            # weights that are NaN, negative or infinite
    MC_PARTIALS
MULTICLASS_SUM_NAMES = ("loss", "weight", "bad_probability", "bad_code", "not_one", "bad_weight")

# which argument holds the first invalid element
OPERAND_NAMES = ("y_true", "y_pred", "sample_weight", "pos_weight")


cdef struct Operand:
    char* data               # NULL when the operand is absent
    Py_ssize_t row_stride    # in bytes
    Py_ssize_t col_stride
    int type                 # TYPE_*


cdef struct Job:
    int mode                 # MODE_*
    Operand y_true, y_pred, sample_weight, pos_weight, loss, grad, hess, codes
    Py_ssize_t rows, cols
    Py_ssize_t block_len     # elements per block, fixed by the inputs (never by the thread count)
    Py_ssize_t partial_size  # float64 partials per block
    bint from_logits
    bint limited             # narrower valid ranges than the defaults (see set_limits):
    double low, high         # predictions in [low, high] (MODE_BCE: always set, the defaults or the limits),
    double weight_high       # weights in [0, weight_high], pos_weights in (0, weight_high]
    bint want_loss           # compute the element-wise loss
    bint reduce_loss         # ... and sum it (else write it to `loss`)
    bint want_grad           # write the gradient to `grad` (and the hessian to `hess`)
    double pos_weight_value  # used when pos_weight.data is NULL
    double eps, keep, half_smoothing, grad_scale
    double* row_loss         # MODE_BCE with axis=: per-row loss sums (rows lie whole in a block), or NULL
    double* row_weight       # ... and per-row weight sums (NULL without sample weights)
    int function             # MODE_ELEMENTWISE: FUNCTION_*
    double threshold         # MODE_EVALUATE: a prediction is positive when p >= threshold
    Py_ssize_t n_bins        # MODE_EVALUATE: equal-width bins of p on [0, 1] (0: none)
    Py_ssize_t group_stride  # MODE_EVALUATE: N_SUMS + N_BIN_SUMS * n_bins
    double sum_tolerance     # MODE_MULTICLASS: a row sums to one within this


def openmp_enabled():
    """True when the kernels were built with OpenMP."""
    return bool(fb_openmp_enabled())


def max_threads():
    """OpenMP's default thread count (honours OMP_NUM_THREADS and threadpoolctl)."""
    return fb_max_threads()


def forked_after_parallel():
    """True in a process forked from one that had run a parallel kernel: the
    kernels run on one thread here (OpenMP's threads do not survive fork())."""
    return bool(fb_forked_after_parallel())


_fork_warned = False

cdef int kernel_threads(int num_threads) except -1:
    """The threads a pass may use: num_threads, or 1 in a forked child (see
    forked_after_parallel), which says so once."""
    global _fork_warned
    if num_threads > 1 and fb_forked_after_parallel():
        if not _fork_warned:
            _fork_warned = True
            import warnings
            warnings.warn(
                "fastbce: this process was forked after a parallel fastbce call; OpenMP's threads do "
                "not survive fork(), so fastbce runs on 1 thread here. For parallel kernels in child "
                "processes use the 'spawn' or 'forkserver' start method (multiprocessing.get_context, "
                "DataLoader(multiprocessing_context=...)).", RuntimeWarning, stacklevel=3)
        return 1
    return num_threads


# --- reading operands ------------------------------------------------------

cdef int type_of(cnp.ndarray array, str name) except -1:
    """The TYPE_* of an array's elements; TypeError for anything else."""
    cdef int number = cnp.PyArray_TYPE(array)
    cdef Py_ssize_t size = cnp.PyArray_ITEMSIZE(array)
    if cnp.PyArray_ISBYTESWAPPED(array):
        raise TypeError(f"{name}: byte-swapped data reaches the kernel")
    if cnp.PyTypeNum_ISINTEGER(number) or cnp.PyTypeNum_ISBOOL(number):
        if size == 1:
            return TYPE_INT8
        if size == 2:
            return TYPE_INT16
        if size == 4:
            return TYPE_INT32
        if size == 8:
            return TYPE_INT64
    elif number == cnp.NPY_FLOAT16:
        return TYPE_HALF
    elif number == cnp.NPY_FLOAT:
        return TYPE_FLOAT
    elif number == cnp.NPY_DOUBLE:
        return TYPE_DOUBLE
    raise TypeError(f"{name}: dtype {array.dtype} reaches the kernel")


cdef int set_operand(Operand* op, object array, Py_ssize_t rows, Py_ssize_t cols, str name,
                     int required_type=-1, bint writable=False) except -1:
    """op = the 2-D (rows, cols) array `array` (None: absent). The Python
    layer has broadcast and checked the inputs; this only guards the kernel's
    memory access against a caller that did not."""
    if array is None:
        op.data = NULL
        return 0
    if not isinstance(array, cnp.ndarray):
        raise TypeError(f"{name} must be a NumPy array")
    cdef cnp.ndarray a = <cnp.ndarray> array
    if cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_DIM(a, 0) != rows or cnp.PyArray_DIM(a, 1) != cols:
        raise ValueError(f"{name} must be 2-D of shape ({rows}, {cols}), got {array.shape}")
    op.type = type_of(a, name)
    if required_type >= 0 and op.type != required_type:
        raise TypeError(f"{name} has dtype {array.dtype}, not the predictions' float type")
    if writable and not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name} is read-only")
    op.data = <char*> cnp.PyArray_DATA(a)
    op.row_stride = cnp.PyArray_STRIDE(a, 0)
    op.col_stride = cnp.PyArray_STRIDE(a, 1)
    return 0


cdef inline char* address(const Operand* op, Py_ssize_t cols, Py_ssize_t start) noexcept nogil:
    cdef Py_ssize_t row = start // cols
    return op.data + row * op.row_stride + (start - row * cols) * op.col_stride


cdef inline bint in_place(const Operand* op, Py_ssize_t cols, Py_ssize_t start,
                          Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    # the n elements from linear index `start` lie contiguous in memory
    return start % cols + n <= cols and op.col_stride == itemsize


cdef inline void convert_run(const source_t* kind, const char* src, Py_ssize_t stride, Py_ssize_t n,
                             floating* out) noexcept nogil:
    """out[j] = element j of a run of `source_t` values `stride` bytes apart,
    in the compute type. (Integer labels come here only in a chunk with a
    label other than 0 or 1: every such value converts to one outside [0, 1],
    which the math flags; see load_binary_labels.)"""
    cdef Py_ssize_t j
    cdef const source_t* values = <const source_t*> src
    if stride == sizeof(source_t):
        if source_t is half_bits:
            for j in range(n):
                out[j] = <floating> half_label_to_float(values[j])
        else:
            for j in range(n):
                out[j] = <floating> values[j]
    else:
        for j in range(n):
            if source_t is half_bits:
                out[j] = <floating> half_label_to_float((<const source_t*> (src + j * stride))[0])
            else:
                out[j] = <floating> (<const source_t*> (src + j * stride))[0]


cdef void convert_any(int type, const char* src, Py_ssize_t stride, Py_ssize_t n,
                             floating* out) noexcept nogil:
    if type == TYPE_INT8:
        convert_run(<const int8_t*> NULL, src, stride, n, out)
    elif type == TYPE_INT16:
        convert_run(<const int16_t*> NULL, src, stride, n, out)
    elif type == TYPE_INT32:
        convert_run(<const int32_t*> NULL, src, stride, n, out)
    elif type == TYPE_INT64:
        convert_run(<const int64_t*> NULL, src, stride, n, out)
    elif type == TYPE_HALF:
        convert_run(<const half_bits*> NULL, src, stride, n, out)
    elif type == TYPE_FLOAT:
        convert_run(<const float*> NULL, src, stride, n, out)
    else:
        convert_run(<const double*> NULL, src, stride, n, out)


cdef const floating* load(const Operand* op, Py_ssize_t cols, Py_ssize_t start,
                                 Py_ssize_t n, floating* buffer) noexcept nogil:
    """The n elements from linear index `start` in the compute type: in place
    when contiguous and of that type, else converted into buffer."""
    cdef int own = TYPE_FLOAT if floating is float else TYPE_DOUBLE
    if op.type == own and in_place(op, cols, start, n, sizeof(floating)):
        return <const floating*> address(op, cols, start)
    cdef Py_ssize_t row = start // cols, col = start - row * cols, done = 0, run
    while done < n:
        run = min(n - done, cols - col)
        convert_any(op.type, op.data + row * op.row_stride + col * op.col_stride, op.col_stride, run,
                    buffer + done)
        done += run
        row += 1
        col = 0
    return buffer


cdef inline int binary_run(const source_t* kind, const floating* float_kind, const char* src,
                           Py_ssize_t stride, Py_ssize_t n, int8_t* out) noexcept nogil:
    """Labels of any type but int8 as int8 0/1 in out; returns 1 when every
    one is exactly 0 or 1 in the compute type (as the math would read it),
    else 0 (and out is of no use)."""
    cdef Py_ssize_t j
    cdef int binary = 1
    cdef source_t others = 0
    cdef floating value
    cdef const source_t* values = <const source_t*> src
    if stride != sizeof(source_t):
        for j in range(n):
            binary &= binary_run(kind, float_kind, src + j * stride, sizeof(source_t), 1, out + j)
    elif source_t is float or source_t is double:
        # (float64 labels beside float32 predictions compared as float32, as
        # the math reads them: narrowing float64 compares to int8 vectorizes
        # badly)
        for j in range(n):
            value = <floating> values[j]
            binary &= (value == 0) | (value == 1)
            out[j] = value == 1
    elif source_t is half_bits:
        for j in range(n):
            # +0, -0 and 1.0 by their bits
            binary &= ((values[j] & 0x7fff) == 0) | (values[j] == 0x3c00)
            out[j] = values[j] == 0x3c00
    else:
        # integers: any bit but the lowest set somewhere means a label that is
        # not 0 or 1 (an OR, and a truncation that every SIMD target packs)
        for j in range(n):
            others |= values[j] & ~(<source_t> 1)
            out[j] = <int8_t> values[j]
        binary = others == 0
    return binary


cdef inline int binary_run_any(int type, const floating* float_kind, const char* src, Py_ssize_t stride,
                               Py_ssize_t n, int8_t* out) noexcept nogil:
    """binary_run for labels of type `type` (int8 copied as they are: 1)."""
    cdef Py_ssize_t j
    if type == TYPE_INT8:
        for j in range(n):
            out[j] = (<const int8_t*> (src + j * stride))[0]
        return 1
    elif type == TYPE_INT16:
        return binary_run(<const int16_t*> NULL, float_kind, src, stride, n, out)
    elif type == TYPE_INT32:
        return binary_run(<const int32_t*> NULL, float_kind, src, stride, n, out)
    elif type == TYPE_INT64:
        return binary_run(<const int64_t*> NULL, float_kind, src, stride, n, out)
    elif type == TYPE_HALF:
        return binary_run(<const half_bits*> NULL, float_kind, src, stride, n, out)
    elif type == TYPE_FLOAT:
        return binary_run(<const float*> NULL, float_kind, src, stride, n, out)
    else:
        return binary_run(<const double*> NULL, float_kind, src, stride, n, out)


cdef const int8_t* load_binary_labels(const Operand* op, Py_ssize_t cols, Py_ssize_t start,
                                             Py_ssize_t n, int8_t* buffer, const floating* float_kind) noexcept nogil:
    """The n labels from linear index `start` as int8, for the loops over
    0/1 labels (the common case), or NULL if any of them is another value
    (then load() reads them in the compute type). int8 labels (and bool and
    uint8) are read as they are, in place when contiguous, whatever their
    values: the math checks them. Others are narrowed in one pass over them
    in their own type. The int8 loops are the fastest: the label widens
    inside the math loop, and GCC compiles them to more vectors per
    iteration (1.2x to 1.4x the float-label loops on AVX2 and SSE2)."""
    if op.type == TYPE_INT8 and in_place(op, cols, start, n, 1):
        return <const int8_t*> address(op, cols, start)
    cdef Py_ssize_t row = start // cols, col = start - row * cols, done = 0, run
    cdef const char* src = op.data + row * op.row_stride + col * op.col_stride
    cdef int binary = 1
    # soft labels (0.1, 0.9, ...) mostly show at the first one: then no pass
    # over the chunk that would be thrown away (soft labels 1.04x-1.08x)
    if not binary_run_any(op.type, float_kind, src, op.col_stride, 1, buffer):
        return NULL
    while done < n and binary:
        run = min(n - done, cols - col)
        src = op.data + row * op.row_stride + col * op.col_stride
        binary &= binary_run_any(op.type, float_kind, src, op.col_stride, run, buffer + done)
        done += run
        row += 1
        col = 0
    return buffer if binary else NULL


cdef const int64_t* load_codes(const Operand* op, Py_ssize_t cols, Py_ssize_t start,
                                      Py_ssize_t n, int64_t* buffer) noexcept nogil:
    """Like load, for the int64 group codes (read as they are)."""
    if in_place(op, cols, start, n, sizeof(int64_t)):
        return <const int64_t*> address(op, cols, start)
    cdef Py_ssize_t row = start // cols, col = start - row * cols, done = 0, run, j
    cdef const char* src
    while done < n:
        run = min(n - done, cols - col)
        src = op.data + row * op.row_stride + col * op.col_stride
        for j in range(run):
            buffer[done + j] = (<const int64_t*> (src + j * op.col_stride))[0]
        done += run
        row += 1
        col = 0
    return buffer


cdef inline floating* destination(const Operand* op, Py_ssize_t cols, Py_ssize_t start,
                                  Py_ssize_t n, floating* buffer) noexcept nogil:
    """Where to write n results from linear index `start`: in place when contiguous, else buffer."""
    if in_place(op, cols, start, n, sizeof(floating)):
        return <floating*> address(op, cols, start)
    return buffer


cdef void scatter(const Operand* op, Py_ssize_t cols, Py_ssize_t start,
                         Py_ssize_t n, const floating* buffer) noexcept nogil:
    cdef Py_ssize_t row = start // cols, col = start - row * cols, done = 0, run, j
    cdef char* dst
    while done < n:
        run = min(n - done, cols - col)
        dst = op.data + row * op.row_stride + col * op.col_stride
        for j in range(run):
            (<floating*> (dst + j * op.col_stride))[0] = buffer[done + j]
        done += run
        row += 1
        col = 0


# --- sums ------------------------------------------------------------------

cdef inline void add_to_lanes(const floating* values, Py_ssize_t n, double* lanes) noexcept nogil:
    # a fixed summation order (lane k takes elements k, k + LANES, ...) that
    # the compiler can still vectorize without reassociating
    cdef Py_ssize_t i = 0, k
    while i + LANES <= n:
        for k in range(LANES):
            lanes[k] += values[i + k]
        i += LANES
    for k in range(n - i):
        lanes[k] += values[i + k]


cdef inline void add_to_rows(const floating* values, Py_ssize_t start, Py_ssize_t n, Py_ssize_t cols,
                             double* row_sums) noexcept nogil:
    # values of linear indices [start, start + n) added to the sums of their
    # rows, in element order (a row lies whole in one block: no other thread
    # touches its sum)
    cdef Py_ssize_t j = 0, row, run, t
    cdef double total
    while j < n:
        row = (start + j) // cols
        run = min(n - j, (row + 1) * cols - (start + j))
        total = 0
        for t in range(run):
            total += values[j + t]
        row_sums[row] += total
        j += run


cdef inline void add_to_wide_lanes(const floating* values, Py_ssize_t n, floating* wide) noexcept nogil:
    # add_to_lanes in the input's own type over WIDE lanes (one AVX-512
    # register of float32): for the many sums of a short chunk, whose lanes
    # then go to float64 once per chunk (flush_wide_lanes)
    cdef Py_ssize_t i = 0, k
    while i + WIDE <= n:
        for k in range(WIDE):
            wide[k] += values[i + k]
        i += WIDE
    for k in range(n - i):
        wide[k] += values[i + k]


cdef inline void flush_wide_lanes(floating* wide, double* lanes) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(WIDE):
        lanes[k % LANES] += wide[k]
        wide[k] = 0


cdef inline double sum_lanes(const double* lanes) noexcept nogil:
    cdef double pairs[LANES]
    cdef Py_ssize_t k, width = LANES // 2
    for k in range(width):
        pairs[k] = lanes[k] + lanes[k + width]
    while width > 1:
        width //= 2
        for k in range(width):
            pairs[k] += pairs[k + width]
    return pairs[0]


# --- the math over contiguous chunks ----------------------------------------

cdef inline int invalid_inputs(floating label, floating prediction, floating w, floating pw,
                               bint from_logits) noexcept nogil:
    return (invalid_label(label)
            | (invalid_logit(prediction) if from_logits else invalid_probability(prediction))
            | invalid_sample_weight(w) | invalid_pos_weight(pw))


cdef inline int invalid_inputs_within(floating label, floating prediction, floating w, floating pw,
                                      bint from_logits, floating low, floating high) noexcept nogil:
    # invalid_inputs with the job's valid range of the predictions (job.low,
    # job.high; for logits symmetric, |x| <= high): the same comparisons, so
    # narrower limits cost the loops nothing
    return (invalid_label(label)
            | ((not (abs_(prediction) <= high)) if from_logits else (not (prediction >= low and prediction <= high)))
            | invalid_sample_weight(w) | invalid_pos_weight(pw))


cdef inline floating label_is_one(label_t y, const floating* kind) noexcept nogil:
    # a label known to be 0 or 1 (labels_are_binary) as 0 or 1 in the compute
    # type (of `kind`, only a type): int8 labels as they are (their check
    # flags any other value), float ones through a comparison, which GCC
    # vectorizes where the float itself it does not
    if label_t is int8_t:
        return <floating> y
    else:
        return <floating> (y != 0)


cdef inline bint labels_are_binary(const label_t* y, Py_ssize_t n) noexcept nogil:
    cdef int binary = 1
    cdef Py_ssize_t j
    for j in range(n):
        binary &= (y[j] == 0) | (y[j] == 1)
    return binary


cdef inline int bce_chunk(const Job* job, const label_t* y, const floating* p,
                          const floating* w, const floating* pw,
                          floating* loss, floating* grad, floating* hess, Py_ssize_t n,
                          bint binary, bint plain) noexcept nogil:
    """Loss and/or gradient of n contiguous elements; nonzero if any input is invalid.

    One loop per (input kind, outputs): each is branch-free, so that the
    compiler vectorizes it. `plain` (a constant at each call: no weights,
    pos_weight 1, no smoothing) reads neither weight buffer and lets the
    weighting fold away; the values are bit for bit the weighted ones with
    weights 1. `binary`: the labels are all 0 or 1 (labels_are_binary; the
    probability loops take one log then).
    """
    cdef floating one = 1
    cdef floating eps = <floating> job.eps
    cdef floating keep = <floating> job.keep
    cdef floating half_smoothing = <floating> job.half_smoothing
    cdef floating scale = <floating> job.grad_scale
    cdef floating low = <floating> job.low, high = <floating> job.high
    cdef floating label, prob, weight, positive_weight, unscaled_grad, unscaled_hess
    cdef int bad = 0
    cdef Py_ssize_t j
    if job.from_logits:
        if hess != NULL:
            for j in range(n):
                label = <floating> y[j]
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, True, low, high)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_hess_logit(label, p[j], weight, positive_weight, &unscaled_hess)
                hess[j] = scale * unscaled_hess
        elif grad == NULL:
            for j in range(n):
                label = <floating> y[j]
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, True, low, high)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                loss[j] = loss_logit(label, p[j], weight, positive_weight)
        elif loss == NULL:
            for j in range(n):
                label = <floating> y[j]
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, True, low, high)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_logit(label, p[j], weight, positive_weight)
        else:
            for j in range(n):
                label = <floating> y[j]
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, True, low, high)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                loss[j] = loss_and_grad_logit(label, p[j], weight, positive_weight, &unscaled_grad)
                grad[j] = scale * unscaled_grad
    elif job.keep == 1 and binary:
        # labels all 0 or 1 (the common case): one log per element, not two.
        # Float labels are read as label_is_one: GCC (12) leaves these loops
        # scalar over the float label itself ("no vectype"; 0.09x)
        if grad == NULL:
            for j in range(n):
                label = label_is_one(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, False, low, high)
                loss[j] = loss_probability_binary(label, clip_probability(p[j], eps), weight, positive_weight)
        elif loss == NULL:
            for j in range(n):
                label = label_is_one(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, False, low, high)
                grad[j] = scale * grad_probability_binary(label, clip_probability(p[j], eps), weight, positive_weight)
        else:
            for j in range(n):
                label = label_is_one(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, False, low, high)
                prob = clip_probability(p[j], eps)
                loss[j] = loss_probability_binary(label, prob, weight, positive_weight)
                grad[j] = scale * grad_probability_binary(label, prob, weight, positive_weight)
    else:
        if grad == NULL:
            for j in range(n):
                label = <floating> y[j]
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, False, low, high)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                loss[j] = loss_probability(label, clip_probability(p[j], eps), weight, positive_weight)
        elif loss == NULL:
            for j in range(n):
                label = <floating> y[j]
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, False, low, high)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_probability(label, clip_probability(p[j], eps), weight, positive_weight)
        else:
            for j in range(n):
                label = <floating> y[j]
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs_within(label, p[j], weight, positive_weight, False, low, high)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                prob = clip_probability(p[j], eps)
                loss[j] = loss_probability(label, prob, weight, positive_weight)
                grad[j] = scale * grad_probability(label, prob, weight, positive_weight)
    return bad


# One function per (labels, weighting) with its own loops: a few small
# functions compile to better code than one with every loop (GCC spilled
# the loops' constants to the stack in the latter: 0.83x on float64)
cdef int bce_chunk_plain(const Job* job, const label_t* y, const floating* p, const floating* w,
                         const floating* pw, floating* loss, floating* grad, floating* hess,
                         Py_ssize_t n, bint binary) noexcept nogil:
    return bce_chunk(job, y, p, w, pw, loss, grad, hess, n, binary, True)


cdef int bce_chunk_weighted(const Job* job, const label_t* y, const floating* p, const floating* w,
                            const floating* pw, floating* loss, floating* grad, floating* hess,
                            Py_ssize_t n, bint binary) noexcept nogil:
    return bce_chunk(job, y, p, w, pw, loss, grad, hess, n, binary, False)


cdef int bce_block(const Job* job, floating* float_kind, Py_ssize_t start, Py_ssize_t stop,
                   double* partial) noexcept nogil:
    """One block [start, stop): partial = (loss sum, weight sum); nonzero if any input is invalid.
    (float_kind, a NULL pointer, only picks the compute type.)"""
    cdef int8_t integer_y_buffer[CHUNK]
    cdef floating y_buffer[CHUNK]
    cdef floating p_buffer[CHUNK]
    cdef floating w_buffer[CHUNK]
    cdef floating pw_buffer[CHUNK]
    cdef floating loss_buffer[CHUNK]
    cdef floating grad_buffer[CHUNK]
    cdef floating hess_buffer[CHUNK]
    cdef double loss_lanes[LANES]
    cdef double weight_lanes[LANES]
    cdef const int8_t* integer_y = NULL
    cdef const floating* y = NULL
    cdef const floating* p
    cdef const floating* w
    cdef const floating* pw
    cdef floating* loss
    cdef floating* grad
    cdef floating* hess
    cdef Py_ssize_t chunk, n, k, cols = job.cols
    cdef bint has_weight = job.sample_weight.data != NULL
    cdef bint has_pos_weight_array = job.pos_weight.data != NULL
    cdef bint want_hess = job.hess.data != NULL
    cdef bint plain = (not has_weight and not has_pos_weight_array and job.pos_weight_value == 1
                       and job.keep == 1)
    # (see FB_FLOAT_LABELS_IN_PLACE)
    cdef bint labels_as_they_are = (FB_FLOAT_LABELS_IN_PLACE and plain
                                    and job.y_true.type == job.y_pred.type)
    cdef int bad = 0
    cdef bint binary
    for k in range(LANES):
        loss_lanes[k] = 0
        weight_lanes[k] = 0
    # absent weights read as constants from the buffers the array would fill
    if not has_weight:
        for k in range(CHUNK):
            w_buffer[k] = 1
    if not has_pos_weight_array:
        for k in range(CHUNK):
            pw_buffer[k] = <floating> job.pos_weight_value
    w = &w_buffer[0]
    pw = &pw_buffer[0]
    chunk = start
    while chunk < stop:
        n = min(<Py_ssize_t> CHUNK, stop - chunk)
        if labels_as_they_are:
            integer_y = NULL
        else:
            integer_y = load_binary_labels(&job.y_true, cols, chunk, n, integer_y_buffer, float_kind)
        if integer_y == NULL:  # soft labels (or invalid ones)
            y = load(&job.y_true, cols, chunk, n, y_buffer)
        p = load(&job.y_pred, cols, chunk, n, p_buffer)
        if has_weight:
            w = load(&job.sample_weight, cols, chunk, n, w_buffer)
        if has_pos_weight_array:
            pw = load(&job.pos_weight, cols, chunk, n, pw_buffer)
        loss = NULL
        grad = NULL
        hess = NULL
        if job.want_loss:
            if job.reduce_loss:
                loss = &loss_buffer[0]
            else:
                loss = destination(&job.loss, cols, chunk, n, loss_buffer)
        if job.want_grad:
            grad = destination(&job.grad, cols, chunk, n, grad_buffer)
        if want_hess:
            hess = destination(&job.hess, cols, chunk, n, hess_buffer)
        # one copy of the loops per label kind: integer (and 0/1 float)
        # labels as int8, widened inside the math loop where it costs next
        # to nothing; soft float labels in the compute type. GCC (12) leaves
        # the unweighted probability loops over soft float labels scalar ("no
        # vectype" for the label load: 95 against 1,000 M elements/s); the
        # weighted ones, reading the constant weight buffers, it vectorizes.
        # (0/1 float labels in place: see bce_chunk's label_is_one)
        binary = (not job.from_logits and job.keep == 1
                  and (labels_are_binary(integer_y, n) if integer_y != NULL else labels_are_binary(y, n)))
        if integer_y != NULL and plain:
            bad |= bce_chunk_plain(job, integer_y, p, w, pw, loss, grad, hess, n, binary)
        elif integer_y != NULL:
            bad |= bce_chunk_weighted(job, integer_y, p, w, pw, loss, grad, hess, n, binary)
        elif plain and (job.from_logits or binary):
            bad |= bce_chunk_plain(job, y, p, w, pw, loss, grad, hess, n, binary)
        else:
            bad |= bce_chunk_weighted(job, y, p, w, pw, loss, grad, hess, n, binary)
        if job.limited:
            # (the predictions' limits are checked by the math loops) after
            # the math loop, which brought the chunk into cache (first, this
            # loop would take the memory latency: 20% of a pass)
            if has_weight:
                bad |= outside(w, n, 0, <floating> job.weight_high)
            if has_pos_weight_array:
                bad |= outside(pw, n, 0, <floating> job.weight_high)
        if job.want_loss:
            if job.row_loss != NULL:
                add_to_rows(loss, chunk, n, cols, job.row_loss)
                if job.row_weight != NULL:
                    add_to_rows(w, chunk, n, cols, job.row_weight)
            if job.reduce_loss:
                add_to_lanes(loss, n, loss_lanes)
            elif loss == &loss_buffer[0]:
                scatter(&job.loss, cols, chunk, n, loss)
        if grad == &grad_buffer[0]:
            scatter(&job.grad, cols, chunk, n, grad)
        if hess == &hess_buffer[0]:
            scatter(&job.hess, cols, chunk, n, hess)
        if has_weight:
            add_to_lanes(w, n, weight_lanes)
        chunk += n
    partial[0] = sum_lanes(loss_lanes)
    partial[1] = sum_lanes(weight_lanes) if has_weight else <double> (stop - start)
    return bad


cdef inline void store_terms(floating label, floating prob, floating neg_log_p, floating neg_log_not_p,
                             floating w, floating pw, floating threshold, floating bins,
                             floating* sums, int* bin_of, Py_ssize_t j, bint every_sum) noexcept nogil:
    """Element j's terms of the report's sums: sums[k * EVAL_CHUNK + j] for
    each SUM_* k (without every_sum, evaluate_block reads not the counts and
    below-threshold terms: it derives those sums), and its bin
    min(floor(prob * bins), bins - 1) with bins. The terms not read are
    stored all the same except with cheap masked stores (FB_MASKED_STORES)."""
    cdef floating one = 1, zero = 0
    cdef floating wn = w * (one - label)
    cdef floating wp = w * label
    cdef bint above = prob >= threshold
    if every_sum or not FB_MASKED_STORES:
        sums[SUM_COUNT * EVAL_CHUNK + j] = one - label
        sums[(SUM_COUNT + 1) * EVAL_CHUNK + j] = label
        sums[SUM_BELOW * EVAL_CHUNK + j] = zero if above else wn
        sums[(SUM_BELOW + 1) * EVAL_CHUNK + j] = zero if above else wp
    sums[SUM_WEIGHT * EVAL_CHUNK + j] = wn
    sums[(SUM_WEIGHT + 1) * EVAL_CHUNK + j] = wp
    sums[SUM_LOSS * EVAL_CHUNK + j] = times_or_zero(wn, neg_log_not_p)
    sums[(SUM_LOSS + 1) * EVAL_CHUNK + j] = times_or_zero(wp * pw, neg_log_p)
    sums[SUM_BRIER * EVAL_CHUNK + j] = wn * prob * prob
    sums[(SUM_BRIER + 1) * EVAL_CHUNK + j] = wp * (one - prob) * (one - prob)
    sums[SUM_PROB * EVAL_CHUNK + j] = wn * prob
    sums[(SUM_PROB + 1) * EVAL_CHUNK + j] = wp * prob
    sums[SUM_ABOVE * EVAL_CHUNK + j] = wn if above else zero
    sums[(SUM_ABOVE + 1) * EVAL_CHUNK + j] = wp if above else zero
    if bins > zero or not FB_MASKED_STORES:
        bin_of[j] = bin_index(prob, bins)


cdef inline Py_ssize_t row_at(Py_ssize_t k) noexcept nogil:
    # Where sum k (SUM_* + class) lies in a row of partial while the kernel
    # runs: each class's sums side by side, so that the grouped loop adds an
    # element's weight, loss, Brier and probability terms in one 32-byte
    # operation; table_order puts them in the table's order at the end
    return (k & 1) * CLASS_SUMS + (k >> 1)


cdef inline int bin_index(floating prob, floating bins) noexcept nogil:
    # min(floor(prob * bins), bins - 1); a NaN (flagged invalid anyway) goes to bin 0
    cdef floating one = 1, zero = 0
    cdef floating scaled = prob * bins
    scaled = scaled if scaled < bins - one else bins - one
    return <int> (scaled if scaled > zero else zero)


cdef int evaluate_chunk_general(const Job* job, const label_t* y, const floating* p,
                                const floating* w, const floating* pw,
                                floating* sums, int* bin_of, Py_ssize_t n) noexcept nogil:
    """The per-element terms of the report's sums for n contiguous elements
    (see store_terms); nonzero if any input is invalid. One branch-free loop
    per input kind, so that each vectorizes. A function of its own (as
    bce_chunk_weighted): inlined into evaluate_block beside the other loops,
    it ran at 0.81x on AVX2."""
    cdef floating one = 1
    cdef floating eps = <floating> job.eps
    cdef floating threshold = <floating> job.threshold
    cdef floating bins = <floating> job.n_bins
    cdef floating label, prob, neg_log_p, neg_log_not_p
    cdef int bad = 0
    cdef Py_ssize_t j
    # what evaluate_block derives instead (see there)
    cdef bint every_sum = job.sample_weight.data != NULL or job.codes.data != NULL
    if job.from_logits:
        for j in range(n):
            label = <floating> y[j]
            bad |= invalid_inputs(label, p[j], w[j], pw[j], True)
            prob = logit_parts(p[j], &neg_log_p, &neg_log_not_p)
            store_terms(label, prob, neg_log_p, neg_log_not_p, w[j], pw[j], threshold, bins, sums, bin_of, j, every_sum)
    elif labels_are_binary(y, n):
        # one log: the term of the label's own class (the other one is
        # multiplied by zero)
        for j in range(n):
            label = <floating> y[j]
            bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
            neg_log_p = loss_probability_binary(label, clip_probability(p[j], eps), one, one)
            store_terms(label, p[j], neg_log_p, neg_log_p, w[j], pw[j], threshold, bins, sums, bin_of, j, every_sum)
    else:
        for j in range(n):
            label = <floating> y[j]
            bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
            probability_parts(p[j], eps, &neg_log_p, &neg_log_not_p)
            store_terms(label, p[j], neg_log_p, neg_log_not_p, w[j], pw[j], threshold, bins, sums, bin_of, j, every_sum)
    return bad


cdef inline void add_binary_sums(const Job* job, const floating* labels, const floating* probs, const floating* own,
                                 const floating* w, Py_ssize_t n, double* lanes) noexcept nogil:
    # evaluate_chunk_binary's sums, made in lanes of the compute type
    # straight from the labels, the probabilities and each element's
    # own-class loss, then added to the block's float64 lanes: the loss,
    # Brier, probability and above-threshold sums, each split by class, and
    # with weights the weights and below-threshold sums too (the caller adds
    # the class counts). No term is stored.
    cdef floating threshold = <floating> job.threshold
    cdef floating pos_weight = <floating> job.pos_weight_value
    # lanes of their own, which nothing else can alias, so that they stay
    # in registers (in the block's wide lanes they were loaded and stored
    # every step: 1.13x)
    cdef floating wide[N_SUMS * WIDE]
    # the counts are the caller's, and without weights the below-threshold
    # sums are derived (see evaluate_block)
    cdef Py_ssize_t first = SUM_LOSS if w == NULL else SUM_WEIGHT
    cdef Py_ssize_t last = SUM_BELOW if w == NULL else N_SUMS
    cdef Py_ssize_t i = 0, k
    for k in range(first * WIDE, last * WIDE):
        wide[k] = 0
    while i + WIDE <= n:  # (a constant trip count: one vector per sum)
        for k in range(WIDE):
            if w == NULL:
                add_binary_terms(labels[i + k], probs[i + k], own[i + k], threshold, pos_weight, wide, k)
            else:
                add_weighted_binary_terms(labels[i + k], probs[i + k], own[i + k], w[i + k], threshold,
                                          pos_weight, wide, k)
        i += WIDE
    for k in range(n - i):
        if w == NULL:
            add_binary_terms(labels[i + k], probs[i + k], own[i + k], threshold, pos_weight, wide, k)
        else:
            add_weighted_binary_terms(labels[i + k], probs[i + k], own[i + k], w[i + k], threshold,
                                      pos_weight, wide, k)
    for k in range(first, last):
        flush_wide_lanes(&wide[k * WIDE], &lanes[k * LANES])


cdef inline void add_weighted_binary_terms(floating label, floating prob, floating own, floating w,
                                           floating threshold, floating pos_weight, floating* wide,
                                           Py_ssize_t k) noexcept nogil:
    # one element's terms of add_binary_sums with sample weights, into lane
    # k of every sum: store_terms's arithmetic (the own-class loss stands
    # for both losses: the other one is multiplied by a zero weight)
    cdef floating one = 1, zero = 0
    cdef floating wn = w * (one - label)
    cdef floating wp = w * label
    cdef bint above = prob >= threshold
    wide[SUM_WEIGHT * WIDE + k] += wn
    wide[(SUM_WEIGHT + 1) * WIDE + k] += wp
    wide[SUM_LOSS * WIDE + k] += times_or_zero(wn, own)
    wide[(SUM_LOSS + 1) * WIDE + k] += times_or_zero(wp * pos_weight, own)
    wide[SUM_BRIER * WIDE + k] += wn * prob * prob
    wide[(SUM_BRIER + 1) * WIDE + k] += wp * (one - prob) * (one - prob)
    wide[SUM_PROB * WIDE + k] += wn * prob
    wide[(SUM_PROB + 1) * WIDE + k] += wp * prob
    wide[SUM_ABOVE * WIDE + k] += wn if above else zero
    wide[(SUM_ABOVE + 1) * WIDE + k] += wp if above else zero
    wide[SUM_BELOW * WIDE + k] += zero if above else wn
    wide[(SUM_BELOW + 1) * WIDE + k] += zero if above else wp


cdef inline void add_binary_terms(floating label, floating prob, floating own, floating threshold,
                                  floating pos_weight, floating* wide, Py_ssize_t k) noexcept nogil:
    # one element's terms of add_binary_sums, into lane k of each sum: a
    # class's term times its 0/1 indicator (exact, so each sum is one fused
    # multiply-add, bit for bit the product and the sum); the loss, possibly
    # inf, is selected
    cdef floating one = 1, zero = 0
    cdef floating negative = one - label
    cdef floating square = prob * prob
    cdef floating other = (one - prob) * (one - prob)
    cdef floating above = one if prob >= threshold else zero
    cdef Py_ssize_t i
    wide[SUM_LOSS * WIDE + k] += zero if label != zero else own
    wide[(SUM_LOSS + 1) * WIDE + k] += times_or_zero(pos_weight, own) if label != zero else zero
    i = SUM_BRIER * WIDE + k
    wide[i] = plus_exact_product(wide[i], square, negative)
    i = (SUM_BRIER + 1) * WIDE + k
    wide[i] = plus_exact_product(wide[i], other, label)
    i = SUM_PROB * WIDE + k
    wide[i] = plus_exact_product(wide[i], prob, negative)
    i = (SUM_PROB + 1) * WIDE + k
    wide[i] = plus_exact_product(wide[i], prob, label)
    i = SUM_ABOVE * WIDE + k
    wide[i] = plus_exact_product(wide[i], above, negative)
    i = (SUM_ABOVE + 1) * WIDE + k
    wide[i] = plus_exact_product(wide[i], above, label)


cdef inline void add_binary_group_terms(const Job* job, const int8_t* y, const floating* labels,
                                        const floating* probs, const floating* own, const floating* w,
                                        const int64_t* codes, const int* bin_of, double* partial,
                                        Py_ssize_t n) noexcept nogil:
    # evaluate_chunk_binary's sums with groups: each element's terms of its
    # own class added into its group's row in element order, as
    # evaluate_chunk_general's are, by its arithmetic (the own class's
    # weight w (1 - y) or w y is w exactly); the other class's terms are
    # zeros (finite weights: see evaluate_block). The same sums to the last
    # bit, with 7 additions an element instead of 14. w NULL: weights of 1;
    # bin_of: each element's offset in its group's row (with bins).
    cdef floating one = 1, zero = 0
    cdef floating threshold = <floating> job.threshold
    cdef floating pos_weight = <floating> job.pos_weight_value
    cdef floating weight
    cdef floating loss_term[EVAL_CHUNK]
    cdef floating brier_term[EVAL_CHUNK]
    cdef floating prob_term[EVAL_CHUNK]
    cdef floating above_term[EVAL_CHUNK]
    cdef floating below_term[EVAL_CHUNK]
    cdef Py_ssize_t stride = job.group_stride, j
    cdef double* row
    for j in range(n):
        weight = one if w == NULL else w[j]
        loss_term[j] = (times_or_zero(weight * pos_weight, own[j]) if labels[j] != zero
                        else times_or_zero(weight, own[j]))
        brier_term[j] = (weight * (one - probs[j]) * (one - probs[j]) if labels[j] != zero
                         else weight * probs[j] * probs[j])
        above_term[j] = weight if probs[j] >= threshold else zero
        if w != NULL:  # (without weights: the probabilities; the below-threshold sums are derived)
            prob_term[j] = weight * probs[j]
            below_term[j] = zero if probs[j] >= threshold else weight
    for j in range(n):
        row = partial + codes[j] * stride + CLASS_SUMS * y[j]
        if w != NULL:  # (without weights: the counts and below-threshold sums, see evaluate_block)
            row[row_at(SUM_COUNT)] += 1
        row[row_at(SUM_WEIGHT)] += 1 if w == NULL else w[j]
        row[row_at(SUM_LOSS)] += loss_term[j]
        row[row_at(SUM_BRIER)] += brier_term[j]
        row[row_at(SUM_PROB)] += probs[j] if w == NULL else prob_term[j]
        row[row_at(SUM_ABOVE)] += above_term[j]
        if w != NULL:
            row[row_at(SUM_BELOW)] += below_term[j]
    if job.n_bins:
        for j in range(n):
            row = partial + codes[j] * stride + bin_of[j]
            row[0] += 1 if w == NULL else w[j]
            row[1] += probs[j] if w == NULL else prob_term[j]


cdef int evaluate_chunk_binary(const Job* job, const int8_t* y, const floating* p, const floating* w,
                               const int64_t* codes, double* lanes, double* partial, Py_ssize_t n) noexcept nogil:
    """evaluate_chunk_general for the common case: 0/1 labels, pos_weight a
    scalar; sample weights w and groups (codes) each optional (NULL).
    Without groups the sums are made in registers and added to the block's
    float64 lanes (add_binary_sums: lanes), and with bins each element's
    count and probability go straight into its bin's row of partial; with
    groups each element's own-class terms go into its group's row of
    partial (add_binary_group_terms). The same values as
    evaluate_chunk_general's, in loops that each vectorize without
    spilling: the labels, the logs, the sums (or terms), the bins."""
    cdef floating one = 1
    cdef floating eps = <floating> job.eps
    cdef floating bins = <floating> job.n_bins
    cdef floating prob_buffer[EVAL_CHUNK]
    cdef floating own_buffer[EVAL_CHUNK]
    cdef floating label_buffer[EVAL_CHUNK]
    cdef uint8_t other_bits = 0
    cdef floating weight_negative, weight_positive
    cdef double* count
    cdef const floating* probs = p
    cdef int bin_of[EVAL_CHUNK]
    cdef int bad = 0
    cdef Py_ssize_t j
    cdef uint16_t positives = 0  # (at most EVAL_CHUNK)
    # The labels in the compute type for the sums' loop (beside int8 ones,
    # GCC vectorized it with 8-byte vectors), checked here: a bit but the
    # lowest set means neither 0 nor 1 (an OR of bytes, not of int lanes);
    # and counted (the unweighted sums' counts)
    for j in range(n):
        label_buffer[j] = <floating> y[j]
        other_bits |= (<uint8_t> y[j]) & 0xFE
        positives += y[j]
    bad = other_bits != 0
    if job.from_logits:
        probs = &prob_buffer[0]
        for j in range(n):
            bad |= invalid_logit(p[j])
            prob_buffer[j] = logit_own_parts(p[j], y[j] != 0, &own_buffer[j])
    else:
        for j in range(n):
            bad |= invalid_probability(p[j])
            own_buffer[j] = loss_probability_binary(<floating> y[j], clip_probability(p[j], eps), one, one)
    if w != NULL:
        for j in range(n):
            bad |= invalid_sample_weight(w[j])
    if job.n_bins:
        # where the element's count goes in its bin's row (of its group)
        for j in range(n):
            bin_of[j] = N_SUMS + bin_index(probs[j], bins) * N_BIN_SUMS + BIN_CLASS * y[j]
    if codes != NULL:
        if w == NULL:
            add_binary_group_terms(job, y, label_buffer, probs, own_buffer, NULL, codes, bin_of, partial, n)
        else:
            add_binary_group_terms(job, y, label_buffer, probs, own_buffer, w, codes, bin_of, partial, n)
        return bad
    # the class counts (without weights, also the weights), exact integers:
    # the same sums in any lanes
    if w == NULL:
        add_binary_sums(job, label_buffer, probs, own_buffer, NULL, n, lanes)
        lanes[SUM_WEIGHT * LANES] += <double> (n - positives)
        lanes[(SUM_WEIGHT + 1) * LANES] += <double> positives
    else:
        add_binary_sums(job, label_buffer, probs, own_buffer, w, n, lanes)
        lanes[SUM_COUNT * LANES] += <double> (n - positives)
        lanes[(SUM_COUNT + 1) * LANES] += <double> positives
    if job.n_bins:
        if w == NULL:
            for j in range(n):
                # (through a pointer: int arithmetic under -fwrapv is not
                # folded into the address; 1.07x)
                count = partial + bin_of[j]
                count[0] += 1
                count[1] += probs[j]
        else:
            for j in range(n):
                # both classes' terms, as the general loops add them
                count = partial + (bin_of[j] - BIN_CLASS * y[j])
                weight_negative = w[j] * (one - label_buffer[j])
                weight_positive = w[j] * label_buffer[j]
                count[0] += weight_negative
                count[1] += weight_negative * probs[j]
                count[2] += weight_positive
                count[3] += weight_positive * probs[j]
    return bad


cdef inline bint any_infinite(const floating* values, Py_ssize_t n) noexcept nogil:
    cdef int infinite = 0
    cdef Py_ssize_t j
    for j in range(n):
        infinite |= values[j] == INFINITY
    return infinite


cdef inline void add_to_row(double* row, const floating* sums, Py_ssize_t j,
                            Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    # element j's sums first..last (SUM_* // 2, both classes) from the
    # chunk's terms into its row, in the row's order (row_at: a class's sums
    # side by side): called with constant bounds, which GCC adds as vectors
    # (soft labels with groups 1.24x)
    cdef Py_ssize_t c, k
    for c in range(2):
        for k in range(first, last):
            row[row_at(2 * k + c)] += sums[(2 * k + c) * EVAL_CHUNK + j]


cdef int evaluate_block(const Job* job, floating* float_kind,
                        Py_ssize_t start, Py_ssize_t stop, double* partial) noexcept nogil:
    """One block [start, stop) of the report: its sums added into partial
    (n_groups rows of group_stride, zeroed); nonzero if any input is invalid."""
    cdef int8_t integer_y_buffer[EVAL_CHUNK]
    cdef floating y_buffer[EVAL_CHUNK]
    cdef floating p_buffer[EVAL_CHUNK]
    cdef floating w_buffer[EVAL_CHUNK]
    cdef floating pw_buffer[EVAL_CHUNK]
    cdef int64_t code_buffer[EVAL_CHUNK]
    cdef floating sums[N_SUMS * EVAL_CHUNK]
    cdef int bin_of[EVAL_CHUNK]
    cdef double lanes[N_SUMS * LANES]
    cdef floating wide[N_SUMS * WIDE]
    cdef const int8_t* integer_y = NULL
    cdef const floating* y = NULL
    cdef const floating* p
    cdef const floating* w
    cdef const floating* pw
    cdef const int64_t* codes = NULL
    cdef double* row
    cdef double* bin_row
    cdef Py_ssize_t chunk, n, j, k, cols = job.cols
    cdef bint has_weight = job.sample_weight.data != NULL
    cdef bint has_pos_weight_array = job.pos_weight.data != NULL
    cdef bint grouped = job.codes.data != NULL
    # 0/1 labels take evaluate_chunk_binary, with a scalar pos_weight (and
    # with groups, finite weights: an infinite one makes the other class's
    # terms NaN in the general loops, which the binary ones do not add)
    cdef bint binary_path = not has_pos_weight_array
    # the sums a chunk adds: without sample weights, the counts and the sums
    # below the threshold are derived at the block's end
    cdef Py_ssize_t first_sum = 0 if has_weight else SUM_WEIGHT
    cdef Py_ssize_t last_sum = N_SUMS if has_weight else SUM_BELOW
    cdef int bad = 0
    for k in range(N_SUMS * LANES):
        lanes[k] = 0
    for k in range(N_SUMS * WIDE):
        wide[k] = 0
    if not has_weight:
        for k in range(EVAL_CHUNK):
            w_buffer[k] = 1
    if not has_pos_weight_array:
        for k in range(EVAL_CHUNK):
            pw_buffer[k] = <floating> job.pos_weight_value
    w = &w_buffer[0]
    pw = &pw_buffer[0]
    chunk = start
    while chunk < stop:
        n = min(<Py_ssize_t> EVAL_CHUNK, stop - chunk)
        integer_y = load_binary_labels(&job.y_true, cols, chunk, n, integer_y_buffer, float_kind)
        if integer_y == NULL:  # soft labels (or invalid ones)
            y = load(&job.y_true, cols, chunk, n, y_buffer)
        p = load(&job.y_pred, cols, chunk, n, p_buffer)
        if has_weight:
            w = load(&job.sample_weight, cols, chunk, n, w_buffer)
        if has_pos_weight_array:
            pw = load(&job.pos_weight, cols, chunk, n, pw_buffer)
        if grouped:
            codes = load_codes(&job.codes, cols, chunk, n, code_buffer)
        if (binary_path and integer_y != NULL
                and not (grouped and has_weight and any_infinite(w, n))):
            bad |= evaluate_chunk_binary(job, integer_y, p, w if has_weight else NULL, codes, lanes, partial, n)
            chunk += n
            continue
        if integer_y != NULL:
            bad |= evaluate_chunk_general(job, integer_y, p, w, pw, sums, bin_of, n)
        else:
            bad |= evaluate_chunk_general(job, y, p, w, pw, sums, bin_of, n)
        if grouped:
            # element by element into its group's row (in element order)
            for j in range(n):
                row = partial + codes[j] * job.group_stride
                if has_weight:
                    add_to_row(row, sums, j, 0, CLASS_SUMS)
                else:
                    add_to_row(row, sums, j, SUM_WEIGHT // 2, SUM_BELOW // 2)
        else:
            for k in range(first_sum, last_sum):
                add_to_wide_lanes(&sums[k * EVAL_CHUNK], n, &wide[k * WIDE])
                flush_wide_lanes(&wide[k * WIDE], &lanes[k * LANES])
        if job.n_bins:
            for j in range(n):
                row = partial + (codes[j] * job.group_stride if grouped else 0)
                bin_row = row + N_SUMS + bin_of[j] * N_BIN_SUMS
                bin_row[0] += sums[SUM_WEIGHT * EVAL_CHUNK + j]
                bin_row[1] += sums[SUM_PROB * EVAL_CHUNK + j]
                bin_row[2] += sums[(SUM_WEIGHT + 1) * EVAL_CHUNK + j]
                bin_row[3] += sums[(SUM_PROB + 1) * EVAL_CHUNK + j]
        chunk += n
    if not grouped:
        for k in range(N_SUMS):
            partial[row_at(k)] = sum_lanes(&lanes[k * LANES])
    # without sample weights the counts are the weights, and the sums below
    # the threshold are the weights minus those above (exact for 0/1
    # labels: sums of integers), in each group's row
    if not has_weight:
        row = partial
        while row < partial + job.partial_size:
            for k in range(2):
                row[row_at(SUM_COUNT + k)] = row[row_at(SUM_WEIGHT + k)]
                row[row_at(SUM_BELOW + k)] = row[row_at(SUM_WEIGHT + k)] - row[row_at(SUM_ABOVE + k)]
            row += job.group_stride
    return bad


cdef int elementwise_block(const Job* job, floating* float_kind, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """One block [start, stop) of an element-wise function, y_pred -> loss."""
    cdef floating x_buffer[CHUNK]
    cdef floating out_buffer[CHUNK]
    cdef const floating* x
    cdef floating* out
    cdef Py_ssize_t chunk, n, j, cols = job.cols
    chunk = start
    while chunk < stop:
        n = min(<Py_ssize_t> CHUNK, stop - chunk)
        x = load(&job.y_pred, cols, chunk, n, x_buffer)
        out = destination(&job.loss, cols, chunk, n, out_buffer)
        if job.function == FUNCTION_SIGMOID:
            for j in range(n):
                out[j] = sigmoid_(x[j])
        elif job.function == FUNCTION_LOG_SIGMOID:
            for j in range(n):
                out[j] = log_sigmoid_(x[j])
        else:
            for j in range(n):
                out[j] = softplus_(x[j])
        if out == &out_buffer[0]:
            scatter(&job.loss, cols, chunk, n, out)
        chunk += n
    return 0


cdef int multiclass_block(const Job* job, floating* float_kind, Py_ssize_t start, Py_ssize_t stop,
                          double* partial) noexcept nogil:
    """Rows start // cols to stop // cols (blocks hold whole rows) of the
    multi-class log loss: y_pred is (n, k), job.codes the int64 class of each
    row, job.sample_weight float64 or absent. One read of each row: its sum
    (the not-probabilities check) and its validity, then the true class's
    probability clipped to [eps, 1 - eps] in the input's type, as
    scikit-learn clips, and its -log in float64. Never a one-hot matrix."""
    cdef Py_ssize_t cols = job.cols, i, j
    cdef Py_ssize_t col_stride = job.y_pred.col_stride
    cdef floating eps = <floating> job.eps
    cdef floating high = <floating> job.keep
    cdef floating value, chosen
    cdef const char* row
    cdef double total, w = 1, loss_sum = 0, weight_sum = 0
    cdef double bad_probability = 0, bad_code = 0, not_one = 0, bad_weight = 0
    cdef int64_t code
    cdef bint has_weight = job.sample_weight.data != NULL
    cdef bint contiguous = col_stride == sizeof(floating)
    for i in range(start // cols, stop // cols):
        row = job.y_pred.data + i * job.y_pred.row_stride
        total = 0
        # (NaN fails both comparisons: it counts as invalid)
        if contiguous:
            for j in range(cols):
                value = (<const floating*> row)[j]
                total += value
                bad_probability += not (value >= 0 and value <= 1)
        else:
            for j in range(cols):
                value = (<const floating*> (row + j * col_stride))[0]
                total += value
                bad_probability += not (value >= 0 and value <= 1)
        not_one += (total - 1 > job.sum_tolerance) or (1 - total > job.sum_tolerance)
        code = (<const int64_t*> (job.codes.data + i * job.codes.row_stride))[0]
        if code < 0 or code >= cols:
            bad_code += 1
            continue
        chosen = (<const floating*> (row + code * col_stride))[0]
        chosen = eps if chosen < eps else (high if chosen > high else chosen)
        if has_weight:
            w = (<const double*> (job.sample_weight.data + i * job.sample_weight.row_stride))[0]
            bad_weight += not (w >= 0 and w < INFINITY)
            weight_sum += w
        loss_sum -= w * log(<double> chosen)
    partial[MC_LOSS] = loss_sum
    partial[MC_WEIGHT] = weight_sum if has_weight else <double> (stop // cols - start // cols)
    partial[MC_BAD_PROBABILITY] = bad_probability
    partial[MC_BAD_CODE] = bad_code
    partial[MC_NOT_ONE] = not_one
    partial[MC_BAD_WEIGHT] = bad_weight
    return 0


cdef inline int process_block(const Job* job, floating* float_kind,
                              Py_ssize_t start, Py_ssize_t stop, double* partial) noexcept nogil:
    if job.mode == MODE_EVALUATE:
        memset(partial, 0, job.partial_size * sizeof(double))
        return evaluate_block(job, float_kind, start, stop, partial)
    if job.mode == MODE_ELEMENTWISE:
        return elementwise_block(job, float_kind, start, stop)
    if job.mode == MODE_MULTICLASS:
        return multiclass_block(job, float_kind, start, stop, partial)
    return bce_block(job, float_kind, start, stop, partial)


cdef Py_ssize_t first_invalid(const Job* job, floating* float_kind,
                              Py_ssize_t start, Py_ssize_t stop, int* operand) noexcept nogil:
    """Linear index of the first invalid element in [start, stop), and which operand; -1 if none."""
    cdef floating y_buffer[CHUNK]
    cdef floating p_buffer[CHUNK]
    cdef floating w_buffer[CHUNK]
    cdef floating pw_buffer[CHUNK]
    cdef const floating* y
    cdef const floating* p
    cdef const floating* w
    cdef const floating* pw
    cdef Py_ssize_t chunk, n, j, cols = job.cols
    chunk = start
    while chunk < stop:
        n = min(<Py_ssize_t> CHUNK, stop - chunk)
        y = load(&job.y_true, cols, chunk, n, y_buffer)
        p = load(&job.y_pred, cols, chunk, n, p_buffer)
        w = load(&job.sample_weight, cols, chunk, n, w_buffer) if job.sample_weight.data != NULL else NULL
        pw = load(&job.pos_weight, cols, chunk, n, pw_buffer) if job.pos_weight.data != NULL else NULL
        for j in range(n):
            operand[0] = 0
            if invalid_label(y[j]):
                return chunk + j
            operand[0] = 1
            if invalid_logit(p[j]) if job.from_logits else invalid_probability(p[j]):
                return chunk + j
            if job.limited and outside(&p[j], 1, <floating> job.low, <floating> job.high):
                return chunk + j
            operand[0] = 2
            if w != NULL and (invalid_sample_weight(w[j])
                              or job.limited and outside(&w[j], 1, 0, <floating> job.weight_high)):
                return chunk + j
            operand[0] = 3
            if pw != NULL and (invalid_pos_weight(pw[j])
                               or job.limited and outside(&pw[j], 1, 0, <floating> job.weight_high)):
                return chunk + j
        chunk += n
    operand[0] = -1
    return -1


cdef Py_ssize_t run_blocks(const Job* job, floating* float_kind,
                           int num_threads, double* totals, int* bad_operand) except -2 nogil:
    """The whole pass: blocks of job.block_len elements, in parallel rounds;
    each block's partials are added into totals (job.partial_size float64s,
    zeroed by the caller) in block order, so that totals do not depend on the
    number of threads. Returns the linear index of the first invalid element
    (its operand in bad_operand), or -1."""
    cdef Py_ssize_t size = job.rows * job.cols, block_len = job.block_len
    cdef Py_ssize_t n_blocks = (size + block_len - 1) // block_len
    cdef Py_ssize_t partial_size = job.partial_size
    cdef Py_ssize_t per_round = min(<Py_ssize_t> BLOCKS_PER_ROUND,
                                    max(<Py_ssize_t> 1, PARTIALS_PER_ROUND // max(partial_size, <Py_ssize_t> 1)))
    cdef Py_ssize_t first, count, b, k, start, bad_block = -1, bad_index = -1
    cdef double* partials
    cdef int* bad_blocks
    count = min(n_blocks, per_round)
    partials = <double*> malloc(max(count * partial_size, <Py_ssize_t> 1) * sizeof(double))
    bad_blocks = <int*> malloc(max(count, <Py_ssize_t> 1) * sizeof(int))
    if partials == NULL or bad_blocks == NULL:
        free(partials)
        free(bad_blocks)
        with gil:
            raise MemoryError()
    first = 0
    while first < n_blocks:
        count = min(n_blocks - first, per_round)
        if num_threads <= 1 or count == 1 or fb_forked_after_parallel():
            for b in range(count):
                start = (first + b) * block_len
                bad_blocks[b] = process_block(job, float_kind, start,
                                              min(start + block_len, size), &partials[b * partial_size])
        else:
            # after this, a forked child runs serial (see kernel_threads)
            fb_note_parallel()
            for b in prange(count, schedule="static", num_threads=num_threads):
                start = (first + b) * block_len
                bad_blocks[b] = process_block(job, float_kind, start,
                                              min(start + block_len, size), &partials[b * partial_size])
        # combine in block order: the same sums for any thread count
        for b in range(count):
            if bad_blocks[b]:
                bad_block = first + b
                break
            for k in range(partial_size):
                totals[k] += partials[b * partial_size + k]
        if bad_block >= 0:
            start = bad_block * block_len
            bad_index = first_invalid(job, float_kind, start,
                                      min(start + block_len, size), bad_operand)
            break
        first += count
    free(partials)
    free(bad_blocks)
    if bad_block >= 0 and bad_index < 0:
        with gil:
            raise RuntimeError("fastbce: a block was flagged invalid but no invalid element was found")
    return bad_index


cdef Job new_job(int mode, Py_ssize_t rows, Py_ssize_t cols) noexcept:
    """A Job with every operand absent and every option at its neutral value."""
    cdef Job job
    memset(&job, 0, sizeof(Job))
    job.mode = mode
    job.rows = rows
    job.cols = cols
    job.block_len = BLOCK
    job.pos_weight_value = 1
    job.keep = 1
    job.grad_scale = 1
    return job


cdef int set_limits(Job* job, limits) except -1:
    """Narrower valid ranges, on top of the defaults (probabilities in
    [0, 1], logits not NaN, weights >= 0, pos_weights > 0): limits = (low,
    high, weight_high), values exact in the compute type (the kernel compares
    in it; for logits symmetric, low = -high). The predictions' range, the
    defaults' or the limits', goes to job.low/high, which the math loops
    compare against (job.from_logits must be set first); the weights' limit
    is checked per chunk while it is in cache. fastbce.torch asks for the
    ranges where PyTorch's result is fastbce's (docs/kernels.md)."""
    if limits is not None:
        job.limited = True
        job.low, job.high, job.weight_high = limits
        if job.from_logits and job.low != -job.high:
            raise ValueError(f"limits for logits must be symmetric, not {limits}")
        if not job.from_logits:
            job.low, job.high = max(job.low, 0.0), min(job.high, 1.0)
    elif job.from_logits:
        job.low, job.high = -INFINITY, INFINITY
    else:
        job.low, job.high = 0, 1
    return 0


cdef inline int outside(const floating* values, Py_ssize_t n, floating low, floating high) noexcept nogil:
    # nonzero if a value is outside [low, high] (NaN is)
    cdef int bad = 0
    cdef Py_ssize_t j
    for j in range(n):
        bad |= not (values[j] >= low and values[j] <= high)
    return bad


cdef int set_predictions(Job* job, object y_pred, str name="y_pred") except -1:
    """job.y_pred (and the job's shape) from a 2-D float32/float64 array."""
    if not isinstance(y_pred, cnp.ndarray) or cnp.PyArray_NDIM(<cnp.ndarray> y_pred) != 2:
        raise TypeError(f"{name} must be a 2-D NumPy array")
    job.rows = cnp.PyArray_DIM(<cnp.ndarray> y_pred, 0)
    job.cols = cnp.PyArray_DIM(<cnp.ndarray> y_pred, 1)
    set_operand(&job.y_pred, y_pred, job.rows, job.cols, name)
    if job.y_pred.type != TYPE_FLOAT and job.y_pred.type != TYPE_DOUBLE:
        raise TypeError(f"{name} must be float32 or float64, not {y_pred.dtype}")
    return 0


cdef Py_ssize_t run_job(const Job* job, int num_threads, double* totals, int* bad_operand) except -2:
    """run_blocks in the predictions' float type, without the GIL."""
    cdef Py_ssize_t bad_index
    cdef int threads = kernel_threads(num_threads)
    with nogil:
        if job.y_pred.type == TYPE_FLOAT:
            bad_index = run_blocks(job, <float*> NULL, threads, totals, bad_operand)
        else:
            bad_index = run_blocks(job, <double*> NULL, threads, totals, bad_operand)
    return bad_index


def bce_kernel(y_true, y_pred, sample_weight, pos_weight, loss_out, grad_out, hess_out,
               bint from_logits, bint want_loss, double pos_weight_value, double eps,
               double label_smoothing, double grad_scale, int num_threads,
               row_loss=None, row_weight=None, limits=None):
    """One fused pass over 2-D strided NumPy arrays of one shape (rows, cols).

    y_pred is float32 or float64 (the compute type); y_true any bool,
    integer or float type (read in its own type); sample_weight float32 or
    float64 (or any of the label types); pos_weight likewise. sample_weight /
    pos_weight may be None (weight 1 / pos_weight_value). With want_loss and
    loss_out None, the loss is summed; with loss_out, it is written there.
    With grad_out, the gradient times grad_scale is written there; with
    hess_out too (logits only), the hessian times grad_scale. Outputs have
    y_pred's dtype. With row_loss (zeroed float64, one per row; rows of at
    most BLOCK elements), the summed loss is also added up per row, and with
    row_weight the weights. limits = (low, high, weight_high) narrows the
    valid values (see set_limits). Returns (loss_sum, weight_sum, bad_index,
    bad_operand): bad_index is the linear (C-order) index of the first
    invalid element or -1, and bad_operand the name of the argument that
    holds it.
    """
    cdef Job job = new_job(MODE_BCE, 0, 0)
    cdef double[2] totals = [0, 0]
    cdef Py_ssize_t bad_index
    cdef int bad_operand = -1
    set_predictions(&job, y_pred)
    cdef Py_ssize_t rows = job.rows, cols = job.cols
    cdef int own = job.y_pred.type
    set_operand(&job.y_true, y_true, rows, cols, "y_true")
    set_operand(&job.sample_weight, sample_weight, rows, cols, "sample_weight")
    set_operand(&job.pos_weight, pos_weight, rows, cols, "pos_weight")
    set_operand(&job.loss, loss_out, rows, cols, "loss_out", own, True)
    set_operand(&job.grad, grad_out, rows, cols, "grad_out", own, True)
    set_operand(&job.hess, hess_out, rows, cols, "hess_out", own, True)
    if rows * cols == 0:
        return 0.0, 0.0, -1, None
    job.partial_size = 2
    job.from_logits = from_logits
    set_limits(&job, limits)
    job.want_loss = want_loss
    job.reduce_loss = want_loss and loss_out is None
    job.want_grad = grad_out is not None
    job.pos_weight_value = pos_weight_value
    job.eps = eps
    job.keep = 1.0 - label_smoothing
    job.half_smoothing = label_smoothing / 2.0
    job.grad_scale = grad_scale
    cdef Operand row_sums
    if row_loss is not None:
        set_operand(&row_sums, row_loss.reshape(1, -1), 1, rows, "row_loss", TYPE_DOUBLE, True)
        if not job.reduce_loss or cols > BLOCK or row_sums.col_stride != sizeof(double):
            raise ValueError("bce_kernel: row sums need a summed loss, one contiguous float64 per row "
                             "and rows of at most BLOCK")
        job.row_loss = <double*> row_sums.data
        if row_weight is not None:
            set_operand(&row_sums, row_weight.reshape(1, -1), 1, rows, "row_weight", TYPE_DOUBLE, True)
            if sample_weight is None or row_sums.col_stride != sizeof(double):
                raise ValueError("bce_kernel: row_weight needs sample weights and one contiguous float64 per row")
            job.row_weight = <double*> row_sums.data
        # whole rows per block
        job.block_len = (BLOCK // cols) * cols
    bad_index = run_job(&job, num_threads, totals, &bad_operand)
    return totals[0], totals[1], bad_index, (OPERAND_NAMES[bad_operand] if bad_index >= 0 else None)


def evaluate_kernel(y_true, y_pred, sample_weight, pos_weight, codes, sums,
                    bint from_logits, double pos_weight_value, double eps, double threshold,
                    Py_ssize_t n_bins, int num_threads):
    """The evaluation report's sums (fastbce/_evaluate.py) in one pass.

    Operands as bce_kernel's; codes (int64 group slot of each element, each
    in [0, n_groups)) may be None for one group. sums, a zeroed C-contiguous
    float64 array, has one row per group: N_SUMS sums (SUM_*), then
    N_BIN_SUMS per bin. Returns (bad_index, bad_operand) as bce_kernel.
    """
    cdef Job job = new_job(MODE_EVALUATE, 0, 0)
    cdef Py_ssize_t bad_index
    cdef int bad_operand = -1
    set_predictions(&job, y_pred)
    cdef Py_ssize_t rows = job.rows, cols = job.cols
    set_operand(&job.y_true, y_true, rows, cols, "y_true")
    set_operand(&job.sample_weight, sample_weight, rows, cols, "sample_weight")
    set_operand(&job.pos_weight, pos_weight, rows, cols, "pos_weight")
    set_operand(&job.codes, codes, rows, cols, "codes", TYPE_INT64)
    if (not isinstance(sums, cnp.ndarray) or sums.dtype != float or sums.ndim != 2
            or not sums.flags.c_contiguous or not sums.flags.writeable
            or sums.shape[1] != N_SUMS + N_BIN_SUMS * n_bins or (codes is None and sums.shape[0] != 1)):
        raise ValueError("evaluate_kernel: sums must be a writable C-contiguous float64 array of the right shape")
    if rows * cols == 0:
        return -1, None
    job.from_logits = from_logits
    job.pos_weight_value = pos_weight_value
    job.eps = eps
    job.threshold = threshold
    job.n_bins = n_bins
    job.group_stride = sums.shape[1]
    job.partial_size = sums.shape[0] * sums.shape[1]
    # blocks at least as long as their partials, so that zeroing and adding
    # them costs at most about one operation per element
    job.block_len = max(<Py_ssize_t> BLOCK, (job.partial_size + CHUNK - 1) // CHUNK * CHUNK)
    bad_index = run_job(&job, num_threads, <double*> cnp.PyArray_DATA(<cnp.ndarray> sums), &bad_operand)
    table_order(<double*> cnp.PyArray_DATA(<cnp.ndarray> sums), sums.shape[0], &job)
    return bad_index, (OPERAND_NAMES[bad_operand] if bad_index >= 0 else None)


cdef void table_order(double* sums, Py_ssize_t rows, const Job* job) noexcept nogil:
    # Each row from the order its sums are made in (row_at: a class's sums
    # side by side; each bin's weight and p of a class side by side, so that
    # an element adds both in one 16-byte operation, 1.12x with bins=100)
    # to the table's: the classes' parts of each sum side by side, and each
    # bin's weights, then its p sums
    cdef Py_ssize_t row, k
    cdef double* at
    cdef double made[N_SUMS]
    cdef double p_negative
    for row in range(rows):
        at = sums + row * job.group_stride
        for k in range(N_SUMS):
            made[k] = at[k]
        for k in range(N_SUMS):
            at[k] = made[row_at(k)]
        for k in range(job.n_bins):
            at = sums + row * job.group_stride + N_SUMS + k * N_BIN_SUMS
            p_negative = at[1]
            at[1] = at[BIN_CLASS]
            at[BIN_CLASS] = p_negative


def multiclass_kernel(codes, y_pred, sample_weight, double eps, double high,
                      double sum_tolerance, int num_threads):
    """The multi-class log loss in one pass over y_pred, a 2-D float32 or
    float64 array (n, k) of any strides: codes is a 1-D C-contiguous int64
    array, the class (column) of each row, sample_weight a 1-D contiguous
    float64 array or None. Each row's probability of its class is clipped to
    [eps, high] in y_pred's type. Returns a dict of MULTICLASS_SUM_NAMES:
    the loss and weight sums (float64, added per block in block order: the
    same for any thread count) and the counts of invalid probabilities,
    codes and weights and of rows whose sum is off 1 by more than
    sum_tolerance (only rows with a valid code add to the sums)."""
    cdef Job job = new_job(MODE_MULTICLASS, 0, 0)
    cdef double totals[MC_PARTIALS]
    cdef int bad_operand = -1
    cdef Py_ssize_t k
    set_predictions(&job, y_pred)
    cdef Py_ssize_t rows = job.rows, cols = job.cols
    for name, array in (("codes", codes), ("sample_weight", sample_weight)):
        if array is not None and (not isinstance(array, cnp.ndarray) or array.ndim != 1
                                  or array.shape[0] != rows or not array.flags.c_contiguous):
            raise ValueError(f"multiclass_kernel: {name} must be a contiguous 1-D array of {rows} values")
    set_operand(&job.codes, codes.reshape(-1, 1), rows, 1, "codes", TYPE_INT64)
    set_operand(&job.sample_weight, None if sample_weight is None else sample_weight.reshape(-1, 1),
                rows, 1, "sample_weight", TYPE_DOUBLE)
    for k in range(MC_PARTIALS):
        totals[k] = 0
    if rows * cols == 0:
        return dict(zip(MULTICLASS_SUM_NAMES, [0.0] * MC_PARTIALS))
    job.eps = eps
    job.keep = high
    job.sum_tolerance = sum_tolerance
    job.partial_size = MC_PARTIALS
    # whole rows per block, about BLOCK elements (one row when a row is longer)
    job.block_len = max(<Py_ssize_t> 1, <Py_ssize_t> BLOCK // cols) * cols
    run_job(&job, num_threads, totals, &bad_operand)
    return {name: totals[k] for k, name in enumerate(MULTICLASS_SUM_NAMES)}


def elementwise_kernel(str name, x, out, int num_threads):
    """out = name(x) element-wise for name in ELEMENTWISE_FUNCTIONS (NaN in,
    NaN out); x and out 2-D of one shape and float type."""
    cdef Job job = new_job(MODE_ELEMENTWISE, 0, 0)
    cdef int bad_operand = -1
    job.function = ELEMENTWISE_FUNCTIONS[name]
    set_predictions(&job, x, "x")
    set_operand(&job.loss, out, job.rows, job.cols, "out", job.y_pred.type, True)
    if job.rows * job.cols == 0:
        return
    run_job(&job, num_threads, NULL, &bad_operand)


ctypedef fused group_t:
    int32_t
    int64_t


cdef void range_of(const group_t* values, Py_ssize_t n, int64_t* low, int64_t* high) noexcept nogil:
    # both in one pass (NumPy's min() and max() read the array twice)
    cdef group_t smallest = values[0], largest = values[0]
    cdef Py_ssize_t j
    for j in range(n):
        smallest = values[j] if values[j] < smallest else smallest
        largest = values[j] if values[j] > largest else largest
    low[0] = smallest
    high[0] = largest


def integer_range(cnp.ndarray values):
    """(smallest, largest) of a non-empty C-contiguous int32 or int64 array,
    in one pass (the group codes of fastbce.evaluate)."""
    cdef int64_t low = 0, high = 0
    cdef Py_ssize_t n = cnp.PyArray_SIZE(values)
    cdef const void* data = cnp.PyArray_DATA(values)
    if n == 0 or not cnp.PyArray_IS_C_CONTIGUOUS(values):
        raise ValueError("integer_range: a non-empty C-contiguous array")
    cdef int kind = type_of(values, "integer_range")
    if not cnp.PyTypeNum_ISSIGNED(cnp.PyArray_TYPE(values)) or kind not in (TYPE_INT32, TYPE_INT64):
        raise TypeError(f"integer_range: int32 or int64, not {values.dtype}")
    if kind == TYPE_INT64:
        with nogil:
            range_of(<const int64_t*> data, n, &low, &high)
    else:
        with nogil:
            range_of(<const int32_t*> data, n, &low, &high)
    return low, high


include "_vmath_eval.pxi"
