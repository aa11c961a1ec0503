"""Run the edgeclf runner as arm64 code under qemu user-mode emulation, as on a Raspberry Pi 4
(Cortex-A72) and Pi 5 (Cortex-A76), and compare its predictions on a run's test images with this
x86 machine's.

Needs root, qemu-user-static, binfmt-support and debootstrap:

    apt-get install qemu-user-static binfmt-support debootstrap
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip \\
        bookworm /tmp/arm64root http://deb.debian.org/debian        # the mirror in /etc/apt/sources.list*
    python tools/arm64_emulated_check.py runs/demo --rootfs /tmp/arm64root \\
        --out docs/arm64_check.md --bench-out docs/arm64-pi5-emulated-bench.json

What "equal" means. fp32 artifacts of both formats and the ONNX int8 one must give x86's top-1 on
every image. An int8 TFLite is run twice: with LiteRT's portable reference kernels
(`edgeclf predict --kernels reference`), whose integer arithmetic is specified to the bit, it must
give x86's top-1 on every image (and in practice the same bytes); with the fast default kernels
(XNNPACK), whose requantization rounds in ISA-specific ways, an image may change class only if it is
a near-tie: its reference output's top-1 beats the runner-up by at most 2 x D quantization steps,
where D is the largest difference between x86's own fast and reference kernels on any output,
measured here in the same run (each fast engine moves outputs by about D from the portable
reference, so two of them can swap the top two classes only within 2 x D). This is edgeclf verify's
rule, applied to the whole test split. (An earlier rule, "no more disagreements than x86's own fast
and reference kernels have", assumed the Arm kernels sit no farther from the reference than x86's;
measured on an Intel Xeon they do: 4/450 against 2/450, all at reference margins of 9-24 steps.)

Facts this relies on: pip in the chroot needs a clean environment and the host's CA bundle; qemu
shows the host's /proc/cpuinfo to the guest, which makes onnxruntime crash at import, so a Pi
cpuinfo is bind-mounted over it inside `unshare --mount`, matched to QEMU_CPU (cortex-a72 with the
Pi 4 file, no asimddp; cortex-a76 with the Pi 5 file, asimddp); a mismatch makes LiteRT hit SIGILL.
The runner installed in the guest is the bundle's wheel, built from this checkout by `edgeclf export
--bundle` and installed by the bundle's install.sh, which ends with `edgeclf verify`; verify also runs
on the Pi 4 configuration, and both must pass.
Latency under emulation means nothing: the bench file is labelled as emulated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from edgeclf.core.run_directory import Run  # noqa: E402
from edgeclf.runtime import read_artifacts  # noqa: E402
from edgeclf.runtime.open import open_classifier  # noqa: E402

BOARDS = {
    "pi4": ("cortex-a72", HERE / "arm64" / "cpuinfo_pi4.txt"),
    "pi5": ("cortex-a76", HERE / "arm64" / "cpuinfo_pi5.txt"),
}
VENV = "/opt/edgeclf-venv"
ENV = [
    "env",
    "-i",
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=/root",
    "LANG=C.UTF-8",
    "PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def run_in_guest(rootfs: Path, board: str, command: str) -> subprocess.CompletedProcess:
    """Run a shell command in the arm64 rootfs with /proc mounted and the board's cpuinfo over it."""
    cpu, cpuinfo = BOARDS[board]
    script = (
        f"mount -t proc proc {rootfs}/proc && mount --bind {cpuinfo} {rootfs}/proc/cpuinfo && "
        f"chroot {rootfs} {' '.join(ENV)} QEMU_CPU={cpu} sh -c '{command}'"
    )
    return subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script], text=True, capture_output=True)


def in_guest(rootfs: Path, board: str, command: str) -> str:
    """run_in_guest's standard output; a failed command ends the check."""
    proc = run_in_guest(rootfs, board, command)
    if proc.returncode != 0:
        raise SystemExit(f"guest command failed on {board} ({BOARDS[board][0]}): {command}\n{proc.stderr[-3000:]}")
    return proc.stdout


def install(rootfs: Path, run: Run) -> dict:
    """Unpack the run's device bundle (edgeclf export --bundle: runner wheel, install.sh, export/) at
    /opt/work/bundle in the rootfs and run its install.sh there, as a user would on a Pi: the runner
    comes from the bundle's wheel (never from the package index), and install.sh ends with
    `edgeclf verify` on the bundle's export folder. Returns bundle.json."""
    import tarfile

    from edgeclf.export.bundle import write_bundle

    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    work = rootfs / "opt/work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    archive = write_bundle(run.export_dir, work / "bundle.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(work / "bundle", filter="data")
    print(in_guest(rootfs, "pi5", f"bash /opt/work/bundle/install.sh {VENV}"))
    return json.loads((work / "bundle" / "bundle.json").read_text())


