// Deterministic CBOR (RFC 8949 §4.2.1, map keys in the length-first order of §4.2.3), only what
// a DP1 code holds (PROTOCOL.md §2): integers of absolute value below 2^53, byte strings
// (Uint8Array), text strings, arrays and maps (Map) with integer keys. Anything else throws.
// `Raw` embeds bytes already encoded (a COSE_Sign1 kept as received).

const LIMIT = 2 ** 53;
const DEPTH_MAX = 16;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

export class Raw {
  constructor(bytes) {
    this.bytes = bytes;
  }
}

export class CborError extends Error {
  name = "CborError";
}

function head(major, value, out) {
  const m = major << 5;
  if (value < 24) out.push(m | value);
  else if (value < 0x100) out.push(m | 24, value);
  else if (value < 0x10000) out.push(m | 25, value >> 8, value & 0xff);
  else if (value < 0x100000000) {
    out.push(m | 26, (value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
  } else {
    const high = Math.floor(value / 0x100000000);
    const low = value % 0x100000000;
    out.push(m | 27, 0, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff);
    out.push((low >>> 24) & 0xff, (low >>> 16) & 0xff, (low >>> 8) & 0xff, low & 0xff);
  }
}

function pushBytes(bytes, out) {
  for (const byte of bytes) out.push(byte);
}

function compareKeys(a, b) {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return 0;
}

function encodeMap(map, out, depth) {
  const entries = [];
  for (const [key, value] of map) {
    if (!Number.isSafeInteger(key)) throw new CborError("a map key must be an integer");
    entries.push([encode(key), value]);
  }
  entries.sort((a, b) => compareKeys(a[0], b[0]));
  for (let i = 1; i < entries.length; i += 1) {
    if (compareKeys(entries[i - 1][0], entries[i][0]) === 0) throw new CborError("duplicate key");
  }
  head(5, entries.length, out);
  for (const [key, value] of entries) {
    pushBytes(key, out);
    encodeItem(value, out, depth + 1);
  }
}

function encodeItem(value, out, depth) {
  if (depth > DEPTH_MAX) throw new CborError("nested too deep");
  if (typeof value === "number") {
    if (!Number.isInteger(value) || Math.abs(value) >= LIMIT) {
      throw new CborError("only integers below 2^53");
    }
    if (value >= 0) head(0, value, out);
    else head(1, -1 - value, out);
  } else if (value instanceof Uint8Array) {
    head(2, value.length, out);
    pushBytes(value, out);
  } else if (typeof value === "string") {
    const bytes = textEncoder.encode(value);
    head(3, bytes.length, out);
    pushBytes(bytes, out);
  } else if (Array.isArray(value)) {
    head(4, value.length, out);
    for (const item of value) encodeItem(item, out, depth + 1);
  } else if (value instanceof Map) {
    encodeMap(value, out, depth);
  } else if (value instanceof Raw) {
    pushBytes(value.bytes, out);
  } else {
    throw new CborError(`cannot encode ${typeof value}`);
  }
}

/** The deterministic encoding of `value`, as a Uint8Array. */
export function encode(value) {
  const out = [];
  encodeItem(value, out, 0);
  return Uint8Array.from(out);
}

function readHead(bytes, at) {
  if (at >= bytes.length) throw new CborError("truncated");
  const first = bytes[at];
  const major = first >> 5;
  const info = first & 0x1f;
  if (info < 24) return [major, info, at + 1];
  const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
  if (size === undefined) throw new CborError("indefinite or reserved length");
  if (at + 1 + size > bytes.length) throw new CborError("truncated");
  let value = 0;
  for (let i = 0; i < size; i += 1) value = value * 256 + bytes[at + 1 + i];
  if (value >= LIMIT) throw new CborError("an integer of 2^53 or more");
  return [major, value, at + 1 + size];
}

function decodeItem(bytes, at, depth) {
  if (depth > DEPTH_MAX) throw new CborError("nested too deep");
  const [major, arg, next] = readHead(bytes, at);
  if (major === 0) return [arg, next];
  if (major === 1) return [-1 - arg, next];
  if (major === 2 || major === 3) {
    if (next + arg > bytes.length) throw new CborError("truncated");
    const slice = bytes.slice(next, next + arg);
    return [major === 2 ? slice : textDecoder.decode(slice), next + arg];
  }
  if (major === 4) {
    const items = [];
    let cursor = next;
    for (let i = 0; i < arg; i += 1) {
      const [item, after] = decodeItem(bytes, cursor, depth + 1);
      items.push(item);
      cursor = after;
    }
    return [items, cursor];
  }
  if (major === 5) {
    const map = new Map();
    let cursor = next;
    for (let i = 0; i < arg; i += 1) {
      const [key, afterKey] = decodeItem(bytes, cursor, depth + 1);
      if (!Number.isInteger(key)) throw new CborError("a map key must be an integer");
      const [value, after] = decodeItem(bytes, afterKey, depth + 1);
      map.set(key, value);
      cursor = after;
    }
    return [map, cursor];
  }
  throw new CborError("a tag, float or simple value");
}

/** The item in `bytes`, which must be exactly its deterministic encoding (else CborError). */
export function decode(bytes) {
  const [value, end] = decodeItem(bytes, 0, 0);
  if (end !== bytes.length) throw new CborError("bytes after the item");
  if (compareKeys(encode(value), bytes) !== 0) throw new CborError("not deterministic");
  return value;
}
