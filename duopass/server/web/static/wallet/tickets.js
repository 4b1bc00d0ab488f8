// The tickets the wallet holds beside its purse (the CLI wallet's tickets.py; PROTOCOL.md §2
// kind 3), kept in IndexedDB ("tickets": sub → ticket) with their own counters:
//   {sub, info: {event, event_name, doors, ends, type_name, entries, order, state,
//    entries_used, device_id}, refusal, l1, cti, iat, nbf, exp, uses, next, ceiling}
// A display takes the ticket's next counter under the purse's lock (store.locked), written
// durably before anything is signed; the page never signs `ctr >= uses`; a ticket whose codes
// are used up is named in the next sync's `exhausted`, and its new credential (another `cti`)
// starts at counter 0. The refusals are the CLI wallet's (`usable`).

import * as api from "./api.js";
import * as clock from "./clock.js";
import * as dp1 from "./dp1.js";
import * as session from "./session.js";
import * as store from "./store.js";

const TICKETS_MAX = 200;
const TIME_MAX = 2 ** 40;
const ID_MAX = 2 ** 31 - 1;
const ID_CHARS_MAX = 64;
const NAME_CHARS_MAX = 200;
const L1_BYTES_MAX = 1024;
const USES_MAX = 1000;
const KIND_TICKET = 3;
const DP = -65537;
const [DP_KIND, DP_USES, DP_EV] = [1, 2, 6];
const REFUSALS = ["too_early", "other_device", "cancelled", "ended"];

function bad(name) {
  return new api.WalletError("bad_answer", `the server's answer has no valid '${name}'`);
}

function word(doc, name, high) {
  const value = doc[name];
  // printable: no control characters (shown as text, never as markup)
  if (typeof value !== "string" || value.length < 1 || value.length > high || /[\p{Cc}]/u.test(value)) {
    throw bad(name);
  }
  return value;
}

function object(doc, name) {
  const value = doc[name];
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad(name);
  return value;
}

/** One ticket of the sync answer, checked as client.py's `_ticket_item`. */
function item(doc) {
  if (typeof doc !== "object" || doc === null) throw bad("tickets");
  const event = object(doc, "event");
  const kind = object(doc, "ticket_type");
  const info = {
    event: word(event, "id", ID_CHARS_MAX),
    event_name: word(event, "name", NAME_CHARS_MAX),
    doors: api.int(event, "doors", 0, TIME_MAX),
    ends: api.int(event, "ends", 0, TIME_MAX),
    type_name: word(kind, "name", NAME_CHARS_MAX),
    entries: api.int(kind, "entries", 1, USES_MAX),
    order: word(doc, "order", ID_CHARS_MAX),
    state: word(doc, "state", ID_CHARS_MAX),
    entries_used: api.int(doc, "entries_used", 0, TIME_MAX),
    device_id: doc.device_id === null ? null : api.int(doc, "device_id", 1, ID_MAX),
  };
  const given = (name) => doc[name] !== null && doc[name] !== undefined;
  const refusal = given("refusal") ? word(doc, "refusal", ID_CHARS_MAX) : null;
  const l1 = given("credential") ? api.fromB64u(doc.credential) : null;
  if ((l1 === null) === (refusal === null)) throw bad("credential"); // one or the other
  return { sub: word(doc, "sub", ID_CHARS_MAX), info, refusal, l1 };
}

/** A ticket's credential: of kind 3, for that ticket and event, bound to this device. */
function credential(got, device) {
  if (got.l1.length > L1_BYTES_MAX) {
    throw new api.WalletError("bad_answer", `ticket ${got.sub}'s credential is too large`);
  }
  const claims = dp1.l1Claims(got.l1);
  const dp = claims.get(DP);
  const ok = dp instanceof Map && dp.get(DP_KIND) === KIND_TICKET && claims.get(2) === got.sub;
  if (!ok || dp.get(DP_EV) !== got.info.event) {
    throw new api.WalletError("bad_answer", `ticket ${got.sub}'s credential is not that ticket's`);
  }
  const key = dp1.deviceKeyOf(claims);
  if (key === null || api.b64u(key) !== api.b64u(device.public)) {
    throw new api.WalletError("bad_answer", `ticket ${got.sub}'s credential is not for this device`);
  }
  const uses = dp.get(DP_USES);
  const times = [claims.get(6), claims.get(5) ?? claims.get(6), claims.get(4)];
  if (!Number.isSafeInteger(uses) || uses < 1 || uses > USES_MAX || !times.every(Number.isSafeInteger)) {
    throw new api.WalletError("bad_answer", `ticket ${got.sub}'s credential has no valid uses or times`);
  }
  const [iat, nbf, exp] = times;
  return { cti: api.b64u(claims.get(7)), iat, nbf, exp, uses };
}

