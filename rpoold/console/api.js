// Calls to the API with the user's token (kept in this tab's sessionStorage
// only), lists followed through their Link header, and Server-Sent Events
// read over fetch (EventSource cannot send an Authorization header).

const TOKEN_KEY = "rpoold.token";
const unauthorizedListeners = new Set();

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Call `listener(message)` whenever the API answers 401. */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra) {
  const all = { Accept: "application/json", ...extra };
  const t = token();
  if (t) all.Authorization = `Bearer ${t}`;
  return all;
}

async function failure(response) {
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch (_) { /* not JSON */ }
  if (response.status === 401) unauthorizedListeners.forEach((l) => l(message));
  return new ApiError(response.status, message);
}

/**
 * One call: resolves with {status, data, headers}; rejects with ApiError
 * carrying the API's {"error": ...} message.
 */
export async function call(method, path, { body, prefer } = {}) {
  const extra = {};
  if (body !== undefined) extra["Content-Type"] = "application/json";
  if (prefer) extra.Prefer = prefer;
  const response = await fetch(path, {
    method, headers: headers(extra), cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return { status: response.status, data: text ? JSON.parse(text) : null, headers: response.headers };
}

export async function get(path) {
  return (await call("GET", path)).data;
}

/** Every item of a paged list, following `Link: <...>; rel="next"`. */
export async function getAll(path) {
  const items = [];
  let next = path + (path.includes("?") ? "&" : "?") + "limit=1000";
  while (next) {
    const { data, headers: h } = await call("GET", next);
    items.push(...(data || []));
    const link = /<([^>]+)>\s*;\s*rel="next"/.exec(h.get("Link") || "");
    next = link ? link[1] : null;
  }
  return items;
}

/** A write as an operation: its record (202 with Prefer: respond-async). */
export async function operate(method, path, body) {
  return (await call(method, path, { body, prefer: "respond-async" })).data;
}

const ENDED = new Set(["succeeded", "failed", "cancelled"]);

export function ended(operation) {
  return ENDED.has(operation.status);
}

/** Follow an operation until it ends; `update(record)` on each answer. */
export async function follow(operation, update) {
  let record = operation;
  update(record);
  while (!ended(record)) {
    record = await get(`/operations/${encodeURIComponent(record.id)}?wait=30`);
    update(record);
  }
  return record;
}

function parseBlock(block) {
  const event = { id: null, event: "message", data: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") event.id = value;
    else if (field === "event") event.event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  try {
    event.data = JSON.parse(data.join("\n"));
  } catch (_) {
    event.data = data.join("\n");
  }
  return event;
}

/**
 * Read the SSE stream at `path`: `onEvent({id, event, data})` for each
 * event.  With `reconnect`, it reconnects (with Last-Event-ID) when the
 * stream ends or fails.  Returns a function that stops it.
 */
export function stream(path, onEvent, { reconnect = false, onState = () => {} } = {}) {
  const control = new AbortController();
  let stopped = false;
  let last = null;
  async function once() {
    const extra = { Accept: "text/event-stream" };
    if (last !== null) extra["Last-Event-ID"] = last;
    const response = await fetch(path, { headers: headers(extra), cache: "no-store", signal: control.signal });
    if (!response.ok) throw await failure(response);
    onState("open");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event === null) continue;
        if (event.id !== null) last = event.id;
        onEvent(event);
      }
    }
  }
  (async () => {
    while (!stopped) {
      try {
        await once();
        if (!reconnect) { onState("ended"); return; }
        onState("reconnecting");
      } catch (error) {
        if (stopped) return;
        onState(error instanceof ApiError && error.status === 401 ? "unauthorized" : "reconnecting", error);
        if (!reconnect || (error instanceof ApiError && error.status < 500)) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
  return () => { stopped = true; control.abort(); };
}
