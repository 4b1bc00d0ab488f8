// base45 (RFC 9285): what follows "DP1:" in a code.

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

export class Base45Error extends Error {
  name = "Base45Error";
}

/** The base45 text of `bytes` (a Uint8Array). */
export function encode(bytes) {
  let text = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = bytes[i] * 256 + bytes[i + 1];
    const c = n % 45;
    n = (n - c) / 45;
    const d = n % 45;
    const e = (n - d) / 45;
    text += ALPHABET[c] + ALPHABET[d] + ALPHABET[e];
  }
  if (bytes.length % 2 === 1) {
    const n = bytes[bytes.length - 1];
    text += ALPHABET[n % 45] + ALPHABET[Math.floor(n / 45)];
  }
  return text;
}

function digit(char) {
  const value = ALPHABET.indexOf(char);
  if (value < 0) throw new Base45Error(`not a base45 character: ${JSON.stringify(char)}`);
  return value;
}

/** The bytes of base45 `text`; throws Base45Error on a character or group out of range. */
export function decode(text) {
  if (text.length % 3 === 1) throw new Base45Error("a dangling character");
  const out = [];
  for (let i = 0; i < text.length; i += 3) {
    const chunk = text.slice(i, i + 3);
    let n = 0;
    for (let j = chunk.length - 1; j >= 0; j -= 1) n = n * 45 + digit(chunk[j]);
    if (chunk.length === 3) {
      if (n > 0xffff) throw new Base45Error("a group above 65535");
      out.push(n >> 8, n & 0xff);
    } else {
      if (n > 0xff) throw new Base45Error("a pair above 255");
      out.push(n);
    }
  }
  return Uint8Array.from(out);
}
