#!/bin/bash
# A against B on the GPU machine, in one call: the working tree ("new")
# against an earlier revision ("old", a tarball of it), both built the same
# way, their `relora bench` runs alternated in order (old first in odd
# pairs, new first in even ones) so that drift in the GPU's clocks and
# temperature falls on both. This is how bench/RESULTS.md's A/B figures
# were taken: a change worth less than the spread between calls shows only
# so. Run from the repository root; .devdeps as for gpu_perf_run.sh.
#   git archive <rev> -o .devdeps/base.tar          # here, before the call
#   BASE=.devdeps/base.tar CFGS="60m full,130m full,60m lora" PAIRS=4 STEPS=40 bash bench/gpu_ab_run.sh
# (BATCH and CONTEXT, default 32 and 512, set the benches' shape.)
# Without BASE but with OLD_ENV, "old" is the working tree's own build run
# with those environment settings, for a change behind a switch:
#   OLD_ENV="RELORA_CUDA_SIDE_STREAM=0" CFGS="60m full" bash bench/gpu_ab_run.sh
# Logs go to $OUT (default /tmp/out).
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
CFGS=${CFGS:-60m full,130m full}; PAIRS=${PAIRS:-4}; STEPS=${STEPS:-40}
[ -z "$OLD_ENV" ] && BASE=${BASE:-.devdeps/base.tar}
[ -z "$BASE" ] || [ -f "$BASE" ] || { echo "no base tarball at $BASE (git archive <rev> -o $BASE)"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
bash bench/gpu_build.sh . /tmp/build $OUT/new || exit 1
OLD_RELORA=/tmp/build/app/relora
if [ -n "$BASE" ]; then
  rm -rf /tmp/ab-base && mkdir -p /tmp/ab-base && tar -xf "$BASE" -C /tmp/ab-base
  bash bench/gpu_build.sh /tmp/ab-base /tmp/build-base $OUT/old || exit 1
  OLD_RELORA=/tmp/build-base/app/relora
fi
A="--backend cuda --batch ${BATCH:-32} --context ${CONTEXT:-512} --set model.vocab=32000 --steps $STEPS"
IFS=',' read -ra configs <<< "$CFGS"
for ((pair = 1; pair <= PAIRS; ++pair)); do
  for cfg in "${configs[@]}"; do
    read -r preset method <<< "$cfg"
    order="old new"; [ $((pair % 2)) = 0 ] && order="new old"
    for v in $order; do
      R=/tmp/build/app/relora; E=; [ $v = old ] && R=$OLD_RELORA && E=$OLD_ENV
      tps=$(cd /tmp && env $E timeout 120 $R bench $A --preset $preset --method $method 2>/dev/null | awk 'END { print $3 }')
      echo "$preset $method $v $tps" | tee -a $OUT/ab.txt
    done
  done
done
echo "== mean tokens/s over $PAIRS pairs ($STEPS-step benches)"
awk '{ k = $1 " " $2; s[k, $3] += $4; c[k, $3]++; keys[k] = 1 }
     END { for (k in keys) printf "%-12s old %10.0f  new %10.0f  new/old %.4f\n", k, s[k, "old"] / c[k, "old"],
                                   s[k, "new"] / c[k, "new"], (s[k, "new"] / c[k, "new"]) / (s[k, "old"] / c[k, "old"]) }' $OUT/ab.txt
