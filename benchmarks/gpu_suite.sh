#!/usr/bin/env bash
# One call on a lent GPU: every benchmark's CUDA row, the time to paper scale, and the notebooks' default runs.
#
# On the device machine (DEVELOPERS.md: the device tool), from the repository root, with the missing Python packages
# carried as wheels in .whl/ and the original DARTS code in .ref/darts/cnn (both ignored by git):
#     bash benchmarks/gpu_suite.sh                      # about 10 minutes on an H100 / H200
# Tried on a CPU first, with tiny sizes and no wheels to install:
#     SUITE_SIZE=tiny bash benchmarks/gpu_suite.sh
# SUITE_PARTS names the parts to run, in the order below (default: all); e.g. two calls that fit a 10-minute limit each:
#     SUITE_PARTS="environment data_pipeline reslt ccsam imbnas bbn_darts paper_scale paper_scale_compiled notebooks" ...
#     SUITE_PARTS="environment darts_search darts_ops components hessian" ...
# (issue 21 added bbn_cells, darts_compile and cuda_graph_test: the CUDA-graph search test, run nowhere yet)
# (2026-11-28 on an H200 the first took 566 s; the darts_search part then measured one batch/order pair in 240 s.)
# Every part runs under its own time limit and the whole suite under SUITE_DEADLINE seconds: a part that fails or runs
# out of time is reported and the next one runs. Everything printed goes to $OUT/suite.log; the paper-scale numbers to
# $OUT/paper_scale.json, the notebooks' records to $OUT/notebooks.json, each part's output and the executed notebooks to
# $OUT/parts.tgz.
set -u
OUT=${OUT:-/tmp/gpu_suite}; mkdir -p "$OUT/parts"
SIZE=${SUITE_SIZE:-full}
PARTS=${SUITE_PARTS:-all}
DEADLINE=${SUITE_DEADLINE:-570}
START=$(date +%s)
exec > >(tee "$OUT/suite.log") 2>&1

left() { echo $(( DEADLINE - ($(date +%s) - START) )); }
# part NAME LIMIT COMMAND...: run COMMAND under min(LIMIT, time left), its output to the log and to parts/NAME.txt
part() {
  local name=$1 limit=$2; shift 2
  [ "$PARTS" = all ] || [[ " $PARTS " == *" $name "* ]] || return 0
  local l; l=$(left)
  if [ "$l" -lt 15 ]; then echo "== $name: not run (the suite's deadline)"; return; fi
  [ "$limit" -gt "$l" ] && limit=$l
  echo; echo "== $name (limit ${limit} s, $(left) s left): $*"
  local t=$(date +%s)
  PYTHONUNBUFFERED=1 timeout -k 5 "$limit" "$@" 2>&1 | tee "$OUT/parts/$name.txt"
  echo "-- $name: exit ${PIPESTATUS[0]} after $(( $(date +%s) - t )) s"
}

# The packages the device's image lacks, carried as wheels (installed only where they are missing).
if ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c 'import papermill, mlxtend, curvlinops, pytorch_optimizer' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PATH=/tmp/site/bin:$PATH OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

if [ "$SIZE" = tiny ]; then DEV=cpu
  A_DP="--rounds 1"; A_RL="--rounds 2 --warmup 1 --batch-size 16"; A_CC="--classes 10 100 --rounds 1 --batch-size 16 --head-reps 3"
  A_IN="--rounds 1 --n-max 50"; A_BB="--rounds 1 --steps 1 --batch-size 4 --layers 5 --C 4 --stem-stride 2"
  A_PS="--steps 2 --warmup 1 --batch-size 16 --test-size 256"; A_PC="--methods ce --steps 1 --warmup 1 --batch-size 16 --test-size 64"; A_DS="--batch-sizes 4 --orders 1 --steps 1 --layers 5 --C 4 --variants cl"; A_DO="--batch-sizes 4 --orders 1 2 --steps 1 --layers 5 --C 4 --variants cl"
  A_CO="--rounds 1 --steps 1 --batch-size 8 --blocks 1 --variants basic lt_agg"; A_HE="--rounds 1 --batch-size 16"; A_NB="--deadline 120"
  A_DC="--layers 3 --C 4 --batch-size 4 --steps 1 --timeout 120"
