# The loops of fastbce: one fused pass over the data, in fixed-size blocks.
#
# This file is compiled once per CPU target (_kernels_<target>.pyx include
# it; setup.py gives each its flags) and fastbce/_kernels.py picks the best
# one at import.
#
# The per-element math lives in _math.pxd; this module only walks the data.
# Operands arrive as 2-D strided views (the Python layer broadcasts and
# coalesces any N-d input into rows x cols). The pass is cut into blocks of
# BLOCK elements, each block into chunks of CHUNK elements; a chunk is read in
# place when it is contiguous, else gathered into a small buffer, so that the
# math always runs over contiguous memory. Each block yields one float64
# partial sum; partials are added in block order, so a reduced result does not
# depend on the number of threads. Invalid values are flagged in the same pass;
# only the first flagged block is scanned again, to name the first bad element.
from cython.parallel cimport prange
from libc.stdint cimport uint8_t, int8_t, uint16_t, int16_t, int32_t, int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from fastbce._math cimport (
    floating, half_to_float, smooth_label, clip_probability, loss_probability, grad_probability,
    loss_probability_binary, grad_probability_binary,
    loss_logit, grad_logit, loss_and_grad_logit, invalid_label, invalid_probability, invalid_logit,
    invalid_sample_weight, invalid_pos_weight, times_or_zero, sigmoid_, softplus_, log_sigmoid_,
    grad_hess_logit, logit_parts, probability_parts,
)

cdef extern from "_omp.h" nogil:
    int fb_openmp_enabled()
    int fb_max_threads()

# float16 labels arrive as their 16 bits (the Python layer views them as
# uint16; unsigned integer labels are viewed as the signed type of their
# width, which keeps 0 and 1 and makes every other value invalid)
ctypedef uint16_t half_bits

# Labels are read in their own type, never converted as a whole: narrow
# labels (bool is read as uint8) cut memory traffic.
ctypedef fused label_t:
    uint8_t
    int8_t
    int16_t
    int32_t
    int64_t
    half_bits
    float
    double


# Sample weights are read in their own float type too (float64 weights beside
# float32 predictions are common, and a converted copy would be full-size).
ctypedef fused weight_t:
    float
    double


cdef inline floating label_value(label_t y, const floating* kind) noexcept nogil:
    if label_t is half_bits:
        return <floating> half_to_float(y)
    else:
        return <floating> y

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
    N_BIN_SUMS = 4           # per bin: w (1 - y), w y, w (1 - y) p, w y p
    EVAL_CHUNK = 256         # elements per evaluation chunk: its N_SUMS buffers stay in L1
                             # (and a float32 lane adds up at most 16 terms)
#: longest row that bce_kernel sums per row (row_loss=)
MAX_ROW_SUM_LENGTH = BLOCK
SUM_NAMES = ("count", "weight", "loss", "brier", "prob", "above", "below")
BIN_SUM_NAMES = ("bin_weight", "bin_prob")

# which argument holds the first invalid element
OPERAND_NAMES = ("y_true", "y_pred", "sample_weight", "pos_weight")


cdef struct Strided:
    char* data               # NULL when the operand is absent
    Py_ssize_t row_stride    # in bytes
    Py_ssize_t col_stride


cdef struct Job:
    int mode                 # MODE_*
    Strided y_true, y_pred, sample_weight, pos_weight, loss, grad, hess, codes
    Py_ssize_t rows, cols
    Py_ssize_t block_len     # elements per block, fixed by the inputs (never by the thread count)
    Py_ssize_t partial_size  # float64 partials per block
    bint from_logits
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


def openmp_enabled():
    """True when the kernels were built with OpenMP."""
    return bool(fb_openmp_enabled())


def max_threads():
    """OpenMP's default thread count (honours OMP_NUM_THREADS and threadpoolctl)."""
    return fb_max_threads()


