"""Where does a second thread start to pay? The measurement behind
fastbce._api.SERIAL_BELOW.

    python benchmarks/serial_threshold.py

Times bce (float32 logits, uint8 labels, reduced mean) at sizes around the
threshold on one thread and on all threads, with the threshold disabled, and
prints the ratio; the threshold is set where all threads first win clearly.
"""
import timeit

import numpy as np

from fastbce import _api, _kernels


def main():
    threads = _kernels.max_threads()
    _api.SERIAL_BELOW = 0  # measure both paths at every size
    rng = np.random.default_rng(0)
    print(f"kernels: {_kernels.TARGET}; 1 thread vs {threads} threads (time ratio > 1: threads win)")
    for exponent in range(10, 19):
        n = 1 << exponent
        x = rng.normal(size=n).astype(np.float32)
        y = (x > 0).astype(np.uint8)
        times = {}
        for t in (1, threads):
            call = lambda: _api.bce(y, x, from_logits=True, num_threads=t)
            number = max(1, 200_000 // n)
            times[t] = min(timeit.repeat(call, number=number, repeat=7)) / number
        print(f"n = 2^{exponent:<3} {n:>9,}  1 thread {times[1] * 1e6:9.1f} us   "
              f"{threads} threads {times[threads] * 1e6:9.1f} us   ratio {times[1] / times[threads]:.2f}")


if __name__ == "__main__":
    main()
