// The console: session (who the token is), the shared /events stream, the
// operations and events panels, and a hash router over the pages.
import { call, follow, get, onUnauthorized, operate, setToken, stream, token } from "./api.js";
import { h } from "./dom.js";
import { poolPage } from "./pool.js";
import { nodePage } from "./node.js";
import { containerPage } from "./container.js";

const ROLES = { read: 1, operate: 2, admin: 3 };
const listeners = new Set();
let session = null;
let stopEvents = null;
let leave = () => {};

export const app = {
  /** Whether the signed-in role may do what needs `role`. */
  may(role) { return session !== null && ROLES[session.role] >= ROLES[role]; },
  /** `listener(event)` for every /events event until `off()` is called (returned). */
  listen(listener) { listeners.add(listener); return () => listeners.delete(listener); },
  /** Run a write as an operation, showing its status in `where` (an element). */
  async run(label, method, path, body, where) {
    const show = (record) => {
      where.replaceChildren(h("span", { class: `op-${record.status}` },
        `${label}: ${record.status}`, record.error ? ` (${record.error.message})` : ""));
      where.dataset.status = record.status;
    };
    try {
      const record = await follow(await operate(method, path, body), show);
      refreshOperations();
      return record;
    } catch (error) {
      where.replaceChildren(h("span", { class: "error" }, `${label}: refused (${error.status}: ${error.message})`));
      where.dataset.status = "refused";
      return null;
    }
  },
};

function signIn(why) {
  const form = document.getElementById("signin");
  document.getElementById("signin-why").textContent = why || "The API needs a token.";
  form.hidden = false;
  document.querySelector(".layout").hidden = true;
  document.getElementById("token").focus();
}

function showSession() {
  const where = document.getElementById("session");
  where.replaceChildren();
  if (!session) return;
  where.append(session.auth ? `${session.subject} (${session.role})` : "authentication off (admin)");
  if (token()) {
    where.append(h("button", { type: "button", onclick: () => { setToken(""); location.reload(); } }, "Sign out"));
  }
}

const feed = [];
function addEvent(event) {
  const list = document.getElementById("events");
  const d = event.data || {};
  list.prepend(h("li", {}, h("time", {}, (d.time || "").slice(11, 19)), h("strong", {}, d.type || event.event),
    " ", d.resource || "", d.data && d.data.status ? ` ${d.data.status}` : "",
    d.data && d.data.state ? ` ${d.data.state}` : ""));
  feed.push(event);
  while (list.children.length > 100) list.lastChild.remove();
}

let operationsTimer = null;
function refreshOperations() {
  clearTimeout(operationsTimer);
  operationsTimer = setTimeout(async () => {
    try {
      const records = await get("/operations?limit=20");
      document.getElementById("operations").replaceChildren(...records.map((r) => h("li", {}, h("span",
        { class: `op-${r.status}` }, r.status), " ", r.operation, " ", r.resource,
        r.steps && r.steps.length ? ` — ${r.steps.map((s) => s.name || s.step || s.state || "").join(", ")}` : "")));
    } catch (_) { /* shown by the sign-in form when it is a 401 */ }
  }, 300);
}

function connectEvents() {
  const state = document.getElementById("stream-state");
  stopEvents = stream("/events", (event) => {
    if (!event.data || typeof event.data !== "object" || !event.data.type) return;
    addEvent(event);
    if (event.data.type === "operation.updated") refreshOperations();
    listeners.forEach((l) => l(event.data));
  }, {
    reconnect: true,
    onState: (s) => { state.textContent = s === "open" ? "live" : s; state.dataset.state = s; },
  });
}

function route() {
  leave();
  leave = () => {};
  const view = document.getElementById("view");
  view.replaceChildren();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts[0] === "nodes" && parts.length === 2) page = nodePage(view, parts[1]);
  else if (parts[0] === "nodes" && parts[2] === "containers" && parts.length === 4) {
    page = containerPage(view, parts[1], parts[3]);
  } else page = poolPage(view);
  if (typeof page === "function") leave = page;
}

async function start() {
  onUnauthorized((why) => { if (stopEvents) stopEvents(); signIn(why); });
  document.getElementById("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(document.getElementById("token").value.trim());
    location.reload();
  });
  try {
    session = (await call("GET", "/ui/session")).data;
  } catch (error) {
    if (error.status !== 401) document.getElementById("view").textContent = `The API answered: ${error.message}`;
    return;
  }
  document.body.dataset.role = session.role;
  showSession();
  connectEvents();
  refreshOperations();
  window.addEventListener("hashchange", route);
  route();
}

start();
