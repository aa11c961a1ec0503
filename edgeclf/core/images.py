"""Images: finding them, decoding and resizing them (the one preprocessing shared by training and
every runner), and the pixel normalisation the model core expects.

Training, export calibration, evaluation and the on-device runner all call `load_image`, so every
stage sees the same pixels; `normalize` is the one place where pixels become the values a model
without its `normalize` layer takes (QAT models, their TFLite files). Only Pillow and NumPy are
needed (no TensorFlow). PREPROCESSING describes `load_image` and is written into each run's metadata.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps

from edgeclf.core.errors import EdgeclfError

log = logging.getLogger(__name__)

# Pillow format names we accept (MPO is how Pillow names some camera JPEGs).
FORMATS = {"JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP"}
EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp"}

PREPROCESSING = {
    "decoder": "Pillow",
    "formats": sorted(FORMATS - {"MPO"}),
    "exif_transpose": True,
    "color": "RGB",
    "animated": "first frame",
    "alpha": "dropped",
    "high_bit_depth": "scaled to 8 bits (value >> 8)",
    "resize": {"method": "bilinear", "antialias": True, "keep_aspect": False},
    "dtype": "uint8",
    "range": [0, 255],
}


def normalize(pixels, normalization: dict):
    """pixels (0..255; NumPy or TensorFlow) -> pixels * scale + offset in float32, with scale and
    offset from the run's metadata (MobileNet: x / 127.5 - 1)."""
    if isinstance(pixels, np.ndarray):
        pixels = pixels.astype(np.float32, copy=False)
    return pixels * np.float32(normalization["scale"]) + np.float32(normalization["offset"])


def find_images(targets: list[Path]) -> list[Path]:
    """Image files named directly, and image files under named folders (recursively, sorted; hidden
    files and folders skipped). Raises EdgeclfError for a missing target or when nothing is found."""
    files: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            files += sorted(
                p
                for p in target.rglob("*")
                if p.is_file()
                and p.suffix.lower() in EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(target).parts)
            )
        elif target.is_file():
            files.append(target)
        else:
            raise EdgeclfError(f"{target}: no such file or folder")
    if not files:
        raise EdgeclfError(f"no images found in {', '.join(map(str, targets))}")
    return files


# Refused from the header, before any pixel is decoded: a small file can declare a huge image. Below
# Pillow's own bomb limit (MAX_IMAGE_PIXELS, 89 MP), so its warning never fires. JPEG's draft mode
# (decoding at a reduced scale) is not used: it would give other pixels than training saw.
MAX_PIXELS = 40_000_000
# Some formats Pillow decodes in Python (its registered PyDecoders: run-length BMP among those we
# read) at about 6 MP/s: a 1.2 KB RLE BMP declaring 33 MP took 5.3 s (found by tools/fuzz_images.py).
MAX_PYTHON_DECODED_PIXELS = 4_000_000


class ImageError(Exception):
    """The file is not an image we can decode; the message is the reason."""


# What admits a decode of so many pixels: a context manager held while the pixels are in memory
# (serve's DecodeBudget, which bounds the pixels decoded at once across its threads).
Admit = Callable[[int], AbstractContextManager]


class NotAdmitted(Exception):
    """Raised by an `admit` that will not let a decode start (serve: the decode budget stayed full)."""


def open_rgb(path: str | Path | BinaryIO, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image file (a path or a binary file object) into an 8-bit RGB PIL image, upright
    according to its EXIF orientation. Raises ImageError with the reason it cannot be used;
    `max_pixels` (at most MAX_PIXELS) refuses larger images from the header."""
    return _decode(path, max_pixels, None, lambda rgb: rgb)


def _decode(path, max_pixels: int, admit: Admit | None, finish: Callable[[Image.Image], object]):
    """open_rgb's work, then finish(the RGB image), all within admit(pixels) when given (entered
    before the pixels are decoded, left once finish returns; NotAdmitted from it passes through)."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    limit = min(max_pixels, MAX_PIXELS)
    try:
        with Image.open(path) as img:
            if img.format not in FORMATS:
                raise ImageError(f"unsupported format {img.format}")
            width, height = img.size
            if width * height > limit:
                where = "edgeclf decodes" if limit == MAX_PIXELS else "limit (predict.max_pixels)"
                raise ImageError(f"{width} x {height} pixels, over the {limit / 10**6:g} MP {where}")
            slow = {tile.codec_name for tile in img.tile} & set(Image.DECODERS)
            if slow and width * height > MAX_PYTHON_DECODED_PIXELS:
                raise ImageError(
                    f"{width} x {height} pixels in {img.format}'s {min(slow)} encoding, which Pillow decodes slowly: "
                    f"over the {MAX_PYTHON_DECODED_PIXELS / 10**6:g} MP edgeclf decodes in it; save it as PNG"
                )
            with (admit or _always)(width * height):
                img.seek(0)
                img.load()
                return finish(to_rgb8(_upright(img, path)))
    except (ImageError, NotAdmitted):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow names an in-memory file by its repr (`<_io.BytesIO object at 0x7f...>`): a heap
        # address that serve would send to any client
        raise ImageError(
            re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>", "the data", str(exc)) or type(exc).__name__
        ) from exc
    except Exception as exc:  # hostile bytes reach decoder paths that raise anything (TypeError, struct.error...)
        raise ImageError(f"undecodable image ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from exc


def _always(pixels: int) -> AbstractContextManager:
    return nullcontext()


def _upright(img: Image.Image, path) -> Image.Image:
    """The image turned as its EXIF orientation says; with damaged EXIF (Pillow's exif_transpose
    re-encodes every tag and raises on a malformed one: a 681-byte JPEG whose XResolution is text
    raised TypeError), the image as stored, and a warning naming the file."""
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception as exc:
        name = getattr(path, "name", path)
        log.warning(f"{name}: damaged EXIF ({type(exc).__name__}); orientation not applied")
        return img
    return upright if upright is not None else img


def to_rgb8(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode (L, P, RGBA, CMYK, I;16, I, ...) to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode == "I":
        wide = np.asarray(img).astype(np.uint32)
        gray = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if img.mode == "F":
        gray = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return img.convert("RGB")


def resize(img: Image.Image, size: int | tuple[int, int]) -> np.ndarray:
    """Resize to (height, width) with antialiased bilinear filtering; returns uint8 HxWx3."""
    height, width = (size, size) if isinstance(size, int) else size
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def load_image(
    path: str | Path | BinaryIO, size: int | tuple[int, int], max_pixels: int = MAX_PIXELS, admit: Admit | None = None
) -> np.ndarray:
    """The shared preprocessing: decode, EXIF-orient, convert to RGB, resize. uint8 HxWx3, 0..255.
    `max_pixels` as in open_rgb; `admit(pixels)`, when given, is held from before the pixels are
    decoded until they are resized (serve's decode budget: the full-size image counts until then)."""
    return _decode(path, max_pixels, admit, lambda rgb: resize(rgb, size))


def check_image(path: str | Path) -> str | None:
    """None when the file decodes completely, else the reason it cannot be used."""
    path = Path(path)
    if path.stat().st_size == 0:
        return "empty file"
    try:
        open_rgb(path)
    except ImageError as exc:
        reason = str(exc)
        if "cannot identify image file" in reason:
            return "not an image"
        if "truncated" in reason or "broken data stream" in reason:
            return "truncated image"
        return f"unreadable image: {reason}"
    return None
