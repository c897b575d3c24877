/// The dashboard: one page, no build step, no external assets.
///
/// It reads the JSON API under /api/v1 and follows engine events over the WebSocket at
/// /api/v1/events/ws. Everything it shows carries stable ids and data attributes for tests:
/// `#flows li[data-flow-id][data-status]`, `#flow-dag svg g.node[data-node]`,
/// `#runs tr[data-run-id][data-status][data-durable]`, `#run-view[data-run-id]`,
/// `#run-timeline .tl-row[data-task][data-status]`, `#run-logs .log-line[data-kind]`,
/// `#assets tr[data-asset-key]`, `#asset-detail tr[data-partition][data-status]`,
/// `#conn[data-state]` (connecting, open, closed) and `#token-form`.
enum Dashboard {
    static let page = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f5f6f8; --panel: #fff; --line: #dde1e6; --text: #1d232b; --muted: #66707c; --accent: #2f6fde;
  --ok: #2e9d57; --bad: #d64545; --run: #2f6fde; --wait: #d08b12; --off: #9aa3ad; --queued: #7b5cc4;
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--text); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
header { display: flex; align-items: center; gap: 12px; padding: 8px 16px; background: #1d232b; color: #fff; }
header h1 { font-size: 16px; margin: 0; letter-spacing: .5px; }
header .spacer { flex: 1; }
button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px; background: #fff; color: var(--text); cursor: pointer; }
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: .45; cursor: default; }
button.danger { color: var(--bad); }
header button { background: transparent; color: #fff; border-color: #4a525c; }
input, select, textarea { font: inherit; padding: 2px 6px; border: 1px solid var(--line); border-radius: 4px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); margin: 0 0 8px; display: flex; align-items: center; gap: 8px; }
#flow-title { text-transform: none; letter-spacing: 0; color: var(--text); }
h3 { font-size: 14px; margin: 12px 0 6px; }
.mono, pre, code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.muted { color: var(--muted); }
[hidden] { display: none !important; }

#conn { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #4a525c; }
#conn[data-state="open"] { background: var(--ok); }
#conn[data-state="closed"] { background: var(--bad); }
#token-form { display: flex; gap: 8px; align-items: center; padding: 8px 16px; background: #fff6e0; border-bottom: 1px solid #ecd9a8; }
#notice { padding: 6px 16px; background: #eaf1fd; border-bottom: 1px solid var(--line); }
#notice[data-level="error"] { background: #fdecec; color: var(--bad); }

main { display: grid; grid-template-columns: 230px minmax(0, 1fr) minmax(0, 1.1fr); gap: 12px; padding: 12px; align-items: start; }
.col { display: flex; flex-direction: column; gap: 12px; min-width: 0; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; min-width: 0; }
@media (max-width: 1000px) { main { grid-template-columns: minmax(0, 1fr); } }

