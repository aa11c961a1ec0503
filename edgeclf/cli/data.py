"""`edgeclf data pack`: a data folder -> a packed dataset (sharded TFRecord files) for training."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import done, overrides, setting, user_errors

HELP = "Prepare data for training: `pack` decodes and resizes a folder once into sharded TFRecord files."
app = typer.Typer(
    help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None
)


@app.command(
    "pack",
    help="Check and split a data folder as `edgeclf train` would, decode every image once at the training size "
    "and write sharded TFRecord files plus pack.json (the manifest and the split). `edgeclf train PACK` trains on it.",
    epilog="Example: edgeclf data pack photos/ --out packs/photos-224 --image-size 224 && "
    "edgeclf train packs/photos-224 --out runs/photos --image-size 224",
)
@user_errors
def pack_command(
    data_dir: Path = typer.Argument(..., help="Folder with one sub-folder per class, or train/ val/ test/ folders."),
    out: str = typer.Option(
        ..., "--out", "-o", help="Folder to create: a local path, or any filesystem TensorFlow writes (gs://, s3://)."
    ),
    shards: int | None = setting("pack.shards", "Training shards (0: about 1,024 images each).", "--shards"),
    encoding: str | None = setting(
        "pack.encoding", "png (lossless, smaller) | raw (uint8, fastest to read).", "--encoding"
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML file overriding configs/default.yaml."),
    image_size: int | None = setting("data.image_size", "Size the images are packed at (the training size)."),
    seed: int | None = setting("seed", "Seed for the split and the training shards' order."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing pack."),
) -> None:
    from edgeclf.cli import render
    from edgeclf.core.config import load_config
    from edgeclf.data.packed import pack
    from edgeclf.data.prepare import prepare_folder

    values, names = overrides(pack_command, locals())
    cfg = load_config([config] if config else [], values, names)
    with render.counting("checking images") as progress:
        data = prepare_folder(data_dir, cfg, progress)
    render.dataset_summary(data)
    with render.counting("packing") as progress:
        result = pack(data, out, cfg.data.image_size, cfg.pack, cfg.seed, overwrite=overwrite, progress=progress)
    shards_text = ", ".join(f"{split} {n}" for split, n in result.shards.items())
    done(
        f" in {result.seconds:.0f}s: {result.location}  ({result.images} images at {result.image_size} px, "
        f"{result.encoding}, {result.bytes / 2**20:.1f} MiB; shards: {shards_text})"
    )