else DEV=cuda
  A_DP="--rounds 5 --workers 0 4 8"; A_RL="--rounds 30"; A_CC="--classes 1000 100 --rounds 5 --steps 3"
  A_IN="--rounds 5"; A_BB="--rounds 3 --steps 3"
  A_PS="--steps 12 --warmup 3 --methods search retrain ce ldam_drw reslt ccsam bbn"; A_PC="--methods ce --steps 20 --warmup 5"; A_DS="--batch-sizes 32 64 --orders 1 2 --steps 2 --variants fp32 bf16+cl fp32+graph bf16+cl+graph"; A_DO="--batch-sizes 32 --orders 1 2 --steps 1 --variants fp32"
  A_CO="--rounds 3 --steps 2"; A_HE="--rounds 5"; A_NB="--parallel 14"; A_DC="--batch-size 64 --steps 5 --timeout 300"
fi

part environment 30 bash -c "python3 -c \"
import torch, platform, os; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda)
print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', '| CPU cores:', os.cpu_count())
import lt_workbook.training, lt_workbook.darts, curvlinops, pytorch_optimizer, papermill, mlxtend; print('imports ok')\"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv || true"
part data_pipeline 45 python3 benchmarks/data_pipeline.py --device $DEV $A_DP
part reslt 40 python3 benchmarks/reslt.py --device $DEV $A_RL
part ccsam 90 python3 benchmarks/ccsam.py --device $DEV $A_CC
part imbnas 40 python3 benchmarks/imbnas.py --device $DEV $A_IN
part bbn_darts 60 python3 benchmarks/bbn_darts.py --device $DEV $A_BB
part bbn_cells 60 python3 benchmarks/bbn_darts.py --device $DEV --cells $A_BB
part paper_scale 200 python3 benchmarks/paper_scale.py --device $DEV $A_PS --json "$OUT/paper_scale.json"
part paper_scale_compiled 90 python3 benchmarks/paper_scale.py --device $DEV --compile $A_PC --json "$OUT/paper_scale_compiled.json"
# The notebooks get what is left of the deadline but what the parts after them need (NB_RESERVE seconds; gpu_notebooks.py
# stops the ones still running at its own deadline).
part notebooks $(( $(left) - ${NB_RESERVE:-0} - 5 )) python3 benchmarks/gpu_notebooks.py --out "$OUT/parts/notebooks" \
  --deadline $(( $(left) - ${NB_RESERVE:-0} - 15 )) $A_NB ${SUITE_NOTEBOOKS:-}
part darts_search 300 python3 benchmarks/darts_search.py --device $DEV --reference .ref/darts/cnn $A_DS
# Operations per step (profiler: leaf ATen operations, CUDA kernels) apart from the timings: profiling is slow on CUDA.
part darts_ops 120 python3 benchmarks/darts_search.py --device $DEV --reference .ref/darts/cnn --count-ops $A_DO
part cuda_graph_test 180 python3 -m pytest -q -x -p no:xdist -p no:cacheprovider tests/test_ltdarts_notebook.py -k cuda_graph -rs
part darts_compile 330 python3 benchmarks/darts_compile.py --device $DEV $A_DC
part components 45 python3 benchmarks/components.py --device $DEV $A_CO
part hessian 40 python3 benchmarks/hessian.py --device $DEV $A_HE
cp "$OUT/parts/notebooks/notebooks.json" "$OUT/" 2>/dev/null
rm -rf "$OUT/parts/notebooks/runs"
tar -czf "$OUT/parts.tgz" -C "$OUT" parts && rm -rf "$OUT/parts"
echo "suite done in $(( $(date +%s) - START )) s"
