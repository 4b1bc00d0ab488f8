"""The browser wallet's codec (`static/wallet/`: cbor.js, base45.js, dp1.js) in a real browser,
against the shared `mint` vectors byte for byte, against codes the Python library mints, and
against Python's `cbor2` (canonical) and base45 for random structures.

The page is the wallet's own (`/wallet/`), served by the real server on 127.0.0.1; the test
imports the modules into it. The device key is imported into WebCrypto from its seed (PKCS #8):
Ed25519 signatures are deterministic, so the bytes must match."""

from __future__ import annotations

import json
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from duopass.protocol.code import make_code
from duopass.protocol.encoding import b45encode
from duopass.protocol.keys import SigningKey
from tests.vectors import load_json_vectors
from tests.web.test_wallet_browser import OURS

PKCS8_ED25519_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
LIMIT = 2**53
_MODULES = """async () => {
  window.cbor = await import(ours("cbor.js"));
  window.base45 = await import(ours("base45.js"));
  window.dp1 = await import(ours("dp1.js"));
  window.hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  window.unhex = (text) => Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
  window.fromTagged = (item) => {
    if ("i" in item) return item.i;
    if ("b" in item) return unhex(item.b);
    if ("t" in item) return item.t;
    if ("a" in item) return item.a.map(fromTagged);
    return new Map(item.m.map(([k, v]) => [k, fromTagged(v)]));
  };
  window.deviceKey = async (seedHex) => crypto.subtle.importKey(
    "pkcs8", unhex("302e020100300506032b657004220420" + seedHex), {name: "Ed25519"}, false,
    ["sign"]);
}"""
_MINT = """async ([seed, l1, ctr, ts]) => {
  const key = await deviceKey(seed);
  return {l2: hex(await dp1.makeL2(unhex(l1), key, ctr, ts)),
          text: await dp1.makeCode(unhex(l1), key, ctr, ts)};
}"""


def _mint_vectors() -> list[dict[str, Any]]:
    found = [doc for name, doc in load_json_vectors("dp1") if name.startswith("mint")]
    assert found, "no mint vectors in the shared folder"
    return found


def _page(chromium: Any, url: str) -> Any:
    context = chromium.new_context()
    context.add_init_script(OURS)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{url}/wallet/")
    page.evaluate(_MODULES)
    return page


def test_the_page_mints_every_mint_vector_byte_for_byte(site, chromium):
    page = _page(chromium, site.url)
    for vector in _mint_vectors():
        made = page.evaluate(
            _MINT,
            [vector["device_seed_hex"], vector["l1_hex"], int(vector["ctr"]), int(vector["ts"])],
        )
        assert made["l2"] == vector["l2_hex"]
        assert made["text"] == vector["text"]


def test_the_page_mints_what_the_library_mints(site, chromium):
    """The vector's credential at other counters and times, the limits included."""
    page = _page(chromium, site.url)
    vector = _mint_vectors()[0]
    l1 = bytes.fromhex(vector["l1_hex"])
    device = SigningKey(bytes.fromhex(vector["device_seed_hex"]))
    for ctr, ts in [(0, 0), (1, 23), (24, 255), (999, 65_536), (2**32 - 1, 2**40), (7, LIMIT - 1)]:
        made = page.evaluate(_MINT, [vector["device_seed_hex"], l1.hex(), ctr, ts])
        assert made["text"] == make_code(l1, device, ctr=ctr, ts=ts), (ctr, ts)
    static = page.evaluate("async (l1) => dp1.makeCode(unhex(l1), null, 0, 0)", l1.hex())
    assert static == make_code(l1, None)


def test_the_page_refuses_a_counter_or_time_out_of_range(site, chromium):
    page = _page(chromium, site.url)
    vector = _mint_vectors()[0]
    for ctr, ts in [(2**32, 1), (-1, 1), (0, -1), (0, 1.5)]:
        refused = page.evaluate(
            """async ([seed, l1, ctr, ts]) => {
              try { await dp1.makeL2(unhex(l1), await deviceKey(seed), ctr, ts); return null; }
              catch (e) { return e.name + ": " + e.message; } }""",
            [vector["device_seed_hex"], vector["l1_hex"], ctr, ts],
        )
        assert refused is not None and "bad" in refused, (ctr, ts)


