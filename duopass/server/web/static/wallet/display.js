// A code on the screen (the purse's or a ticket's): drawn as a QR image, with a countdown, and
// hidden `freshness_s` after it was shown, by server time (clock.js). One code at a time.

import * as clock from "./clock.js";
import { $, text, say } from "./ui.js";

const QR_CELL_PX = 6;
const QR_QUIET_CELLS = 4;
let shown = null; // {ctr, hideAt, timer}

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

/** Take the code off the screen (saying so unless `quiet`). */
export function hide(quiet = false) {
  if (shown !== null) clearInterval(shown.timer);
  shown = null;
  const canvas = $("qr");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  canvas.width = 1;
  canvas.height = 1;
  delete canvas.dataset.code;
  delete $("code").dataset.ctr;
  delete $("code").dataset.ticket;
  $("code-for").textContent = "";
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

/** Show `code` (counter `ctr`, made at server time `now`) until `freshness` seconds later;
 * `label` says whose code it is, `ticket` is the ticket's sub (none: the purse's). */
export function present(code, { ctr, now, freshness, label, ticket = null }) {
  hide(true);
  draw(code);
  shown = { ctr, hideAt: now + freshness, timer: setInterval(tick, 1000) };
  $("code").dataset.ctr = String(ctr);
  if (ticket !== null) $("code").dataset.ticket = ticket;
  $("code-for").textContent = label;
  $("code").hidden = false;
  $("message").textContent = "";
  delete $("message").dataset.text;
  tick();
}
