"""QR images: both writers read back by zxing-cpp, and images that must be refused."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from duopass.qr import QrError, Writer, read_image, read_image_file, render_png
from tests.vectors import load_json_vectors

CODES = [
    c
    for _, v in load_json_vectors("dp1")
    if "codes" in v
    for c in v["codes"]
    if c.startswith("DP1:M")
]


@pytest.mark.parametrize("writer", list(Writer))
def test_every_vector_code_survives_a_round_trip_through_an_image(writer):
    for code in CODES[::3]:
        assert read_image(render_png(code, writer=writer)) == [code]


@pytest.mark.parametrize("writer", list(Writer))
def test_error_correction_is_level_m_in_alphanumeric_mode(writer):
    code = CODES[0]
    png = render_png(code, scale=1, border=0, writer=writer)
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert found.ec_level == "M"
    # 417 characters fit version 12 at level M only in alphanumeric mode (419 at most; bytes: 287)
    assert len(code) == 417
    assert Image.open(io.BytesIO(png)).size == (65, 65)


def test_two_codes_in_one_frame_are_both_found():
    left = Image.open(io.BytesIO(render_png(CODES[0])))
    right = Image.open(io.BytesIO(render_png(CODES[1])))
    frame = Image.new("L", (left.width + right.width + 40, max(left.height, right.height)), 255)
    frame.paste(left, (0, 0))
    frame.paste(right, (left.width + 40, 0))
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG")
    assert sorted(read_image(buffer.getvalue())) == sorted(CODES[:2])


@pytest.mark.parametrize("data", [b"", b"GIF89a garbage", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_unreadable_images_are_refused(data):
    with pytest.raises(QrError):
        read_image(data)


def test_huge_images_are_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000), 1).save(buffer, format="PNG")
    with pytest.raises(QrError, match="pixels"):
        read_image(buffer.getvalue())


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(QrError):
        read_image_file(tmp_path / "absent.png")


@pytest.mark.parametrize(
    ("size", "kind"), [((70_000, 1), "PNG"), ((64, 64), "GIF"), ((64, 64), "BMP")]
)
def test_only_png_and_jpeg_within_zxing_limits_are_read(size, kind):
    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format=kind)
    with pytest.raises(QrError):
        read_image(buffer.getvalue())
