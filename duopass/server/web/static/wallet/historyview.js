// The funds and history view, and the holder's disputes: the last synced copy (history.js),
// movements dated in the device's time zone, "more" fetching the next page of older ones, a
// dispute form on each payment still within its window, and the disputes with their state.

import * as clock from "./clock.js";
import * as history from "./history.js";
import { $, busy, element, lang, say, text } from "./ui.js";

function movementText(item) {
  const parts = [];
  if (item.merchant || item.terminal) {
    parts.push(text("at", { merchant: item.merchant || "?", terminal: item.terminal || "-" }));
  }
  if (item.online !== null) parts.push(text(item.online ? "online_pay" : "offline_pay"));
  const booked = history.localTime(item.booked_at, lang());
  if (booked !== history.localTime(item.occurred_at, lang())) parts.push(text("booked", { when: booked }));
  parts.push(text("entry", { id: item.id }));
  if (item.dispute !== null) parts.push(text(`dispute_${item.dispute}`));
  else if (item.disputable && item.dispute_until !== null) {
    parts.push(text("dispute_until", { when: history.localTime(item.dispute_until, lang()) }));
  }
  return parts.join("; ");
}

function disputeForm(item) {
  const form = element("form", "dispute");
  const id = `reason-${item.id}`;
  const label = element("label", "", text("reason_label"));
  label.htmlFor = id;
  const input = element("textarea");
  input.id = id;
  input.name = "reason";
  input.rows = 2;
  const button = element("button", "", text("dispute_button"));
  button.type = "submit";
  form.append(label, input, button);
  form.addEventListener(
    "submit",
    busy(button, async () => {
      await history.dispute(item.id, input.value.trim());
      say("disputed");
      await showHistory();
    }),
  );
  return form;
}

function movement(item, now) {
  const li = element("li", "movement");
  li.dataset.entry = String(item.id);
  li.dataset.kind = item.kind;
  li.dataset.day = history.localDay(item.occurred_at);
  if (item.dispute !== null) li.dataset.dispute = item.dispute;
  const when = element("time", "", history.localTime(item.occurred_at, lang()));
  when.dateTime = new Date(item.occurred_at * 1000).toISOString();
  const kind = text(`kind_${item.kind}`);
  li.append(when, " ", element("strong", "", kind.startsWith("kind_") ? item.kind : kind));
  const amount = element("span", "amount", history.yuan(item.amount));
  li.append(" ", amount, " ", element("span", "", movementText(item)));
  if (item.dispute === null && item.disputable && item.dispute_until !== null && now < item.dispute_until) {
    li.append(disputeForm(item));
  }
  return li;
}

function disputeItem(found) {
  const li = element("li", "dispute-row");
  li.dataset.disputeId = String(found.id);
  li.dataset.payment = String(found.entry);
  li.dataset.state = found.state;
  const line = text("dispute_line", {
    id: found.id,
    entry: found.entry,
    amount: history.yuan(found.amount),
    merchant: found.merchant || "?",
    when: history.localTime(found.paid_at, lang()),
  });
  li.append(element("span", "", line), " ", element("strong", "", text(`dispute_state_${found.state}`)));
  if (found.note) li.append(" ", element("span", "note", text("dispute_note", { note: found.note })));
  li.append(element("p", "reason", text("dispute_reason", { reason: found.reason })));
  return li;
}

function showDisputes(copy) {
  const found = (copy && copy.disputes) || [];
  $("dispute-list").replaceChildren(...found.map(disputeItem));
  $("disputes-note").textContent = found.length === 0 ? text("no_disputes") : "";
}

/** The last synced copy: funds, movements newest first, the codes the server has not seen,
 * "more" while the server has older movements, and the disputes. */
export async function showHistory() {
  const copy = await history.cached();
  const list = $("movements");
  list.replaceChildren();
  $("unseen").hidden = true;
  $("more").hidden = true;
  $("more-note").hidden = true;
  showDisputes(copy);
  if (copy === undefined) {
    $("history-note").textContent = text("no_history");
    return;
  }
  $("history-note").textContent = text("as_of", { when: history.localTime(copy.at, lang()) });
  $("balance").textContent = history.yuan(copy.balance);
  $("free").textContent = history.yuan(copy.free_funds);
  const now = clock.now();
  list.append(...copy.items.map((item) => movement(item, now)));
  if (copy.items.length === 0) list.append(element("li", "", text("no_movements")));
  if (copy.unseen.length > 0) {
    $("unseen").textContent = text("unseen", { counters: copy.unseen.join(", ") });
    $("unseen").hidden = false;
  }
  if (copy.next && copy.items.length < history.ITEMS_KEPT_MAX) $("more").hidden = false;
  else if (copy.next) {
    $("more-note").textContent = text("history_cap", { kept: history.ITEMS_KEPT_MAX });
    $("more-note").hidden = false;
  }
}

/** Fetch the next page of older movements (online) and show them below the others. */
export async function showMore() {
  await history.more();
  await showHistory();
}