def verify_in_guest(rootfs: Path, board: str) -> tuple[bool, str]:
    """edgeclf verify on the bundle's export folder in the guest: (passed, its output)."""
    proc = run_in_guest(rootfs, board, f"{VENV}/bin/edgeclf verify /opt/work/bundle/export")
    errors = [
        line for line in proc.stderr.splitlines() if line.startswith("error:")
    ]  # not onnxruntime's cpuinfo chatter
    return proc.returncode == 0, proc.stdout + "\n".join(errors)


@dataclass
class Row:
    artifact: str
    kernels: str
    board: str
    same_top1: int
    images: int
    max_dp: float
    accuracy_x86: float
    accuracy_arm64: float
    outside_near_ties: int = 0

    @property
    def cpu(self) -> str:
        return BOARDS[self.board][0]


def guest_probs(rootfs: Path, board: str, name: str, kernels: str, images: list[str], labels: list[str]) -> np.ndarray:
    """Full probability vectors from `edgeclf predict --json` in the guest, in the order of `images`."""
    out = in_guest(
        rootfs,
        board,
        f"cd /opt/work && {VENV}/bin/edgeclf predict export images --artifact {name} "
        f"--kernels {kernels} --json --top-k {len(labels)}",
    )
    by_image = {r["image"]: {p["label"]: p["probability"] for p in r["top_k"]} for r in json.loads(out)}
    return np.array([[by_image[i][label] for label in labels] for i in images], dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory (its export/ folder and its data split)")
    parser.add_argument("--split", default="test", help="which split's images to classify")
    parser.add_argument("--rootfs", type=Path, default=Path("/tmp/arm64root"))
    parser.add_argument("--artifacts", default="tflite-fp32,tflite-int8-qat,onnx-fp32,onnx-int8-ptq")
    parser.add_argument("--out", type=Path, help="markdown summary")
    parser.add_argument("--bench-out", type=Path, help="also bench under emulation (Pi 5), labelled as emulated")
    args = parser.parse_args()
    if not (args.rootfs / "usr/bin/python3").exists():
        raise SystemExit(f"{args.rootfs}: no arm64 rootfs; see the debootstrap command in this script's docstring")

    run = Run.open(args.run)
    bundle = install(args.rootfs, run)
    commit = bundle["commit"] or "unknown"
    files, truth = run.dataset.files_and_labels(args.split)
    truth = np.array(truth)
    work = args.rootfs / "opt/work"
    shutil.copytree(run.export_dir, work / "export")
    verified = {}
    for board in BOARDS:
        passed, output = verify_in_guest(args.rootfs, board)
        verified[board] = (passed, output)
        print(f"edgeclf verify on {board} ({BOARDS[board][0]}): {'PASS' if passed else 'FAIL'}\n{output}")
    ok = all(passed for passed, _ in verified.values())
    images = []  # paths as the guest's predict prints them: images/<index>_<file name>
    (work / "images").mkdir(parents=True)
    for k, f in enumerate(map(Path, files)):
        shutil.copy(f, work / "images" / f"{k:05d}_{f.name}")
        images.append(f"images/{k:05d}_{f.name}")
    entries = {a.name: a for a in read_artifacts(run.export_dir)}

    rows: list[Row] = []
    spreads: dict[str, tuple[int, float]] = {}  # int8 TFLite: x86 fast-vs-reference (top-1 disagreements, max steps)
    for name in [n for n in args.artifacts.split(",") if n]:
        info = entries[name]
        int8_tflite = info.format == "tflite" and info.precision.startswith("int8")
        host = {
            k: open_classifier(run.export_dir, name, kernels=k).predict_files([work / i for i in images], batch_size=1)
            for k in (("fast", "reference") if int8_tflite else ("fast",))
        }
        near_tie = np.zeros(len(images), dtype=bool)
        if int8_tflite:
            step = info.output.scale
            d = float(np.abs(host["fast"] - host["reference"]).max()) / step
            spreads[name] = (int((host["fast"].argmax(1) != host["reference"].argmax(1)).sum()), d)
            ordered = np.sort(host["reference"], axis=1)
            near_tie = (ordered[:, -1] - ordered[:, -2]) / step <= 2 * round(d)
            print(
                f"{name}: on x86 alone, fast (XNNPACK) and reference kernels disagree on "
                f"{spreads[name][0]}/{len(images)} top-1, max {d:.0f} steps apart; "
                f"{int(near_tie.sum())} images are near-ties (margin <= {2 * round(d)} steps)"
            )
        for kernels, probs in host.items():
            for board in BOARDS:
                guest = guest_probs(args.rootfs, board, name, kernels, images, info.labels)
                differ = guest.argmax(1) != probs.argmax(1)
                same = int((~differ).sum())
                allowed = near_tie if (int8_tflite and kernels == "fast") else np.zeros(len(images), dtype=bool)
                confident = int((differ & ~allowed).sum())
                row = Row(
                    name,
                    kernels,
                    board,
                    same,
                    len(images),
                    float(np.abs(guest - probs).max()),
                    float((probs.argmax(1) == truth).mean()),
                    float((guest.argmax(1) == truth).mean()),
                    confident,
                )
                rows.append(row)
                ok &= confident == 0
                print(
                    f"{name:16s} {kernels:9s} {board} ({row.cpu}): top-1 equal on {same}/{len(images)}, "
                    f"{confident} change(s) outside near-ties, max |dp| {row.max_dp:.2e}, "
                    f"accuracy x86 {row.accuracy_x86:.4f} arm64 {row.accuracy_arm64:.4f}"
                )
    if args.bench_out:
        in_guest(
            args.rootfs,
            "pi5",
            f"cd /opt/work && {VENV}/bin/edgeclf bench export --images images --runs 20 --warmup 2 "
            "--batch-sizes 1 --threads 2 --out /opt/work/bench.json",
        )
        data = json.loads((work / "bench.json").read_text())
        data["device"]["board"] = "Raspberry Pi 5 (emulated: qemu-user cortex-a76)"
        data["device"]["emulated"] = "qemu-user; latency under emulation means nothing"
        args.bench_out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"bench under emulation -> {args.bench_out}")
    if args.out:
        write_markdown(args, commit, rows, spreads, ok, verified)
    print("PASS" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


def write_markdown(args, commit: str, rows: list[Row], spreads: dict[str, int], ok: bool, verified: dict) -> None:
    lines = [
        "# arm64 runner under emulation vs x86",
        "",
        f"Command: `python tools/arm64_emulated_check.py {args.run} --split {args.split} --rootfs {args.rootfs}` "
        f"(runner wheel built from commit {commit[:10]}): the run's device bundle (`edgeclf export --bundle`) "
        "unpacked in "
        "Debian bookworm arm64 under qemu-user and installed by its own `install.sh` (the bundle's wheel, no "
        "TensorFlow), then `edgeclf verify` on the bundle for each board, then `edgeclf predict --json` on the "
        f"{rows[0].images if rows else 0} {args.split} images, compared with the same artifact on this x86_64 machine. "
        "Result: " + ("**pass**." if ok else "**fail**."),
        "",
        "## edgeclf verify on the boards",
        "",
    ]
    for board, (passed, output) in verified.items():
        lines += [
            f"{board} ({BOARDS[board][0]}): **{'pass' if passed else 'fail'}**",
            "",
            "```",
            output.strip(),
            "```",
            "",
        ]
    lines += [
        "## Predictions on the test split",
        "",
        "| artifact | kernels | board | QEMU_CPU | top-1 equal to x86 | changes outside near-ties (must be 0) | "
        "max abs diff of any probability | accuracy x86 | accuracy arm64 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.artifact} | {r.kernels} | {r.board} | {r.cpu} | {r.same_top1}/{r.images} | {r.outside_near_ties} | "
        f"{r.max_dp:.2e} | {r.accuracy_x86:.4f} | {r.accuracy_arm64:.4f} |"
        for r in rows
    ]
    lines += [
        "",
        "Kernels: *fast* is each engine's default (LiteRT: XNNPACK; ONNX Runtime: its CPU provider); "
        "*reference* is LiteRT's portable reference kernels (`--kernels reference`). Pass rule (see the script's "
        "docstring, the same as edgeclf verify's): every row equal on every image, except int8 TFLite on fast "
        "kernels, where an image may change class only if its reference output's top-1 margin is at most 2 x D "
        "quantization steps, D being the largest difference between x86's own fast and reference kernels.",
    ]
    lines += [
        f"On x86 alone, {name}'s fast and reference kernels disagree on {n}/{rows[0].images} top-1 and are at most "
        f"D = {d:.0f} steps apart."
        for name, (n, d) in spreads.items()
    ]
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
