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

from fastbce._math cimport (
    floating, half_to_float, smooth_label, clip_probability, loss_probability, grad_probability,
    loss_probability_binary, grad_probability_binary,
    loss_logit, grad_logit, loss_and_grad_logit, invalid_label, invalid_probability, invalid_logit,
    invalid_sample_weight, invalid_pos_weight,
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
    LANES = 8                # independent float64 accumulators in a block

# which argument holds the first invalid element
OPERAND_NAMES = ("y_true", "y_pred", "sample_weight", "pos_weight")


cdef struct Strided:
    char* data               # NULL when the operand is absent
    Py_ssize_t row_stride    # in bytes
    Py_ssize_t col_stride


cdef struct Job:
    Strided y_true, y_pred, sample_weight, pos_weight, loss, grad
    Py_ssize_t rows, cols
    bint from_logits
    bint want_loss           # compute the element-wise loss
    bint reduce_loss         # ... and sum it (else write it to `loss`)
    bint want_grad           # write the gradient to `grad`
    double pos_weight_value  # used when pos_weight.data is NULL
    double eps, keep, half_smoothing, grad_scale


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


cdef inline double sum_lanes(const double* lanes) noexcept nogil:
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


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
                          floating* loss, floating* grad, Py_ssize_t n) noexcept nogil:
    """Loss and/or gradient of n contiguous elements; nonzero if any input is invalid.

    One loop per (input kind, outputs): each is branch-free, so that the
    compiler vectorizes it.
    """
    cdef floating eps = <floating> job.eps
    cdef floating keep = <floating> job.keep
    cdef floating half_smoothing = <floating> job.half_smoothing
    cdef floating scale = <floating> job.grad_scale
    cdef floating label, prob, unscaled_grad
    cdef int bad = 0
    cdef Py_ssize_t j
    if job.from_logits:
        if grad == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], True)
                label = smooth_label(label, keep, half_smoothing)
                loss[j] = loss_logit(label, p[j], w[j], pw[j])
        elif loss == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], True)
                label = smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_logit(label, p[j], w[j], pw[j])
        else:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], True)
                label = smooth_label(label, keep, half_smoothing)
                loss[j] = loss_and_grad_logit(label, p[j], w[j], pw[j], &unscaled_grad)
                grad[j] = scale * unscaled_grad
    elif job.keep == 1 and labels_are_binary(y, p, n):
        # labels all 0 or 1 (the common case): one log per element, not two
        if grad == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
                loss[j] = loss_probability_binary(label, clip_probability(p[j], eps), w[j], pw[j])
        elif loss == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
                grad[j] = scale * grad_probability_binary(label, clip_probability(p[j], eps), w[j], pw[j])
        else:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
                prob = clip_probability(p[j], eps)
                loss[j] = loss_probability_binary(label, prob, w[j], pw[j])
                grad[j] = scale * grad_probability_binary(label, prob, w[j], pw[j])
    else:
        if grad == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
                label = smooth_label(label, keep, half_smoothing)
                loss[j] = loss_probability(label, clip_probability(p[j], eps), w[j], pw[j])
        elif loss == NULL:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
                label = smooth_label(label, keep, half_smoothing)
                grad[j] = scale * grad_probability(label, clip_probability(p[j], eps), w[j], pw[j])
        else:
            for j in range(n):
                label = label_value(y[j], p)
                bad |= invalid_inputs(label, p[j], w[j], pw[j], False)
                label = smooth_label(label, keep, half_smoothing)
                prob = clip_probability(p[j], eps)
                loss[j] = loss_probability(label, prob, w[j], pw[j])
                grad[j] = scale * grad_probability(label, prob, w[j], pw[j])
    return bad


# The *_kind arguments below are NULL pointers that only pick the fused
# specialization (the data pointers travel untyped in the Job).
cdef int process_block(const Job* job, label_t* label_kind, floating* float_kind, const weight_t* weight_kind,
                       Py_ssize_t start, Py_ssize_t stop,
                       double* loss_sum, double* weight_sum) noexcept nogil:
    """One block [start, stop): its loss and weight sums; nonzero if any input is invalid."""
    cdef label_t y_buffer[CHUNK]
    cdef floating p_buffer[CHUNK]
    cdef floating w_buffer[CHUNK]
    cdef floating pw_buffer[CHUNK]
    cdef floating loss_buffer[CHUNK]
    cdef floating grad_buffer[CHUNK]
    cdef double loss_lanes[LANES]
    cdef double weight_lanes[LANES]
    cdef const label_t* y
    cdef const floating* p
    cdef const floating* w
    cdef const floating* pw
    cdef floating* loss
    cdef floating* grad
    cdef Py_ssize_t chunk, n, k, cols = job.cols
    cdef bint has_weight = job.sample_weight.data != NULL
    cdef bint has_pos_weight_array = job.pos_weight.data != NULL
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
        if job.want_loss:
            if job.reduce_loss:
                loss = &loss_buffer[0]
            else:
                loss = destination(&job.loss, cols, chunk, n, loss_buffer)
        if job.want_grad:
            grad = destination(&job.grad, cols, chunk, n, grad_buffer)
        bad |= bce_chunk(job, y, p, w, pw, loss, grad, n)
        if job.want_loss:
            if job.reduce_loss:
                add_to_lanes(loss, n, loss_lanes)
            elif loss == &loss_buffer[0]:
                scatter(&job.loss, cols, chunk, n, loss)
        if grad == &grad_buffer[0]:
            scatter(&job.grad, cols, chunk, n, grad)
        if has_weight:
            add_to_lanes(w, n, weight_lanes)
        chunk += n
    loss_sum[0] = sum_lanes(loss_lanes)
    weight_sum[0] = sum_lanes(weight_lanes) if has_weight else <double> (stop - start)
    return bad


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


