"""Test data makers: small class folders cut from the embedded Fashion-MNIST subset, and a messy
folder of real photos and junk. Run as a script to build the messy folder for a manual check:

    python -m tests.helpers /tmp/messy 20
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from edgeclf.demo import embedded_dataset

# Formats and extension spellings cycled through for the copied Fashion-MNIST images.
COPY_FORMATS = [
    ("png", "PNG"),
    ("JPG", "JPEG"),
    ("jpeg", "JPEG"),
    ("bmp", "BMP"),
    ("gif", "GIF"),
    ("webp", "WEBP"),
    ("PNG", "PNG"),
]

JUNK = {
    "bag/broken.jpg": "truncated image",
    "sneaker/empty.jpg": "empty file",
    "trouser/notes.png": "not an image",
    "trouser/labels.csv": "not an image file (extension '.csv')",
}
IGNORED = {
    "README.md": "outside class folders",
    ".DS_Store": "hidden",
    "bag/.DS_Store": "hidden",
    "sneaker/._0001.png": "hidden",
}


def serve_settings(**keys):
    """(serve.*, predict.*) for make_server: configs/default.yaml with these keys changed (serve ones
    by name, e.g. port=0; top_k and max_pixels are predict's)."""
    from edgeclf.core.config import load_config

    section = {k: "predict" if k in ("top_k", "max_pixels") else "serve" for k in keys}
    cfg = load_config(overrides={f"{section[k]}.{k}": v for k, v in keys.items()})
    return cfg.serve, cfg.predict


def backbone_file() -> Path | None:
    """tools/fetch_backbone.py's cached model file (checked by size), or None when it is not there."""
    import importlib.util

    tool = Path(__file__).parents[1] / "tools" / "fetch_backbone.py"
    spec = importlib.util.spec_from_file_location("fetch_backbone", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = module.cached_path()
    return path if path.is_file() and path.stat().st_size == module.MODEL_BYTES else None


def class_folders(dest: Path, classes: list[str], per_class: int) -> Path:
    """Copy the first per_class embedded images of each class into dest/CLASS/."""
    source = embedded_dataset()
    for name in classes:
        (dest / name).mkdir(parents=True, exist_ok=True)
        for path in sorted((source / name).glob("*.png"))[:per_class]:
            shutil.copy(path, dest / name / path.name)
    return dest


def real_photo(name: str = "china.jpg") -> Image.Image:
    """A real photograph shipped with scikit-learn (427x640)."""
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name))


