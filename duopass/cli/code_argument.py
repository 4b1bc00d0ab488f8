"""What a CODE argument holds: the text itself, or the path of an image with a QR code in it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["scanned_text"]


def scanned_text(argument: str) -> str:
    """The code's text: an existing file is read as an image (its first QR code; "" when it has
    none, which every verifier answers with FORMAT); anything else is the text itself.

    One `access` a code (cheaper than `os.path.isfile`, which raises and catches an error for
    every text); the image reader (numpy, Pillow, zbar) is imported only when a file exists."""
    try:
        exists = "\0" not in argument and os.access(argument, os.F_OK)
    except (OSError, ValueError):  # a code's text is no path the OS can look up
        exists = False
    if not exists or not os.path.isfile(argument):
        return argument
    from duopass.qr import QrError, read_image_file

    try:
        texts = read_image_file(Path(argument))
    except QrError:
        return ""
    return texts[0] if texts else ""
