// Sign in, enrol this browser's device key, sync: the CLI wallet's steps (wallet.py), over the
// same holder API. The device key is made here, non-extractable: the page can sign with it,
// nothing can read it out; only its raw public half leaves (enrolment).

import * as api from "./api.js";
import * as clock from "./clock.js";
import * as dp1 from "./dp1.js";
import * as store from "./store.js";

const TIME_MAX = 2 ** 40;
const USES_MAX = 1000;
const L1_BYTES_MAX = 1024;
const REFRESH_RESERVE = 2;
const encoder = new TextEncoder();

function joined(...parts) {
  const bytes = parts.map((part) => (typeof part === "string" ? encoder.encode(part) : part));
  const out = new Uint8Array(bytes.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of bytes) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function sign(key, message) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
}

/** This browser's device key: made once (non-extractable) and kept in IndexedDB. */
export async function deviceKey() {
  const { device } = await store.read("device");
  if (device !== undefined) return device;
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const made = { key: pair.privateKey, public: raw };
  await store.write({ device: made });
  return made;
}

/** Sign in with the password (`adopt` keeps the session). */
export async function signIn(login, password, otp) {
  const body = { login, password };
  if (otp) body.otp = otp;
  await adopt(login, api.token(await api.call("POST", "/v1/session", body)));
}

/** Keep a new session of `login`'s (a password's or a passkey's); enrol the device key the
 * first time (as `duopass wallet enrol`). */
export async function adopt(login, session) {
  const { account } = await store.read("account");
  if (account !== undefined && account.login === login) {
    await store.write({ account: { ...account, ...session, signedOut: false } });
    return;
  }
  if (account !== undefined) {
    throw new api.WalletError("refused", `already enrolled as ${account.login}: sign out (forget) first`);
  }
  const device = await deviceKey();
  const proof = await sign(device.key, joined("duopass-device-enrol-v1\n", login, "\n", device.public));
  const body2 = { public_key: api.b64u(device.public), proof: api.b64u(proof) };
  const answer = await api.call("POST", "/v1/me/devices", body2, session.token);
  const deviceId = api.int(answer, "device_id", 1, 2 ** 53 - 1);
  await store.write({ account: { login, deviceId, ...session } });
}

async function deviceSignIn(account) {
  const { device } = await store.read("device");
  const challenge = api.fromB64u((await api.call("POST", "/v1/session/challenge", {})).challenge);
  const signature = await sign(device.key, joined("duopass-device-signin-v1\n", account.login, "\n", challenge));
  const body = {
    login: account.login,
    public_key: api.b64u(device.public),
    challenge: api.b64u(challenge),
    signature: api.b64u(signature),
  };
  let session;
  try {
    session = api.token(await api.call("POST", "/v1/session/device", body));
  } catch (error) {
    if (error.failure !== "refused") throw error;
    await store.write({ account: { ...account, token: null, expires: 0, signedOut: true } });
    throw new api.WalletError("signed_out", `${error.message}; this device can no longer sign in by itself`);
  }
  await store.write({ account: { ...account, ...session } });
  return session.token;
}

/** `task(token)` with a session: the stored one, or one the device key signs in for. */
export async function online(task) {
  const { account } = await store.read("account");
  if (account === undefined) throw new api.WalletError("not_enrolled", "not enrolled");
  if (account.signedOut) throw new api.WalletError("signed_out", "signed out");
  const live = account.token && clock.now() < account.expires;
  try {
    return await task(live ? account.token : await deviceSignIn(account));
  } catch (error) {
    if (error.failure !== "signed_out" || !live) throw error;
    return task(await deviceSignIn(account));
  }
}

/** Sign out: the session ended on the server when it can be reached (offline, it expires by
 * itself), and this browser signs in by itself no more until the password is given again. The
 * device key and its enrolment stay, so the next sign-in needs no new enrolment. */
export async function signOut() {
  const { account } = await store.read("account");
  if (account === undefined) return;
  if (account.token && clock.now() < account.expires) {
    try {
      await api.call("DELETE", "/v1/session", null, account.token);
    } catch (error) {
      if (!["offline", "signed_out", "refused"].includes(error.failure)) throw error;
    }
  }
  await store.write({ account: { ...account, token: null, expires: 0, signedOut: true } });
}

/** The sync request to send: the one in flight, or a new one whose mark lowers the ceiling
 * (under the counter lock, before it is sent: PROTOCOL.md §4.2). */
function beginSync() {
  return store.locked(async () => {
    const { held, sync } = await store.read("held", "sync");
    if (sync !== undefined) return sync;
    const made = { requestId: api.b64u(crypto.getRandomValues(new Uint8Array(16))), mark: null };
    const values = { sync: made };
    if (held !== undefined) {
      made.mark = Math.max(-1, Math.min(held.next - 1 + REFRESH_RESERVE, held.ceiling));
      values.held = { ...held, ceiling: made.mark };
      if (made.mark < 0) made.mark = null;
    }
    await store.write(values);
    return made;
  });
}

function checked(answer, device) {
  const l1 = api.fromB64u(answer.credential);
  if (l1.length > L1_BYTES_MAX) throw new api.WalletError("bad_answer", "the credential is too large");
  const claims = dp1.l1Claims(l1);
  const key = dp1.deviceKeyOf(claims);
  if (key === null || api.b64u(key) !== api.b64u(device.public)) {
    throw new api.WalletError("bad_answer", "the credential is not bound to this device's key");
  }
  const uses = api.int(answer, "uses", 1, USES_MAX);
  const exp = api.int(answer, "exp", 0, TIME_MAX);
  const cti = api.b64u(claims.get(7));
  const dp = claims.get(-65537);
  if (cti !== answer.cti || uses !== dp.get(2) || exp !== claims.get(4)) {
    throw new api.WalletError("bad_answer", "the credential disagrees with the sync answer");
  }
  return { l1, cti, uses, exp, offline: answer.offline === true };
}

/** The issuer's policy in a sync answer, what the page uses of it (§3's defaults else). */
export function policyOf(answer) {
  const object = (value) => (typeof value === "object" && value !== null ? value : {});
  const policy = object(answer.policy);
  const lifetimes = object(policy.max_lifetime_s);
  const whole = (value, otherwise) =>
    Number.isSafeInteger(value) && value > 0 && value <= TIME_MAX ? value : otherwise;
  return {
    freshness_s: whole(policy.freshness_s, 60),
    max_lifetime_ticket_s: whole(lifetimes.ticket, 30 * 86_400),
  };
}

/** Fetch a credential and the server's time (as `duopass wallet sync`). */
export async function sync() {
  const { account, device } = await store.read("account", "device");
  if (account === undefined) throw new api.WalletError("not_enrolled", "not enrolled");
  const pending = await beginSync();
  const body = { device_id: account.deviceId, request_id: pending.requestId, mark: pending.mark };
  const [answer, before, after] = await online(async (token) => {
    const start = clock.mark();
    const doc = await api.call("POST", "/v1/wallet/sync", body, token);
    return [doc, start, clock.mark()];
  });
  const got = checked(answer, device);
  const serverTime = api.int(answer, "server_time", 0, TIME_MAX);
  await store.locked(async () => {
    const { held } = await store.read("held");
    const same = held !== undefined && held.cti === got.cti;
    const kept = same ? held : { ...got, next: 0, ceiling: got.uses - 1 };
    await store.write({
      held: kept,
      sync: undefined,
      clock: clock.synced(serverTime, before, after),
      policy: policyOf(answer),
    });
  });
}