cdef inline Strided strided_of(char* data, Py_ssize_t row_stride, Py_ssize_t col_stride) noexcept nogil:
    cdef Strided s
    s.data = data
    s.row_stride = row_stride
    s.col_stride = col_stride
    return s


cdef inline bint in_place(const Strided* op, Py_ssize_t cols, Py_ssize_t start,
                          Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    # the n elements from linear index `start` lie contiguous in memory
    return start % cols + n <= cols and op.col_stride == itemsize


cdef inline label_t* address(const Strided* op, Py_ssize_t cols, Py_ssize_t start,
                             label_t* kind) noexcept nogil:
    cdef Py_ssize_t row = start // cols
    return <label_t*> (op.data + row * op.row_stride + (start - row * cols) * op.col_stride)


cdef inline label_t* gather(const Strided* op, Py_ssize_t cols, Py_ssize_t start,
                            Py_ssize_t n, label_t* buffer) noexcept nogil:
    """The n elements from linear index `start`: in place when contiguous, else copied to buffer."""
    if in_place(op, cols, start, n, sizeof(label_t)):
        return address(op, cols, start, buffer)
    cdef Py_ssize_t row = start // cols, col = start - row * cols, done = 0, run, j
    cdef const char* src
    while done < n:
        run = min(n - done, cols - col)
        src = op.data + row * op.row_stride + col * op.col_stride
        for j in range(run):
            buffer[done + j] = (<const label_t*> (src + j * op.col_stride))[0]
        done += run
        row += 1
        col = 0
    return buffer


cdef inline const floating* gather_converted(const Strided* op, Py_ssize_t cols, Py_ssize_t start,
                                            Py_ssize_t n, floating* buffer,
                                            const weight_t* kind) noexcept nogil:
    """Like gather, from an operand of another float type, converted into buffer."""
    if sizeof(weight_t) == sizeof(floating):
        return <const floating*> gather(op, cols, start, n, <weight_t*> buffer)
    cdef weight_t source[CHUNK]
    cdef const weight_t* values = gather(op, cols, start, n, source)
    cdef Py_ssize_t j
    for j in range(n):
        buffer[j] = <floating> values[j]
    return buffer


cdef inline floating* destination(const Strided* op, Py_ssize_t cols, Py_ssize_t start,
                                  Py_ssize_t n, floating* buffer) noexcept nogil:
    """Where to write n results from linear index `start`: in place when contiguous, else buffer."""
    if in_place(op, cols, start, n, sizeof(floating)):
        return address(op, cols, start, buffer)
    return buffer


cdef inline void scatter(const Strided* op, Py_ssize_t cols, Py_ssize_t start,
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


cdef inline int invalid_inputs(floating label, floating prediction, floating w, floating pw,
                               bint from_logits) noexcept nogil:
    return (invalid_label(label)
            | (invalid_logit(prediction) if from_logits else invalid_probability(prediction))
            | invalid_sample_weight(w) | invalid_pos_weight(pw))


cdef inline bint labels_are_binary(const label_t* y, const floating* kind, Py_ssize_t n) noexcept nogil:
    cdef floating one = 1, zero = 0, label
    cdef int binary = 1
    cdef Py_ssize_t j
    for j in range(n):
        label = label_value(y[j], kind)
        binary &= (label == zero) | (label == one)
    return binary


cdef inline int bce_chunk(const Job* job, const label_t* y, const floating* p,
                          const floating* w, const floating* pw,
                          floating* loss, floating* grad, floating* hess, Py_ssize_t n,
                          bint plain) noexcept nogil:
    """Loss and/or gradient of n contiguous elements; nonzero if any input is invalid.

    One loop per (input kind, outputs): each is branch-free, so that the
    compiler vectorizes it. `plain` (a constant at each call: no weights,
    pos_weight 1, no smoothing) reads neither weight buffer and lets the
    weighting fold away; the values are bit for bit the weighted ones with
    weights 1.
    """
    cdef floating one = 1
    cdef floating eps = <floating> job.eps
    cdef floating keep = <floating> job.keep
    cdef floating half_smoothing = <floating> job.half_smoothing
    cdef floating scale = <floating> job.grad_scale
    cdef floating label, prob, weight, positive_weight, unscaled_grad, unscaled_hess
    cdef int bad = 0
    cdef Py_ssize_t j
    if job.from_logits:
        if hess != NULL:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, True)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_hess_logit(label, p[j], weight, positive_weight, &unscaled_hess)
                hess[j] = scale * unscaled_hess
        elif grad == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, True)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                loss[j] = loss_logit(label, p[j], weight, positive_weight)
        elif loss == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, True)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_logit(label, p[j], weight, positive_weight)
        else:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, True)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                loss[j] = loss_and_grad_logit(label, p[j], weight, positive_weight, &unscaled_grad)
                grad[j] = scale * unscaled_grad
    elif job.keep == 1 and labels_are_binary(y, p, n):
        # labels all 0 or 1 (the common case): one log per element, not two
        if grad == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, False)
                loss[j] = loss_probability_binary(label, clip_probability(p[j], eps), weight, positive_weight)
        elif loss == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, False)
                grad[j] = scale * grad_probability_binary(label, clip_probability(p[j], eps), weight, positive_weight)
        else:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, False)
                prob = clip_probability(p[j], eps)
                loss[j] = loss_probability_binary(label, prob, weight, positive_weight)
                grad[j] = scale * grad_probability_binary(label, prob, weight, positive_weight)
    else:
        if grad == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, False)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                loss[j] = loss_probability(label, clip_probability(p[j], eps), weight, positive_weight)
        elif loss == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, False)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_probability(label, clip_probability(p[j], eps), weight, positive_weight)
        else:
            for j in range(n):
                label = label_value(y[j], p)
                weight = one if plain else w[j]
                positive_weight = one if plain else pw[j]
                bad |= invalid_inputs(label, p[j], weight, positive_weight, False)
                label = label if plain else smooth_label(label, keep, half_smoothing)
                prob = clip_probability(p[j], eps)
                loss[j] = loss_probability(label, prob, weight, positive_weight)
                grad[j] = scale * grad_probability(label, prob, weight, positive_weight)
    return bad