def make_messy_folder(dest: Path, per_class: int = 12) -> Path:
    """Three Fashion-MNIST classes in mixed formats, plus real photos in awkward modes, plus junk."""
    dest = Path(dest)
    classes = ["bag", "sneaker", "trouser"]
    source = embedded_dataset()
    for name in classes:
        (dest / name).mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(sorted((source / name).glob("*.png"))[:per_class]):
            ext, fmt = COPY_FORMATS[i % len(COPY_FORMATS)]
            img = Image.open(path).convert("RGB" if fmt == "JPEG" else "L")
            img.save(dest / name / f"{path.stem}.{ext}", format=fmt)
    china, flower = real_photo("china.jpg"), real_photo("flower.jpg")
    china.convert("CMYK").save(dest / "bag" / "photo_cmyk.jpg", format="JPEG")
    flower.quantize(64).save(dest / "sneaker" / "photo_palette.png")
    gray16 = (np.asarray(china.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(dest / "trouser" / "photo_16bit.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    flower.save(dest / "bag" / "photo_exif_rotated.jpg", format="JPEG", exif=exif.tobytes())
    china.resize((2400, 1605)).save(dest / "sneaker" / "photo_2400px.jpg", format="JPEG", quality=90)
    china.convert("RGBA").save(dest / "trouser" / "photo_rgba.PNG")
    # junk
    buf = io.BytesIO()
    flower.save(buf, format="JPEG")
    (dest / "bag" / "broken.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (dest / "sneaker" / "empty.jpg").write_bytes(b"")
    (dest / "trouser" / "notes.png").write_text("this is not a picture\n")
    (dest / "trouser" / "labels.csv").write_text("a,b\n")
    for name in IGNORED:
        (dest / name).write_bytes(b"\0\0junk" if "DS_Store" in name or name.startswith("sneaker/._") else b"# photos\n")
    return dest


if __name__ == "__main__":
    out = make_messy_folder(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 12)
    print(out)


# EXIF values Pillow's exif_transpose cannot re-encode (issue 21): XResolution as text raises
# TypeError (bad operand type for abs(): 'str'); ResolutionUnit as a LONG over 65535 raises struct.error.
EXIF_FAULTS = {
    "TypeError": (0x011A, 2, 3, b"ab\x00\x00"),
    "struct.error": (0x0128, 4, 1, (2**31).to_bytes(4, "little")),
}


def damaged_exif_image(path: Path, fmt: str = "JPEG", fault: str = "TypeError") -> Path:
    """A tiny red image (JPEG 681 bytes, WebP 132, PNG 127) whose EXIF says orientation 6 and holds
    one damaged value (EXIF_FAULTS): Pillow's exif_transpose raises on it."""
    import struct

    entries = [(0x0112, 3, 1, struct.pack("<HH", 6, 0)), EXIF_FAULTS[fault]]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", t, kind, n) + v for t, kind, n, v in entries)
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    Image.new("RGB", (8, 4), (200, 10, 10)).save(path, fmt, exif=exif)
    return path


def damaged_exif_jpeg(path: Path) -> Path:
    """The 681-byte JPEG of issue 21 (exif_transpose: TypeError)."""
    return damaged_exif_image(path)


def fuzz_seed_images() -> dict[str, bytes]:
    """Small valid files that reach the decoder paths hostile bytes target (issue 21): every format
    edgeclf reads, EXIF (orientation, resolution, a GPS sub-IFD), ICC profiles and XMP in the
    formats that carry them, palette and animated GIFs, 8-bit and 24-bit BMPs. Named seeds, for
    the fuzz targets of tests/test_fuzz.py and tools/fuzz_images.py."""
    import io

    from PIL import ImageCms

    pixels = np.random.default_rng(0).integers(0, 255, (12, 10, 3), np.uint8)
    rgb = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    exif[0x011A] = exif[0x011B] = 72.0
    exif[0x0131] = "edgeclf fuzz"
    exif.get_ifd(0x8825)[2] = (1.0, 2.0, 3.0)  # GPS latitude
    exif_bytes = exif.tobytes()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="3"/></rdf:RDF></x:xmpmeta>'
    )
    seeds: dict[str, bytes] = {}

    def save(name, img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        seeds[name] = buf.getvalue()

    save("png", rgb, "PNG")
    save("png-exif-icc", rgb, "PNG", exif=exif_bytes, icc_profile=icc)
    save("png-16bit", Image.fromarray(pixels[..., 0].astype(np.uint16) * 257), "PNG")
    save("png-rgba", rgb.convert("RGBA"), "PNG")
    save("jpeg", rgb, "JPEG")
    save("jpeg-exif-icc-xmp", rgb, "JPEG", exif=exif_bytes, icc_profile=icc, xmp=xmp)
    save("jpeg-progressive-cmyk", rgb.convert("CMYK"), "JPEG", progressive=True)
    save("webp", rgb, "WEBP")
    save("webp-lossless-exif-icc-xmp", rgb, "WEBP", lossless=True, exif=exif_bytes, icc_profile=icc, xmp=xmp)
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    save("webp-animated", frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50)
    save("gif", rgb.convert("P"), "GIF")
    save("gif-animated", frames[0].convert("P"), "GIF", save_all=True, append_images=[frames[1].convert("P")])
    save("bmp-8bit", rgb.convert("L"), "BMP")
    save("bmp-24bit", rgb, "BMP")
    seeds["bmp-rle8"] = bmp_rle8()
    return seeds


def bmp_rle8(width: int = 4) -> bytes:
    """A width x 2 8-bit run-length-encoded BMP (Pillow reads RLE8 but does not write it) whose data
    holds two rows of four pixels: a wider one is a few bytes that declare many pixels."""
    import struct

    palette = b"".join(struct.pack("<BBBB", v, v, v, 0) for v in range(256))
    data = bytes([4, 10, 0, 0, 4, 200, 0, 1])  # row of four 10s, end of line, row of four 200s, end of bitmap
    header_size = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, 2, 1, 8, 1, len(data), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", header_size + len(data), 0, 0, header_size) + info + palette + data


def plant_int8_outlier(run: Path, channel: int = 0) -> None:
    """Make a run's float model one that full-integer int8 cannot hold: feature `channel` of the
    last conv block is switched off (its BatchNorm offset at -8 standard deviations, so its ReLU
    is 0 on the images) and the head gives that dead feature a weight a thousand times its others.
    The float model's answers do not depend on it, but per-channel int8 weights scaled to the
    outlier round every other head weight to zero: the int8 file answers with the bias alone.
    Keeping the head in float repairs it (tests/test_repair.py)."""
    from edgeclf.training.models import load_model, save_model

    model = load_model(run / "model.keras")
    bn = model.get_layer("block3_bn2")
    gamma, beta, mean, var = bn.get_weights()
    gamma[channel], beta[channel] = 1.0, -8.0
    bn.set_weights([gamma, beta, mean, var])
    head = model.get_layer("head_dense")
    kernel, bias = head.get_weights()
    kernel[channel, :] = 1e3 * np.abs(kernel).max(axis=0)
    head.set_weights([kernel, bias])
    save_model(model, run / "model.keras")
