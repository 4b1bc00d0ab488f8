"""`parse_digits`: the one reading of a number that arrives as text (headers, query strings,
amounts keyed in, note lines, command lines): ASCII decimal digits, bounded in length."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duopass.protocol.encoding import EncodingError, parse_digits


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("7", 7), ("1700000000", 1_700_000_000), ("007", 7), ("9" * 12, 10**12 - 1)],
)
def test_ascii_digits_are_read(text, value):
    assert parse_digits(text, digits_max=12) == value


@pytest.mark.parametrize(
    "text",
    [
        "\u00b2",  # superscript two: isdigit() says yes, int() says no (0xB2 in Latin-1)
        "\u00b3",
        "\u00b9",
        "1\u00b2",
        "\u0661\u0662",  # Arabic-Indic 12: int() reads it
        "\u06f1\u06f2",  # extended Arabic-Indic
        "\uff11\uff12",  # fullwidth 12
        "\u0967",  # Devanagari 1
        "\U0001d7ce",  # mathematical bold zero
        "\u2460",  # circled one
        "\u00bd",  # vulgar fraction one half: isnumeric() says yes
        "+5",
        "-5",
        " 5",
        "5 ",
        "5\n",
        "\t5",
        "1_000",
        "5.0",
        "1e3",
        "0x10",
        "",
    ],
)
def test_everything_else_is_refused(text):
    with pytest.raises(EncodingError):
        parse_digits(text, digits_max=12)


def test_overlong_is_refused_before_it_is_read():
    assert parse_digits("9" * 20, digits_max=20) == 10**20 - 1
    with pytest.raises(EncodingError):
        parse_digits("9" * 21, digits_max=20)
    with pytest.raises(EncodingError):  # int() itself would raise ValueError past 4,300 digits
        parse_digits("1" * 5000, digits_max=4300)


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_every_decimal_reads_back(value):
    assert parse_digits(str(value), digits_max=18) == value


@given(st.text(max_size=20))
def test_any_other_character_is_refused(text):
    if text and text.isascii() and text.isdigit():
        assert parse_digits(text, digits_max=20) == int(text)
    else:
        with pytest.raises(EncodingError):
            parse_digits(text, digits_max=20)