#flows { list-style: none; margin: 0; padding: 0; }
#flows li { padding: 6px 8px; border-radius: 4px; cursor: pointer; border: 1px solid transparent; }
#flows li:hover { background: #f0f3f7; }
#flows li.selected { border-color: var(--accent); background: #eef3fd; }
#flows .flow-name { font-weight: 600; word-break: break-all; }
#flows .flow-sub { font-size: 12px; color: var(--muted); }
.errors { overflow-wrap: anywhere; margin: 6px 0; padding: 6px 8px; background: #fdecec; border: 1px solid #f3c4c4; border-radius: 4px; color: #9c2323; white-space: pre-wrap; }
.errors div + div { margin-top: 4px; }

.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 11px; line-height: 18px; color: #fff; background: var(--off); white-space: nowrap; }
.badge[data-status="active"], .badge[data-status="completed"] { background: var(--ok); }
.badge[data-status="invalid"], .badge[data-status="failed"] { background: var(--bad); }
.badge[data-status="stale"], .badge[data-status="retrying"], .badge[data-status^="waiting"], .badge[data-status="suspended"] { background: var(--wait); }
.badge[data-status="running"] { background: var(--run); }
.badge[data-status="queued"] { background: var(--queued); }
.tag { display: inline-block; margin-left: 4px; padding: 0 5px; border-radius: 3px; font-size: 11px; background: #eef0f3; color: var(--muted); }

.graph { overflow: auto; max-height: 520px; margin: 6px 0; border: 1px solid var(--line); border-radius: 4px; background: #fbfcfd; }
.graph svg { display: block; margin: 0 auto; }
.graph .edge { fill: none; stroke: #98a2ae; stroke-width: 1.5; }
.graph .node rect { fill: #fff; stroke: #8895a4; stroke-width: 1.2; }
.graph .node[data-kind="source"] rect { fill: #eef3fd; stroke: var(--accent); }
.graph .node[data-status="completed"] rect { fill: #e7f5ec; stroke: var(--ok); }
.graph .node[data-status="failed"] rect { fill: #fdecec; stroke: var(--bad); }
.graph .node[data-status="running"] rect { fill: #eaf1fd; stroke: var(--run); stroke-width: 2; }
.graph .node[data-status="retrying"] rect { fill: #fdf4e2; stroke: var(--wait); }
.graph .node[data-status="skipped"] rect { fill: #f3f4f6; stroke: var(--off); stroke-dasharray: 4 3; }
.graph .node.clickable { cursor: pointer; }
.graph .node.selected rect { stroke: var(--accent); stroke-width: 2.5; }
.graph .node-name { font-size: 12px; font-weight: 600; fill: var(--text); }
.graph .node-sub { font-size: 11px; fill: var(--muted); }
.graph .empty { padding: 12px; color: var(--muted); }

table { border-collapse: collapse; width: 100%; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; border-bottom: 1px solid var(--line); padding: 4px 6px; }
td { padding: 4px 6px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
#runs tr { cursor: pointer; }
#runs tr:hover { background: #f0f3f7; }
#runs tr.selected { background: #eef3fd; }
#runs td.mono { max-width: 180px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.runs-scroll { max-height: 360px; overflow: auto; }

#run-head { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; }
#run-head .run-id { font-weight: 600; }
#run-actions { display: flex; gap: 6px; margin-left: auto; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin-top: 8px; }
.kv dt { color: var(--muted); }
.kv dd { margin: 0; word-break: break-word; }

#run-timeline .tl-row { display: grid; grid-template-columns: 150px minmax(0, 1fr) 70px; gap: 8px; align-items: center; padding: 3px 0; border-bottom: 1px solid #f0f2f4; }
#run-timeline .tl-name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#run-timeline .tl-sub { font-size: 11px; color: var(--muted); }
#run-timeline .tl-track { position: relative; height: 16px; background: #f3f5f7; border-radius: 3px; }
#run-timeline .tl-bar { position: absolute; top: 2px; bottom: 2px; min-width: 3px; border-radius: 2px; background: var(--off); }
#run-timeline .tl-bar[data-status="completed"] { background: var(--ok); }
#run-timeline .tl-bar[data-status="failed"] { background: var(--bad); }
#run-timeline .tl-bar[data-status="running"] { background: var(--run); }
#run-timeline .tl-bar[data-status="retrying"] { background: var(--wait); }
#run-timeline .tl-dur { text-align: right; font-size: 12px; color: var(--muted); }
#run-timeline .tl-error { grid-column: 2 / 4; color: var(--bad); font-size: 12px; white-space: pre-wrap; }
#run-timeline .tl-axis { display: grid; grid-template-columns: 150px minmax(0, 1fr) 70px; gap: 8px; font-size: 11px; color: var(--muted); }
#run-timeline .tl-axis > span:nth-child(2) { display: flex; justify-content: space-between; }

#run-logs { max-height: 260px; overflow: auto; background: #1d232b; color: #d8dee6; border-radius: 4px; padding: 6px 8px; }
#run-logs .log-line { white-space: pre-wrap; word-break: break-word; }
#run-logs .log-line .t { color: #7d8896; }
#run-logs .log-line .k { color: #8fb8ff; }
#run-logs .log-line[data-kind="stderr"] .m, #run-logs .log-line[data-level="error"] .m, #run-logs .log-line[data-kind="task_failed"] .m,
#run-logs .log-line[data-kind="run_failed"] .m { color: #ff9a9a; }
#run-logs .empty { color: #7d8896; }
pre.json { max-height: 200px; overflow: auto; background: #f6f8fa; border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; margin: 4px 0; }

.chip { display: inline-block; margin: 1px 4px 1px 0; padding: 0 6px; border-radius: 3px; font-size: 11px; background: #eef0f3; }
.chip[data-state="materialized"], .chip[data-state="fresh"] { background: #e1f3e8; color: #1f6b3b; }
.chip[data-state="failed"] { background: #fbe1e1; color: #9c2323; }
.chip[data-state="stale"] { background: #fbefd6; color: #7a520a; }
#assets tr { cursor: pointer; }
#assets tr.selected { background: #eef3fd; }
#asset-detail .partitions { max-height: 240px; overflow: auto; }
</style>
</head>
<body>
<header>
  <h1>Sluice</h1>
  <span id="conn" data-state="connecting">connecting</span>
  <span class="spacer"></span>
  <button id="token-button" type="button" title="Set or clear the API token">API token</button>
</header>
<form id="token-form" hidden>
  <label for="token-input">This server needs its API token:</label>
  <input id="token-input" type="password" autocomplete="off" placeholder="token" size="32">
  <button type="submit">Save</button>
  <button id="token-cancel" type="button">Close</button>
  <span id="token-message" class="muted"></span>
</form>
<div id="notice" role="status" hidden></div>
<main>
  <div class="col">
    <section id="flows-panel">
      <h2>Flows</h2>
      <ul id="flows"><li class="muted">loading…</li></ul>
    </section>
  </div>
  <div class="col">
    <section id="flow-panel">
      <h2>Flow <span id="flow-title" class="mono"></span></h2>
      <div id="flow-meta"></div>
      <div id="flow-errors"></div>
      <div id="flow-start" hidden>
        <input id="flow-input" class="mono" value="{}" size="28" title="The run's input (JSON)">
        <button id="flow-start-button" type="button">Start run</button>
      </div>
      <div id="flow-dag" class="graph"><div class="empty">Select a flow.</div></div>
      <details id="flow-source-box" hidden><summary class="muted">Source</summary><pre id="flow-source" class="json"></pre></details>
    </section>
    <section id="assets-panel" hidden>
      <h2>Assets</h2>
      <div id="asset-graph" class="graph"></div>
      <table>
        <thead><tr><th>Asset</th><th>Flow</th><th>Partitions</th></tr></thead>
        <tbody id="assets"></tbody>
      </table>
      <div id="asset-detail"></div>
    </section>
  </div>
  <div class="col">
    <section id="runs-panel">
      <h2>Runs
        <select id="runs-filter" title="Show the runs of one flow"><option value="">all flows</option></select>
      </h2>
      <div class="runs-scroll">
        <table>
          <thead><tr><th>Status</th><th>Flow</th><th>Run</th><th>Trigger</th><th>Started</th><th>Took</th></tr></thead>
          <tbody id="runs"></tbody>
        </table>
      </div>
    </section>
    <section id="run-view" hidden>
      <div id="run-head"></div>
      <div id="run-info"></div>
      <h3>Timeline</h3>
      <div id="run-timeline"></div>
      <div id="run-dag" class="graph" hidden></div>
      <h3>Logs</h3>
      <div id="run-logs" class="mono"></div>
    </section>
  </div>
</main>
<script>
"use strict";

// ---------------------------------------------------------------------------------------------
// Settings and state

const TOKEN_KEY = "sluice.apiToken";
const MAX_RUNS = 200;            // rows kept in the runs list
const MAX_LOG_LINES = 2000;      // lines kept in the run view
const MAX_RECENT_EVENTS = 2000;  // live events kept for runs not open (yet)
const FLOWS_POLL_MS = 3000;      // flows reload on disk: poll for status and errors
const ASSETS_POLL_MS = 10000;
const LOG_KINDS = new Set(["log", "stdout", "stderr", "progress", "task_failed", "task_retrying", "run_failed", "run_suspended"]);
const FINAL_RUN = new Set(["completed", "failed", "cancelled"]);

const state = {
  token: localStorage.getItem(TOKEN_KEY) || "",
  flows: [],                     // summaries from GET /flows
  flowsSignature: "",
  flowDetails: new Map(),        // id -> detail, with the summary's version it was read at
  selectedFlow: null,
  runs: new Map(),               // id -> run summary
  selectedRun: null,
  view: null,                    // the open run: see loadRunView
  recentEvents: [],              // the last live events of every run, for a run opened after they came
  viewTicket: 0,                 // guards against an older run's answer arriving late
  assets: [],
  selectedAsset: null,
  socket: null,
  backoff: 500,
  reconnectTimer: null,
  wasConnected: false,           // a later open is a reconnect: everything is read again
  unauthorized: false,           // the API refused the token: wait for a new one before connecting
  pending: new Set(),            // names of refreshes scheduled by `later`
  frame: new Set(),              // renders scheduled for the next frame by `renderSoon`
};

const $ = (selector) => document.querySelector(selector);

// ---------------------------------------------------------------------------------------------
// DOM helpers: every value is set as text or an attribute, never parsed as HTML.

function setAttributes(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

/** An HTML element: h("td", {class: "mono"}, "text", otherNode). */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  appendChildren(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element, like h. */
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  appendChildren(node, children);
  return node;
}

function badge(status) {
  return h("span", {class: "badge", "data-status": status}, status || "unknown");
}

function shorten(text, max) {
  text = String(text ?? "");
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function formatMs(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "";
  if (ms < 10) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const minutes = Math.floor(ms / 60000);
  if (minutes < 60) return minutes + "m " + Math.round((ms % 60000) / 1000) + "s";
  return Math.floor(minutes / 60) + "h " + (minutes % 60) + "m";
}

function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (isNaN(date)) return iso;
  const time = date.toLocaleTimeString([], {hour12: false});
  return date.toDateString() === new Date().toDateString() ? time : date.toLocaleDateString() + " " + time;
}

function millis(iso) {
  const t = iso ? Date.parse(iso) : NaN;
  return isNaN(t) ? null : t;
}

function notice(message, level = "info") {
  const box = $("#notice");
  box.textContent = message;
  box.dataset.level = level;
  box.hidden = !message;
  clearTimeout(notice.timer);
  if (message && level !== "error") notice.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

/**
 * Runs `fn` in `delay` ms; calls with the same name until then are merged into that one, so a
 * busy stream causes one refresh per `delay` at most (and never starves it).
 */
function later(name, delay, fn) {
  if (state.pending.has(name)) return;
  state.pending.add(name);
  setTimeout(() => { state.pending.delete(name); fn(); }, delay);
}

/** Runs `render` at the next frame, once however many events asked for it. */
function renderSoon(render) {
  if (state.frame.size === 0) {
    requestAnimationFrame(() => {
      const renders = [...state.frame];
      state.frame.clear();
      renders.forEach((r) => r());
    });
  }
  state.frame.add(render);
}

/** Flow ids may hold '/': each segment is encoded on its own. */
const flowPath = (id) => id.split("/").map(encodeURIComponent).join("/");

// ---------------------------------------------------------------------------------------------
// The API, with the token

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, {method = "GET", body} = {}) {
  const headers = {Accept: "application/json"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch("/api/v1" + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401) {
    state.unauthorized = true;
    showTokenForm(state.token ? "The token was refused." : "");
    throw new ApiError(401, "unauthorized", "the server needs its API token");
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
  }
  return data;
}

/** Runs an API call for display: reports failures in the notice bar instead of throwing. */
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (error) {
    if (error.status !== 401) notice(what + ": " + error.message, "error");
    return undefined;
  }
}

function showTokenForm(message) {
  $("#token-form").hidden = false;
  $("#token-message").textContent = message || "";
  $("#token-input").focus();
}

function saveToken(event) {
  event.preventDefault();
  state.token = $("#token-input").value.trim();
  if (state.token) localStorage.setItem(TOKEN_KEY, state.token);
  else localStorage.removeItem(TOKEN_KEY);
  $("#token-input").value = "";
  $("#token-form").hidden = true;
  notice(state.token ? "Token saved." : "Token cleared.");
  state.unauthorized = false;
  refreshAll().then(connect);
}

// ---------------------------------------------------------------------------------------------
// Graphs: a layered layout (a node's layer is its longest path from a root), drawn as SVG
// top to bottom, one row per layer.

const GRAPH_STYLES = {
  full: {width: 168, height: 44, gapX: 18, gapY: 30, pad: 14, nameChars: 22, subChars: 26},
  compact: {width: 124, height: 26, gapX: 12, gapY: 20, pad: 10, nameChars: 16, subChars: 0},
};

/**
 * Puts nodes ({id, deps}) in layers. Within a layer, nodes are ordered by the mean place of
 * their parents in the layer above, so edges stay short and rarely cross.
 */
function layoutGraph(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const layerOf = new Map();
  const visiting = new Set();
  const depth = (id) => {
    if (layerOf.has(id)) return layerOf.get(id);
    if (visiting.has(id)) return 0;            // a cycle: flows refuse them, but never loop
    visiting.add(id);
    const parents = byId.get(id).deps.filter((p) => byId.has(p) && p !== id);
    const d = parents.length ? Math.max(...parents.map(depth)) + 1 : 0;
    visiting.delete(id);
    layerOf.set(id, d);
    return d;
  };
  nodes.forEach((n) => depth(n.id));

  const layers = [];
  nodes.forEach((n) => (layers[layerOf.get(n.id)] ||= []).push(n));
  const place = new Map();
  layers.forEach((layer, index) => {
    if (index > 0) {
      const keyed = layer.map((n, order) => {
        const places = n.deps.filter((p) => place.has(p)).map((p) => place.get(p));
        return {n, order, key: places.length ? places.reduce((a, b) => a + b, 0) / places.length : Infinity};
      });
      keyed.sort((a, b) => a.key - b.key || a.order - b.order);
      layer.splice(0, layer.length, ...keyed.map((k) => k.n));
    }
    layer.forEach((n, i) => place.set(n.id, i));
  });
  return layers;
}

/**
 * Draws nodes ({id, deps, label, sub, title?, kind?, status?}) into `container`.
 * `onSelect(id)` makes nodes clickable; `selected` marks one; `style` is "full" or "compact".
 */
function drawGraph(container, nodes, {name, onSelect, selected, style = "full", empty = "Nothing to draw."} = {}) {
  if (!nodes.length) {
    container.replaceChildren(h("div", {class: "empty"}, empty));
    return;
  }
  const s = GRAPH_STYLES[style];
  const layers = layoutGraph(nodes);
  const widest = Math.max(1, ...layers.map((l) => l.length));
  const width = s.pad * 2 + widest * s.width + (widest - 1) * s.gapX;
  const height = s.pad * 2 + layers.length * s.height + (layers.length - 1) * s.gapY;
  const position = new Map();
  layers.forEach((layer, row) => {
    const offset = (widest - layer.length) * (s.width + s.gapX) / 2;
    layer.forEach((n, i) => position.set(n.id, {x: s.pad + offset + i * (s.width + s.gapX), y: s.pad + row * (s.height + s.gapY)}));
  });

  const marker = name + "-arrow";
  const edges = [];
  for (const node of nodes) {
    const to = position.get(node.id);
    for (const dep of node.deps) {
      const from = position.get(dep);
      if (!from || dep === node.id) continue;
      const x1 = from.x + s.width / 2, y1 = from.y + s.height, x2 = to.x + s.width / 2, y2 = to.y - 2;
      const bend = Math.max(s.gapY / 2, (y2 - y1) / 2);
      edges.push(svg("path", {class: "edge", "data-from": dep, "data-to": node.id, "marker-end": `url(#${marker})`,
                               d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`}));
    }
  }
  const boxes = nodes.map((node) => {
    const {x, y} = position.get(node.id);
    const classes = ["node", onSelect ? "clickable" : "", node.id === selected ? "selected" : ""].join(" ").trim();
    return svg("g", {class: classes, "data-node": node.id, "data-kind": node.kind, "data-status": node.status,
                     transform: `translate(${x},${y})`, onclick: onSelect ? () => onSelect(node.id) : null},
      svg("title", {}, node.title || node.label),
      svg("rect", {width: s.width, height: s.height, rx: 6}),
      s.subChars
        ? [svg("text", {class: "node-name", x: 10, y: 18}, shorten(node.label, s.nameChars)),
           svg("text", {class: "node-sub", x: 10, y: 34}, shorten(node.sub, s.subChars))]
        : svg("text", {class: "node-name", x: 8, y: s.height / 2 + 4}, shorten(node.label, s.nameChars)));
  });
  container.replaceChildren(svg("svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": name},
    svg("defs", {}, svg("marker", {id: marker, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"},
      svg("path", {d: "M0,0 L10,5 L0,10 z", fill: "#98a2ae"}))),
    edges, boxes));
}

/** A flow's tasks as graph nodes; `statuses` (name -> status) colours them for a run. */
function taskNodes(detail, statuses) {
  return ((detail.graph && detail.graph.tasks) || []).map((t) => {
    const endpoint = t.endpoint ? `${t.method || "POST"} ${t.endpoint}` : "";
    return {
      id: t.name, deps: t.depends_on || [], label: t.name, kind: t.kind,
      sub: endpoint ? `${t.type} · ${endpoint}` : t.asset ? `${t.type} · asset ${t.asset}` : t.type,
      title: [t.name, t.type, endpoint, t.asset && "asset " + t.asset, statuses && statuses.get(t.name)].filter(Boolean).join("\n"),
      status: statuses ? statuses.get(t.name) : undefined,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Flows

async function fetchFlows() {
  const data = await api("/flows");
  const flows = (data && data.flows) || [];
  const signature = JSON.stringify(flows);
  if (signature === state.flowsSignature) return;
  state.flowsSignature = signature;
  state.flows = flows;
  if (!state.selectedFlow || !flows.some((f) => f.id === state.selectedFlow)) state.selectedFlow = flows.length ? flows[0].id : null;
  renderFlows();
  renderRunsFilter();
  if (state.selectedFlow) await showFlow(state.selectedFlow);
  else renderFlowDetail(null);
}

function renderFlows() {
  const list = $("#flows");
  if (!state.flows.length) {
    list.replaceChildren(h("li", {class: "muted"}, "No flows in the flows folder."));
    return;
  }
  list.replaceChildren(...state.flows.map((f) => h("li", {
      "data-flow-id": f.id, "data-status": f.status, "data-kind": f.kind,
      class: f.id === state.selectedFlow ? "selected" : null, onclick: () => showFlow(f.id)},
    h("div", {}, h("span", {class: "flow-name"}, f.id), " ", badge(f.status)),
    h("div", {class: "flow-sub"}, [f.kind, f.tasks !== undefined && f.tasks + " tasks", f.display_name].filter(Boolean).join(" · ")),
    f.errors && f.errors.length ? h("div", {class: "errors flow-errors"}, shorten(f.errors[0], 160)) : null)));
}

/** Reads a flow's detail (again only when its version or status changed) and shows it. */
async function showFlow(id) {
  state.selectedFlow = id;
  renderFlows();
  const summary = state.flows.find((f) => f.id === id);
  const stamp = summary ? `${summary.status}/${summary.version || ""}/${(summary.errors || []).join("|")}` : "";
  let cached = state.flowDetails.get(id);
  if (!cached || cached.stamp !== stamp) {
    const detail = await attempt("flow " + id, () => api("/flows/" + flowPath(id)));
    if (!detail) return;
    cached = {stamp, detail};
    state.flowDetails.set(id, cached);
  }
  if (state.selectedFlow === id) renderFlowDetail(cached.detail);
}

function renderFlowDetail(detail) {
  $("#flow-title").textContent = detail ? detail.id : "";
  $("#flow-panel").dataset.flowId = detail ? detail.id : "";
  $("#flow-meta").replaceChildren(detail ? h("div", {class: "muted"},
    badge(detail.status), " ", [detail.kind, detail.file, detail.version && "version " + detail.version,
                                detail.schedule && "schedule " + detail.schedule].filter(Boolean).join(" · ")) : "");
  const errors = (detail && detail.errors) || [];
  const heading = detail && detail.status === "stale" ? "The latest edit does not load; the previous version still serves:" : null;
  $("#flow-errors").replaceChildren(errors.length
    ? h("div", {class: "errors", id: "flow-error-list"}, heading && h("strong", {}, heading), errors.map((e) => h("div", {}, e)))
    : "");
  $("#flow-start").hidden = !detail || !detail.graph || detail.kind === "stream";
  drawGraph($("#flow-dag"), detail ? taskNodes(detail) : [], {
    name: "flow-dag",
    empty: detail ? (detail.graph ? "This flow has no tasks." : "No version of this flow loads, so there is no graph.") : "Select a flow.",
  });
  $("#flow-source-box").hidden = !(detail && detail.source);
  $("#flow-source").textContent = (detail && detail.source) || "";
}

async function startRun() {
  const flow = state.selectedFlow;
  let input;
  try { input = JSON.parse($("#flow-input").value || "{}"); } catch (error) {
    notice("The input is not JSON: " + error.message, "error");
    return;
  }
  const out = await attempt("start " + flow, () => api("/runs", {method: "POST", body: {flow, input}}));
  if (!out || !out.run) return;
  upsertRun(out.run);
  renderRuns();
  openRun(out.run.id);
}

// ---------------------------------------------------------------------------------------------
// Runs list

async function fetchRuns() {
  const data = await api("/runs?limit=100");
  for (const run of (data && data.runs) || []) upsertRun(run);
  renderRuns();
}

function upsertRun(run) {
  const known = state.runs.get(run.id);
  // A final status seen live is kept over an older listing that still says running.
  if (known && FINAL_RUN.has(known.status) && !FINAL_RUN.has(run.status) && !run.durable) run = {...run, status: known.status};
  state.runs.set(run.id, {...known, ...run});
}

function runStart(run) {
  return millis(run.started) ?? millis(run.created) ?? 0;
}

function renderRuns() {
  const all = [...state.runs.values()].sort((a, b) => runStart(b) - runStart(a) || (a.id < b.id ? 1 : -1));
  // Forget the oldest beyond the cap (the open run stays).
  for (const run of all.slice(MAX_RUNS)) if (run.id !== state.selectedRun) state.runs.delete(run.id);
  const filter = $("#runs-filter").value;
  const shown = all.slice(0, MAX_RUNS).filter((r) => !filter || r.flow === filter);
  $("#runs").replaceChildren(...(shown.length ? shown.map(runRow)
    : [h("tr", {class: "empty"}, h("td", {colspan: 6, class: "muted"}, "No runs yet."))]));
}

function runRow(run) {
  const start = runStart(run), end = millis(run.ended);
  return h("tr", {"data-run-id": run.id, "data-status": run.status, "data-flow": run.flow,
                  "data-durable": run.durable === undefined ? "unknown" : String(run.durable),
                  class: run.id === state.selectedRun ? "selected" : null, onclick: () => openRun(run.id)},
    h("td", {}, badge(run.status)),
    h("td", {}, run.flow),
    h("td", {class: "mono", title: run.id}, run.id),
    h("td", {}, run.trigger || "", run.durable === false ? h("span", {class: "tag", title: "an in-memory run of a stream: not recorded"}, "memory") : null),
    h("td", {title: run.started || run.created || ""}, formatTime(run.started || run.created)),
    h("td", {}, end && start ? formatMs(end - start) : run.status === "running" ? "…" : ""));
}

function renderRunsFilter() {
  const select = $("#runs-filter");
  const current = select.value;
  select.replaceChildren(h("option", {value: ""}, "all flows"), ...state.flows.map((f) => h("option", {value: f.id}, f.id)));
  select.value = state.flows.some((f) => f.id === current) ? current : "";
}

// ---------------------------------------------------------------------------------------------
// The run view: tasks with their timeline, logs, actions

/**
 * Opens a run: reads its detail and events, then keeps it current from live events.
 * Live events are kept with the view (`live`): those that arrive while it loads are applied
 * after, and all are applied again over a fresh read of the run, which may lag behind them.
 */
async function openRun(id) {
  const ticket = ++state.viewTicket;
  state.selectedRun = id;
  history.replaceState(null, "", "#run=" + encodeURIComponent(id));
  renderRuns();
  // A run opened just after it started (from the page) may have sent events already.
  const live = state.recentEvents.filter((e) => e.run === id);
  state.view = {id, loading: true, live};
  $("#run-view").hidden = false;
  $("#run-view").dataset.runId = id;
  $("#run-view").dataset.loading = "true";
  const view = await attempt("run " + id, () => loadRunView(id));
  if (ticket !== state.viewTicket) return;
  if (!view) {
    state.view = null;
    $("#run-view").hidden = true;
    return;
  }
  view.live = live;
  for (const event of live) applyEvent(view, event);
  state.view = view;
  $("#run-view").dataset.loading = "false";
  renderRunView();
  // The run changed state while it loaded (it went to wait at a gate, say): a durable run's
  // record says how, so it is read again.
  if (view.run.durable && live.some((e) => e.type.startsWith("run_") && e.type !== "run_started")) {
    later("view:" + id, 300, () => { if (state.selectedRun === id) refreshRunView(); });
  }
}

async function loadRunView(id) {
  const detail = await api("/runs/" + encodeURIComponent(id));
  const events = detail.events || (((await api("/runs/" + encodeURIComponent(id) + "/events")) || {}).events) || [];
  let flow = state.flowDetails.get(detail.flow);
  if (!flow) {
    const fetched = await api("/flows/" + flowPath(detail.flow)).catch(() => null);
    flow = fetched ? {stamp: "", detail: fetched} : null;
    if (flow) state.flowDetails.set(detail.flow, flow);
  }
  const view = {id, run: detail, flow: flow ? flow.detail : null, tasks: new Map(), logs: [], seen: new Set(), live: [], loading: false};
  // Tasks in the flow's order; sources start runs and are not part of them.
  for (const t of (view.flow && view.flow.graph && view.flow.graph.tasks) || []) {
    if (t.kind !== "source") view.tasks.set(t.name, {name: t.name, status: "pending", attempts: 0, history: []});
  }
  for (const t of detail.tasks || []) {
    view.tasks.set(t.name, {...view.tasks.get(t.name), ...t, status: taskStatus(t.status),
                            history: (t.history || []).map((a) => ({...a, status: taskStatus(a.status)}))});
  }
  for (const event of events) applyEvent(view, event);
  return view;
}

/** Stored attempts say "succeeded" where events say "completed": the page uses the latter. */
function taskStatus(status) {
  return status === "succeeded" ? "completed" : status;
}

function eventKey(e) {
  return [e.type, e.time, e.task || "", e.attempt || "", e.message || ""].join("\u0001");
}

/**
 * Folds one event (from the run's stored events or the live stream) into the open run. An
 * event older than what the run's record already says (a start after the end) changes nothing.
 */
function applyEvent(view, e) {
  const key = eventKey(e);
  if (view.seen.has(key)) return;
  view.seen.add(key);
  if (LOG_KINDS.has(e.type)) {
    view.logs.push(e);
    if (view.logs.length > MAX_LOG_LINES) view.logs.splice(0, view.logs.length - MAX_LOG_LINES);
  }
  const run = view.run;
  switch (e.type) {
    // A start moves a queued run on; it does not undo what the record says came after it (a
    // run waiting at a gate, read again, and the start it sent before it waited replayed).
    case "run_started": if (!run.status || run.status === "queued") run.status = "running"; run.started ||= e.time; return;
    case "run_completed": run.status = "completed"; run.ended = e.time; return;
    case "run_failed": run.status = e.message === "cancelled" ? "cancelled" : "failed"; run.ended = e.time; run.error = e.message; return;
    case "run_suspended": if (!run.durable) run.status = "suspended"; return;
  }
  if (!e.task || !e.type.startsWith("task_")) return;
  let task = view.tasks.get(e.task);
  if (!task) view.tasks.set(e.task, task = {name: e.task, status: "pending", attempts: 0, history: []});
  task.history ||= [];
  const number = e.attempt || Math.max(1, task.attempts || 1);
  let entry = task.history.find((a) => a.attempt === number);
  switch (e.type) {
    case "task_started":
      if (!entry || entry.status === "running") task.status = "running";
      task.attempts = Math.max(task.attempts || 0, number);
      task.started ||= e.time;
      if (!entry) task.history.push(entry = {attempt: number, status: "running", started: e.time});
      break;
    case "task_completed":
    case "task_failed":
    case "task_skipped":
    case "task_cancelled": {
      const status = e.type.slice(5);
      task.status = status;
      task.ended = e.time;
      task.started ||= e.time;
      if (e.type === "task_failed") task.error = e.message;
      if (e.duration_ms !== undefined && status === "completed" && (task.history.length <= 1)) task.duration_ms = e.duration_ms;
      if (entry) { entry.status = status; entry.ended = e.time; if (e.message && status === "failed") entry.error = e.message; }
      break;
    }
    case "task_retrying":
      task.status = "retrying";
      task.error = e.message;
      if (entry) { entry.status = "failed"; entry.ended ||= e.time; entry.error ||= e.message; }
      break;
  }
}

function renderRunView() {
  const view = state.view;
  if (!view || view.loading) return;
  const run = view.run;
  const section = $("#run-view");
  section.dataset.runId = run.id;
  section.dataset.status = run.status;
  section.dataset.durable = String(!!run.durable);

  const final = FINAL_RUN.has(run.status);
  const pendingGate = (run.gates || []).find((g) => g.status === "pending" && g.kind === "approval");
  $("#run-head").replaceChildren(
    h("span", {class: "run-id mono"}, run.id), badge(run.status),
    h("span", {class: "muted"}, run.flow, " · ", run.trigger || "", run.durable ? "" : " · in memory"),
    run.durable
      ? h("span", {id: "run-actions"},
          pendingGate && h("button", {id: "run-approve", type: "button", onclick: () => decideGate(true, pendingGate)}, "Approve"),
          pendingGate && h("button", {id: "run-reject", type: "button", class: "danger", onclick: () => decideGate(false, pendingGate)}, "Reject"),
          h("button", {id: "run-cancel", type: "button", class: "danger", disabled: final, onclick: () => runAction("cancel")}, "Cancel"),
          h("button", {id: "run-retry", type: "button", disabled: !final, onclick: () => runAction("retry")}, "Retry"))
      : h("span", {id: "run-actions-note", class: "muted", title: "in-memory runs of streams are not recorded"}, "not durable: no cancel or retry"));

  const info = [
    ["started", formatTime(run.started || run.created)],
    ["ended", formatTime(run.ended)],
    ["took", run.started && run.ended ? formatMs(millis(run.ended) - millis(run.started)) : ""],
    ["error", run.error && h("span", {class: "errors", id: "run-error"}, run.error)],
    ["failed task", run.failed_task],
    ["input", run.input !== undefined && Object.keys(run.input || {}).length ? h("pre", {class: "json"}, JSON.stringify(run.input, null, 2)) : null],
    ["result", run.result !== undefined ? h("pre", {class: "json", id: "run-result"}, JSON.stringify(run.result, null, 2)) : null],
    ["gates", (run.gates || []).length ? h("pre", {class: "json"}, JSON.stringify(run.gates, null, 2)) : null],
  ].filter(([, value]) => value);
  $("#run-info").replaceChildren(h("dl", {class: "kv"}, info.map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)])));

  renderTimeline(view);
  if (view.flow && view.flow.graph) {
    const statuses = new Map([...view.tasks.values()].map((t) => [t.name, t.status]));
    $("#run-dag").hidden = false;
    drawGraph($("#run-dag"), taskNodes(view.flow, statuses), {name: "run-dag", style: "compact"});
  } else {
    $("#run-dag").hidden = true;
  }
  renderLogs(view);
}

function renderTimeline(view) {
  const tasks = [...view.tasks.values()];
  const now = Date.now();
  const run = view.run;
  const starts = tasks.map((t) => millis(t.started)).filter((t) => t !== null);
  const t0 = Math.min(...starts, millis(run.started) ?? Infinity);
  const endOf = (t) => millis(t.ended) ?? (t.status === "running" || t.status === "retrying" ? (millis(run.ended) ?? now) : millis(t.started));
  const t1 = Math.max(...tasks.map(endOf).filter((t) => t !== null), millis(run.ended) ?? -Infinity, isFinite(t0) ? t0 + 1 : 1);
  const span = Math.max(1, t1 - t0);
  const place = (from, to) => ({
    left: ((from - t0) / span * 100).toFixed(3) + "%",
    width: (Math.max(0, to - from) / span * 100).toFixed(3) + "%",
  });

  const rows = tasks.map((task) => {
    const attempts = task.history && task.history.length ? task.history
      : task.started ? [{attempt: task.attempts || 1, status: task.status, started: task.started, ended: task.ended}] : [];
    const bars = attempts.filter((a) => millis(a.started) !== null).map((a) => {
      const from = millis(a.started);
      const to = millis(a.ended) ?? (a.status === "running" ? (millis(run.ended) ?? now) : from);
      const {left, width} = place(from, to);
      return h("div", {class: "tl-bar", "data-status": a.status, "data-attempt": a.attempt, style: `left:${left};width:${width}`,
                       title: `attempt ${a.attempt}: ${a.status}\n${formatTime(a.started)} → ${formatTime(a.ended) || "…"}` +
                              (a.error ? "\n" + a.error : "")});
    });
    const started = millis(task.started), ended = millis(task.ended);
    const took = task.duration_ms ?? (started !== null && ended !== null ? ended - started : null);
    const status = task.status === "pending" && FINAL_RUN.has(run.status) ? "not run" : task.status;
    return h("div", {class: "tl-row", "data-task": task.name, "data-status": task.status, "data-attempts": task.attempts || 0},
      h("div", {title: task.name},
        h("div", {class: "tl-name"}, task.name),
        h("div", {class: "tl-sub"}, status, task.attempts > 1 ? ` · ${task.attempts} attempts` : "")),
      h("div", {class: "tl-track"}, bars),
      h("div", {class: "tl-dur"}, took !== null ? formatMs(took) : ""),
      task.error ? h("div", {class: "tl-error"}, task.error) : null);
  });
  const axis = isFinite(t0)
    ? h("div", {class: "tl-axis"}, h("span", {}, ""), h("span", {}, h("span", {}, formatTime(new Date(t0).toISOString())), h("span", {}, "+" + formatMs(span))), h("span", {}, ""))
    : null;
  $("#run-timeline").replaceChildren(...(rows.length ? [...rows, axis].filter(Boolean) : [h("div", {class: "muted"}, "No tasks have run yet.")]));
}

function renderLogs(view) {
  const box = $("#run-logs");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  box.replaceChildren(...(view.logs.length ? view.logs.map(logLine) : [h("div", {class: "empty"}, "No log lines.")]));
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function logLine(e) {
  const text = e.type === "progress" ? `${e.percent ?? ""}%${e.message ? " " + e.message : ""}` : (e.message ?? "");
  return h("div", {class: "log-line", "data-kind": e.type, "data-level": e.level, "data-task": e.task},
    h("span", {class: "t"}, formatTime(e.time), " "),
    h("span", {class: "k"}, e.task ? e.task + " " : "", e.type === "log" ? (e.level || "log") : e.type, " "),
    h("span", {class: "m"}, text));
}

async function runAction(action) {
  const id = state.selectedRun;
  const body = action === "cancel" ? {reason: "cancelled from the dashboard"} : {};
  const out = await attempt(action + " " + id, () => api(`/runs/${encodeURIComponent(id)}/${action}`, {method: "POST", body}));
  if (!out) return;
  notice(action === "retry" ? `Retry queued as ${out.run.id}.` : `Run ${id} ${out.run.status}.`);
  if (out.run) upsertRun(out.run);
  await attempt("runs", fetchRuns);
  await openRun(action === "retry" && out.run ? out.run.id : id);
}

async function decideGate(approve, gate) {
  const id = state.selectedRun;
  let body = {task: gate.task};
  if (!approve) {
    const reason = prompt("Why is this run rejected?");
    if (!reason) return;
    body.reason = reason;
  }
  const out = await attempt("gate", () => api(`/runs/${encodeURIComponent(id)}/${approve ? "approve" : "reject"}`, {method: "POST", body}));
  if (out) { notice(approve ? "Approved." : "Rejected."); await openRun(id); }
}

// ---------------------------------------------------------------------------------------------
// Assets

async function fetchAssets() {
  const data = await api("/assets");
  state.assets = (data && data.assets) || [];
  $("#assets-panel").hidden = state.assets.length === 0;
  if (!state.assets.length) return;
  const known = new Set(state.assets.map((a) => a.key));
  drawGraph($("#asset-graph"), state.assets.map((a) => ({
    id: a.key, deps: (a.depends_on || []).filter((d) => known.has(d)), label: a.key, kind: "asset",
    sub: `${a.flow} · ${partitionSummary(a.partitions)}`, title: `${a.key} (${a.flow}, task ${a.task})`,
  })), {name: "asset-graph", onSelect: showAsset, selected: state.selectedAsset});
  $("#assets").replaceChildren(...state.assets.map((a) => h("tr", {
      "data-asset-key": a.key, class: a.key === state.selectedAsset ? "selected" : null, onclick: () => showAsset(a.key)},
    h("td", {class: "mono"}, a.key),
    h("td", {}, a.flow),
    h("td", {}, chips(a.partitions)))));
}

function partitionSummary(counts) {
  const entries = Object.entries(counts || {});
  if (!entries.length) return "no partitions";
  return entries.map(([k, v]) => `${v} ${k}`).join(", ");
}

function chips(counts) {
  const entries = Object.entries(counts || {});
  return entries.length ? entries.map(([k, v]) => h("span", {class: "chip", "data-state": k}, `${k} ${v}`)) : h("span", {class: "muted"}, "none");
}

async function showAsset(key) {
  state.selectedAsset = key;
  fetchAssets().catch(() => {});
  const asset = await attempt("asset " + key, () => api("/assets/" + encodeURIComponent(key)));
  if (!asset || state.selectedAsset !== key) return;
  const partitions = asset.partition_status || [];
  $("#asset-detail").replaceChildren(
    h("h3", {}, "Partitions of ", h("span", {class: "mono"}, asset.key), " ", h("span", {class: "muted"}, `(${partitions.length})`)),
    h("div", {class: "partitions"}, h("table", {"data-asset": asset.key},
      h("thead", {}, h("tr", {}, h("th", {}, "Partition"), h("th", {}, "Status"), h("th", {}, "Why"))),
      h("tbody", {}, partitions.map((p) => h("tr", {"data-partition": p.partition, "data-status": p.status},
        h("td", {class: "mono"}, p.partition), h("td", {}, h("span", {class: "chip", "data-state": p.status}, p.status)),
        h("td", {class: "muted"}, p.reason || "")))))));
}

// ---------------------------------------------------------------------------------------------
// Live events over the WebSocket, reconnecting with backoff

function setConnection(stateName, text) {
  const badgeNode = $("#conn");
  badgeNode.dataset.state = stateName;
  badgeNode.textContent = text;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.socket) {
    state.socket.onclose = state.socket.onmessage = state.socket.onerror = null;
    state.socket.close();
    state.socket = null;
  }
  // The socket refuses a wrong token too (with a bare 400): wait for the token form.
  if (state.unauthorized) {
    setConnection("closed", "needs the API token");
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = state.token ? "?token=" + encodeURIComponent(state.token) : "";
  setConnection("connecting", "connecting");
  const socket = new WebSocket(`${scheme}//${location.host}/api/v1/events/ws${query}`);
  state.socket = socket;
  socket.onopen = () => {
    state.backoff = 500;
    setConnection("open", "live");
    if ($("#notice").dataset.level === "error") notice("");
    // Catch up on what happened before the socket opened, or while it was closed.
    if (state.wasConnected) refreshAll();
    else attempt("runs", fetchRuns);
    state.wasConnected = true;
  };
  socket.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    onEvent(event);
  };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    const wait = state.backoff;
    state.backoff = Math.min(state.backoff * 2, 15000);
    setConnection("closed", `reconnecting in ${Math.round(wait / 1000) || 1}s`);
    state.reconnectTimer = setTimeout(connect, wait);
  };
}

const refreshRuns = () => attempt("runs", fetchRuns);
const refreshAssets = () => fetchAssets().catch(() => {});

function onEvent(e) {
  state.recentEvents.push(e);
  if (state.recentEvents.length > MAX_RECENT_EVENTS) state.recentEvents.splice(0, state.recentEvents.length - MAX_RECENT_EVENTS);
  const run = state.runs.get(e.run);
  switch (e.type) {
    case "run_started": {
      // Runs of streams live in memory; other runs are durable, and the listing has their details.
      const flow = state.flows.find((f) => f.id === e.flow);
      const stream = flow && flow.kind === "stream";
      upsertRun({id: e.run, flow: e.flow, status: "running", started: e.time, created: run ? run.created : e.time,
                 ...(stream && !run ? {durable: false, trigger: "source"} : {})});
      if (!stream) later("runs", 400, refreshRuns);
      renderSoon(renderRuns);
      break;
    }
    case "run_completed":
    case "run_failed":
    case "run_suspended": {
      const status = e.type === "run_completed" ? "completed" : e.type === "run_suspended" ? "suspended"
        : e.message === "cancelled" ? "cancelled" : "failed";
      upsertRun({id: e.run, flow: e.flow, ...(run ? {} : {started: e.time}), status, ended: e.type === "run_suspended" ? undefined : e.time,
                 error: e.type === "run_completed" ? undefined : e.message});
      if (!run || run.durable !== false) later("runs", 400, refreshRuns);
      later("assets", 1000, refreshAssets);
      renderSoon(renderRuns);
      break;
    }
  }
  const view = state.view;
  if (!view || view.id !== e.run) return;
  view.live.push(e);
  if (view.live.length > MAX_LOG_LINES * 2) view.live.splice(0, view.live.length - MAX_LOG_LINES * 2);
  if (view.loading) return;
  applyEvent(view, e);
  // A durable run's record (status, gates, result) is read again when the run changes state.
  // Keyed by run: a refresh still pending for the run shown before must not swallow this one.
  if (view.run.durable && e.type.startsWith("run_")) later("view:" + view.id, 300, () => { if (state.selectedRun === view.id) refreshRunView(); });
  renderSoon(renderRunView);
}

async function refreshRunView() {
  if (!state.selectedRun) return;
  const ticket = state.viewTicket;
  const view = await loadRunView(state.selectedRun).catch(() => null);
  if (!view || ticket !== state.viewTicket || !state.view || state.view.loading) return;
  view.live = state.view.live;
  for (const event of view.live) applyEvent(view, event);
  state.view = view;
  renderRunView();
}

// ---------------------------------------------------------------------------------------------
// Start

async function refreshAll() {
  await Promise.all([
    attempt("flows", fetchFlows),
    attempt("runs", fetchRuns),
    attempt("assets", fetchAssets),
  ]);
  if (state.selectedRun) await refreshRunView();
}

$("#token-form").addEventListener("submit", saveToken);
$("#token-cancel").addEventListener("click", () => { $("#token-form").hidden = true; });
$("#token-button").addEventListener("click", () => showTokenForm(state.token ? "A token is stored; save an empty one to clear it." : ""));
$("#runs-filter").addEventListener("change", renderRuns);
$("#flow-start-button").addEventListener("click", startRun);

setInterval(() => { if (!document.hidden) fetchFlows().catch(() => {}); }, FLOWS_POLL_MS);
setInterval(() => { if (!document.hidden) fetchAssets().catch(() => {}); }, ASSETS_POLL_MS);

const linked = /^#run=(.+)$/.exec(location.hash);
if (linked) openRun(decodeURIComponent(linked[1]));
// The first reads tell whether a token is needed before the socket is tried.
refreshAll().then(connect);
</script>
</body>
</html>
"""#
}
