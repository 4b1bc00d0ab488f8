// The DP1 code in the page (PROTOCOL.md §2): the wallet's L2, a COSE_Sign1 signed with the device
// key (a non-extractable WebCrypto Ed25519 key) over ["Signature1", {1: -8}, L1's signature,
// [ctr, ts]], and the text "DP1:" + base45(CBOR([L1, L2])).

import * as base45 from "./base45.js";
import * as cbor from "./cbor.js";

export const PREFIX = "DP1:";
const ALG_EDDSA = -8;
const CTR_LIMIT = 2 ** 32;
const SIGNATURE_BYTES = 64;

export class CodeError extends Error {
  name = "CodeError";
}

/** The parts of a COSE_Sign1 (an untagged 4-array), checked: [protected, unprotected, payload, signature]. */
export function sign1Parts(bytes) {
  const value = cbor.decode(bytes);
  const ok =
    Array.isArray(value) &&
    value.length === 4 &&
    value[0] instanceof Uint8Array &&
    value[1] instanceof Map &&
    value[2] instanceof Uint8Array &&
    value[3] instanceof Uint8Array &&
    value[3].length === SIGNATURE_BYTES;
  if (!ok) throw new CodeError("not a COSE_Sign1");
  return value;
}

/** The claims of an L1 (its payload's map: 4 exp, 7 cti, 8 cnf, -65537 dp ...). */
export function l1Claims(l1) {
  const claims = cbor.decode(sign1Parts(l1)[2]);
  if (!(claims instanceof Map)) throw new CodeError("the credential's payload is not a map");
  return claims;
}

/** The 32-byte device key an L1's `cnf` names, or null. */
export function deviceKeyOf(claims) {
  const cnf = claims.get(8);
  if (cnf === undefined) return null;
  const key = cnf instanceof Map ? cnf.get(1) : undefined;
  const x = key instanceof Map ? key.get(-2) : undefined;
  if (!(x instanceof Uint8Array) || x.length !== 32) throw new CodeError("a malformed cnf");
  return x;
}

/** Sig_structure for COSE_Sign1 (RFC 9052 §4.4). */
export function sigStructure(protectedHeader, externalAad, payload) {
  return cbor.encode(["Signature1", protectedHeader, externalAad, payload]);
}

/** L2 for counter `ctr` at wallet time `ts`, signed with `key` (a CryptoKey), bound to `l1`. */
export async function makeL2(l1, key, ctr, ts) {
  if (!Number.isInteger(ctr) || ctr < 0 || ctr >= CTR_LIMIT) throw new CodeError("a bad counter");
  if (!Number.isInteger(ts) || ts < 0) throw new CodeError("a bad time");
  const l1Signature = sign1Parts(l1)[3];
  const protectedHeader = cbor.encode(new Map([[1, ALG_EDDSA]]));
  const payload = cbor.encode([ctr, ts]);
  const signed = sigStructure(protectedHeader, l1Signature, payload);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, signed));
  return cbor.encode([protectedHeader, new Map(), payload, signature]);
}

/** The code's text: [L1] alone when `key` is null (a static code), else [L1, L2]. */
export async function makeCode(l1, key, ctr, ts) {
  sign1Parts(l1);
  const items = [new cbor.Raw(l1)];
  if (key !== null) items.push(new cbor.Raw(await makeL2(l1, key, ctr, ts)));
  return PREFIX + base45.encode(cbor.encode(items));
}