/** The held ticket after the answer `got`: the same credential keeps its counters; an older
 * one than held (another tab stored a newer meanwhile) changes nothing; a new one starts at 0. */
function merged(got, held) {
  const kept = { sub: got.sub, info: got.info, refusal: got.refusal };
  if (got.l1 === null) return { ...kept, l1: null, next: 0, ceiling: -1 };
  const made = got.credential;
  if (held !== undefined && held.l1 !== null && (held.cti === made.cti || made.iat < held.iat)) {
    return { ...held, ...kept, refusal: null };
  }
  return { ...kept, l1: got.l1, ...made, next: 0, ceiling: made.uses - 1 };
}

/** The tickets held, by doors then sub. */
export async function held() {
  const { tickets } = await store.read("tickets");
  return Object.values(tickets || {}).sort((a, b) => a.info.doors - b.info.doors || (a.sub < b.sub ? -1 : 1));
}

/** Fetch the holder's tickets for this device (as `duopass wallet sync` does after the purse):
 * tickets whose codes are used up are named `exhausted` and get a new credential. */
export async function sync() {
  const { account, device } = await store.read("account", "device");
  if (account === undefined) throw new api.WalletError("not_enrolled", "not enrolled");
  const used = (await held()).filter((t) => t.l1 !== null && t.next > t.ceiling);
  const exhausted = used.map((t) => t.sub).slice(0, TICKETS_MAX);
  const body = { device_id: account.deviceId, exhausted };
  const [answer, before, after] = await session.online(async (token) => {
    const start = clock.mark();
    const doc = await api.call("POST", "/v1/wallet/tickets", body, token);
    return [doc, start, clock.mark()];
  });
  if (!Array.isArray(answer.tickets) || answer.tickets.length > TICKETS_MAX) throw bad("tickets");
  const got = answer.tickets.map(item);
  for (const one of got) if (one.l1 !== null) one.credential = credential(one, device);
  const serverTime = api.int(answer, "server_time", 0, TIME_MAX);
  await store.locked(async () => {
    const { tickets } = await store.read("tickets");
    const fresh = Object.fromEntries(got.map((one) => [one.sub, merged(one, (tickets || {})[one.sub])]));
    await store.write({
      tickets: fresh,
      clock: clock.synced(serverTime, before, after),
      policy: session.policyOf(answer),
    });
  });
  return held();
}

function refused(failure, ticket, values = {}) {
  const error = new api.WalletError(failure, `ticket ${ticket.sub}: ${failure}`);
  error.values = { sub: ticket.sub, ...values };
  return error;
}

/** When the server mints a credential for a ticket that is too early: the event's end less
 * the issuer's ticket lifetime. */
export function availableFrom(ticket, policy) {
  return ticket.info.ends - ((policy && policy.max_lifetime_ticket_s) || 30 * 86_400);
}

/** Nothing if a code of `ticket` may be made at server time `now`; else why not, as the CLI
 * wallet's `usable_ticket` says (failure `ticket_<why>`, values for the message). */
export function usable(ticket, now, policy) {
  if (ticket.l1 === null) {
    const why = REFUSALS.includes(ticket.refusal) ? ticket.refusal : "not_synced";
    const when = availableFrom(ticket, policy);
    throw refused(`ticket_${why}`, ticket, { when, device: ticket.info.device_id, state: ticket.info.state });
  }
  if (now >= ticket.exp) throw refused("ticket_expired", ticket);
  if (ticket.next > ticket.ceiling) throw refused("ticket_used_up", ticket, { uses: ticket.uses });
}

/** Take the next counter of ticket `sub`: written durably before it is returned (§2). */
export function reserve(sub, now, policy) {
  return store.locked(async () => {
    const { tickets } = await store.read("tickets");
    const ticket = (tickets || {})[sub];
    if (ticket === undefined) throw new api.WalletError("ticket_unknown", `no ticket ${sub}`);
    usable(ticket, now, policy);
    const ctr = ticket.next;
    await store.write({ tickets: { ...tickets, [sub]: { ...ticket, next: ctr + 1 } } });
    return { ticket, ctr };
  });
}

/** Codes the ticket's credential may still make (0 without one). */
export function left(ticket) {
  return ticket.l1 === null ? 0 : Math.max(0, ticket.ceiling + 1 - ticket.next);
}
