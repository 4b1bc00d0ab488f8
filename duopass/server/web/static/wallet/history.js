// The holder's funds, movements and disputes (the CLI wallet's `history`, `dispute`,
// `disputes`: wallet/history.py), fetched at each sync and kept in IndexedDB ("history": {at,
// currency, balance, free_funds, items, next, unseen, disputes}) so that the page shows the
// last synced copy offline. The movements come 50 at a time (the server's pages: `next` is the
// cursor of the following one, fetched by `more`). Movements are dated when they happened
// (`occurred_at`, a payment's scan) in this device's own time zone.

import * as api from "./api.js";
import * as session from "./session.js";
import * as store from "./store.js";

export const REASON_CHARS_MAX = 500;
const PAGE = 50;
const TIME_MAX = 2 ** 40;
const AMOUNT_MAX = 10 ** 12;
const ID_MAX = 2 ** 31 - 1;
const STATES = ["open", "upheld", "rejected"];
export const ITEMS_KEPT_MAX = 1000;
const CURSOR_CHARS_MAX = 200;

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

/** A page of a list: its items (checked by `each`) and the next page's cursor (or null). */
function page(answer, each) {
  if (!Array.isArray(answer.items) || answer.items.length > 200) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid 'items'");
  }
  return { items: answer.items.map(each), next: text(answer, "next_cursor", CURSOR_CHARS_MAX) };
}

function disputeRow(doc) {
  if (typeof doc !== "object" || doc === null || !STATES.includes(doc.state)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid dispute");
  }
  return {
    id: api.int(doc, "id", 1, ID_MAX),
    entry: api.int(doc, "entry", 1, ID_MAX),
    amount: api.int(doc, "amount", 1, AMOUNT_MAX),
    merchant: text(doc, "merchant", 128),
    paid_at: api.int(doc, "paid_at", 0, TIME_MAX),
    reason: text(doc, "reason", REASON_CHARS_MAX) || "",
    state: doc.state,
    opened_at: api.int(doc, "opened_at", 0, TIME_MAX),
    note: text(doc, "note", REASON_CHARS_MAX),
  };
}

/** Fetch the funds, the latest movements, the codes of `held` not seen and the holder's
 * disputes; keep them as the last synced copy. */
export async function refresh(now, held) {
  const copy = await session.online(async (token) => {
    const account = await api.call("GET", "/v1/me/account", null, token);
    const answer = await api.call("GET", `/v1/wallet/history?limit=${PAGE}`, null, token);
    const movements = page(answer, row);
    const mine = await api.call("GET", `/v1/wallet/disputes?limit=${PAGE}`, null, token);
    const disputes = page(mine, disputeRow);
    return {
      at: now,
      currency: text(answer, "currency", 3),
      balance: api.int(account, "balance", -AMOUNT_MAX, AMOUNT_MAX),
      free_funds: api.int(account, "free_funds", -AMOUNT_MAX, AMOUNT_MAX),
      items: movements.items,
      next: movements.next,
      unseen: await unseen(held, token),
      disputes: disputes.items,
    };
  });
  await store.write({ history: copy });
  return copy;
}

/** Fetch the next page of older movements and add it to the kept copy (up to ITEMS_KEPT_MAX). */
export async function more() {
  const copy = await cached();
  if (copy === undefined || !copy.next || copy.items.length >= ITEMS_KEPT_MAX) return copy;
  const path = `/v1/wallet/history?limit=${PAGE}&cursor=${encodeURIComponent(copy.next)}`;
  const older = page(await session.online((token) => api.call("GET", path, null, token)), row);
  const known = new Set(copy.items.map((item) => item.id));
  const items = [...copy.items, ...older.items.filter((item) => !known.has(item.id))];
  const kept = { ...copy, items: items.slice(0, ITEMS_KEPT_MAX), next: older.next };
  const latest = await cached(); // a sync meanwhile wrote a newer copy: keep that one
  if (latest !== undefined && latest.at === copy.at) await store.write({ history: kept });
  return kept;
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
  const opened = disputeRow(answer);
  const copy = await cached();
  if (copy !== undefined) {
    const items = copy.items.map((item) =>
      item.id === entry ? { ...item, dispute: opened.state, disputable: false } : item,
    );
    const disputes = [opened, ...(copy.disputes || []).filter((d) => d.id !== opened.id)];
    await store.write({ history: { ...copy, items, disputes } });
  }
  return opened.state;
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