_INTS = st.integers(min_value=-(LIMIT - 1), max_value=LIMIT - 1)
_EDGES = st.sampled_from([0, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, LIMIT - 1])
_NEGATIVE_EDGES = _EDGES.map(lambda n: max(-1 - n, -(LIMIT - 1)))  # -24, -25, -256, -257 ...
_KEYS = st.one_of(_INTS, _EDGES, _NEGATIVE_EDGES)
_LEAVES = st.one_of(
    _KEYS,
    st.binary(max_size=300),
    st.text(max_size=40),
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(_KEYS, inner, max_size=6),
    ),
    max_leaves=30,
)


def _tagged(value: Any) -> dict[str, Any]:
    """A value in a JSON form the page turns back into the right JavaScript type."""
    if isinstance(value, int):
        return {"i": value}
    if isinstance(value, bytes):
        return {"b": value.hex()}
    if isinstance(value, str):
        return {"t": value}
    if isinstance(value, list):
        return {"a": [_tagged(item) for item in value]}
    return {"m": [[key, _tagged(item)] for key, item in value.items()]}


def test_cbor_is_cbor2s_canonical_encoding_and_decodes_back(site, chromium):
    page = _page(chromium, site.url)

    @settings(max_examples=300, deadline=None, database=None)
    @given(_TREES)
    def check(value: Any) -> None:
        expected = cbor2.dumps(value, canonical=True).hex()
        made = page.evaluate(
            """([tagged, expected]) => {
              const encoded = hex(cbor.encode(fromTagged(tagged)));
              const again = hex(cbor.encode(cbor.decode(unhex(expected))));
              return [encoded, again];
            }""",
            [_tagged(value), expected],
        )
        assert made == [expected, expected], json.dumps(_tagged(value))[:300]

    check()


def test_base45_is_rfc_9285s(site, chromium):
    page = _page(chromium, site.url)
    for text, encoded in [("AB", "BB8"), ("Hello!!", "%69 VD92EX0"), ("base-45", "UJCLQE7W581")]:
        got = page.evaluate("(t) => base45.encode(new TextEncoder().encode(t))", text)
        assert got == encoded
        back = page.evaluate("(e) => new TextDecoder().decode(base45.decode(e))", encoded)
        assert back == text

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.binary(max_size=400))
    def check(data: bytes) -> None:
        got = page.evaluate(
            "(h) => { const e = base45.encode(unhex(h)); return [e, hex(base45.decode(e))]; }",
            data.hex(),
        )
        assert got == [b45encode(data), data.hex()]

    check()
    for bad in ["GGW", "A", "ab", "ZZZZ"]:  # 65536+, a dangling character, lower case
        refused = page.evaluate(
            "(t) => { try { base45.decode(t); return null; } catch (e) { return e.name; } }", bad
        )
        assert refused == "Base45Error", bad


_REFUSED_BY_ENCODER = [
    "2 ** 53",
    "-(2 ** 53)",
    "1.5",
    "true",
    "null",
    "undefined",
    "new Map([['a', 1]])",
    "new Map([[1.5, 1]])",
    "[{}]",
]
_NOT_DETERMINISTIC = [
    "1817",  # 23 in two bytes
    "190017",  # 23 in three
    "5f4100ff",  # an indefinite byte string
    "a202000100",  # keys out of order
    "a201000100",  # a duplicate key
    "f4",  # false
    "f93c00",  # a float
    "c11a00000000",  # a tag
    "1b0020000000000000",  # 2^53
    "a1616101",  # a text key
    "0000",  # bytes after the item
]


def test_cbor_refuses_what_a_code_cannot_hold(site, chromium):
    page = _page(chromium, site.url)
    for source in _REFUSED_BY_ENCODER:
        script = f"() => {{ try {{ cbor.encode({source}); return null; }}"
        script += " catch (e) { return e.name; } }"
        refused = page.evaluate(script)
        assert refused == "CborError", source
    for data in _NOT_DETERMINISTIC:
        refused = page.evaluate(
            "(h) => { try { cbor.decode(unhex(h)); return null; } catch (e) { return e.name; } }",
            data,
        )
        assert refused == "CborError", data
