// The holder's funds and movements (the CLI wallet's `history`, `dispute`: wallet/history.py),
// fetched at each sync and kept in IndexedDB ("history": {at, currency, balance, free_funds,
// items, unseen}) so that the page shows the last synced copy offline. Movements are dated when
// they happened (`occurred_at`, a payment's scan) in this device's own time zone.

import * as api from "./api.js";
import * as session from "./session.js";
import * as store from "./store.js";

export const REASON_CHARS_MAX = 500;
const PAGE = 50;
const TIME_MAX = 2 ** 40;
const AMOUNT_MAX = 10 ** 12;
const ID_MAX = 2 ** 31 - 1;
const STATES = ["open", "upheld", "rejected"];

function text(doc, name, high) {
  const value = doc[name];
  if (value === null || value === undefined) return null;
  if (typeof value !== "string" || value.length > high) {
    throw new api.WalletError("bad_answer", `the server's answer has no valid '${name}'`);
  }
  return value;
}

function row(doc) {
  if (typeof doc !== "object" || doc === null) throw new api.WalletError("bad_answer", "not a movement");
  const dispute = doc.dispute === null || doc.dispute === undefined ? null : doc.dispute;
  if (dispute !== null && !STATES.includes(dispute)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid 'dispute'");
  }
  return {
    id: api.int(doc, "id", 1, ID_MAX),
    kind: text(doc, "kind", 16) || "?",
    amount: api.int(doc, "amount", -AMOUNT_MAX, AMOUNT_MAX),
    occurred_at: api.int(doc, "occurred_at", 0, TIME_MAX),
    booked_at: api.int(doc, "booked_at", 0, TIME_MAX),
    terminal: text(doc, "terminal", 64),
    venue: text(doc, "venue", 64),
    merchant: text(doc, "merchant", 128),
    online: typeof doc.online === "boolean" ? doc.online : null,
    disputable: doc.disputable === true,
    dispute_until: doc.dispute_until === null ? null : api.int(doc, "dispute_until", 0, TIME_MAX),
    dispute,
  };
}

/** The counters of `held` shown (below its next) that the server has not seen used. */
async function unseen(held, token) {
  if (held === undefined || held.next === 0) return [];
  const answer = await api.call("GET", `/v1/wallet/seen?cti=${encodeURIComponent(held.cti)}`, null, token);
  if (!Array.isArray(answer.seen) || !answer.seen.every(Number.isSafeInteger)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid 'seen'");
  }
  const seen = new Set(answer.seen);
  return Array.from({ length: held.next }, (_, ctr) => ctr).filter((ctr) => !seen.has(ctr));
}

/** Fetch the funds, the movements and the codes of `held` not seen; keep them as the last
 * synced copy. */
export async function refresh(now, held) {
  const copy = await session.online(async (token) => {
    const account = await api.call("GET", "/v1/me/account", null, token);
    const answer = await api.call("GET", `/v1/wallet/history?limit=${PAGE}`, null, token);
    if (!Array.isArray(answer.items) || answer.items.length > 200) {
      throw new api.WalletError("bad_answer", "the server's answer has no valid 'items'");
    }
    return {
      at: now,
      currency: text(answer, "currency", 3),
      balance: api.int(account, "balance", -AMOUNT_MAX, AMOUNT_MAX),
      free_funds: api.int(account, "free_funds", -AMOUNT_MAX, AMOUNT_MAX),
      items: answer.items.map(row),
      unseen: await unseen(held, token),
    };
  });
  await store.write({ history: copy });
  return copy;
}

/** The last synced copy (undefined before the first). */
export async function cached() {
  return (await store.read("history")).history;
}

/** Dispute the payment `entry`: the dispute's state, also written into the kept copy. */
export async function dispute(entry, reason) {
  if (reason.length < 1 || reason.length > REASON_CHARS_MAX) {
    throw new api.WalletError("reason_bounds", `a reason is 1 to ${REASON_CHARS_MAX} characters`);
  }
  const answer = await session.online((token) =>
    api.call("POST", "/v1/wallet/disputes", { entry, reason }, token),
  );
  const state = STATES.includes(answer.state) ? answer.state : "open";
  const copy = await cached();
  if (copy !== undefined) {
    const items = copy.items.map((item) =>
      item.id === entry ? { ...item, dispute: state, disputable: false } : item,
    );
    await store.write({ history: { ...copy, items } });
  }
  return state;
}

/** Minor units as ¥: "-12.00" (integers only, no float). */
export function yuan(minor) {
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** The local calendar day of `seconds` in this device's time zone, as YYYY-MM-DD. */
export function localDay(seconds) {
  const parts = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date(seconds * 1000));
  const get = (type) => parts.find((part) => part.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** `seconds` as a local date and time in the page's language and this device's time zone. */
export function localTime(seconds, lang) {
  const format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  return format.format(new Date(seconds * 1000));
}
