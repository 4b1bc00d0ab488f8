// The wallet's state in IndexedDB, one database shared by every tab of this origin:
//   "device"  {key: CryptoKey (Ed25519, non-extractable), public: Uint8Array(32)}
//   "account" {login, token, expires, deviceId}
//   "held"    {l1, cti, uses, exp, next, ceiling, offline}: the credential and its next counter
//   "sync"    {requestId, mark}: a sync request stored before it is sent, reused until answered
//   "clock"   {server, wall}: the server's time at the last sync and the wall clock then
//   "policy"  {freshness_s, max_lifetime_ticket_s}
//   "tickets" {sub: ticket}: the tickets held (tickets.js), each with its own counters
//   "history", "disputes": the last synced copies (history.js)
//   "installation": this browser's installation id (api.js), kept when the wallet is forgotten
// Counters are taken under one Web Lock across tabs and written with strict durability before
// any code with them is signed (PROTOCOL.md §2).

const DB_NAME = "duopass-wallet";
const DB_VERSION = 1;
const STORE = "state";
export const COUNTER_LOCK = "duopass-wallet-counter";

let opened = null;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

export function open() {
  if (opened === null) {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    opened = request(req);
  }
  return opened;
}

/** The values stored under `names`, as an object (absent ones undefined). */
export async function read(...names) {
  const db = await open();
  const tx = db.transaction(STORE, "readonly");
  const store = tx.objectStore(STORE);
  const values = await Promise.all(names.map((name) => request(store.get(name))));
  return Object.fromEntries(names.map((name, i) => [name, values[i]]));
}

/** Write `values` (name → value; undefined deletes) in one durable transaction. */
export async function write(values) {
  const db = await open();
  const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
  const store = tx.objectStore(STORE);
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) store.delete(name);
    else store.put(value, name);
  }
  await done(tx);
}

/** Run `task` holding the wallet's one counter lock (every tab, every worker of this origin). */
export function locked(task) {
  return navigator.locks.request(COUNTER_LOCK, { mode: "exclusive" }, task);
}

/** Take the next counter of the held credential: written durably before it is returned. Throws
 * an Error whose `failure` is "no_credential" or "used_up". */
export function reserve() {
  return locked(async () => {
    const { held } = await read("held");
    if (held === undefined) throw Object.assign(new Error("no credential"), { failure: "no_credential" });
    if (held.next > held.ceiling) throw Object.assign(new Error("used up"), { failure: "used_up" });
    const ctr = held.next;
    await write({ held: { ...held, next: ctr + 1 } });
    return { held, ctr };
  });
}

/** The value stored under `name`, or `make()`'s, stored now: one transaction, so two tabs
 * asking at once get the same value. */
export async function once(name, make) {
  const db = await open();
  const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
  const store = tx.objectStore(STORE);
  const found = await request(store.get(name));
  const value = found === undefined ? make() : found;
  if (found === undefined) store.put(value, name);
  await done(tx);
  return value;
}

/** Erase everything (the key too). */
export async function clear() {
  const db = await open();
  const tx = db.transaction(STORE, "readwrite", { durability: "strict" });
  tx.objectStore(STORE).clear();
  await done(tx);
}
