// The holder API the page calls (the routes and bodies of the CLI wallet's client.py), with
// refusals as WalletError: `failure` as the CLI wallet's (offline, refused, signed_out,
// bad_answer ...), `code` the server's problem code. Every request names this browser's
// installation (`Duopass-Installation`, as the CLI wallet's installation.py): a random id made
// once and kept in IndexedDB, the same for every account the browser signs in to.

import * as store from "./store.js";

const ANSWER_CHARS_MAX = 1_000_000;
const DETAIL_CHARS_MAX = 300;
export const INSTALLATION_HEADER = "Duopass-Installation";
const INSTALLATION_BYTES = 24; // 32 characters of base64url
let installation = null;

export class WalletError extends Error {
  constructor(failure, message, code = null) {
    super(message);
    this.name = "WalletError";
    this.failure = failure;
    this.code = code;
  }
}

export function b64u(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromB64u(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) {
    throw new WalletError("bad_answer", "the server's answer has invalid base64url");
  }
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function problem(status, doc, withToken) {
  const code = typeof doc.code === "string" ? doc.code.slice(0, 40) : String(status);
  const detail = typeof doc.detail === "string" ? doc.detail.slice(0, DETAIL_CHARS_MAX) : "no detail";
  const text = `the server refused (${code}): ${detail}`;
  if (code === "unauthenticated" && withToken) return new WalletError("signed_out", text, code);
  return new WalletError("refused", text, code);
}

/** This browser's installation id: made on first use (a transaction, so every tab gets the
 * same one) and kept. */
export function installationId() {
  if (installation === null) {
    const made = () => b64u(crypto.getRandomValues(new Uint8Array(INSTALLATION_BYTES)));
    installation = store.once("installation", made).catch((error) => {
      installation = null;
      throw error;
    });
  }
  return installation;
}

/** `method path` with a JSON body and a bearer token: the answer's JSON object (an empty one
 * for 204). */
export async function call(method, path, body, token = null) {
  const headers = { Accept: "application/json", [INSTALLATION_HEADER]: await installationId() };
  if (body !== null) headers["Content-Type"] = "application/json";
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  let response;
  let text;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === null ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    text = await response.text();
  } catch (error) {
    throw new WalletError("offline", `cannot reach the server (${error.name}): ${error.message}`);
  }
  if (response.status === 204) return {};
  if (text.length > ANSWER_CHARS_MAX) throw new WalletError("bad_answer", "the server's answer is too large");
  if (response.status === 204) return {}; // done, nothing to say
  let doc = null;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = null;
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new WalletError("bad_answer", `the server answered ${response.status} without JSON`);
  }
  if (response.status !== 200 && response.status !== 201) throw problem(response.status, doc, token !== null);
  return doc;
}

export function int(doc, name, low, high) {
  const value = doc[name];
  if (!Number.isSafeInteger(value) || value < low || value > high) {
    throw new WalletError("bad_answer", `the server's answer has no valid '${name}'`);
  }
  return value;
}

export function token(doc) {
  const value = doc.token;
  if (typeof value !== "string" || !/^[!-~]{1,512}$/.test(value)) {
    throw new WalletError("bad_answer", "the server's answer has no valid 'token'");
  }
  return { token: value, expires: int(doc, "expires_at", 0, 2 ** 53 - 1) };
}
