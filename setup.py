"""Build the compiled kernels.

OpenMP: the build probes the C compiler for ``-fopenmp`` (on macOS also
Apple clang's ``-Xpreprocessor -fopenmp`` with ``-lomp``, libomp found through
CPPFLAGS/LDFLAGS or Homebrew); where it is missing
the extension still builds, serial, and the build says so (``python -m
fastbce`` reports it too). The default flags stay portable: no
``-march=native``, no ``-ffast-math`` (it would break the NaN checks).
"""
import os
import platform
import shlex
import sys
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
    """
)


def openmp_flag_candidates(compiler):
    """(compile flags, link flags) that may enable OpenMP, in the order tried."""
    if compiler.compiler_type == "msvc":
        return [(["/openmp"], [])]
    candidates = [(["-fopenmp"], ["-fopenmp"])]  # GCC, LLVM clang
    if sys.platform == "darwin":
        # Apple clang has no -fopenmp driver flag and no OpenMP runtime: the
        # flag goes to its preprocessor and libomp is linked by name, found
        # through CPPFLAGS/LDFLAGS (as the cibuildwheel configuration sets
        # them), else in Homebrew's keg-only libomp.
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
        prefix = homebrew_libomp_prefix()
        if prefix:
            candidates.append((["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
                               [f"-L{prefix}/lib", "-lomp"]))
    return candidates


def homebrew_libomp_prefix():
    """Where Homebrew keeps libomp (macOS), or None."""
    import subprocess
    try:
        prefix = subprocess.run(["brew", "--prefix", "libomp"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return prefix if os.path.isdir(os.path.join(prefix, "lib")) else None


def openmp_flags(compiler):
    """(compile flags, link flags) with which the compiler builds and links an
    OpenMP program, or None."""
    # link_executable does not add LDFLAGS (the extensions' link does): add them
    ldflags = shlex.split(os.environ.get("LDFLAGS", ""))
    for compile_flags, link_flags in openmp_flag_candidates(compiler):
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objects = compiler.compile([source], output_dir=tmp, extra_postargs=compile_flags)
                compiler.link_executable(objects, os.path.join(tmp, "probe"),
                                         extra_preargs=ldflags, extra_postargs=link_flags)
            except Exception:
                continue
        return compile_flags, link_flags
    return None


# One kernel source compiled per CPU target; fastbce/_kernels.py picks the
# best one the running CPU supports. Only the baseline is built where the
# compiler lacks a target's flags (or on non-x86 machines).
TARGET_FLAGS = {
    "baseline": [],
    "avx2": ["-mavx2", "-mfma"],
    "avx512": ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mavx2", "-mfma",
               "-mprefer-vector-width=512"],
}
# What the kernel loops need to vectorize, without -ffast-math: the math
# functions inlined into the loops (Cython's "inline" is only a hint), and
# FP operations taken as non-trapping so that selects (clipping, the sign of
# a logit) if-convert. Neither changes a result: NaN and inf behave as IEEE.
# -ffp-contract=off: a*b + c is fused only where the source says fma(), so
# the vector body, its scalar remainder and every label type's loop give
# bit-identical results for the same element.
VECTORIZE_FLAGS = ["-DCYTHON_INLINE=__inline__ __attribute__((always_inline))", "-fno-trapping-math",
                   "-ffp-contract=off"]
# GCC: keep the per-chunk loop functions (bce_chunk_plain, ...) out of the
# block functions that call them once; inlined there, all of their loops in
# one function, the loops' constants spill to the stack (float64 0.83-0.94x).
# Added where the compiler takes it (clang ignores it).
SEPARATE_FUNCTIONS_FLAGS = ["-fno-inline-functions-called-once"]
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def compiler_accepts(compiler, flags):
    """True when the compiler compiles a trivial file with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "flags.c")
        with open(source, "w") as f:
            f.write("int fastbce_flags_probe(int x) { return x + 1; }\n")
        try:
            compiler.compile([source], output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExtWithOptionalOpenMP(build_ext):
    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        openmp = None if os.environ.get("FASTBCE_NO_OPENMP") == "1" else openmp_flags(self.compiler)
        use_openmp = openmp is not None
        if not use_openmp:
            print(
                "fastbce: the C compiler has no OpenMP (or FASTBCE_NO_OPENMP=1): "
                "building the kernels serial",
                file=sys.stderr,
            )
        kept = []
        separate_functions = not msvc and compiler_accepts(self.compiler, SEPARATE_FUNCTIONS_FLAGS + ["-Werror"])
        for ext in self.extensions:
            target = ext.name.rsplit("_", 1)[-1]
            target_flags = TARGET_FLAGS[target]
            if target != "baseline" and (msvc or not X86 or not compiler_accepts(self.compiler, target_flags)):
                print(f"fastbce: not building the {target} kernels (compiler or machine lacks them)",
                      file=sys.stderr)
                continue
            if msvc:
                ext.extra_compile_args = ["/O2"] + (openmp[0] if use_openmp else [])
            else:
                # -g0: Python's own CFLAGS ask for debug info, 18 of a 22 MB module
                ext.extra_compile_args = ["-O3", "-g0"] + VECTORIZE_FLAGS + target_flags
                if separate_functions:
                    ext.extra_compile_args += SEPARATE_FUNCTIONS_FLAGS
                if use_openmp:
                    ext.extra_compile_args += openmp[0]
                    ext.extra_link_args = list(openmp[1])
            kept.append(ext)
        self.extensions = kept
        # the targets compile at once, one per core (`build_ext -j`)
        if not self.parallel:
            self.parallel = os.cpu_count() or 1
        super().build_extensions()


# FASTBCE_TARGETS=avx512 (a comma-separated subset) builds fewer targets: a
# developer's shortcut; the baseline is always built.
_wanted = os.environ.get("FASTBCE_TARGETS")
_targets = [t for t in TARGET_FLAGS if t == "baseline" or not _wanted or t in _wanted.split(",")]

extensions = [
    Extension(
        f"fastbce._kernels_{target}",
        [f"fastbce/_kernels_{target}.pyx"],
        include_dirs=[numpy.get_include(), "fastbce"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for target in _targets
]

setup(
    ext_modules=cythonize(
        extensions,
        # in parallel where multiprocessing forks (spawn would re-run setup.py)
        nthreads=(os.cpu_count() or 1) if sys.platform.startswith("linux") else 0,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExtWithOptionalOpenMP},
)
