#!/bin/bash
# On the GPU machine, after bench/gpu_build.sh: a run stopped by Ctrl-C
# continues the same way whichever process resumes it. The checkpoint
# carries the cuBLASLt algorithms that the stopped process timed, and each
# resuming process takes them. Without them every process times its own,
# and two fresh runs of one spec round differently.
# Checks, in one database:
#   runs 1 and 2   the same spec in two fresh processes (for contrast: these may differ)
#   run 3          stopped at step STOP or later; the database is copied aside,
#                  run 3 is resumed, the copy is put back and run 3 is resumed again
#                  in another process: both continuations must be bit-identical
#   STEPS=400 PRESET=60m METHOD=relora [BACKEND=cuda] bash bench/gpu_resume_check.sh
# Logs go to $OUT (default /tmp/out); exit code 0 when the two continuations match.
set -o pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
R=${RELORA:-/tmp/build/app/relora}
STEPS=${STEPS:-400}; STOP=${STOP:-$((STEPS / 2))}
WORK=$(mktemp -d); DB=$WORK/runs/runs.sqlite; mkdir -p $WORK/runs
A="--method ${METHOD:-relora} --preset ${PRESET:-60m} --backend ${BACKEND:-cuda} --db $DB
   --set data.synthetic=true --set model.vocab=32000 --set train.batch=16 --set train.steps=$STEPS
   --set train.checkpoint_interval=20 --set optim.warmup=10 --set relora.reset_interval=40
   --set relora.restart_warmup=10"
losses() { $R metrics $1 --keys train_loss --csv --db $DB; }
differing() { diff <(echo "$1") <(echo "$2") | grep -c '^<'; }
for id in 1 2; do
  $R run $A > /dev/null 2> $OUT/resume_run$id.txt || { tail -3 $OUT/resume_run$id.txt; exit 1; }
done
echo "two fresh processes, one spec: $(differing "$(losses 1)" "$(losses 2)") of $STEPS losses differ"
$R run $A > /dev/null 2> $OUT/resume_run3.txt &
pid=$!
for _ in $(seq 1200); do
  last=$(tr '\r' '\n' < $OUT/resume_run3.txt | grep -ao 'step [0-9]*/' | tail -1 | tr -dc 0-9)
  [ "${last:-0}" -ge $STOP ] && break
  kill -0 $pid 2> /dev/null || break
  sleep 0.05
done
kill -INT $pid; wait $pid; echo "run 3 stopped, exit code $? (130: stopped cleanly)"
cp -a $WORK/runs $WORK/stopped
$R resume 3 --db $DB > /dev/null 2> $OUT/resume_run3a.txt || { tail -3 $OUT/resume_run3a.txt; exit 1; }
first=$(losses 3)
rm -rf $WORK/runs && cp -a $WORK/stopped $WORK/runs
$R resume 3 --db $DB > /dev/null 2> $OUT/resume_run3b.txt || { tail -3 $OUT/resume_run3b.txt; exit 1; }
second=$(losses 3)
grep -ah "resuming at step\|products_retuned" $OUT/resume_run3a.txt $OUT/resume_run3b.txt
n=$(differing "$first" "$second")
echo "run 3 resumed twice, in two processes: $n of $(($(echo "$first" | wc -l) - 1)) losses differ"
rm -rf $WORK
[ "$n" = 0 ]
