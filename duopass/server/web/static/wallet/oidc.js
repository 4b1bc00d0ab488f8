// Signing in through the university's OpenID Connect provider from the wallet page: the button
// asks the server for the provider's address (the server keeps the state, nonce and PKCE
// verifier) and goes there; the provider sends the browser back to this page with a code and
// the state, which the page hands to the server for a session (kept as a password's is:
// `session.adopt`, enrolling this browser the first time) and drops from its address.

import * as api from "./api.js";
import * as session from "./session.js";

/** The server's refusals the page has a message of its own for. */
export const CODES = [
  "oidc_off", "oidc_state", "oidc_refused", "oidc_unavailable", "oidc_no_account", "oidc_bound_elsewhere",
];
const LOGIN = /^[!-~]{1,64}$/;
const PARAM_CHARS_MAX = 2048;
const STARTED = "duopass-oidc-state";
/** The state of the sign-in this tab started (sessionStorage: this tab's, kept across the trip
 * to the provider): a code and state this tab did not ask for (a link someone sent, to sign
 * this browser in as them) is refused. */
const $ = (id) => document.getElementById(id);

/** To the provider's sign-in page. */
export async function begin() {
  const answer = await api.call("GET", "/v1/session/oidc/start?return_to=wallet", null);
  if (typeof answer.url !== "string" || !/^https?:\/\/[!-~]+$/.test(answer.url)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid 'url'");
  }
  if (typeof answer.state !== "string" || !/^[!-~]{1,128}$/.test(answer.state)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid 'state'");
  }
  window.sessionStorage.setItem(STARTED, answer.state);
  window.location.assign(answer.url);
}

/** Back from the provider (this page's address has its `state`): a session, or why not. The
 * code and state leave the address at once (each is good once). Returns whether it was. */
export async function returned() {
  const query = new URLSearchParams(window.location.search);
  const state = query.get("state");
  if (state === null) return false;
  const code = query.get("code");
  window.history.replaceState(null, "", window.location.pathname);
  const started = window.sessionStorage.getItem(STARTED);
  window.sessionStorage.removeItem(STARTED);
  if (started !== state) throw new api.WalletError("oidc_state", "this tab did not start that sign-in");
  if (code === null || code.length > PARAM_CHARS_MAX || state.length > PARAM_CHARS_MAX) {
    throw new api.WalletError("oidc_refused", "the university's sign-in sent no code");
  }
  const sent = new URLSearchParams({ code, state });
  const answer = await api.call("GET", `/v1/session/oidc/callback?${sent}`, null);
  if (typeof answer.login !== "string" || !LOGIN.test(answer.login)) {
    throw new api.WalletError("bad_answer", "the server's answer has no valid 'login'");
  }
  await session.adopt(answer.login, api.token(answer));
  return true;
}

/** Wire the page's button (shown where the server lets holders sign in this way). */
export function wire(page) {
  const button = $("oidc-signin");
  if (button !== null) button.addEventListener("click", page.busy(button, begin));
}
