"""fastbce.torch against PyTorch eager and torch.compile: one training
step's loss, forward + backward, on the same tensors and threads.

    python benchmarks/torch_step.py [--n 1e7] [--threads 1,2]

Prints fastbce.torch's best time and each peer's time over it (peer time /
fastbce time, best of several rounds) for the logits and the probabilities
losses, float32, 0/1 targets. torch.compile's compile time is left out (two
warm-up steps). Needs PyTorch and a C++ compiler (Inductor).
"""
import warnings

import torch
import torch.nn.functional as F

import fastbce.torch as ft
from fastbce.bench import match_inductor_vector_width
from _timing import best_time as best, size_and_threads


def step(loss_fn, inputs, target):
    def run():
        leaf = inputs.detach().requires_grad_(True)
        loss_fn(leaf, target).backward()
    return run


def main():
    n, thread_counts = size_and_threads(__doc__.splitlines()[0])
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(n, generator=generator)
    target = (torch.rand(n, generator=generator) < 0.5).float()
    probabilities = torch.sigmoid(logits)
    warnings.filterwarnings("ignore")
    cases = [("logits", logits, ft.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
             ("probabilities", probabilities, ft.binary_cross_entropy, F.binary_cross_entropy)]
    match_inductor_vector_width()
    compiled = {name: torch.compile(eager) for name, _, _, eager in cases}
    print(f"forward + backward, n = {n:,}, float32, torch {torch.__version__}; "
          "ratio = peer time / fastbce.torch time")
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for name, inputs, fast, eager in cases:
            for _ in range(2):  # compile (and warm up) outside the timing
                step(compiled[name], inputs, target)()
            fast_time = best(step(fast, inputs, target), 9)
            eager_time = best(step(eager, inputs, target), 5)
            compiled_time = best(step(compiled[name], inputs, target), 7)
            print(f"threads={threads} {name:13s} fastbce.torch {fast_time * 1e3:7.2f} ms   "
                  f"eager {eager_time / fast_time:5.1f}x   torch.compile {compiled_time / fast_time:5.1f}x",
                  flush=True)


if __name__ == "__main__":
    main()
