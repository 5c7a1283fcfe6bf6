"""Contact sheet of ``real-val``: each sequence on one row, evenly spaced frames with the ground-truth box.

Every sequence's ground truth is checked by eye on this sheet (``figures/real_val_contact.jpg``).
Hidden frames (``visible.txt`` = 0) show their interpolated box in grey.

    python tools/real_val_contact.py [--out figures/real_val_contact.jpg] [--frames 8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from dimp_core.data.benchmarks import load_dataset

THUMB_W, THUMB_H = 200, 150


def thumbnail(frame: np.ndarray, box: np.ndarray, visible: bool, label: str) -> np.ndarray:
    """One frame (RGB) letterboxed into THUMB_W x THUMB_H with its box drawn (green, grey when hidden)."""
    h, w = frame.shape[:2]
    scale = min(THUMB_W / w, THUMB_H / h)
    small = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    out = np.zeros((THUMB_H, THUMB_W, 3), np.uint8)
    oy, ox = (THUMB_H - small.shape[0]) // 2, (THUMB_W - small.shape[1]) // 2
    out[oy:oy + small.shape[0], ox:ox + small.shape[1]] = small
    x, y, bw, bh = box * scale + np.array([ox, oy, 0, 0])
    color = (0, 255, 0) if visible else (160, 160, 160)
    cv2.rectangle(out, (round(x), round(y)), (round(x + bw), round(y + bh)), color, 2)
    cv2.putText(out, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="figures/real_val_contact.jpg")
    parser.add_argument("--frames", type=int, default=8, help="frames per sequence (default: %(default)s)")
    parser.add_argument("--dataset", default="real-val")
    args = parser.parse_args()
    rows = []
    for seq in load_dataset(args.dataset):
        picks = np.linspace(0, len(seq) - 1, args.frames).round().astype(int)
        visible = seq.visible if seq.visible is not None else np.ones(len(seq), bool)
        thumbs = [thumbnail(seq.frame(i), seq.ground_truth[i], bool(visible[i]), f"{seq.name} #{i}" if k == 0
                            else f"#{i}") for k, i in enumerate(picks)]
        rows.append(np.hstack(thumbs))
    sheet = np.vstack(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"wrote {args.out} ({len(rows)} sequences)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
