"""Run the fuzz targets of tests/test_fuzz.py far longer than CI does (hypothesis profile "long":
5,000 examples per target unless --examples says otherwise), and print how long each took.

    python tools/fuzz.py                  # about 10 minutes on 2 cores
    python tools/fuzz.py --examples 500   # a quick look

Every failure hypothesis finds is printed with its minimal example; it becomes a regression test
(an @example on the target, or a case of its own) before the fix.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    args = parser.parse_args()
    env = {**os.environ, "EDGECLF_FUZZ_PROFILE": "long", "EDGECLF_FUZZ_EXAMPLES": str(args.examples)}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "tests/test_fuzz.py"],
        cwd=ROOT,
        env=env,
    )
    print(f"{args.examples} examples per target, {time.perf_counter() - started:.0f} s in all")
    raise SystemExit(proc.returncode)


if __name__ == "__main__":
    main()
