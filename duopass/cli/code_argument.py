"""What a CODE argument holds: the text itself, or the path of an image with a QR code in it."""

from __future__ import annotations

from pathlib import Path

from duopass.qr import QrError, read_image_file

__all__ = ["scanned_text"]


def scanned_text(argument: str) -> str:
    """The code's text: an existing file is read as an image (its first QR code; "" when it has
    none, which every verifier answers with FORMAT); anything else is the text itself."""
    path = Path(argument)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a code's text is no path the OS can look up
        is_file = False
    if not is_file:
        return argument
    try:
        texts = read_image_file(path)
    except QrError:
        return ""
    return texts[0] if texts else ""
