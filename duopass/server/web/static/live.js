// The console's live page: polls /console/live/data every few seconds and draws the numbers
// with uPlot (vendored). No inline script: the CSP allows only files of this server.
(function () {
  "use strict";
  const root = document.getElementById("live");
  if (!root) return;
  const text = root.dataset;
  const pollMs = Number(text.pollS) * 1000;
  const status = document.getElementById("live-status");
  const charts = {};
  const colours = { online: "#0b5394", offline: "#b45f06" };

  function size(el) {
    return { width: Math.max(300, el.clientWidth || 600), height: 220 };
  }

  // times on the charts in the issuer's time zone, as every time in the console
  const inZone = (ts) => uPlot.tzDate(new Date(ts * 1000), text.zone);

  function make(id, opts, data) {
    const el = document.getElementById(id);
    charts[id] = new uPlot(Object.assign(size(el), { tzDate: inZone }, opts), data, el);
  }

  function series(label, colour, bars) {
    const s = { label: label, stroke: colour, width: 2 };
    if (bars) {
      s.fill = colour;
      s.paths = uPlot.paths.bars({ size: [0.6, 40] });
    }
    return s;
  }

  function draw(d) {
    const rate = (n) => n / d.bin_s;
    const rateData = [d.starts, d.online.map(rate), d.offline.map(rate)];
    const share = d.starts.map((_, i) => {
      const all = d.online[i] + d.offline[i];
      return all ? (100 * d.online[i]) / all : null;
    });
    const reasons = Array.from(
      new Set(Object.keys(d.refusals.online).concat(Object.keys(d.refusals.offline)))
    ).sort();
    const idx = reasons.map((_, i) => i);
    const refused = [
      idx,
      reasons.map((r) => d.refusals.online[r] || 0),
      reasons.map((r) => d.refusals.offline[r] || 0),
    ];
    if (!charts["chart-rate"]) {
      make("chart-rate", { series: [{ label: text.time }, series(text.online, colours.online), series(text.offline, colours.offline)] }, rateData);
      make("chart-share", { series: [{ label: text.time }, series(text.share, colours.online)], scales: { y: { range: [0, 100] } } }, [d.starts, share]);
    } else {
      charts["chart-rate"].setData(rateData);
      charts["chart-share"].setData([d.starts, share]);
    }
    if (charts["chart-refusals"]) charts["chart-refusals"].destroy();
    make("chart-refusals", {
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, reasons.length - 0.5)] } },
      axes: [{ values: (u, splits) => splits.map((v) => (Number.isInteger(v) && reasons[v]) || "") }, {}],
      series: [{ label: text.reason, value: (u, v) => (v === null ? "--" : reasons[v] || "") },
        series(text.online, colours.online, true), series(text.offline, colours.offline, true)],
    }, refused);
    table(reasons, d.refusals);
    document.getElementById("total-online").textContent = d.totals.online;
    document.getElementById("total-offline").textContent = d.totals.offline;
    document.getElementById("share").textContent =
      d.online_share === null ? "—" : (100 * d.online_share).toFixed(1) + "%";
    document.getElementById("updated").textContent = new Date(d.now * 1000).toLocaleTimeString(text.lang, {
      timeZone: text.zone,
      timeZoneName: "short",
    });
    root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
  }

  function table(reasons, refusals) {
    const body = document.getElementById("refusals");
    body.replaceChildren();
    if (!reasons.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 3;
      cell.textContent = "—";
      return;
    }
    for (const reason of reasons) {
      const row = body.insertRow();
      row.insertCell().textContent = reason;
      for (const mode of ["online", "offline"]) {
        const cell = row.insertCell();
        cell.className = "num";
        cell.textContent = refusals[mode][reason] || 0;
      }
    }
  }

  async function poll() {
    try {
      const answer = await fetch(text.source, { credentials: "same-origin", cache: "no-store" });
      if (answer.status === 401) {
        status.textContent = text.signedOut;
        return; // no more polls: the page needs a sign-in
      }
      if (!answer.ok) throw new Error(String(answer.status));
      draw(await answer.json());
      status.textContent = "";
    } catch (error) {
      status.textContent = text.failed;
    }
    setTimeout(poll, pollMs);
  }

  poll();
})();
