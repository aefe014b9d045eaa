#!/usr/bin/env bash
# The one-shot GPU check of issue 16: benchmarks/train.py at d12 and d24 (lmforge against
# nanoGPT's model, bf16 + torch.compile), then the CUDA tests; everything written under $OUT.
#
# A GPU is lent rarely and briefly, so this script installs nothing beyond the project (wheels
# carried in .whl/, if any, go to /tmp/site without the network), runs each step under its own
# `timeout` and within an overall budget, keeps going when a step fails, and records each
# step's exit status in $OUT/status.txt. The benchmark appends its JSON line to
# $OUT/train-gpu.jsonl as soon as it has it. Exit status: 0 only when every step passed.
#
# Expected on an H200 (16 host cores): 4 compilations of ~40-90 s each (lmforge and nanoGPT at
# d12 and d24) plus ~10 s of timed steps a model: ~5-7 minutes in all, under BUDGET_S.
#
#   benchmarks/gpu.sh                                  # on the GPU machine, from anywhere
#   OUT=/tmp/g DRY=1 benchmarks/gpu.sh --preset tiny   # dry run on CPU: every line of the script
#   benchmarks/gpu.sh --device cpu --steps 2 --repeats 1 --warmup 1 --batch 1 --preset tiny
#
# Environment: PYTHON (python3), OUT (gpu-out), DRY (0; 1 adds "--device cpu --reference nanogpt --steps 2
# --repeats 1 --warmup 1 --batch 1 --precision fp32" before your arguments), T_TESTS (200),
# T_D12 (210), T_D24 (270) seconds per step, BUDGET_S (570) seconds for the whole script.
# Arguments go to both benchmark calls, after the script's own (so a --preset there wins).
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-gpu-out}
T_TESTS=${T_TESTS:-200}
T_D12=${T_D12:-210}
T_D24=${T_D24:-270}
BUDGET_S=${BUDGET_S:-570}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
STATUS="$OUT/status.txt"
: > "$STATUS"
DEADLINE=$(( $(date +%s) + BUDGET_S ))
FAILED=0
EXTRA=()
if [ "${DRY:-0}" = 1 ]; then
    EXTRA=(--device cpu --reference nanogpt --steps 2 --repeats 1 --warmup 1 --batch 1 --precision fp32)
fi

record() {  # name, exit status, seconds
    echo "$1 rc=$2 ${3}s" | tee -a "$STATUS"
    case $2 in 0 | absent) ;; *) FAILED=1 ;; esac
}

step() {  # name, timeout seconds, command...: run it under timeout (clipped to the budget left), log to $OUT/name.log
    local name=$1 limit=$2
    shift 2
    local left=$(( DEADLINE - $(date +%s) ))
    if [ "$left" -lt 30 ]; then
        echo "$name: skipped, the script's budget of ${BUDGET_S}s is spent" | tee "$OUT/$name.log"
        record "$name" skipped 0
        return
    fi
    if [ "$limit" -gt "$left" ]; then limit=$left; fi
    echo "=== $name (timeout ${limit}s): $*"
    local t0=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=$?
    record "$name" "$rc" $(( SECONDS - t0 ))
}

# The project's own wheels (e.g. zstandard, orjson), if carried: no index, no dependencies.
if [ -d .whl ] && compgen -G ".whl/*.whl" > /dev/null; then
    t0=$SECONDS
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tee "$OUT/pip.log"
    record pip-install $? $(( SECONDS - t0 ))
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi

{
    date -u
    echo "git: $(git rev-parse HEAD 2>/dev/null || echo 'no git') $(git status --porcelain 2>/dev/null | wc -l) changed files"
    echo "PYTHONPATH=$PYTHONPATH  extra args: ${EXTRA[*]+${EXTRA[*]}} $*"
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    nproc
    timeout 60 "$PY" - <<'EOF' 2>&1
import importlib, platform, sys
print("python", sys.version.replace("\n", " "), platform.platform())
for name in ("torch", "triton", "numpy", "pytest", "transformers", "zstandard", "orjson", "click", "safetensors"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except Exception as e:
        print(name, "MISSING:", type(e).__name__, e)
import torch
print("cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(), torch.cuda.get_device_capability(), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
for module in ("lmforge.train.trainer", "lmforge.train.gpu"):
    try:
        importlib.import_module(module)
        print("import", module, "ok")
    except Exception as e:
        print("import", module, "FAILED:", type(e).__name__, e)
EOF
} > "$OUT/env.txt" 2>&1
record env $? 0
cat "$OUT/env.txt"

# The figures first (the scarce part of a lease), then the tests, each test run to the end (no -x).
step bench-d12 "$T_D12" "$PY" benchmarks/train.py --device cuda --preset d12 --out "$OUT/train-gpu.jsonl" ${EXTRA[@]+"${EXTRA[@]}"} "$@"
step bench-d24 "$T_D24" "$PY" benchmarks/train.py --device cuda --preset d24 --out "$OUT/train-gpu.jsonl" ${EXTRA[@]+"${EXTRA[@]}"} "$@"

if [ -f tests/test_cuda.py ]; then
    step cuda-tests "$T_TESTS" "$PY" -m pytest -q -rA -p no:cacheprovider tests/test_cuda.py
else
    echo "tests/test_cuda.py is absent: CUDA tests skipped" | tee "$OUT/cuda-tests.log"
    record cuda-tests absent 0
fi

echo "=== results ($OUT/train-gpu.jsonl)"
cat "$OUT/train-gpu.jsonl" 2>/dev/null || echo "no benchmark result"
echo "=== status"
cat "$STATUS"
exit "$FAILED"
