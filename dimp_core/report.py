"""``make report``: run the notebook suite headless and write reports and figures.

The notebooks arrive with the notebook issue; until then this says so and succeeds.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    notebooks = sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        print("make report: no notebooks yet (notebooks/ is empty); nothing to run.")
        return 0
    print(f"make report: {len(notebooks)} notebooks found, but the runner is not written yet.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
