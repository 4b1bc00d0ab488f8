// The settlement page's chart: each merchant's net for the day in yuan, as bars (uPlot). The
// figures come from the page (data-chart); the table beside it has them as text.
"use strict";
(() => {
  const box = document.getElementById("settlement-chart");
  if (!box || typeof uPlot === "undefined") return;
  const data = JSON.parse(box.dataset.chart);
  const names = data.merchants;
  const xs = names.map((_, i) => i);
  const width = Math.min(box.clientWidth || 640, 960);
  const options = {
    width: width,
    height: 260,
    legend: { show: false },
    cursor: { show: false },
    scales: {
      x: { time: false, range: [-0.6, names.length - 0.4] },
      // bars from zero (a refund day's net may be below it)
      y: { range: (_u, low, high) => [Math.min(0, low), Math.max(0, high) * 1.1 || 1] },
    },
    axes: [
      { splits: () => xs, values: (_u, splits) => splits.map((i) => names[i] ?? "") },
      { size: 80, values: (_u, splits) => splits.map((v) => "¥" + v.toFixed(2)) },
    ],
    series: [
      {},
      { label: "net", stroke: "#0b5394", fill: "rgba(11, 83, 148, 0.35)",
        paths: uPlot.paths.bars({ size: [0.6, 80] }), points: { show: false } },
    ],
  };
  new uPlot(options, [xs, data.net], box);
})();
