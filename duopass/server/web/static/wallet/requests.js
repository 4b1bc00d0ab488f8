// Waiting reissue requests in the wallet page (`GET /v1/me/reissues`): the holder's own, and
// those a partner (a ticket platform) asked for on their behalf, to move a ticket to this
// phone. Each shows its ticket and event, who asked and when, and what it needs; the holder
// proves the step-up with a factor the policy lists (an authenticator's code, an e-mailed code,
// a passkey: passkeys.js's `stepUp`), confirms (the ticket's new credential lands here with a
// ticket sync), or declines. Texts are templates/wallet/requests.html's.

import * as api from "./api.js";
import * as history from "./history.js";
import * as passkeys from "./passkeys.js";
import * as session from "./session.js";
import * as tickets from "./tickets.js";
import * as ticketview from "./ticketview.js";
import { $, element, lang } from "./ui.js";

/** The server's refusals the section has a message of its own for. */
export const CODES = ["step_up_failed", "step_up_expired", "conflict"];
const REQUEST_ID = /^rq-[0-9a-f]{1,29}$/;
const SHOWN_MAX = 50;
const TEXT_MAX = 100;
const FACTORS = ["totp", "email_otp", "passkey"];
const STATES = ["step_up", "ready", "review"];

function textField(doc, name) {
  const value = doc[name];
  if (typeof value !== "string" || value.length === 0 || value.length > TEXT_MAX) {
    throw new api.WalletError("bad_answer", `the server's answer has no valid '${name}'`);
  }
  return value;
}

function checked(item) {
  if (typeof item !== "object" || item === null) throw new api.WalletError("bad_answer", "no request");
  const rq = textField(item, "request_id");
  if (!REQUEST_ID.test(rq) || !STATES.includes(item.state)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid request");
  }
  const factors = Array.isArray(item.factors) ? item.factors.filter((f) => FACTORS.includes(f)) : [];
  return {
    rq,
    state: item.state,
    factors,
    sub: textField(item, "sub"),
    event: item.event && typeof item.event === "object" ? textField(item.event, "name") : null,
    partner: item.partner === null || item.partner === undefined ? null : textField(item, "partner"),
    created: api.int(item, "created_at", 0, 2 ** 40),
    expires: api.int(item, "expires_at", 0, 2 ** 40),
  };
}

/** The requests waiting for this holder, newest first, each checked field by field. */
export async function waiting() {
  const answer = await session.online((token) => api.call("GET", "/v1/me/reissues", null, token));
  if (!Array.isArray(answer.items)) throw new api.WalletError("bad_answer", "no request list");
  return answer.items.slice(0, SHOWN_MAX).map(checked);
}

function post(rq, step, body) {
  if (!REQUEST_ID.test(rq)) throw new api.WalletError("state", "not a request id");
  return session.online((token) => api.call("POST", `/v1/me/reissues/${rq}/${step}`, body, token));
}

/** A code factor's step-up: begun first for TOTP (nothing is sent), then the code checked. */
async function prove(rq, factor, code) {
  if (factor === "totp") await post(rq, "step-up", { factor });
  return post(rq, "step-up", { factor, code });
}

function button(label, handler) {
  const made = element("button", "", label);
  made.type = "button";
  made.addEventListener("click", handler(made));
  return made;
}

function codeForm(page, item, factor) {
  const form = element("div", "request-code");
  const id = `code-${item.rq}-${factor}`;
  const label = element("label", "", page.text("request_code_label", { rq: item.rq, factor: page.text(`factor_${factor}`) }));
  label.htmlFor = id;
  const input = Object.assign(document.createElement("input"), { id, inputMode: "numeric", autocomplete: "one-time-code", maxLength: 10 });
  form.append(label, input);
  if (factor === "email_otp") {
    form.append(button(page.text("request_send_code"), (b) => page.busy(b, async () => {
      const begun = await post(item.rq, "step-up", { factor });
      page.say("request_code_sent", { to: typeof begun.sent_to === "string" ? begun.sent_to : "" });
    })));
  }
  const check = factor === "totp" ? "request_check_totp" : "request_check_email";
  form.append(button(page.text(check), (b) => page.busy(b, async () => {
    const code = input.value.trim();
    if (code === "") return page.say("request_no_code");
    await prove(item.rq, factor, code);
    await show(page);
    return page.say("request_proved");
  })));
  return form;
}

function actions(page, item) {
  const done = [];
  if (item.state === "step_up") {
    for (const factor of item.factors) {
      if (factor === "passkey") {
        done.push(button(page.text("request_passkey"), (b) => page.busy(b, async () => {
          await passkeys.stepUp(item.rq);
          await show(page);
          page.say("request_proved");
        })));
      } else {
        done.push(codeForm(page, item, factor));
      }
    }
  }
  if (item.state === "ready") {
    done.push(button(page.text("request_confirm", { sub: item.sub }), (b) => page.busy(b, async () => {
      await post(item.rq, "confirm", {});
      await tickets.sync(); // the new credential, for this phone's key, stored here
      await ticketview.showTickets();
      await show(page);
      page.say("request_moved", { sub: item.sub });
    })));
  }
  done.push(button(page.text("request_decline", { rq: item.rq }), (b) => page.busy(b, async () => {
    await post(item.rq, "decline", {});
    await show(page);
    page.say("request_declined");
  })));
  return done;
}

function described(page, item) {
  const when = (seconds) => history.localTime(seconds, lang());
  const who = item.partner === null ? page.text("request_by_you") : item.partner;
  const factors = item.factors.map((f) => page.text(`factor_${f}`)).join(", ");
  const needs = page.text(`request_needs_${item.state}`, { factors });
  const values = { sub: item.sub, event: item.event || "—", who, when: when(item.created) };
  const line = element("p", "request-what", page.text("request_item", values));
  return [line, element("p", "request-needs", `${needs} ${page.text("request_until", { when: when(item.expires) })}`)];
}

/** The section drawn anew from the server's list. */
export async function show(page) {
  const list = $("request-list");
  const items = await waiting();
  list.replaceChildren();
  for (const item of items) {
    const li = element("li", "request");
    li.dataset.request = item.rq;
    li.append(...described(page, item), ...actions(page, item));
    list.append(li);
  }
  if (items.length === 0) list.append(element("li", "", page.text("no_requests")));
}

/** Wire the section's button; `page` gives the page's `say`, `text`, `busy`. */
export function wire(page) {
  $("requests-show").addEventListener("click", page.busy($("requests-show"), () => show(page)));
}
