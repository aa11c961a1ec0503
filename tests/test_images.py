import io

import numpy as np
import pytest
from PIL import Image

from edgeclf.core.images import check_image, load_image, open_rgb


def _save(img, path, **kw):
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1", "RGB"])
def test_every_mode_becomes_8bit_rgb(tmp_path, mode):
    src = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    img = src.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    path = _save(img, tmp_path / f"x.{fmt.lower()}", format=fmt)
    out = load_image(path, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8


def test_16bit_png_keeps_the_high_byte(tmp_path):
    values = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "deep.png")
    rgb = np.asarray(open_rgb(path))
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = _save(img, tmp_path / "r.jpg", format="JPEG", exif=exif.tobytes(), quality=95)
    upright = np.asarray(open_rgb(path))
    assert upright.shape == (40, 20, 3)  # portrait now
    assert upright[2, 10, 2] > 200 and upright[-3, 10, 0] > 200  # blue moved to the top


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((250, 0, 0), (0, 250, 0))]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    px = np.asarray(open_rgb(path))[0, 0]
    assert px[0] > 200 and px[1] < 50


def test_resize_is_bilinear_to_square(tmp_path):
    path = _save(Image.new("RGB", (2400, 1600), (10, 20, 30)), tmp_path / "big.png")
    out = load_image(path, 48)
    assert out.shape == (48, 48, 3) and (out == [10, 20, 30]).all()


def test_check_image_reasons(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "e.jpg").write_bytes(b"")
    (tmp_path / "x.png").write_text("hello")
    (tmp_path / "ok.jpg").write_bytes(buf.getvalue())
    assert check_image(tmp_path / "t.jpg") == "truncated image"
    assert check_image(tmp_path / "e.jpg") == "empty file"
    assert check_image(tmp_path / "x.png") == "not an image"
    assert check_image(tmp_path / "ok.jpg") is None


def test_unsupported_format_is_refused(tmp_path):
    path = _save(Image.new("RGB", (8, 8)), tmp_path / "x.png", format="TIFF")
    assert "unsupported format TIFF" in check_image(path)


def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding(tmp_path):
    from edgeclf.core.images import MAX_PIXELS, ImageError, load_image

    path = tmp_path / "bomb.png"
    Image.new("1", (8000, 6000)).save(path)  # 48 MP in a few kilobytes
    assert path.stat().st_size < 100_000 and 8000 * 6000 > MAX_PIXELS
    with pytest.raises(ImageError, match="8000 x 6000 pixels, over the 40 MP"):  # refused from the header
        load_image(path, 32)


@pytest.mark.parametrize("fault", ["TypeError", "struct.error"])
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
def test_damaged_exif_keeps_the_pixels_and_says_so(tmp_path, caplog, fmt, fault):
    """Pillow's exif_transpose raises TypeError or struct.error on these files of 127-681 bytes
    (issue 21: a JPEG and a WebP stopped watch): the image is used as stored, with a warning naming
    the file, never a traceback."""
    import struct

    from PIL import ImageOps

    from tests.helpers import damaged_exif_image

    path = damaged_exif_image(tmp_path / f"bad_exif.{fmt.lower()}", fmt, fault)
    with Image.open(path) as img, pytest.raises((TypeError, struct.error)):
        ImageOps.exif_transpose(img)  # the defect this guards against is still in Pillow
    out = load_image(path, 8)
    assert out.shape == (8, 8, 3) and out[..., 0].mean() > 150  # the red image, not rotated away
    assert check_image(path) is None
    name = "error" if fault == "struct.error" else fault
    assert any(f"{path.name}: damaged EXIF ({name}); orientation not applied" in r.getMessage() for r in caplog.records)


def test_any_decoder_exception_is_an_image_error(tmp_path, monkeypatch):
    """Hostile bytes reach decoder paths that raise what Pillow never documents (struct.error,
    TypeError, IndexError): each is the one-line ImageError, the per-image error of every stage."""
    import struct

    from edgeclf.core.images import ImageError

    path = _save(Image.new("RGB", (4, 4)), tmp_path / "x.png")
    for exc in (struct.error("unpack requires a buffer of 4 bytes"), TypeError("bad operand"), IndexError("tuple")):

        def broken(self, exc=exc):
            raise exc

        monkeypatch.setattr(Image.Image, "load", broken)
        with pytest.raises(ImageError, match=f"undecodable image \\({type(exc).__name__}"):
            open_rgb(path)
        assert check_image(path).startswith("unreadable image: undecodable image")


def test_predict_answers_for_a_damaged_exif_file(tiny_run, tmp_path):
    """Before: `edgeclf predict` ended in a TypeError traceback on this file."""
    import json

    from typer.testing import CliRunner

    from edgeclf.cli import app
    from tests.helpers import damaged_exif_jpeg

    path = damaged_exif_jpeg(tmp_path / "bad_exif.jpg")
    result = CliRunner().invoke(app, ["predict", str(tiny_run), str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    answers = json.loads(result.output[result.output.index("[") :])
    assert answers[0]["image"].endswith("bad_exif.jpg") and len(answers[0]["top_k"]) == 3


def test_errors_on_in_memory_data_carry_no_heap_address():
    """serve's error bodies showed `<_io.BytesIO object at 0x7f...>` (issue 21)."""
    from edgeclf.core.images import ImageError

    with pytest.raises(ImageError) as info:
        open_rgb(io.BytesIO(b"not an image at all"))
    assert "0x" not in str(info.value) and "object at" not in str(info.value)
    assert "cannot identify image file the data" in str(info.value)


def test_a_small_run_length_bmp_declaring_many_pixels_is_refused_from_its_header():
    """Found by tools/fuzz_images.py: a 1.2 KB RLE8 BMP declaring 16,776,964 x 2 pixels took 5.3 s
    to decode (Pillow's BMP RLE decoder is Python). A small one still decodes."""
    import io

    from edgeclf.core.images import ImageError
    from tests.helpers import bmp_rle8

    assert load_image(io.BytesIO(bmp_rle8(4)), 4).shape == (4, 4, 3)
    data = bmp_rle8(16_776_964)
    assert len(data) < 1100
    with pytest.raises(ImageError, match="16776964 x 2 pixels in BMP's bmp_rle encoding.*save it as PNG"):
        load_image(io.BytesIO(data), 4)
