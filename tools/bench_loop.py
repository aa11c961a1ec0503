"""The user's loop on a small folder, timed command by command, for one or more edgeclf trees side by
side: `train` + `qat` + `export --int8` + `export --int8 --bundle`, each a fresh `python -m edgeclf`
process (imports included, as a user waits), the trees alternating round by round so that a noisy
machine slows them alike. Records each command's wall seconds, the float validation accuracy, the
QAT validation accuracy and the export's verdicts.

    python tools/make_small_folder.py /tmp/small
    git worktree add /tmp/before COMMIT
    python tools/bench_loop.py /tmp/small --tree before=/tmp/before --tree after=. --rounds 1 \
        --out docs/benchmarks/issue23_loop.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = ["--alpha", "0.35", "--image-size", "64", "--weights", "none"]


def commands(folder: Path, run: Path) -> list[tuple[str, list[str]]]:
    return [
        ("train", ["train", str(folder), "--out", str(run), *RECIPE]),
        ("qat", ["qat", str(run)]),
        ("export --int8", ["export", str(run), "--int8"]),
        ("export --int8 --bundle", ["export", str(run), "--int8", "--bundle", str(run.parent / "b.tar.gz")]),
    ]


def loop(tree: Path, folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    with tempfile.TemporaryDirectory(prefix="edgeclf-loop-") as tmp:
        run = Path(tmp) / "run"
        seconds, codes = {}, {}
        for name, args in commands(folder, run):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "edgeclf", *args], env=env, capture_output=True, text=True)
            seconds[name] = round(time.perf_counter() - started, 1)
            codes[name] = done.returncode  # export exits 2 when an artifact fails its gate
        metadata = json.loads((run / "metadata.json").read_text())
        qat = json.loads((run / "qat.json").read_text())
        artifacts = json.loads((run / "export/artifacts.json").read_text())["artifacts"]
        return {
            "seconds": seconds,
            "total": round(sum(seconds.values()), 1),
            "exit_codes": codes,
            "val_accuracy": metadata["training"]["val_accuracy"],
            "qat_val_accuracy": qat["qat_val_accuracy"],
            "statuses": {a["name"]: a["status"] for a in artifacts},
            "bundle_written": (run.parent / "b.tar.gz").is_file(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of an edgeclf checkout")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from edgeclf.runtime.machine import fingerprint

    trees = dict(t.split("=", 1) for t in args.tree)
    rounds: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, path in trees.items():
            rounds[name].append(loop(Path(path), args.folder))
            print(name, json.dumps(rounds[name][-1]), flush=True)
    result = {
        "machine": fingerprint(None, "cpu"),
        "command": " ".join(sys.argv),
        "median_total": {name: statistics.median(r["total"] for r in runs) for name, runs in rounds.items()},
        "rounds": rounds,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_total"]))


if __name__ == "__main__":
    main()
