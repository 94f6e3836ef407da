#!/usr/bin/env bash
# Train the twin hopper (1M steps) and gripper-reach (500k) once nominal and once randomized (seed 0),
# export each to ONNX and write its robustness report next to it. Resumable: a finished step is skipped,
# an interrupted training run continues from its newest checkpoint; an export older than its run's
# eval.json (a newer training) is redone, and so is a report older than its export. Run from the
# repository root:
#   nice -n 10 bash docs/sim2real/evidence.sh [NAME ...]  (only these runs; RUNS=dir for the run directories,
#   STEPS_HOPPER / STEPS_GRIPPER / EPISODES / AXES to shrink it for a smoke test)
set -euo pipefail
OUT=${OUT:-docs/sim2real}
RUNS=${RUNS:-runs/sim2real}
STEPS_HOPPER=${STEPS_HOPPER:-1000000}
STEPS_GRIPPER=${STEPS_GRIPPER:-500000}
EPISODES=${EPISODES:-10}
AXES=${AXES:-}   # e.g. "mass contact": only these sweep axes (default: every axis the task offers)
# The twin hopper's randomization, spelled out (robots/randomization.py, docs/sim2real.md): whole-robot
# mass and actuator factors (exactly what the robustness sweep's mass / actuator points apply) with a
# small per-link / per-motor spread on top, and contact softness down to MuJoCo's stiffest (0.2 × the
# 20 ms solref time constant = 2 timesteps), which is where PyBullet's hard contacts sit.
HOPPER_RANDOMIZED='randomization={mass_scale: [0.8, 1.2], per_link_mass_scale: [0.9, 1.1],
  friction_scale: [0.5, 1.25], damping_scale: [0.8, 1.2], actuator_scale: [0.9, 1.1],
  per_actuator_scale: [0.95, 1.05], contact_softness: [0.2, 1.5], com_offset: 0.02,
  action_delay_steps: [0, 1], action_noise: 0.02, obs_noise_scale: 1.0, push_velocity: 0.5}'
RANDOMIZED='randomization={default: true}'   # every axis the task offers at the field's defaults
mkdir -p "$RUNS" "$OUT"

ONLY=" $* "
train() {  # name task steps [--set ...]
  local name=$1 task=$2 steps=$3; shift 3
  if [ "$ONLY" != "  " ] && [[ "$ONLY" != *" $name "* ]]; then return 0; fi
  local run="$RUNS/$name" args="$task $steps $*" stamp="$RUNS/$name.args"
  if [ -d "$run" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$args" ]; then
    echo "evidence.sh: $run was trained with other settings (or by an older evidence.sh); remove it" \
         "or choose another RUNS=dir" >&2
    exit 2
  fi
  if [ -f "$run/eval.json" ]; then  # written once training has finished
    echo "== $name: trained"
  elif [ -d "$run/checkpoints" ]; then
    echo "== $name: resuming"; trpo train --resume "$run" --no-progress
  else
    rm -rf "$run"; printf '%s' "$args" > "$stamp"
    echo "== $name: training"
    trpo train --task "$task" --steps "$steps" --seed 0 --out "$run" --no-progress "$@"
  fi
  if [ ! -f "$OUT/$name.onnx" ] || [ "$run/eval.json" -nt "$OUT/$name.onnx" ]; then
    trpo export "$run" --out "$OUT/$name.onnx"
  fi
  if [ ! -f "$OUT/$name.robustness.json" ] || [ "$OUT/$name.onnx" -nt "$OUT/$name.robustness.json" ]; then
    # shellcheck disable=SC2086  # AXES is a word list
    trpo robustness "$OUT/$name.onnx" --episodes "$EPISODES" ${AXES:+--axes $AXES} --json \
      --out "$OUT/$name.robustness.png" --write-sidecar --no-progress > "$OUT/$name.robustness.tmp"
    mv "$OUT/$name.robustness.tmp" "$OUT/$name.robustness.json"
  fi
}

train hopper-twin-nominal hopper-twin "$STEPS_HOPPER"
train hopper-twin-randomized hopper-twin "$STEPS_HOPPER" --set "$HOPPER_RANDOMIZED"
train gripper-reach-nominal gripper-reach "$STEPS_GRIPPER"
train gripper-reach-randomized gripper-reach "$STEPS_GRIPPER" --set "$RANDOMIZED"
echo "== done"
