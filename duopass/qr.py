"""QR images of DP1 codes: rendering (zxing-cpp, or segno in pure Python) and reading (zxing-cpp).

Codes are all-alphanumeric text, so both writers pick QR alphanumeric mode; error correction is M
as PROTOCOL.md §2 says.
"""

from __future__ import annotations

import io
from enum import StrEnum
from pathlib import Path

import numpy as np
import segno
import zxingcpp
from PIL import Image

from duopass.protocol.limits import IMAGE_FILE_BYTES_MAX

__all__ = ["QrError", "Writer", "read_image", "read_image_file", "render_png", "render_terminal"]

_IMAGE_PIXELS_MAX = 40_000_000
_SIDE_MAX = 65_535
"""zxing-cpp's largest side."""
_QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
"""Larger images are refused before decoding: a camera frame is at most a few megapixels."""


class QrError(ValueError):
    """An image that cannot be read (unreadable file, not an image, or too large)."""


class Writer(StrEnum):
    ZXING = "zxing"
    SEGNO = "segno"


def render_png(
    text: str, *, scale: int = 4, border: int = 4, writer: Writer = Writer.ZXING
) -> bytes:
    """A PNG of the QR code for `text`: `scale` pixels a module, `border` modules of quiet zone."""
    if writer is Writer.SEGNO:
        buffer = io.BytesIO()
        segno.make(text, error="m", micro=False).save(
            buffer, kind="png", scale=scale, border=border
        )
        return buffer.getvalue()
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    modules = np.asarray(barcode.to_image(scale=1, add_quiet_zones=False), dtype=np.uint8)
    padded = np.pad(modules, border, constant_values=255)
    pixels = np.repeat(np.repeat(padded, scale, axis=0), scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def render_terminal(text: str, *, border: int = 2) -> str:
    """The QR code for `text` as Unicode half blocks (two modules a character cell), for a
    terminal; segno, as zxing-cpp writes no text."""
    buffer = io.StringIO()
    segno.make(text, error="m", micro=False).terminal(out=buffer, compact=True, border=border)
    return buffer.getvalue()


def read_image(data: bytes) -> list[str]:
    """The texts of every QR code found in a PNG or JPEG image, in zxing-cpp's order."""
    if len(data) > IMAGE_FILE_BYTES_MAX:
        raise QrError("image file too large")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG", "JPEG"]) as image:
            width, height = image.size
            if (
                width * height > _IMAGE_PIXELS_MAX
                or not 0 < width <= _SIDE_MAX
                or not 0 < height <= _SIDE_MAX
            ):
                raise QrError("image has too many pixels or a side out of range")
            grey = image.convert("L")
        found = zxingcpp.read_barcodes(grey, formats=_QR_ONLY)
    except QrError:
        raise
    except Exception as exc:  # Pillow and zxing-cpp raise many types for hostile files
        raise QrError(f"not a readable PNG or JPEG image: {type(exc).__name__}") from exc
    return [barcode.text for barcode in found if barcode.valid]


def read_image_file(path: Path) -> list[str]:
    """`read_image` of a file, refusing one larger than the limit before reading it."""
    try:
        if path.stat().st_size > IMAGE_FILE_BYTES_MAX:
            raise QrError("image file too large")
        return read_image(path.read_bytes())
    except OSError as exc:
        raise QrError(f"cannot read {path}: {exc.strerror}") from exc
