"""Where things are in a policy file: the offset of every key and value of the top level and
of each table of an array (`[[rule]]`, `[[signal]]`, `[[guard]]`), and for a string value,
the file offset of each of its characters, so that an error inside a rule's CEL expression is
reported at the file's line and column.

`tomllib` has read the file already (it is valid TOML); this scanner only finds positions.
When a file is written in a way it does not follow (a rule as an inline table), positions
fall back to the nearest thing it found; a wrong position is never worse than the rule's.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["Layout", "Spot", "decode_string", "scan"]

_ESCAPES = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    '"': '"',
    "\\": "\\",
    "e": "\x1b",
}
_HEX = {"u": 4, "U": 8, "x": 2}


@dataclass(frozen=True)
class Spot:
    key: int
    """The offset of the key."""
    value: int
    """The offset of the value's first character (its opening quote, for a string)."""


@dataclass
class Layout:
    text: str
    top: dict[str, Spot] = field(default_factory=dict)
    rules: list[dict[str, Spot]] = field(default_factory=list)
    rule_headers: list[int] = field(default_factory=list)
    tables: dict[str, list[dict[str, Spot]]] = field(default_factory=dict)
    """Every array of tables (`[[rule]]`, `[[signal]]`, `[[guard]]`) by name."""
    headers: dict[str, list[int]] = field(default_factory=dict)
    _lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lines = [0] + [n + 1 for n, char in enumerate(self.text) if char == "\n"]

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based line and column (in characters) of an offset."""
        line = bisect.bisect_right(self._lines, offset) - 1
        return line + 1, offset - self._lines[line] + 1

    def rule_spot(self, index: int, key: str) -> Spot:
        """Where a rule's key is, or its `[[rule]]` header when the key is not found."""
        return self.spot("rule", index, key)

    def spot(self, table: str, index: int, key: str) -> Spot:
        """Where the key of the `index`th `[[table]]` is, or its header when not found."""
        found = self.tables.get(table, [])
        if index < len(found) and key in found[index]:
            return found[index][key]
        headers = self.headers.get(table, [])
        header = headers[index] if index < len(headers) else 0
        return Spot(header, header)


def scan(text: str) -> Layout:
    """The positions of the keys of a valid TOML text (the top level and each `[[rule]]`)."""
    layout = Layout(text)
    current: dict[str, Spot] | None = layout.top
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char in " \t\r\n":
            i += 1
        elif char == "#":
            i = _line_end(text, i)
        elif char == "[":
            close = text.find("]", i)
            name = text[i:close].strip("[] \t")
            if text.startswith("[[", i):
                layout.headers.setdefault(name, []).append(i)
                layout.tables.setdefault(name, []).append({})
                current = layout.tables[name][-1]
                if name == "rule":
                    layout.rule_headers.append(i)
                    layout.rules.append(current)
            else:
                current = None  # a table this scanner does not place
            i = _line_end(text, close)
        else:
            equals = _key_end(text, i)
            key = text[i:equals].strip().strip("\"'")
            value = equals + 1
            while value < end and text[value] in " \t":
                value += 1
            if current is not None:
                current[key] = Spot(i, value)
            i = _skip_value(text, value)
    return layout


def _line_end(text: str, i: int) -> int:
    newline = text.find("\n", i)
    return len(text) if newline < 0 else newline + 1


def _key_end(text: str, i: int) -> int:
    """The offset of the `=` after a key (quoted keys may hold one)."""
    quote = ""
    while i < len(text):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "=":
            return i
        i += 1
    return i


def _skip_value(text: str, i: int) -> int:
    """The offset just after the value starting at `i`."""
    if text.startswith(('"""', "'''"), i) or text[i : i + 1] in ("'", '"'):
        return _string_end(text, i)
    if text[i : i + 1] in ("[", "{"):
        depth = 0
        while i < len(text):
            char = text[i]
            if char in "\"'":
                i = _string_end(text, i)
                continue
            if char == "#":
                i = _line_end(text, i)
                continue
            depth += (char in "[{") - (char in "]}")
            i += 1
            if depth == 0:
                return i
        return i
    return _line_end(text, i)


def _string_end(text: str, i: int) -> int:
    delimiter = text[i : i + 3] if text.startswith(('"""', "'''"), i) else text[i]
    j = i + len(delimiter)
    while j < len(text):
        if delimiter[0] == '"' and text[j] == "\\":
            j += 2
            continue
        if text.startswith(delimiter, j):
            j += len(delimiter)
            extra = 0
            while len(delimiter) == 3 and extra < 2 and text[j : j + 1] == delimiter[0]:
                j, extra = j + 1, extra + 1  # it may end in one or two of its own quotes
            return j
        j += 1
    return j


def decode_string(text: str, start: int) -> tuple[str, list[int]]:
    """The string value starting at `start` (any of TOML's four kinds), and the file offset of
    each of its characters, with one more: where the string's content ends."""
    delimiter = text[start : start + 3] if text.startswith(('"""', "'''"), start) else text[start]
    if delimiter[0] not in "\"'":
        raise ValueError("not a string")
    stop = _string_end(text, start) - len(delimiter)
    i = start + len(delimiter)
    if len(delimiter) == 3:  # a newline right after the opening delimiter is not content
        if text.startswith("\r\n", i):
            i += 2
        elif text.startswith("\n", i):
            i += 1
    chars: list[str] = []
    offsets: list[int] = []
    while i < stop:
        char = text[i]
        if delimiter[0] == '"' and char == "\\":
            i = _escape(text, i, stop, chars, offsets)
            continue
        if char == "\r" and text.startswith("\r\n", i):
            i += 1  # tomllib reads CRLF as LF
            continue
        chars.append(char)
        offsets.append(i)
        i += 1
    offsets.append(stop)
    return "".join(chars), offsets


def _escape(text: str, i: int, stop: int, chars: list[str], offsets: list[int]) -> int:
    """Decode the escape at `i` (a backslash); returns the offset after it."""
    kind = text[i + 1]
    if kind in _ESCAPES:
        chars.append(_ESCAPES[kind])
        offsets.append(i)
        return i + 2
    if kind in _HEX:
        digits = _HEX[kind]
        chars.append(chr(int(text[i + 2 : i + 2 + digits], 16)))
        offsets.append(i)
        return i + 2 + digits
    j = i + 1  # a line-ending backslash: whitespace and newlines up to the next text go
    while j < stop and text[j] in " \t\r\n":
        j += 1
    return j
