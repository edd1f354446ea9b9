#!/bin/bash
# On the GPU machine, after bench/gpu_build.sh: a change behind a switch
# that should only change how the work is scheduled (the sixteenth
# session's dependent launches, bench/RESULTS.md) must leave every loss of
# a run bit-identical. Runs one spec per method twice in fresh processes,
# the second with ENV; both keep cuBLASLt's heuristic choice
# (RELORA_CUBLASLT_AUTOTUNE=0), so they multiply with the same algorithms.
#   ENV="RELORA_SOME_SWITCH=0" METHODS="full lora relora" STEPS=100 PRESET=60m bash bench/gpu_same_losses.sh
# Logs go to $OUT (default /tmp/out); exit code 0 when no loss differs.
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
R=${RELORA:-/tmp/build/app/relora}
STEPS=${STEPS:-100}
WORK=$(mktemp -d); DB=$WORK/runs.sqlite
status=0
for method in ${METHODS:-full lora relora}; do
  A="--method $method --preset ${PRESET:-60m} --backend ${BACKEND:-cuda} --db $DB --set data.synthetic=true
     --set model.vocab=32000 --set train.batch=16 --set train.steps=$STEPS --set optim.warmup=10
     --set relora.reset_interval=25 --set relora.restart_warmup=5"
  ids=()
  for e in "" "$ENV"; do
    env RELORA_CUBLASLT_AUTOTUNE=0 $e $R run $A > /dev/null 2> $OUT/same_$method.txt || { tail -3 $OUT/same_$method.txt; exit 1; }
    ids+=("$($R list --db $DB | awk 'NR > 1 { id = $1 } END { print id }' | tr -d '#')")
  done
  a=$($R metrics ${ids[0]} --keys train_loss --csv --db $DB); b=$($R metrics ${ids[1]} --keys train_loss --csv --db $DB)
  n=$(diff <(echo "$a") <(echo "$b") | grep -c '^<')
  echo "$method: $n of $STEPS losses differ with $ENV (runs ${ids[0]}, ${ids[1]})"
  [ "$n" = 0 ] && [ "$(echo "$a" | wc -l)" -gt 1 ] || status=1
done
rm -rf $WORK
exit $status
