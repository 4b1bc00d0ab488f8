"""What a CODE argument holds: the text itself, or the path of an image with a QR code in it."""

from __future__ import annotations

import os.path
from pathlib import Path

__all__ = ["scanned_text"]


def scanned_text(argument: str) -> str:
    """The code's text: an existing file is read as an image (its first QR code; "" when it has
    none, which every verifier answers with FORMAT); anything else is the text itself.

    One `stat` a code (`os.path.isfile` is False for a text the OS cannot look up); the image
    reader (numpy, Pillow, zbar) is imported only when a file exists."""
    if not os.path.isfile(argument):
        return argument
    from duopass.qr import QrError, read_image_file

    try:
        texts = read_image_file(Path(argument))
    except QrError:
        return ""
    return texts[0] if texts else ""
