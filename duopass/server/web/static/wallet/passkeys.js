// Passkeys in the wallet page: add one after a password sign-in, sign in with one (no
// password: the passkey names the holder; a browser not enrolled yet enrols its device key
// then, as after a password), list and delete them, end the session, and prove a reissue's
// step-up with one (`stepUp`, for the policy's `passkey` factor). The ceremonies are
// webauthn.js's; the messages the page's (templates/wallet/passkeys.html).

import * as api from "./api.js";
import * as session from "./session.js";
import * as webauthn from "./webauthn.js";

/** The server's refusals the page has a message of its own for. */
export const CODES = [
  "passkey_host",
  "passkey_challenge",
  "passkey_refused",
  "passkey_unknown",
  "passkey_cloned",
  "passkey_exists",
  "passkey_limit",
  "step_up_required",
  "factor_unavailable",
];
const LOGIN = /^[!-~]{1,64}$/;
const REQUEST_ID = /^rq-[0-9a-f]{1,29}$/;
const LISTED_MAX = 10;
const $ = (id) => document.getElementById(id);

/** A new passkey for the signed-in holder (the server asks for a recent password sign-in). */
export function register() {
  return session.online(async (token) => {
    const options = await api.call("POST", "/v1/me/passkeys/options", {}, token);
    const made = await webauthn.create(options);
    return api.call("POST", "/v1/me/passkeys", made, token);
  });
}

/** Sign in with a passkey: the session is kept as a password's is (`session.adopt`). */
export async function signIn() {
  const options = await api.call("POST", "/v1/session/passkey/options", {});
  const assertion = await webauthn.get(options);
  const answer = await api.call("POST", "/v1/session/passkey", assertion);
  if (typeof answer.login !== "string" || !LOGIN.test(answer.login)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid 'login'");
  }
  await session.adopt(answer.login, api.token(answer));
  return answer.login;
}

/** Prove reissue request `requestId`'s step-up with a passkey: it is then ready to confirm. */
export function stepUp(requestId) {
  if (!REQUEST_ID.test(requestId)) throw new api.WalletError("state", "not a request id");
  const path = `/v1/me/reissues/${requestId}/step-up`;
  return session.online(async (token) => {
    const begun = await api.call("POST", path, { factor: "passkey" }, token);
    if (typeof begun.options !== "object" || begun.options === null) {
      throw new api.WalletError("bad_answer", "the server's answer has no passkey options");
    }
    const assertion = await webauthn.get(begun.options);
    return api.call("POST", path, { factor: "passkey", assertion }, token);
  });
}

export async function listed() {
  const answer = await session.online((token) => api.call("GET", "/v1/me/passkeys", null, token));
  if (!Array.isArray(answer.passkeys)) throw new api.WalletError("bad_answer", "no passkey list");
  return answer.passkeys.slice(0, LISTED_MAX).map((item) => ({
    id: api.int(item, "id", 1, 2 ** 31 - 1),
    created: api.int(item, "created_at", 0, 2 ** 40),
    used: item.last_used_at === null ? null : api.int(item, "last_used_at", 0, 2 ** 40),
  }));
}

export function remove(id) {
  return session.online((token) => api.call("DELETE", `/v1/me/passkeys/${id}`, null, token));
}

function when(seconds, lang) {
  return new Date(seconds * 1000).toLocaleString(lang);
}

/** The passkeys section: the holder's passkeys, each with a delete button. */
async function show(page) {
  const list = $("passkey-list");
  const items = await listed();
  const lang = document.documentElement.lang;
  list.replaceChildren();
  for (const item of items) {
    const li = document.createElement("li");
    li.dataset.passkey = String(item.id);
    const values = { id: item.id, created: when(item.created, lang) };
    if (item.used !== null) values.used = when(item.used, lang);
    li.append(page.text(item.used === null ? "passkey_item_unused" : "passkey_item", values), " ");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = page.text("passkey_delete", { id: item.id });
    button.addEventListener(
      "click",
      page.busy(button, async () => {
        await remove(item.id);
        await show(page); // the list redrawn first: the message says it is done
        page.say("passkey_deleted");
      }),
    );
    li.append(button);
    list.append(li);
  }
  if (items.length === 0) list.append(Object.assign(document.createElement("li"), { textContent: page.text("no_passkeys") }));
}

/** Wire the page's passkey buttons; `page` gives the page's `say`, `text`, `busy`, `render`. */
export function wire(page) {
  $("passkey-signin").addEventListener(
    "click",
    page.busy($("passkey-signin"), async () => {
      await signIn();
      page.say("passkey_signed_in");
      await page.render();
      await show(page);
    }),
  );
  $("passkey-add").addEventListener(
    "click",
    page.busy($("passkey-add"), async () => {
      await register();
      page.say("passkey_added");
      await show(page);
    }),
  );
  $("passkey-show").addEventListener("click", page.busy($("passkey-show"), () => show(page)));
}