# The *_kind arguments below are NULL pointers that only pick the fused
# specialization (the data pointers travel untyped in the Job).
cdef int bce_block(const Job* job, label_t* label_kind, floating* float_kind, const weight_t* weight_kind,
                   Py_ssize_t start, Py_ssize_t stop, double* partial) noexcept nogil:
    """One block [start, stop): partial = (loss sum, weight sum); nonzero if any input is invalid."""
    cdef label_t y_buffer[CHUNK]
    cdef floating p_buffer[CHUNK]
    cdef floating w_buffer[CHUNK]
    cdef floating pw_buffer[CHUNK]
    cdef floating loss_buffer[CHUNK]
    cdef floating grad_buffer[CHUNK]
    cdef floating hess_buffer[CHUNK]
    cdef double loss_lanes[LANES]
    cdef double weight_lanes[LANES]
    cdef const label_t* y
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
    if (label_t is float or label_t is double) and not job.from_logits:
        # GCC (12) does not vectorize the unweighted probability loops with
        # float labels (measured: 133 against 14 ms for 1e7 float32); the
        # weighted ones, reading the constant buffers, it does
        plain = False
    cdef int bad = 0
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
        y = gather(&job.y_true, cols, chunk, n, y_buffer)
        p = gather(&job.y_pred, cols, chunk, n, p_buffer)
        if has_weight:
            w = gather_converted(&job.sample_weight, cols, chunk, n, w_buffer, weight_kind)
        if has_pos_weight_array:
            pw = gather(&job.pos_weight, cols, chunk, n, pw_buffer)
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
        if plain:
            bad |= bce_chunk(job, y, p, w, pw, loss, grad, hess, n, True)
        else:
            bad |= bce_chunk(job, y, p, w, pw, loss, grad, hess, n, False)
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
    each SUM_* k (without every_sum, not the counts and below-threshold
    sums, which evaluate_block then derives), and its bin min(floor(prob *
    bins), bins - 1) when there are bins."""
    cdef floating one = 1, zero = 0
    cdef floating wn = w * (one - label)
    cdef floating wp = w * label
    cdef bint above = prob >= threshold
    cdef floating scaled = prob * bins
    if every_sum:
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
    if bins > zero:
        # a NaN (flagged invalid anyway) goes to bin 0
        scaled = scaled if scaled < bins - one else bins - one
        bin_of[j] = <int> (scaled if scaled > zero else zero)


cdef inline int evaluate_chunk(const Job* job, const label_t* y, const floating* p,
                               const floating* w, const floating* pw,
                               floating* sums, int* bin_of, Py_ssize_t n) noexcept nogil:
    """The per-element terms of the report's sums for n contiguous elements
    (see store_terms); nonzero if any input is invalid. One branch-free loop
    per input kind, so that each vectorizes."""
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
            label = label_value(y[j], p)
            bad |= invalid_inputs(label, p[j], w[j], pw[j], True)
            prob = logit_parts(p[j], &neg_log_p, &neg_log_not_p)
            store_terms(label, prob, neg_log_p, neg_log_not_p, w[j], pw[j], threshold, bins, sums, bin_of, j, every_sum)
    elif labels_are_binary(y, p, n):
        # one log: the term of the label's own class (the other one is
        # multiplied by zero)
        for j in range(n):
            label = label_value(y[j], p)
            bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
            neg_log_p = loss_probability_binary(label, clip_probability(p[j], eps), one, one)
            store_terms(label, p[j], neg_log_p, neg_log_p, w[j], pw[j], threshold, bins, sums, bin_of, j, every_sum)
    else:
        for j in range(n):
            label = label_value(y[j], p)
            bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
            probability_parts(p[j], eps, &neg_log_p, &neg_log_not_p)
            store_terms(label, p[j], neg_log_p, neg_log_not_p, w[j], pw[j], threshold, bins, sums, bin_of, j, every_sum)
    return bad


cdef int evaluate_block(const Job* job, label_t* label_kind, floating* float_kind, const weight_t* weight_kind,
                        Py_ssize_t start, Py_ssize_t stop, double* partial) noexcept nogil:
    """One block [start, stop) of the report: its sums added into partial
    (n_groups rows of group_stride, zeroed); nonzero if any input is invalid."""
    cdef label_t y_buffer[EVAL_CHUNK]
    cdef floating p_buffer[EVAL_CHUNK]
    cdef floating w_buffer[EVAL_CHUNK]
    cdef floating pw_buffer[EVAL_CHUNK]
    cdef int64_t code_buffer[EVAL_CHUNK]
    cdef floating sums[N_SUMS * EVAL_CHUNK]
    cdef int bin_of[EVAL_CHUNK]
    cdef double lanes[N_SUMS * LANES]
    cdef floating wide[N_SUMS * WIDE]
    cdef const label_t* y
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
        y = gather(&job.y_true, cols, chunk, n, y_buffer)
        p = gather(&job.y_pred, cols, chunk, n, p_buffer)
        if has_weight:
            w = gather_converted(&job.sample_weight, cols, chunk, n, w_buffer, weight_kind)
        if has_pos_weight_array:
            pw = gather(&job.pos_weight, cols, chunk, n, pw_buffer)
        if grouped:
            codes = gather(&job.codes, cols, chunk, n, code_buffer)
        bad |= evaluate_chunk(job, y, p, w, pw, sums, bin_of, n)
        if grouped:
            # element by element into its group's row (in element order)
            for j in range(n):
                row = partial + codes[j] * job.group_stride
                for k in range(N_SUMS):
                    row[k] += sums[k * EVAL_CHUNK + j]
        else:
            # without sample weights the counts are the weights, and the
            # sums below the threshold are the weights minus those above
            # (exact for 0/1 labels: sums of integers): summed once
            for k in range(0 if has_weight else SUM_WEIGHT, N_SUMS if has_weight else SUM_BELOW):
                add_to_wide_lanes(&sums[k * EVAL_CHUNK], n, &wide[k * WIDE])
                flush_wide_lanes(&wide[k * WIDE], &lanes[k * LANES])
        if job.n_bins:
            for j in range(n):
                row = partial + (codes[j] * job.group_stride if grouped else 0)
                bin_row = row + N_SUMS + bin_of[j] * N_BIN_SUMS
                bin_row[0] += sums[SUM_WEIGHT * EVAL_CHUNK + j]
                bin_row[1] += sums[(SUM_WEIGHT + 1) * EVAL_CHUNK + j]
                bin_row[2] += sums[SUM_PROB * EVAL_CHUNK + j]
                bin_row[3] += sums[(SUM_PROB + 1) * EVAL_CHUNK + j]
        chunk += n
    if not grouped:
        for k in range(N_SUMS):
            partial[k] = sum_lanes(&lanes[k * LANES])
        if not has_weight:
            for k in range(2):
                partial[SUM_COUNT + k] = partial[SUM_WEIGHT + k]
                partial[SUM_BELOW + k] = partial[SUM_WEIGHT + k] - partial[SUM_ABOVE + k]
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
        x = gather(&job.y_pred, cols, chunk, n, x_buffer)
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


cdef inline int process_block(const Job* job, label_t* label_kind, floating* float_kind, const weight_t* weight_kind,
                              Py_ssize_t start, Py_ssize_t stop, double* partial) noexcept nogil:
    if job.mode == MODE_EVALUATE:
        memset(partial, 0, job.partial_size * sizeof(double))
        return evaluate_block(job, label_kind, float_kind, weight_kind, start, stop, partial)
    if job.mode == MODE_ELEMENTWISE:
        return elementwise_block(job, float_kind, start, stop)
    return bce_block(job, label_kind, float_kind, weight_kind, start, stop, partial)


cdef Py_ssize_t first_invalid(const Job* job, label_t* label_kind, floating* float_kind, const weight_t* weight_kind,
                              Py_ssize_t start, Py_ssize_t stop, int* operand) noexcept nogil:
    """Linear index of the first invalid element in [start, stop), and which operand; -1 if none."""
    cdef label_t y_buffer[CHUNK]
    cdef floating p_buffer[CHUNK]
    cdef floating w_buffer[CHUNK]
    cdef floating pw_buffer[CHUNK]
    cdef const label_t* y
    cdef const floating* p
    cdef const floating* w
    cdef const floating* pw
    cdef Py_ssize_t chunk, n, j, cols = job.cols
    chunk = start
    while chunk < stop:
        n = min(<Py_ssize_t> CHUNK, stop - chunk)
        y = gather(&job.y_true, cols, chunk, n, y_buffer)
        p = gather(&job.y_pred, cols, chunk, n, p_buffer)
        w = gather_converted(&job.sample_weight, cols, chunk, n, w_buffer, weight_kind) if job.sample_weight.data != NULL else NULL
        pw = gather(&job.pos_weight, cols, chunk, n, pw_buffer) if job.pos_weight.data != NULL else NULL
        for j in range(n):
            operand[0] = 0
            if invalid_label(label_value(y[j], p)):
                return chunk + j
            operand[0] = 1
            if invalid_logit(p[j]) if job.from_logits else invalid_probability(p[j]):
                return chunk + j
            operand[0] = 2
            if w != NULL and invalid_sample_weight(w[j]):
                return chunk + j
            operand[0] = 3
            if pw != NULL and invalid_pos_weight(pw[j]):
                return chunk + j
        chunk += n
    operand[0] = -1
    return -1


cdef Py_ssize_t run_blocks(const Job* job, label_t* label_kind, floating* float_kind, const weight_t* weight_kind,
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
        if num_threads <= 1 or count == 1:
            for b in range(count):
                start = (first + b) * block_len
                bad_blocks[b] = process_block(job, label_kind, float_kind, weight_kind, start,
                                              min(start + block_len, size), &partials[b * partial_size])
        else:
            for b in prange(count, schedule="static", num_threads=num_threads):
                start = (first + b) * block_len
                bad_blocks[b] = process_block(job, label_kind, float_kind, weight_kind, start,
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
            bad_index = first_invalid(job, label_kind, float_kind, weight_kind, start,
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


def bce_kernel(const label_t[:, :] y_true, const floating[:, :] y_pred,
               const weight_t[:, :] sample_weight, const floating[:, :] pos_weight,
               floating[:, :] loss_out, floating[:, :] grad_out, floating[:, :] hess_out,
               bint from_logits, bint want_loss, double pos_weight_value, double eps,
               double label_smoothing, double grad_scale, int num_threads,
               double[::1] row_loss=None, double[::1] row_weight=None):
    """One fused pass over 2-D strided operands of one shape (rows, cols).

    sample_weight / pos_weight may be None (weight 1 / pos_weight_value).
    With want_loss and loss_out None, the loss is summed; with loss_out, it
    is written there. With grad_out, the gradient times grad_scale is written
    there; with hess_out too (logits only), the hessian times grad_scale.
    With row_loss (zeroed, one per row; rows of at most BLOCK elements), the
    summed loss is also added up per row, and with row_weight the weights.
    Returns (loss_sum, weight_sum, bad_index, bad_operand): bad_index is the
    linear (C-order) index of the first invalid element or -1, and
    bad_operand the name of the argument that holds it.
    """
    cdef Job job = new_job(MODE_BCE, y_pred.shape[0], y_pred.shape[1])
    cdef double[2] totals = [0, 0]
    cdef Py_ssize_t bad_index
    cdef int bad_operand = -1
    cdef label_t* label_kind = NULL
    cdef floating* float_kind = NULL
    cdef const weight_t* weight_kind = NULL
    if job.rows * job.cols == 0:
        return 0.0, 0.0, -1, None
    job.y_true = strided_of(<char*> &y_true[0, 0], y_true.strides[0], y_true.strides[1])
    job.y_pred = strided_of(<char*> &y_pred[0, 0], y_pred.strides[0], y_pred.strides[1])
    if sample_weight is not None:
        job.sample_weight = strided_of(<char*> &sample_weight[0, 0], sample_weight.strides[0], sample_weight.strides[1])
    if pos_weight is not None:
        job.pos_weight = strided_of(<char*> &pos_weight[0, 0], pos_weight.strides[0], pos_weight.strides[1])
    if loss_out is not None:
        job.loss = strided_of(<char*> &loss_out[0, 0], loss_out.strides[0], loss_out.strides[1])
    if grad_out is not None:
        job.grad = strided_of(<char*> &grad_out[0, 0], grad_out.strides[0], grad_out.strides[1])
    if hess_out is not None:
        job.hess = strided_of(<char*> &hess_out[0, 0], hess_out.strides[0], hess_out.strides[1])
    job.partial_size = 2
    job.from_logits = from_logits
    job.want_loss = want_loss
    job.reduce_loss = want_loss and loss_out is None
    job.want_grad = grad_out is not None
    job.pos_weight_value = pos_weight_value
    job.eps = eps
    job.keep = 1.0 - label_smoothing
    job.half_smoothing = label_smoothing / 2.0
    job.grad_scale = grad_scale
    if row_loss is not None:
        if not job.reduce_loss or job.cols > BLOCK or row_loss.shape[0] != job.rows or (
                row_weight is not None and (sample_weight is None or row_weight.shape[0] != job.rows)):
            raise ValueError("bce_kernel: row sums need a summed loss, one slot per row and rows of at most BLOCK")
        job.row_loss = &row_loss[0]
        if row_weight is not None:
            job.row_weight = &row_weight[0]
        # whole rows per block
        job.block_len = (BLOCK // job.cols) * job.cols
    with nogil:
        bad_index = run_blocks(&job, label_kind, float_kind, weight_kind, num_threads, totals, &bad_operand)
    return totals[0], totals[1], bad_index, (OPERAND_NAMES[bad_operand] if bad_index >= 0 else None)


def evaluate_kernel(const label_t[:, :] y_true, const floating[:, :] y_pred,
                    const weight_t[:, :] sample_weight, const floating[:, :] pos_weight,
                    const int64_t[:, :] codes, double[:, ::1] sums,
                    bint from_logits, double pos_weight_value, double eps, double threshold,
                    Py_ssize_t n_bins, int num_threads):
    """The evaluation report's sums (fastbce/_evaluate.py) in one pass.

    codes (group slot of each element, each in [0, n_groups)) may be None
    for one group. sums, zeroed, has one row per group: N_SUMS sums (SUM_*),
    then N_BIN_SUMS per bin. Returns (bad_index, bad_operand) as bce_kernel.
    """
    cdef Job job = new_job(MODE_EVALUATE, y_pred.shape[0], y_pred.shape[1])
    cdef Py_ssize_t size = job.rows * job.cols, bad_index
    cdef int bad_operand = -1
    cdef label_t* label_kind = NULL
    cdef floating* float_kind = NULL
    cdef const weight_t* weight_kind = NULL
    if sums.shape[1] != N_SUMS + N_BIN_SUMS * n_bins or (codes is None and sums.shape[0] != 1):
        raise ValueError("evaluate_kernel: sums has the wrong shape")
    if size == 0:
        return -1, None
    job.y_true = strided_of(<char*> &y_true[0, 0], y_true.strides[0], y_true.strides[1])
    job.y_pred = strided_of(<char*> &y_pred[0, 0], y_pred.strides[0], y_pred.strides[1])
    if sample_weight is not None:
        job.sample_weight = strided_of(<char*> &sample_weight[0, 0], sample_weight.strides[0], sample_weight.strides[1])
    if pos_weight is not None:
        job.pos_weight = strided_of(<char*> &pos_weight[0, 0], pos_weight.strides[0], pos_weight.strides[1])
    if codes is not None:
        job.codes = strided_of(<char*> &codes[0, 0], codes.strides[0], codes.strides[1])
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
    with nogil:
        bad_index = run_blocks(&job, label_kind, float_kind, weight_kind, num_threads, &sums[0, 0], &bad_operand)
    return bad_index, (OPERAND_NAMES[bad_operand] if bad_index >= 0 else None)


def elementwise_kernel(str name, const floating[:, :] x, floating[:, :] out, int num_threads):
    """out = name(x) element-wise for name in ELEMENTWISE_FUNCTIONS (NaN in, NaN out)."""
    cdef Job job = new_job(MODE_ELEMENTWISE, x.shape[0], x.shape[1])
    cdef int bad_operand = -1
    cdef uint8_t* label_kind = NULL
    cdef floating* float_kind = NULL
    cdef const float* weight_kind = NULL
    job.function = ELEMENTWISE_FUNCTIONS[name]
    if job.rows * job.cols == 0:
        return
    job.y_pred = strided_of(<char*> &x[0, 0], x.strides[0], x.strides[1])
    job.loss = strided_of(<char*> &out[0, 0], out.strides[0], out.strides[1])
    with nogil:
        run_blocks(&job, label_kind, float_kind, weight_kind, num_threads, NULL, &bad_operand)


include "_vmath_eval.pxi"
