"""Whether a GPU speed run (``speed.py --worker gpu`` JSON) has every contestant's result.

    python benchmarks/gpu_verdict.py benchmarks/results/gpu-NVIDIA-H200-speed.json

The speed worker records a contestant that failed as an ``*_error`` entry and exits 0, so that
the other contestants still run; this is what turns such a run into a failed check: exit 1,
naming each error and each missing result (``benchmarks/gpu_check.sh`` runs it).
"""

from __future__ import annotations

import json
import sys

#: the results a complete GPU speed run holds
WANTED = tuple(f"{who} b{b}" for who in ("anynet (cupy)", "PyTorch eager (cuda)") for b in (128, 8192))


def problems(result: dict) -> list[str]:
    """Each contestant's error, and each result that is missing."""
    found = [f"{key}: {value}" for key, value in result.items() if key.endswith("error")]
    return found + [f"no result for {key}" for key in WANTED if key not in result]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        with open(argv[0], encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"gpu_verdict: no speed results in {argv[0]} ({exc})", file=sys.stderr)
        return 1
    found = problems(result if isinstance(result, dict) else {})
    for line in found:
        print(f"gpu_verdict: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
