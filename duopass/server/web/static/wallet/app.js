// The wallet page: sign in (and enrol), sync, show a code as a QR image, hide it `freshness_s`
// later. Messages are the page's own (templates/wallet/index.html, in the page's language),
// the CLI wallet's refusals with "sync while online" where it names a command.

import * as api from "./api.js";
import * as clock from "./clock.js";
import * as dp1 from "./dp1.js";
import * as history from "./history.js";
import * as passkeys from "./passkeys.js";
import * as session from "./session.js";
import * as store from "./store.js";

const QR_CELL_PX = 6;
const QR_QUIET_CELLS = 4;
const DEFAULT_FRESHNESS_S = 60;
const $ = (id) => document.getElementById(id);
let shown = null; // {ctr, hideAt, timer}
const REFUSALS = ["dispute_too_late", "already_disputed", "not_disputable", "not_found", ...passkeys.CODES];
const lang = () => document.documentElement.lang;

function text(name, values = {}) {
  const item = document.querySelector(`#texts [data-text="${name}"], #passkey-texts [data-text="${name}"]`);
  const template = item ? item.textContent : name;
  return template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

function say(name, values) {
  $("message").textContent = text(name, values);
  $("message").dataset.text = name;
}

function refusal(error) {
  if (error instanceof api.WalletError && REFUSALS.includes(error.code)) {
    say(error.code);
  } else if (error instanceof api.WalletError || error instanceof dp1.CodeError || error.failure) {
    const failure = error.failure || "state";
    say(failure, { detail: error.message, uses: error.uses, mark: error.mark });
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

function draw(code) {
  const qr = qrcode(0, "M");
  qr.addData(code, "Alphanumeric");
  qr.make();
  const count = qr.getModuleCount();
  const side = (count + 2 * QR_QUIET_CELLS) * QR_CELL_PX;
  const canvas = $("qr");
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, side, side);
  context.fillStyle = "#000";
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (!qr.isDark(row, col)) continue;
      const x = (col + QR_QUIET_CELLS) * QR_CELL_PX;
      const y = (row + QR_QUIET_CELLS) * QR_CELL_PX;
      context.fillRect(x, y, QR_CELL_PX, QR_CELL_PX);
    }
  }
  canvas.dataset.code = code;
}

function hide(quiet = false) {
  if (shown !== null) clearInterval(shown.timer);
  shown = null;
  const canvas = $("qr");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  canvas.width = 1;
  canvas.height = 1;
  delete canvas.dataset.code;
  delete $("code").dataset.ctr;
  $("code").hidden = true;
  if (!quiet) say("hidden");
}

function tick() {
  if (shown === null) return;
  const left = shown.hideAt - clock.now();
  if (left <= 0) {
    hide();
    return;
  }
  $("countdown").textContent = text("countdown", { ctr: shown.ctr, seconds: left });
}

/** A new display: the next counter, taken durably under the lock every tab shares, then signed. */
async function show() {
  hide(true);
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
  draw(code);
  const freshness = (state.policy && state.policy.freshness_s) || DEFAULT_FRESHNESS_S;
  shown = { ctr, hideAt: now + freshness, timer: setInterval(tick, 1000) };
  $("code").dataset.ctr = String(ctr);
  $("code").hidden = false;
  $("message").textContent = "";
  tick();
  await render();
}

async function render() {
  const state = await store.read("account", "held", "clock");
  const enrolled = state.account !== undefined;
  $("who").textContent = enrolled ? `${state.account.login} (#${state.account.deviceId})` : "—";
  const held = state.held;
  $("left").textContent = held ? String(Math.max(0, held.ceiling - held.next + 1)) : "—";
  $("expires").textContent = held ? new Date(held.exp * 1000).toLocaleString() : "—";
  const offset = clock.offsetOf(state.clock);
  $("offset").textContent = offset === null ? "—" : text("offset", { seconds: offset });
  $("show").disabled = !enrolled;
  $("sync").disabled = !enrolled;
  $("main").dataset.state = enrolled ? (held ? "ready" : "enrolled") : "new";
}

function element(tag, className, content = "") {
  const made = document.createElement(tag);
  if (className) made.className = className;
  made.textContent = content;
  return made;
}

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

/** The last synced copy: funds, movements newest first, the codes the server has not seen. */
async function showHistory() {
  const copy = await history.cached();
  const list = $("movements");
  list.replaceChildren();
  $("unseen").hidden = true;
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
}

function busy(button, task) {
  return async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await task();
    } catch (error) {
      refusal(error);
    } finally {
      button.disabled = false;
      await render();
    }
  };
}

async function signIn() {
  const login = $("login").value.trim();
  await session.signIn(login, $("password").value, $("otp").value.trim() || null);
  $("password").value = "";
  say("signed_in");
}

async function sync() {
  const { held } = await store.read("held"); // its shown codes, also after a refresh replaces it
  await session.sync();
  await history.refresh(clock.now(), held);
  await showHistory();
  say("synced");
}

function supported() {
  return Boolean(window.crypto && crypto.subtle && window.indexedDB && navigator.locks);
}

async function start() {
  if (!supported()) {
    say("unsupported");
    return;
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/wallet/sw.js", { scope: "/wallet/" }).catch(refusal);
  }
  const { clock: sample } = await store.read("clock");
  clock.loaded(sample);
  $("signin-form").addEventListener("submit", busy($("signin-form").querySelector("button"), signIn));
  $("sync").addEventListener("click", busy($("sync"), sync));
  $("show").addEventListener("click", busy($("show"), show));
  $("hide").addEventListener("click", () => hide());
  passkeys.wire({ say, text, busy, render });
  await render();
  await showHistory();
}

start().catch(refusal);
