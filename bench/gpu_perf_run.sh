#!/bin/bash
# One GPU-machine session for the performance work (issue 6): build, CUDA
# self-test, per-op profile of the engine, engine vs PyTorch on the same GPU.
# Run from the repository root; .devdeps/include must hold sqlite3.h and
# nlohmann/ (see ../shared/DEVICE.md). Logs go to $OUT (default /tmp/out).
#   PRESETS=60m COMPILE=yes PROFILE=1 SELFTEST=1 bash bench/gpu_perf_run.sh
# (one preset a call: with torch.compile both take more than a device call's 10 minutes)
# PRESETS="" skips the comparison with PyTorch.
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
PRESETS=${PRESETS-60m}; COMPILE=${COMPILE:-both}; PROFILE=${PROFILE:-1}; SELFTEST=${SELFTEST:-1}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader | tee $OUT/gpu.txt
t0=$(date +%s)
bash bench/gpu_build.sh . /tmp/build $OUT || exit 1
echo "configure+build: $(( $(date +%s) - t0 )) s"
R=/tmp/build/app/relora
if [ "$SELFTEST" = 1 ]; then
  echo "== selftest"
  (cd /tmp && timeout 240 $R selftest --backend cuda > $OUT/selftest.txt 2>&1); st=$?
  grep -E "fail|passed" $OUT/selftest.txt | tail -12
  echo "selftest exit code: $st"
fi
if [ "$PROFILE" = 1 ]; then
  for m in ${PROFILE_METHODS:-full lora}; do
    echo "== op profile 60m $m (10 steps after 3 warm-up steps)"
    (cd /tmp && RELORA_CUDA_PROFILE=1 RELORA_CUDA_PROFILE_SKIP_DOWNLOADS=6 timeout 120 $R bench --backend cuda --preset 60m --batch 32 --context 512 \
      --set model.vocab=32000 --steps 10 --method $m > $OUT/profile_60m_$m.txt 2>&1)
    head -32 $OUT/profile_60m_$m.txt
  done
fi
if [ -n "$PRESETS" ]; then
  echo "== compare ($PRESETS, torch compile: $COMPILE)"
  PYTHONUNBUFFERED=1 timeout ${COMPARE_TIMEOUT:-560} python3 bench/compare_gpu.py --relora $R --preset $PRESETS --compile $COMPILE \
    --out $OUT/compare.jsonl 2> $OUT/compare_stderr.txt | tee $OUT/compare.txt
fi
echo "total: $(( $(date +%s) - t0 )) s"
