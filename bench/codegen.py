"""Code generation (L2 signing + DP1 text) per second, and QR rendering with zxing-cpp vs segno.

Generation is compared with one raw libsodium Ed25519 signature (its floor), rendering of the
same code to PNG with zxing-cpp against segno, measured in the same run.

    python -m bench.codegen [--quick]
"""

from __future__ import annotations

import nacl.bindings

from bench.timing import best_of, parser, table, us
from bench.verify import ISSUER, NOW, purse
from duopass.protocol import SigningKey, make_code, mint_credential
from duopass.qr import Writer, render_png


def main() -> None:
    args = parser(__doc__).parse_args()
    count, renders, rounds = (50, 3, 2) if args.quick else (3000, 60, 5)
    device = SigningKey.generate()
    l1 = mint_credential(purse(device), ISSUER)
    text = make_code(l1, device, ctr=0, ts=NOW)
    secret = device.seed + device.public
    message = b"x" * 120  # about the size of an L2 Sig_structure

    def raw_sign() -> None:
        for _ in range(count):
            nacl.bindings.crypto_sign(message, secret)

    def generate() -> None:
        for ctr in range(count):
            make_code(l1, device, ctr=ctr % 10, ts=NOW + ctr)

    def zxing() -> None:
        for _ in range(renders):
            render_png(text, writer=Writer.ZXING)

    def segno() -> None:
        for _ in range(renders):
            render_png(text, writer=Writer.SEGNO)

    gen = best_of({"raw": raw_sign, "generate": generate}, count, rounds)
    qr = best_of({"zxing": zxing, "segno": segno}, renders, rounds)
    print(
        f"code generation ({count} codes) and QR rendering ({renders} PNGs, {len(text)} characters)"
    )
    table(
        [
            ("raw libsodium signature", us(gen["raw"])),
            (
                "make a code (L2 + text)",
                f"{us(gen['generate'])}  = {gen['generate'] / gen['raw']:.2f}x",
            ),
            ("codes made per second", f"{1 / gen['generate']:8.0f}"),
            ("QR PNG with zxing-cpp", f"{us(qr['zxing'])}  ({1 / qr['zxing']:.0f}/s)"),
            ("QR PNG with segno", f"{us(qr['segno'])}  ({1 / qr['segno']:.0f}/s)"),
            ("segno / zxing-cpp", f"{qr['segno'] / qr['zxing']:8.1f}x"),
        ]
    )
    print(f"RATIO segno_vs_zxing {qr['segno'] / qr['zxing']:.2f}")


if __name__ == "__main__":
    main()
