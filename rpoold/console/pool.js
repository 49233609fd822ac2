// The pool at a glance: every node as a tile, filtered and sorted, kept up
// to date from /events (node.status, container.*, vm.state); a node's
// memory and core0 agent CPU are asked for once, and again only after an
// event about that node; its CPUs (hardware) once.
import { get, getAll } from "./api.js";
import { bytes, h } from "./dom.js";
import { app } from "./main.js";

const FIGURES_PARALLEL = 8;

function nodeOf(resource) {
  const m = /^\/nodes\/([^/]+)/.exec(resource || "");
  return m ? m[1] : null;
}

export function poolPage(view) {
  const nodes = new Map(); // id -> {node, containers: Set, vms: Set, mem, state, cpus, tile}
  const filter = h("input", { id: "filter", type: "search", placeholder: "id, hostname or status" });
  const statusChoice = h("select", { id: "status-filter" },
    h("option", { value: "" }, "all"), h("option", { value: "running" }, "running"),
    h("option", { value: "down" }, "unreachable"));
  const sortChoice = h("select", { id: "sort" },
    h("option", { value: "status" }, "unreachable first"), h("option", { value: "id" }, "id"),
    h("option", { value: "mem" }, "memory used"), h("option", { value: "cpu" }, "agent CPU"),
    h("option", { value: "containers" }, "containers"));
  const summary = h("p", { class: "summary", id: "pool-summary", role: "status" }, "loading the pool…");
  const tiles = h("ul", { class: "tiles", id: "tiles", "aria-label": "Nodes" });
  view.append(h("h2", {}, "Pool"),
    h("div", { class: "tools" },
      h("label", { for: "filter" }, "Filter", filter),
      h("label", { for: "status-filter" }, "Status", statusChoice),
      h("label", { for: "sort" }, "Sort by", sortChoice)),
    summary, tiles);

  const down = (n) => n.node.status !== "running";
  const used = (n) => (n.mem ? n.mem.usedPercent || 0 : -1);
  const busy = (n) => (n.state ? n.state.cpu || 0 : -1);

  function paint(n) {
    const t = n.tile;
    const isDown = down(n);
    t.classList.toggle("down", isDown);
    t.dataset.status = n.node.status;
    t.querySelector(".status").textContent = isDown ? `unreachable (${n.node.status})` : n.node.status;
    const meter = t.querySelector("meter");
    const label = t.querySelector(".mem");
    if (n.mem) {
      meter.value = (n.mem.usedPercent || 0) / 100;
      label.textContent = `memory ${Math.round(n.mem.usedPercent || 0)}% of ${bytes(n.mem.total)}`;
    } else {
      label.textContent = isDown ? "memory unknown" : "memory …";
    }
    const cores = Array.isArray(n.cpus) ? `${n.cpus.length} CPUs` : "CPUs ?";
    const agent = n.state ? `agent ${Math.round((n.state.cpu || 0) * 10) / 10}%`
      : (isDown ? "agent unknown" : "agent …");
    t.querySelector(".cpu").textContent = `CPU: ${cores} · ${agent}`;
    t.querySelector(".containers").textContent = `${n.containers.size} containers`;
    t.querySelector(".vms").textContent = `${n.vms.size} VMs`;
  }

  function tileOf(node) {
    const id = node.id;
    const memId = `mem-${id}`;
    return h("li", { class: "tile", dataset: { node: id } },
      h("a", { href: `#/nodes/${encodeURIComponent(id)}` }, node.hostname || id),
      h("div", { class: "id" }, id, node.ipaddress ? ` · ${node.ipaddress}` : ""),
      h("div", { class: "status" }),
      h("div", { class: "mem", id: memId }),
      h("meter", { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0.2, "aria-labelledby": memId }),
      h("div", { class: "cpu" }),
      h("div", { class: "counts" }, h("span", { class: "containers" }), h("span", { class: "vms" })));
  }

  function arrange() {
    const text = filter.value.trim().toLowerCase();
    const status = statusChoice.value;
    const sort = sortChoice.value;
    const all = [...nodes.values()];
    const shown = all.filter((n) => (!status || (status === "down" ? down(n) : !down(n)))
      && (!text || `${n.node.id} ${n.node.hostname || ""} ${n.node.status}`.toLowerCase().includes(text)));
    const key = {
      status: (a, b) => (down(b) - down(a)) || a.node.id.localeCompare(b.node.id),
      id: (a, b) => a.node.id.localeCompare(b.node.id),
      mem: (a, b) => used(b) - used(a),
      cpu: (a, b) => busy(b) - busy(a),
      containers: (a, b) => b.containers.size - a.containers.size,
    }[sort];
    shown.sort(key);
    tiles.replaceChildren(...shown.map((n) => n.tile));
    const unreachable = all.filter(down).length;
    summary.textContent = `${all.length} nodes, ${unreachable} unreachable` +
      (shown.length !== all.length ? `; ${shown.length} shown` : "");
    summary.dataset.unreachable = String(unreachable);
  }
  [filter, statusChoice, sortChoice].forEach((e) => e.addEventListener("input", arrange));

  async function loadFigures(n) {
    const base = `/nodes/${encodeURIComponent(n.node.id)}`;
    const part = (path) => get(path).catch(() => null);
    [n.mem, n.state, n.cpus] = await Promise.all([part(`${base}/mem`), part(`${base}/state`),
      n.cpus || part(`${base}/cpus`)]);
    paint(n);
  }

  const figuresLater = new Map();
  function figuresSoon(n) {
    clearTimeout(figuresLater.get(n.node.id));
    figuresLater.set(n.node.id, setTimeout(() => loadFigures(n), 1000));
  }

  function stamp(n, event) {
    const lag = Date.now() - Date.parse(event.time);
    n.tile.dataset.event = String(event.id);
    n.tile.dataset.lag = String(lag);
  }

  let pending = [];
  let loaded = false;
  function apply(event) {
    if (!loaded) { pending.push(event); return; }
    const id = nodeOf(event.resource);
    const n = id && nodes.get(id);
    if (!n) return;
    const data = event.data || {};
    const rest = event.resource.slice(`/nodes/${id}`.length).split("/").filter(Boolean);
    if (event.type === "node.status") {
      n.node.status = data.status || n.node.status;
      if (down(n)) { n.mem = null; n.state = null; } // what it had is no longer known
      else figuresSoon(n);
    } else if (event.type.startsWith("container.") && rest[0] === "containers" && rest.length === 2) {
      if (event.type === "container.deleted") n.containers.delete(rest[1]);
      else n.containers.add(rest[1]);
      figuresSoon(n);
    } else if (event.type === "vm.state" && rest[0] === "vms" && rest.length === 2) {
      if (data.state === "deleted") n.vms.delete(rest[1]);
      else n.vms.add(rest[1]);
      figuresSoon(n);
    } else {
      return;
    }
    paint(n);
    stamp(n, event);
    if (event.type === "node.status") arrange();
  }
  const off = app.listen(apply);

  (async () => {
    try {
      const [list, containers, vms] = await Promise.all([
        getAll("/nodes"), getAll("/containers").catch(() => []), getAll("/vms").catch(() => [])]);
      for (const node of list) {
        nodes.set(node.id, { node, containers: new Set(), vms: new Set(), mem: null, state: null, cpus: null,
          tile: tileOf(node) });
      }
      for (const c of containers) nodes.get(c.node)?.containers.add(c.name || c.id);
      for (const v of vms) nodes.get(v.node)?.vms.add(v.id);
      nodes.forEach(paint);
      arrange();
      loaded = true;
      pending.forEach(apply);
      pending = [];
      view.dataset.rendered = String(Math.round(performance.now()));
      const queue = [...nodes.values()].filter((n) => !down(n));
      const workers = Array.from({ length: FIGURES_PARALLEL }, async () => {
        while (queue.length) await loadFigures(queue.shift());
      });
      await Promise.all(workers);
      view.dataset.figuresLoaded = String(Math.round(performance.now()));
    } catch (error) {
      summary.textContent = `The pool could not be read: ${error.message}`;
      summary.classList.add("error");
    }
  })();
  return off;
}
