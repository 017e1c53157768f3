"""evaluate_file on a Parquet file: throughput against reading the two
columns with pyarrow alone, and the peak resident memory of the call.

    python benchmarks/evaluate_file_footprint.py            # 1e7 rows
    python benchmarks/evaluate_file_footprint.py 1e8        # 1e8 rows (~840 MB file)

Writes the file (int8 labels, float64 scores) to a temporary folder, then
runs each measurement in a fresh process: the peak RSS (VmHWM, Linux) is that
process's own, imports included. Needs pyarrow.
"""
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

READ_ALONE = """
import time, pyarrow.parquet as pq
t = time.perf_counter()
for batch in pq.ParquetFile(PATH, buffer_size=1 << 20, pre_buffer=False).iter_batches(
        batch_size=1_000_000, columns=["label", "score"]):
    batch.column(0).to_numpy(); batch.column(1).to_numpy()
print(time.perf_counter() - t)
"""
EVALUATE = """
import time, fastbce
t = time.perf_counter()
report = fastbce.evaluate_file(PATH, "label", "score", progress=False)
print(time.perf_counter() - t, report.log_loss)
"""
PEAK_RSS = """
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024)
"""


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(0)
    schema = pa.schema([("label", pa.int8()), ("score", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 5_000_000):
            n = min(5_000_000, rows - start)
            score = rng.random(n)
            label = (rng.random(n) < score).astype(np.int8)
            writer.write_table(pa.table({"label": label, "score": score}, schema=schema),
                               row_group_size=1 << 20)


def run(code, path):
    """(the script's printed values, its peak RSS in MiB), best time of 3 runs."""
    best = None
    for _ in range(3):
        script = f"PATH = {path!r}\n" + textwrap.dedent(code) + PEAK_RSS
        out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                             text=True).stdout.split()
        values = [float(v) for v in out]
        if best is None or values[0] < best[0]:
            best = values
    return best[:-1], best[-1]


def main():
    rows = int(float(sys.argv[1])) if len(sys.argv) > 1 else 10_000_000
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "scores.parquet")
        write_parquet(path, rows)
        size = os.path.getsize(path) / 2**20
        (read_time,), read_rss = run(READ_ALONE, path)
        (evaluate_time, log_loss), evaluate_rss = run(EVALUATE, path)
    print(f"Parquet file: {rows:,} rows, {size:,.0f} MiB (int8 label, float64 score)")
    print(f"  pyarrow read of the two columns  {read_time:7.3f} s   peak RSS {read_rss:6.0f} MiB")
    print(f"  fastbce.evaluate_file            {evaluate_time:7.3f} s   peak RSS {evaluate_rss:6.0f} MiB"
          f"   ({evaluate_time / read_time:.2f}x the read; log loss {log_loss:.6f})")


if __name__ == "__main__":
    main()
