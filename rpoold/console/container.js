// A container: its processes and jobs, starting a process, killing a job,
// and a job's output followed live (the job's streamed output, SSE).
import { call, get, stream } from "./api.js";
import { confirmAction, h, table } from "./dom.js";
import { app } from "./main.js";

/** Words of a command line: spaces split, single or double quotes group. */
function words(line) {
  const found = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(line)) !== null) found.push(m[1] ?? m[2] ?? m[3]);
  return found;
}

export function containerPage(view, nodeid, name) {
  const base = `/nodes/${encodeURIComponent(nodeid)}/containers/${encodeURIComponent(name)}`;
  const status = h("div", { class: "opstatus", id: "op-status", role: "status", "aria-live": "polite" });
  const lists = h("div", {});
  const outputTitle = h("h3", { id: "output-title" }, "Job output");
  const output = h("pre", { class: "output", id: "output", "aria-labelledby": "output-title",
    "aria-live": "polite", tabindex: "0" });
  const outputState = h("p", { id: "output-state", role: "status" }, "no job followed");
  let stopOutput = () => {};

  function followJob(jobid) {
    stopOutput();
    output.textContent = "";
    outputTitle.textContent = `Output of job ${jobid}`;
    outputState.textContent = "following…";
    outputState.dataset.state = "following";
    stopOutput = stream(`${base}/jobs/${encodeURIComponent(jobid)}/output`, (event) => {
      if (event.event === "stdout" || event.event === "stderr") output.append(event.data.text);
      else if (event.event === "end") {
        outputState.textContent = `ended: ${event.data.state}`;
        outputState.dataset.state = "ended";
      } else if (event.event === "error") outputState.textContent = `error: ${event.data.message}`;
    }, { onState: (s, e) => { if (e) outputState.textContent = `stream ${s}: ${e.message}`; } });
  }

  function startForm() {
    const command = h("input", { id: "command", name: "command", required: true, size: 50,
      placeholder: "sh -c 'echo one; sleep 1; echo two'" });
    const form = h("form", { class: "inline", id: "start-process", "aria-label": "Start a process" },
      h("label", { for: "command" }, "Command", command), h("button", { type: "submit" }, "Start process"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const [program, ...args] = words(command.value);
      if (!program) return;
      // Its answer's Location is the job (followed at once); Operation-Location its operation.
      try {
        const answer = await call("POST", `${base}/processes`, { body: { name: program, args } });
        const job = (answer.headers.get("Location") || "").split("/").pop();
        status.textContent = `started ${program}: job ${job}` +
          (answer.headers.get("Operation-Location") ? ` (${answer.headers.get("Operation-Location")})` : "");
        status.dataset.status = "started";
        if (job) followJob(job);
      } catch (error) {
        status.textContent = `start ${program}: refused (${error.status}: ${error.message})`;
        status.dataset.status = "refused";
      }
      load();
    });
    return form;
  }

  async function load() {
    const part = (path) => get(path).catch((e) => ({ error: e.message }));
    const [info, processes, jobs] = await Promise.all([part(base), part(`${base}/processes`), part(`${base}/jobs`)]);
    const list = (x) => (Array.isArray(x) ? x : []);
    lists.replaceChildren(
      h("p", {}, `status ${info.status || "unknown"}`, info.error ? ` · ${info.error}` : ""),
      app.may("operate") ? startForm() : "",
      table("Processes", ["pid", "command", "cpu", "rss"], list(processes).map((p) => [p.pid, p.cmdline || p.cmd || "",
        p.cpu ? p.cpu.percent ?? "" : "", p.rss ?? ""])),
      table("Jobs", ["id", "command", "state", ""], list(jobs).map((j) => [j.id, j.cmd || j.command || "", j.state || "",
        h("div", { class: "actions" },
          h("button", { type: "button", "data-action": "follow", "aria-label": `Follow output of job ${j.id}`,
            onclick: () => followJob(j.id) }, "Follow output"),
          app.may("operate") && (j.state || "running") === "running"
            ? h("button", { type: "button", class: "danger", "data-action": "kill", "aria-label": `Kill job ${j.id}`,
              onclick: async () => {
                if (!(await confirmAction(`Kill job ${j.id} in ${name}?`))) return;
                await app.run(`kill ${j.id}`, "DELETE", `${base}/jobs/${encodeURIComponent(j.id)}`, undefined, status);
                load();
              } }, "Kill") : "")])));
    view.dataset.loaded = "true";
  }

  view.append(h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Pool"), " / ",
    h("a", { href: `#/nodes/${encodeURIComponent(nodeid)}` }, nodeid), ` / ${name}`),
  h("h2", {}, `Container ${name}`), status, lists, outputTitle, outputState, output);
  let later = null;
  const off = app.listen((event) => {
    if ((event.resource || "").startsWith(base)) { clearTimeout(later); later = setTimeout(load, 200); }
  });
  load();
  return () => { off(); stopOutput(); };
}
