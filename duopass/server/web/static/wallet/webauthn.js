// WebAuthn for the page: the server's options (JSON, binary fields in unpadded base64url, as
// the `webauthn` library writes them) made into what navigator.credentials.create/get take,
// and the credential they return made into the JSON the server reads (PublicKeyCredential's
// toJSON() shape), with our own base64url conversion (api.js) rather than the browser's newer
// parse*FromJSON, which older browsers lack.

import * as api from "./api.js";

const OPTIONS_CHARS_MAX = 20_000;

export class PasskeyError extends Error {
  constructor(failure, message) {
    super(message);
    this.name = "PasskeyError";
    this.failure = failure;
  }
}

/** Whether this browser can use passkeys here (a secure context: https or localhost). */
export function supported() {
  return Boolean(window.PublicKeyCredential && navigator.credentials && window.isSecureContext);
}

function bytes(text, what) {
  if (typeof text !== "string" || text.length === 0 || text.length > OPTIONS_CHARS_MAX) {
    throw new api.WalletError("bad_answer", `the server's passkey options have no valid ${what}`);
  }
  return api.fromB64u(text);
}

function descriptors(list) {
  if (!Array.isArray(list)) return [];
  return list.map((item) => ({ ...item, id: bytes(item.id, "credential id") }));
}

/** navigator.credentials.create's `publicKey` from the server's registration options. */
export function creationOptions(json) {
  return {
    ...json,
    challenge: bytes(json.challenge, "challenge"),
    user: { ...json.user, id: bytes(json.user && json.user.id, "user id") },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

/** navigator.credentials.get's `publicKey` from the server's sign-in or step-up options. */
export function requestOptions(json) {
  return {
    ...json,
    challenge: bytes(json.challenge, "challenge"),
    allowCredentials: descriptors(json.allowCredentials),
  };
}

function b64(buffer) {
  return api.b64u(new Uint8Array(buffer));
}

/** The credential as JSON for the server (`PublicKeyCredential.toJSON()`'s shape). */
export function credentialJSON(credential) {
  const response = credential.response;
  const out = {
    id: credential.id,
    rawId: b64(credential.rawId),
    type: credential.type,
    response: { clientDataJSON: b64(response.clientDataJSON) },
  };
  if (credential.authenticatorAttachment) out.authenticatorAttachment = credential.authenticatorAttachment;
  if (response.attestationObject) {
    out.response.attestationObject = b64(response.attestationObject);
    const transports = typeof response.getTransports === "function" ? response.getTransports() : [];
    out.response.transports = transports.slice(0, 8);
  } else {
    out.response.authenticatorData = b64(response.authenticatorData);
    out.response.signature = b64(response.signature);
    if (response.userHandle && response.userHandle.byteLength > 0) out.response.userHandle = b64(response.userHandle);
  }
  return out;
}

async function ceremony(run) {
  if (!supported()) throw new PasskeyError("passkey_unsupported", "this browser has no passkeys here");
  try {
    const credential = await run();
    if (credential === null) throw new PasskeyError("passkey_cancelled", "no passkey was chosen");
    return credentialJSON(credential);
  } catch (error) {
    if (error instanceof PasskeyError || error instanceof api.WalletError) throw error;
    // NotAllowedError: cancelled, timed out or refused by the person; the rest is the browser's
    const failure = error && error.name === "InvalidStateError" ? "passkey_exists" : "passkey_cancelled";
    throw new PasskeyError(failure, `${error && error.name}: ${error && error.message}`);
  }
}

/** A new passkey, made by this device's authenticator for the server's options. */
export function create(json) {
  return ceremony(() => navigator.credentials.create({ publicKey: creationOptions(json) }));
}

/** An assertion by one of the passkeys the options allow (any, for a sign-in). */
export function get(json) {
  return ceremony(() => navigator.credentials.get({ publicKey: requestOptions(json) }));
}