def bce_kernel(const label_t[:, :] y_true, const floating[:, :] y_pred,
               const weight_t[:, :] sample_weight, const floating[:, :] pos_weight,
               floating[:, :] loss_out, floating[:, :] grad_out,
               bint from_logits, bint want_loss, double pos_weight_value, double eps,
               double label_smoothing, double grad_scale, int num_threads):
    """One fused pass over 2-D strided operands of one shape (rows, cols).

    sample_weight / pos_weight may be None (weight 1 / pos_weight_value).
    With want_loss and loss_out None, the loss is summed; with loss_out, it
    is written there. With grad_out, the gradient times grad_scale is written
    there. Returns (loss_sum, weight_sum, bad_index, bad_operand): bad_index
    is the linear (C-order) index of the first invalid element or -1, and
    bad_operand the name of the argument that holds it.
    """
    cdef Job job
    cdef Py_ssize_t rows = y_pred.shape[0], cols = y_pred.shape[1]
    cdef Py_ssize_t size = rows * cols
    cdef Py_ssize_t n_blocks = (size + BLOCK - 1) // BLOCK
    cdef Py_ssize_t first, count, b, start, bad_block = -1, bad_index = -1
    cdef int bad_operand = -1
    cdef double loss_total = 0, weight_total = 0
    cdef double* loss_partials
    cdef double* weight_partials
    cdef int* bad_blocks
    cdef label_t* label_kind = NULL
    cdef floating* float_kind = NULL
    cdef const weight_t* weight_kind = NULL
    if size == 0:
        return 0.0, 0.0, -1, None
    # absent operands keep data NULL
    job.y_true = strided_of(<char*> &y_true[0, 0], y_true.strides[0], y_true.strides[1])
    job.y_pred = strided_of(<char*> &y_pred[0, 0], y_pred.strides[0], y_pred.strides[1])
    job.sample_weight = job.pos_weight = job.loss = job.grad = strided_of(NULL, 0, 0)
    if sample_weight is not None:
        job.sample_weight = strided_of(<char*> &sample_weight[0, 0], sample_weight.strides[0], sample_weight.strides[1])
    if pos_weight is not None:
        job.pos_weight = strided_of(<char*> &pos_weight[0, 0], pos_weight.strides[0], pos_weight.strides[1])
    if loss_out is not None:
        job.loss = strided_of(<char*> &loss_out[0, 0], loss_out.strides[0], loss_out.strides[1])
    if grad_out is not None:
        job.grad = strided_of(<char*> &grad_out[0, 0], grad_out.strides[0], grad_out.strides[1])
    job.rows = rows
    job.cols = cols
    job.from_logits = from_logits
    job.want_loss = want_loss
    job.reduce_loss = want_loss and loss_out is None
    job.want_grad = grad_out is not None
    job.pos_weight_value = pos_weight_value
    job.eps = eps
    job.keep = 1.0 - label_smoothing
    job.half_smoothing = label_smoothing / 2.0
    job.grad_scale = grad_scale

    count = min(n_blocks, <Py_ssize_t> BLOCKS_PER_ROUND)
    loss_partials = <double*> malloc(count * sizeof(double))
    weight_partials = <double*> malloc(count * sizeof(double))
    bad_blocks = <int*> malloc(count * sizeof(int))
    if loss_partials == NULL or weight_partials == NULL or bad_blocks == NULL:
        free(loss_partials); free(weight_partials); free(bad_blocks)
        raise MemoryError()
    try:
        with nogil:
            first = 0
            while first < n_blocks:
                count = min(n_blocks - first, <Py_ssize_t> BLOCKS_PER_ROUND)
                if num_threads <= 1 or count == 1:
                    for b in range(count):
                        start = (first + b) * BLOCK
                        bad_blocks[b] = process_block(&job, label_kind, float_kind, weight_kind, start,
                                                      min(start + BLOCK, size),
                                                      &loss_partials[b], &weight_partials[b])
                else:
                    for b in prange(count, schedule="static", num_threads=num_threads):
                        start = (first + b) * BLOCK
                        bad_blocks[b] = process_block(&job, label_kind, float_kind, weight_kind, start,
                                                      min(start + BLOCK, size),
                                                      &loss_partials[b], &weight_partials[b])
                # combine in block order: the same sum for any thread count
                for b in range(count):
                    if bad_blocks[b]:
                        bad_block = first + b
                        break
                    loss_total += loss_partials[b]
                    weight_total += weight_partials[b]
                if bad_block >= 0:
                    start = bad_block * BLOCK
                    bad_index = first_invalid(&job, label_kind, float_kind, weight_kind, start,
                                              min(start + BLOCK, size), &bad_operand)
                    break
                first += count
    finally:
        free(loss_partials)
        free(weight_partials)
        free(bad_blocks)
    if bad_block >= 0 and bad_index < 0:
        raise RuntimeError("fastbce: a block was flagged invalid but no invalid element was found")
    return loss_total, weight_total, bad_index, (OPERAND_NAMES[bad_operand] if bad_index >= 0 else None)


include "_vmath_eval.pxi"
