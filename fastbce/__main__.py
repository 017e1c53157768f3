"""``fastbce`` / ``python -m fastbce``: version, OpenMP status, kernel target and a self-check;
``fastbce bench``: the side-by-side benchmark (see fastbce/bench.py);
``fastbce evaluate FILE``: the evaluation report of predictions in a file (see fastbce/_evaluate_io.py)."""
import sys

import numpy as np

import fastbce
from fastbce import _kernels

WORKED_EXAMPLE = ([1, 0, 1, 0], [0.9, 0.2, 0.8, 0.4], 0.2656)


def report():
    """Lines describing this build, ending with the worked-example self-check."""
    labels, probabilities, expected = WORKED_EXAMPLE
    value = fastbce.bce(labels, probabilities)
    ok = round(value, 4) == expected
    threads = _kernels.max_threads()
    return [
        f"fastbce {fastbce.__version__} (NumPy {np.__version__}, Python {sys.version.split()[0]})",
        f"OpenMP: {'on' if _kernels.openmp_enabled() else 'off (serial build)'}, {threads} thread{'s' if threads != 1 else ''}",
        f"kernels: {_kernels.TARGET} target (available here: {', '.join(_kernels.AVAILABLE_TARGETS)}; "
        f"FASTBCE_TARGET forces a lower one)",
        f"self-check: bce({labels}, {probabilities}) = {value:.4f} "
        f"(expected {expected}): {'ok' if ok else 'FAILED'}",
    ], ok


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":
        from fastbce import bench
        return bench.main(argv[1:])
    if argv and argv[0] == "evaluate":
        from fastbce import _evaluate_io
        return _evaluate_io.main(argv[1:])
    if argv:
        print("usage: fastbce [bench | evaluate] [--help]", file=sys.stderr)
        return 2
    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
