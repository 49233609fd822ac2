// Small time plots of one node, sampled while its page is open: memory used
// (GET /nodes/{id}/mem) and the core0 agent's CPU (GET /nodes/{id}/state).
// Drawn by uPlot (uplot.js: uPlot 1.6.32's ES module, MIT, see uplot-LICENSE).
import uPlot from "./uplot.js";
import { get } from "./api.js";
import { h } from "./dom.js";

const EVERY = 5000;
const KEEP = 120;

function plot(title, label, where) {
  const data = [[], []];
  const chart = new uPlot({
    title, width: 420, height: 160,
    scales: { y: { range: [0, 100] } },
    series: [{}, { label, stroke: "#1f5fbf", width: 2, fill: "rgba(31,95,191,0.08)" }],
    axes: [{}, { values: (_, ticks) => ticks.map((v) => `${v}%`) }],
  }, data, where);
  return {
    add(time, value) {
      data[0].push(time);
      data[1].push(value);
      if (data[0].length > KEEP) { data[0].shift(); data[1].shift(); }
      chart.setData(data);
    },
    destroy() { chart.destroy(); },
  };
}

/** Plots in `where` for node `base` (its API path); returns a function that stops them. */
export function nodePlots(where, base) {
  const memBox = h("figure", { class: "plot", "aria-label": "Memory used over time" });
  const cpuBox = h("figure", { class: "plot", "aria-label": "core0 agent CPU over time" });
  const latest = h("p", { class: "summary", id: "samples", role: "status" }, "sampling every 5 s…");
  where.append(h("h3", {}, "Memory and agent CPU (sampled while this page is open)"), latest,
    h("div", { class: "plots" }, memBox, cpuBox));
  const mem = plot("Memory used", "used %", memBox);
  const cpu = plot("core0 agent CPU", "cpu %", cpuBox);
  let samples = 0;
  async function sample() {
    const now = Date.now() / 1000;
    const [m, s] = await Promise.all([get(`${base}/mem`).catch(() => null), get(`${base}/state`).catch(() => null)]);
    if (m) mem.add(now, m.usedPercent || 0);
    if (s) cpu.add(now, s.cpu || 0);
    samples += 1;
    latest.textContent = `${samples} samples; now memory ${m ? Math.round(m.usedPercent || 0) : "?"}% used, ` +
      `agent CPU ${s ? s.cpu : "?"}%`;
    latest.dataset.samples = String(samples);
  }
  sample();
  const timer = setInterval(sample, EVERY);
  return () => { clearInterval(timer); mem.destroy(); cpu.destroy(); };
}
