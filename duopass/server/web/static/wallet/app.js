// The wallet page: sign in (and enrol), sync the purse, the tickets and the history, show a
// code as a QR image, hide it `freshness_s` later, sign out. Messages are the page's own
// (templates/wallet/index.html, in the page's language), the CLI wallet's refusals with "sync
// while online" where it names a command. Signed in, the page shows the wallet and hides the
// sign-in form; signed out (or never signed in), the other way round.

import * as api from "./api.js";
import * as clock from "./clock.js";
import * as display from "./display.js";
import * as dp1 from "./dp1.js";
import * as history from "./history.js";
import * as historyview from "./historyview.js";
import * as oidc from "./oidc.js";
import * as passkeys from "./passkeys.js";
import * as requests from "./requests.js";
import * as session from "./session.js";
import * as store from "./store.js";
import * as tickets from "./tickets.js";
import * as ticketview from "./ticketview.js";
import { $, busy, lang, say, setHooks, text } from "./ui.js";

const DEFAULT_FRESHNESS_S = 60;
const REFUSALS = ["dispute_too_late", "already_disputed", "not_disputable", "not_found", ...passkeys.CODES, ...oidc.CODES, ...requests.CODES];
const WALLET_VIEWS = ["actions", "requests", "tickets", "history", "disputes", "passkeys"];
const STOPS_TICKETS = ["not_enrolled", "offline", "signed_out", "state"];
/** Purse sync failures the ticket sync would meet too; after any other, tickets still sync. */

function refusal(error) {
  if (error instanceof api.WalletError && REFUSALS.includes(error.code)) {
    say(error.code);
  } else if (error instanceof api.WalletError || error instanceof dp1.CodeError || error.failure) {
    const values = { detail: error.message, uses: error.uses, mark: error.mark, ...error.values };
    if (Number.isSafeInteger(values.when)) values.when = history.localTime(values.when, lang());
    say(error.failure || "state", values);
  } else {
    say("state", { detail: String(error && error.message) });
  }
}

function refused(failure, values = {}) {
  return Object.assign(new api.WalletError(failure, failure), values);
}

/** The held credential if a code may be made now (server time `now`); else why not. */
function usable(state, now) {
  if (state.account === undefined || state.device === undefined) throw refused("not_enrolled");
  if (state.account.signedOut) throw refused("signed_out");
  const held = state.held;
  if (held === undefined) throw refused("no_credential");
  if (now >= held.exp) throw refused("expired");
  if (held.next > held.ceiling) {
    if (state.sync !== undefined || held.ceiling < held.uses - 1) {
      throw refused("above_mark", { mark: held.ceiling });
    }
    throw refused("used_up", { uses: held.uses });
  }
  return held;
}

/** A new display: the next counter, taken durably under the lock every tab shares, then signed. */
async function show() {
  display.hide(true);
  const state = await store.read("account", "device", "held", "sync", "policy");
  const now = clock.now();
  usable(state, now);
  let reserved;
  try {
    reserved = await store.reserve();
  } catch (error) {
    if (error.failure === "used_up") usable(await store.read("account", "device", "held", "sync"), now);
    throw error;
  }
  const { held, ctr } = reserved;
  const code = await dp1.makeCode(held.l1, state.device.key, ctr, clock.now());
  const freshness = (state.policy && state.policy.freshness_s) || DEFAULT_FRESHNESS_S;
  display.present(code, { ctr, now, freshness, label: text("code_for_purse") });
}

async function render() {
  const state = await store.read("account", "held", "clock");
  const enrolled = state.account !== undefined;
  const signedIn = enrolled && !state.account.signedOut;
  $("signin").hidden = signedIn;
  for (const id of WALLET_VIEWS) $(id).hidden = !signedIn;
  if (!signedIn) display.hide(true);
  $("who").textContent = enrolled ? `${state.account.login} (#${state.account.deviceId})` : "—";
  const held = state.held;
  $("left").textContent = held ? String(Math.max(0, held.ceiling - held.next + 1)) : "—";
  $("expires").textContent = held ? history.localTime(held.exp, lang()) : "—";
  const offset = clock.offsetOf(state.clock);
  $("offset").textContent = offset === null ? "—" : text("offset", { seconds: offset });
  $("show").disabled = !signedIn;
  $("sync").disabled = !signedIn;
  const phase = held ? "ready" : "enrolled";
  $("main").dataset.state = !enrolled ? "new" : signedIn ? phase : "signed_out";
}

async function signIn() {
  const login = $("login").value.trim();
  await session.signIn(login, $("password").value, $("otp").value.trim() || null);
  $("password").value = "";
  await shown(); // the wallet drawn first: the message says it is done
  await requests.show(page);
  say("signed_in");
}

async function signOut() {
  display.hide(true);
  await session.signOut();
  $("passkey-list").replaceChildren();
  say("signed_out");
}

async function sync() {
  const { held } = await store.read("held"); // its shown codes, also after a refresh replaces it
  let purse = null;
  try {
    await session.sync();
  } catch (error) {
    if (!error.failure || STOPS_TICKETS.includes(error.failure)) throw error;
    purse = error; // as `duopass wallet sync`: the tickets still sync, then the purse's refusal
  }
  await tickets.sync();
  await history.refresh(clock.now(), held);
  await historyview.showHistory();
  await requests.show(page);
  if (purse !== null) throw purse;
  say("synced");
}

const page = { say, text, busy };

function supported() {
  return Boolean(window.crypto && crypto.subtle && window.indexedDB && navigator.locks);
}

async function shown() {
  await render();
  await ticketview.showTickets();
}

async function start() {
  if (!supported()) {
    say("unsupported");
    return;
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/wallet/sw.js", { scope: "/wallet/" }).catch(refusal);
  }
  setHooks(refusal, shown);
  const { clock: sample } = await store.read("clock");
  clock.loaded(sample);
  $("signin-form").addEventListener("submit", busy($("signin-form").querySelector("button"), signIn));
  $("sync").addEventListener("click", busy($("sync"), sync));
  $("show").addEventListener("click", busy($("show"), show));
  $("signout").addEventListener("click", busy($("signout"), signOut));
  $("more").addEventListener("click", busy($("more"), historyview.showMore));
  $("hide").addEventListener("click", () => display.hide());
  passkeys.wire({ say, text, busy, render: shown });
  requests.wire(page);
  oidc.wire({ busy });
  await oidc.returned().then((done) => done && say("oidc_signed_in"), refusal);
  await shown();
  await historyview.showHistory();
  const { account } = await store.read("account");
  if (account !== undefined && !account.signedOut) await requests.show(page).catch(refusal);
}

start().catch(refusal);
