// A node: its containers, VMs, bridges, storage pools and jobs, and the
// actions its role may take (reboot, create/start/stop/delete a container,
// start/stop/pause/resume a VM), each run as an operation whose status the
// page shows.
import { get } from "./api.js";
import { bytes, confirmAction, h, table } from "./dom.js";
import { app } from "./main.js";
import { nodePlots } from "./plots.js";

const SEED_FLIST = "https://hub.gig.tech/gig-official-apps/ubuntu1604.flist";

export function nodePage(view, nodeid) {
  const base = `/nodes/${encodeURIComponent(nodeid)}`;
  const status = h("div", { class: "opstatus", id: "op-status", role: "status", "aria-live": "polite" });
  const head = h("div", {});
  const body = h("div", {});
  const plots = h("section", { "aria-label": "Time plots" });
  view.append(h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Pool"), ` / ${nodeid}`), head, status, plots,
    body);
  const stopPlots = nodePlots(plots, base);

  async function act(label, method, path, payload, question) {
    if (question && !(await confirmAction(question))) return;
    await app.run(label, method, path, payload, status);
    load();
  }

  function containerActions(c) {
    const name = c.name || c.id;
    const path = `${base}/containers/${encodeURIComponent(name)}`;
    const buttons = [];
    if (app.may("operate")) {
      buttons.push(c.status === "running"
        ? h("button", { type: "button", "data-action": "stop", "aria-label": `Stop container ${name}`,
          onclick: () => act(`stop ${name}`, "POST", `${path}/stop`, undefined,
            `Stop container ${name} on ${nodeid}?`) }, "Stop")
        : h("button", { type: "button", "data-action": "start", "aria-label": `Start container ${name}`,
          onclick: () => act(`start ${name}`, "POST", `${path}/start`) }, "Start"));
    }
    if (app.may("admin")) {
      buttons.push(h("button", { type: "button", class: "danger", "data-action": "delete",
        "aria-label": `Delete container ${name}`,
        onclick: () => act(`delete ${name}`, "DELETE", path, undefined,
          `Delete container ${name} on ${nodeid}? Its files are lost.`) }, "Delete"));
    }
    return h("div", { class: "actions" }, buttons);
  }

  // What a VM in each status may be asked to do: [action, label, destructive].
  const VM_ACTIONS = {
    running: [["pause", "Pause"], ["stop", "Stop", true]],
    paused: [["resume", "Resume"], ["stop", "Stop", true]],
    halted: [["start", "Start"]],
  };

  function vmActions(v) {
    if (!app.may("operate")) return "";
    const path = `${base}/vms/${encodeURIComponent(v.id)}`;
    return h("div", { class: "actions" }, (VM_ACTIONS[v.status] || []).map(([action, label, destructive]) =>
      h("button", { type: "button", class: destructive ? "danger" : undefined, "data-action": `vm-${action}`,
        "aria-label": `${label} VM ${v.id}`,
        onclick: () => act(`${action} VM ${v.id}`, "POST", `${path}/${action}`, undefined,
          destructive ? `Stop VM ${v.id} on ${nodeid}? It is powered off at once.` : undefined) }, label)));
  }

  function createForm() {
    const name = h("input", { id: "new-name", name: "name", required: true, pattern: "[A-Za-z0-9_.\\-]+" });
    const flist = h("input", { id: "new-flist", name: "flist", required: true, value: SEED_FLIST, size: 40 });
    const form = h("form", { class: "inline", id: "create-container", "aria-label": "Create a container" },
      h("label", { for: "new-name" }, "Container name", name),
      h("label", { for: "new-flist" }, "Flist", flist),
      h("button", { type: "submit" }, "Create container"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const n = name.value.trim();
      act(`create ${n}`, "POST", `${base}/containers`,
        { name: n, hostname: n, flist: flist.value.trim(), nics: [], filesystems: [], initProcesses: [],
          ports: [], hostNetworking: false });
    });
    return form;
  }

  let loading = null;
  async function load() {
    if (loading) return loading;
    loading = (async () => {
      const part = (path) => get(path).catch((e) => ({ error: e.message }));
      const [node, mem, containers, vms, bridges, pools, jobs] = await Promise.all([
        part(base), part(`${base}/mem`), part(`${base}/containers`), part(`${base}/vms`),
        part(`${base}/bridges`), part(`${base}/storagepools`), part(`${base}/jobs`)]);
      const list = (x) => (Array.isArray(x) ? x : []);
      const reboot = app.may("operate")
        ? h("button", { type: "button", class: "danger", "data-action": "reboot",
          onclick: () => act(`reboot ${nodeid}`, "POST", `${base}/reboot`, undefined,
            `Reboot node ${nodeid}? Everything on it stops for a while.`) }, "Reboot node")
        : null;
      head.replaceChildren(h("h2", {}, `Node ${node.hostname || nodeid}`),
        h("p", {}, `status ${node.status || "unknown"}`,
          mem && !mem.error ? ` · memory ${Math.round(mem.usedPercent || 0)}% used of ${bytes(mem.total)}` : "",
          node.error ? ` · ${node.error}` : ""),
        reboot);
      body.replaceChildren(
        app.may("admin") ? createForm() : "",
        table("Containers", ["name", "status", "flist", "actions"], list(containers).map((c) => [
          h("a", { href: `#/nodes/${encodeURIComponent(nodeid)}/containers/${encodeURIComponent(c.name || c.id)}` },
            c.name || c.id), c.status || "", c.flist || "", containerActions(c)])),
        table("VMs", ["id", "status", "actions"], list(vms).map((v) => [v.id, v.status || "", vmActions(v)])),
        table("Bridges", ["name", "status"], list(bridges).map((b) => [b.name, b.status || ""])),
        table("Storage pools", ["name", "status", "capacity"], list(pools).map((p) => [p.name, p.status || "",
          p.capacity || ""])),
        table("Jobs", ["id", "command", "state"], list(jobs).map((j) => [j.id, j.cmd || j.command || "",
          j.state || ""])));
      view.dataset.loaded = "true";
    })().finally(() => { loading = null; });
    return loading;
  }

  let later = null;
  const off = app.listen((event) => {
    if (event.resource === base || (event.resource || "").startsWith(`${base}/`)) {
      clearTimeout(later);
      later = setTimeout(load, 200);
    }
  });
  load();
  return () => { off(); stopPlots(); clearTimeout(later); };
}
