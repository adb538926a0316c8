"""How long rendering both stacks' real program under Pulumi mocks takes (target: <= 5 s for both).

    .venv/bin/python benchmarks/render_stacks.py [--rounds N]

Prints the first (cold: imports included) and the best of N warm renders. Not a timed test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_SECONDS = 5.0


def render_both() -> tuple[float, int]:
    from tests import harness

    start = time.perf_counter()
    prod = harness.render("prod")
    dr = harness.render("dr", stack_outputs={"organization/regionpair/prod": prod.exports})
    return time.perf_counter() - start, len(prod.resources) + len(dr.resources)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds after the cold one (default 3)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    _, count = render_both()
    cold_total = time.perf_counter() - t0
    warm = [render_both()[0] for _ in range(max(0, args.rounds))]
    print(f"rendered prod + dr under mocks: {count} resources")
    print(f"cold (imports included): {cold_total:.2f} s")
    if warm:
        print(f"warm, best of {len(warm)}: {min(warm):.2f} s (median {sorted(warm)[len(warm) // 2]:.2f} s)")
    verdict = "within" if cold_total <= TARGET_SECONDS else "OVER"
    print(f"target {TARGET_SECONDS:.0f} s for both: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
