"""Run the edgeclf runner as arm64 code under qemu user-mode emulation, as on a Raspberry Pi 4
(Cortex-A72) and Pi 5 (Cortex-A76), and compare its top-1 predictions with this x86 machine's.

Needs root, qemu-user-static, binfmt-support and debootstrap:

    apt-get install qemu-user-static binfmt-support debootstrap
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip \\
        bookworm /tmp/arm64root http://deb.debian.org/debian        # the mirror in /etc/apt/sources.list*
    python tools/arm64_emulated_check.py runs/demo/export IMAGES_DIR --rootfs /tmp/arm64root \\
        --out docs/arm64_check.md --bench-out runs/demo/reports/arm64-pi5-emulated.json

Facts this relies on: pip in the chroot needs a clean environment and the host's CA bundle; qemu
shows the host's /proc/cpuinfo to the guest, which makes onnxruntime crash at import, so a Pi
cpuinfo is bind-mounted over it inside `unshare --mount`, matched to QEMU_CPU (cortex-a72 with the
Pi 4 file, no asimddp; cortex-a76 with the Pi 5 file, asimddp); a mismatch makes LiteRT hit SIGILL.
Latency under emulation means nothing: the bench file is labelled as emulated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BOARDS = {"pi4": ("cortex-a72", HERE / "arm64" / "cpuinfo_pi4.txt"), "pi5": ("cortex-a76", HERE / "arm64" / "cpuinfo_pi5.txt")}
VENV = "/opt/edgeclf-venv"
ENV = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt"]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def in_guest(rootfs: Path, board: str, command: str) -> str:
    """Run a shell command in the arm64 rootfs with /proc mounted and the board's cpuinfo over it."""
    cpu, cpuinfo = BOARDS[board]
    script = (f"mount -t proc proc {rootfs}/proc && mount --bind {cpuinfo} {rootfs}/proc/cpuinfo && "
              f"chroot {rootfs} {' '.join(ENV)} QEMU_CPU={cpu} sh -c '{command}'")
    proc = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script], text=True, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"guest command failed on {board} ({cpu}): {command}\n{proc.stderr[-3000:]}")
    return proc.stdout


def install(rootfs: Path) -> None:
    """The plain runner (pip install edgeclf, no extras) in a venv inside the rootfs."""
    if (rootfs / VENV.lstrip("/") / "bin" / "edgeclf").exists():
        return
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    src = rootfs / "opt/edgeclf-src"
    shutil.rmtree(src, ignore_errors=True)
    sh(["git", "-C", str(ROOT), "archive", "--format=tar", "--prefix=edgeclf-src/", "-o", "/tmp/edgeclf-src.tar", "HEAD"])
    sh(["tar", "xf", "/tmp/edgeclf-src.tar", "-C", str(rootfs / "opt")])
    in_guest(rootfs, "pi5", f"python3 -m venv {VENV} && {VENV}/bin/pip install --quiet /opt/edgeclf-src")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="export folder (artifacts.json and files)")
    parser.add_argument("images", type=Path, help="folder of test images")
    parser.add_argument("--rootfs", type=Path, default=Path("/tmp/arm64root"))
    parser.add_argument("--artifacts", default="tflite-fp32,tflite-int8-qat,onnx-fp32,onnx-int8-ptq")
    parser.add_argument("--out", type=Path, help="markdown summary")
    parser.add_argument("--bench-out", type=Path, help="also bench under emulation (Pi 5), labelled as emulated")
    args = parser.parse_args()
    if not (args.rootfs / "usr/bin/python3").exists():
        raise SystemExit(f"{args.rootfs}: no arm64 rootfs; see the debootstrap command in this script's docstring")

    install(args.rootfs)
    work = args.rootfs / "opt/work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(args.export, work / "export")
    shutil.copytree(args.images, work / "images")
    images = sorted(p.name for p in (work / "images").iterdir())

    sys.path.insert(0, str(ROOT))
    from edgeclf.runtime.open import open_classifier

    names = [n for n in args.artifacts.split(",") if n]
    rows, ok = [], True
    for name in names:
        host = open_classifier(args.export, name).predict_files([args.images / i for i in images])
        host_top1 = host.argmax(1).tolist()
        for board in BOARDS:
            out = in_guest(args.rootfs, board, f"cd /opt/work && {VENV}/bin/edgeclf predict export images --artifact {name} --json --top-k 1")
            guest = {Path(r["image"]).name: r["top_k"][0] for r in json.loads(out)}
            labels = open_classifier(args.export, name).labels
            same = sum(guest[i]["label"] == labels[t] for i, t in zip(images, host_top1))
            diff = max(abs(guest[i]["probability"] - float(host[k, t])) for k, (i, t) in enumerate(zip(images, host_top1)))
            rows.append((name, board, BOARDS[board][0], same, len(images), diff))
            ok &= same == len(images)
            print(f"{name:16s} {board} ({BOARDS[board][0]}): top-1 equal on {same}/{len(images)}, max |dp(top-1)| {diff:.2e}")
    if args.bench_out:
        out = in_guest(args.rootfs, "pi5", f"cd /opt/work && {VENV}/bin/edgeclf bench export --images images --runs 20 --warmup 2 "
                                           "--batch-sizes 1 --threads 2 --out /opt/work/bench.json")
        data = json.loads((work / "bench.json").read_text())
        data["device"]["board"] = "Raspberry Pi 5 (emulated: qemu-user cortex-a76)"
        data["device"]["emulated"] = "qemu-user; latency under emulation means nothing"
        args.bench_out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"bench under emulation -> {args.bench_out}")
    if args.out:
        lines = ["# arm64 runner under emulation vs x86", "",
                 f"Command: `python tools/arm64_emulated_check.py {args.export} {args.images} --rootfs {args.rootfs}`; "
                 "runner: plain `pip install edgeclf` (no TensorFlow) in Debian bookworm arm64 under qemu-user.", "",
                 "| artifact | board | QEMU_CPU | top-1 equal to x86 | max abs diff of the top-1 probability |", "|---|---|---|---|---|"]
        lines += [f"| {n} | {b} | {c} | {s}/{t} | {d:.2e} |" for n, b, c, s, t, d in rows]
        args.out.write_text("\n".join(lines) + "\n")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
