// The tickets view: each ticket held (event, type, valid from and to, entries used, codes left
// or why none), and its code shown as the purse's is (display.js): the next counter taken
// durably under the lock every tab shares, then signed, hidden `freshness_s` later.

import * as clock from "./clock.js";
import * as display from "./display.js";
import * as dp1 from "./dp1.js";
import * as history from "./history.js";
import * as store from "./store.js";
import * as tickets from "./tickets.js";
import { $, busy, element, lang, text } from "./ui.js";

const DEFAULT_FRESHNESS_S = 60;
const STATES = ["valid", "cancelled"];
let clicked = null; // the sub whose button was pressed last

function when(seconds) {
  return history.localTime(seconds, lang());
}

function readiness(ticket, now, policy) {
  try {
    tickets.usable(ticket, now, policy);
    return text("ticket_ready", { left: tickets.left(ticket) });
  } catch (error) {
    const why = error.failure ? error.failure.replace("ticket_", "") : "state";
    return text(`ticket_why_${why}`, { ...error.values, when: when(tickets.availableFrom(ticket, policy)) });
  }
}

/** A ticket's code: its next counter (durably taken first), signed with the device key. */
async function showTicket(sub) {
  display.hide(true);
  const state = await store.read("device", "policy");
  const now = clock.now();
  const { ticket, ctr } = await tickets.reserve(sub, now, state.policy);
  const code = await dp1.makeCode(ticket.l1, state.device.key, ctr, clock.now());
  const freshness = (state.policy && state.policy.freshness_s) || DEFAULT_FRESHNESS_S;
  const label = text("code_for_ticket", { event: ticket.info.event_name, type: ticket.info.type_name });
  display.present(code, { ctr, now, freshness, label, ticket: sub });
}

function item(ticket, now, policy) {
  const li = element("li", "ticket");
  li.dataset.sub = ticket.sub;
  const title = element("h3", "", `${ticket.info.event_name} · ${ticket.info.type_name}`);
  title.id = `ticket-${ticket.sub}`;
  const [from, to] = ticket.l1 === null ? [ticket.info.doors, ticket.info.ends] : [ticket.nbf, ticket.exp];
  const span = element("p", "valid", text("ticket_valid", { from: when(from), to: when(to) }));
  const raw = ticket.info.state;
  const state = STATES.includes(raw) ? text(`ticket_state_${raw}`) : raw;
  const { entries_used: used, entries } = ticket.info;
  const ready = readiness(ticket, now, policy);
  const status = element("p", "readiness", text("ticket_entries", { state, used, entries, ready }));
  const order = element("p", "order", text("ticket_order", { order: ticket.info.order, sub: ticket.sub }));
  const button = element("button", "", text("ticket_show"));
  button.type = "button";
  button.setAttribute("aria-describedby", title.id);
  const show = busy(button, () => showTicket(ticket.sub));
  button.addEventListener("click", (event) => {
    clicked = ticket.sub; // the list is drawn anew after: its button keeps the keyboard's place
    return show(event);
  });
  li.append(title, span, status, order, button);
  return li;
}

/** The tickets as of the last sync (offline too). */
export async function showTickets() {
  const held = await tickets.held();
  const { policy } = await store.read("policy");
  const now = clock.now();
  const list = $("ticket-list");
  list.replaceChildren(...held.map((ticket) => item(ticket, now, policy)));
  const again = held.find((ticket) => ticket.sub === clicked);
  clicked = null;
  if (again) list.querySelector(`li[data-sub="${CSS.escape(again.sub)}"] button`).focus();
  $("tickets-note").textContent = held.length === 0 ? text("no_tickets") : "";
}
