#!/usr/bin/env bash
# Train the twin hopper (1M steps) and gripper-reach (500k) once nominal and once randomized (seed 0),
# export each to ONNX and write its robustness report next to it. Resumable: a finished step is skipped,
# an interrupted training run continues from its newest checkpoint. Run from the repository root:
#   nice -n 10 bash docs/sim2real/evidence.sh [NAME ...]  (only these runs; RUNS=dir for the run directories)
set -euo pipefail
OUT=docs/sim2real
RUNS=${RUNS:-runs/sim2real}
RANDOMIZED='randomization={default: true}'   # every axis the task offers at the field's defaults
mkdir -p "$RUNS" "$OUT"

ONLY=" $* "
train() {  # name task steps [--set ...]
  local name=$1 task=$2 steps=$3; shift 3
  if [ "$ONLY" != "  " ] && [[ "$ONLY" != *" $name "* ]]; then return 0; fi
  local run="$RUNS/$name"
  if [ -f "$run/eval.json" ]; then  # written once training has finished
    echo "== $name: trained"
  elif [ -d "$run/checkpoints" ]; then
    echo "== $name: resuming"; trpo train --resume "$run" --no-progress
  else
    rm -rf "$run"
    echo "== $name: training"; trpo train --task "$task" --steps "$steps" --seed 0 --out "$run" --no-progress "$@"
  fi
  [ -f "$OUT/$name.onnx" ] || trpo export "$run" --out "$OUT/$name.onnx"
  [ -f "$OUT/$name.robustness.json" ] || {
    trpo robustness "$OUT/$name.onnx" --episodes 10 --json --out "$OUT/$name.robustness.png" \
      --write-sidecar --no-progress > "$OUT/$name.robustness.tmp" && mv "$OUT/$name.robustness.tmp" "$OUT/$name.robustness.json"; }
}

train hopper-twin-nominal hopper-twin 1000000
train hopper-twin-randomized hopper-twin 1000000 --set "$RANDOMIZED"
train gripper-reach-nominal gripper-reach 500000
train gripper-reach-randomized gripper-reach 500000 --set "$RANDOMIZED"
echo "== done"
