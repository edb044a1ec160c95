#!/bin/bash
# The GPU checks of docs/performance.md ("The GPU path"), time-boxed to fit a short lease
# (about 8 minutes in all; each stage has its own limit, so one stuck stage costs only its
# own time). Run from the repository root on a machine with CUDA:
#
#     MANN_DATA_DIR=/path/to/omniglot bash benchmarks/gpu_check.sh [output folder]
#
# Every stage writes its log into the output folder (the argument, else $OUT, else
# /tmp/gpu_check), so what finished comes back even if a later stage is cut off.
out=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}
export MANN_CACHE_DIR=${MANN_CACHE_DIR:-/tmp/mann_cache} WANDB_MODE=offline
start=$(date +%s)
stage() { echo "== $1 at $(($(date +%s) - start)) s" | tee -a "$out/stages.log"; }

stage "environment"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c "import torch, lightning; print(torch.__version__, lightning.__version__)"
} 2>&1 | tee "$out/environment.log"

stage "no host sync, eager (tests/test_no_host_sync.py)"
timeout 60 python3 -m pytest -q --tb=short -p no:cacheprovider tests/test_no_host_sync.py \
  -k "cuda and none" 2>&1 | tee "$out/no_sync_eager.log"

stage "eager against the step captured as one CUDA graph, batch 16 / 128 / 1024"
timeout 120 python3 benchmarks/throughput.py --device cuda --batch-size 16 128 1024 \
  --compile graph --models LSTM LRUA NTM sparse-LRUA --slots 128 --steps 3 --rounds 3 \
  --warmup 2 --end-to-end-steps 0 2>&1 | tee "$out/graph.log"

stage "end to end through Lightning, eager"
timeout 60 python3 benchmarks/end_to_end.py --device cuda --compile none --steps 30 2>&1 \
  | grep -v Warning | tee "$out/end_to_end.log"

stage "compiled episode (reduce-overhead), batch 16: compile time and step time"
timeout 200 python3 benchmarks/throughput.py --device cuda --batch-size 16 --compile episode \
  --models LRUA --slots 128 --steps 5 --rounds 3 --warmup 3 --end-to-end-steps 0 2>&1 \
  | tee "$out/episode.log"

stage "no host sync, compiled"
timeout 60 python3 -m pytest -q --tb=short -p no:cacheprovider tests/test_no_host_sync.py \
  -k "cuda and episode" 2>&1 | tee "$out/no_sync_compiled.log"
stage "done"
