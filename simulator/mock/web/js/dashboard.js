// The dashboard: GET /dashboard/state about once a second (queues, conversations, frame
// rates), and a watch feed (websocket /dashboard/watch/{uuid}) of one conversation's frames.

import { api, REST } from "./api.js";
import { byTestId, clear, clock, duration, h, loadJson, saveJson, showError } from "./dom.js";

const STORE = "webchat-sim.dashboard";
const POLL_MS = 1000;
const MAX_FRAMES_SHOWN = 1000;
const MAX_FRAMES_KEPT = 5000;

const ui = Object.fromEntries(
  [
    "connection", "error", "key-form", "dashboard-key", "dashboard-login", "links", "stat-open", "stat-closed",
    "stat-fps-in", "stat-fps-out", "stat-sockets", "stat-uptime", "queues", "conversations", "conversation-count",
    "watch", "watch-title", "raw-toggle", "copy-frames", "stop-watch", "watch-status", "frames", "copy-area",
  ].map((id) => [id, byTestId(id)]),
);

let auth = loadJson(sessionStorage, STORE); // {key, jwt} when the server has API keys
let development = true;
let sample = null; // the previous {t, in, out} for frame rates
let timer = 0;
const rows = new Map(); // conversation uuid -> <tr>
let watching = null; // {uuid, ws, raw: string[]}

function setConnection(state, text) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = text;
}

// ---------------------------------------------------------------------------
// Polling

async function poll() {
  clearTimeout(timer);
  try {
    const state = await api("GET", "/dashboard/state", { key: auth && auth.key });
    ui["key-form"].hidden = true;
    render(state);
    setConnection("open", "live");
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      development = false;
      ui["key-form"].hidden = false;
      setConnection("closed", "API key needed");
      if (auth && auth.key) showError(ui.error, `Key refused: ${err.message}`);
      ui["dashboard-key"].focus();
      return; // until a key is given
    }
    setConnection("error", `no answer (${err.message})`);
  }
  timer = setTimeout(poll, POLL_MS);
}

function render(state) {
  development = Boolean(state.development);
  renderLinks(state.links || {});
  const status = state.status || {};
  const convs = status.conversations || {};
  ui["stat-open"].textContent = String(convs.open ?? 0);
  ui["stat-closed"].textContent = String(convs.closed ?? 0);
  ui["stat-sockets"].textContent = String(status.sockets ?? 0);
  ui["stat-uptime"].textContent = duration(status.uptime_seconds);
  const now = { t: state.now_ms, in: status.frames_in || 0, out: status.frames_out || 0 };
  if (sample && now.t > sample.t) {
    const seconds = (now.t - sample.t) / 1000;
    ui["stat-fps-in"].textContent = ((now.in - sample.in) / seconds).toFixed(1);
    ui["stat-fps-out"].textContent = ((now.out - sample.out) / seconds).toFixed(1);
  }
  sample = now;
  renderQueues(state.queues || []);
  renderConversations(state.conversations || []);
}

function renderLinks(links) {
  clear(ui.links);
  for (const [name, url] of Object.entries(links)) {
    const value = /^https?:/.test(url) ? h("a", { href: url }, h("code", {}, url)) : h("code", {}, url);
    ui.links.append(h("div", { class: "contents" }, h("dt", {}, name), h("dd", { "data-testid": `link-${name}` }, value)));
  }
}

function cells(tr, values) {
  while (tr.children.length < values.length) tr.append(h("td"));
  values.forEach((value, i) => {
    const td = tr.children[i];
    if (value instanceof Node) {
      if (td.firstChild !== value) clear(td).append(value);
    } else if (td.textContent !== String(value)) td.textContent = String(value);
  });
}

function renderQueues(queues) {
  const seen = new Set();
  queues.forEach((q, i) => {
    seen.add(q.queue_name);
    let tr = ui.queues.querySelector(`tr[data-queue="${CSS.escape(q.queue_name)}"]`);
    if (!tr) tr = h("tr", { "data-testid": "queue-row", "data-queue": q.queue_name });
    if (ui.queues.children[i] !== tr) ui.queues.insertBefore(tr, ui.queues.children[i] || null);
    cells(tr, [
      q.queue_name, q.customer_waiting_count ?? 0, `${q.agent_available_count ?? 0}/${q.agent_count ?? 0}`,
      q.customer_active_count ?? 0, q.customer_chat_count ?? 0, q.customer_abandon_count ?? 0,
      duration(q.customer_average_hold_time_seconds), duration(q.customer_average_chat_time_seconds),
      duration(q.customer_average_abandon_time_seconds),
    ]);
    tr.dataset.waiting = String(q.customer_waiting_count ?? 0);
    tr.dataset.chatting = String(q.customer_active_count ?? 0);
    tr.children[1].dataset.testid = "queue-waiting";
  });
  for (const tr of [...ui.queues.children]) if (!seen.has(tr.dataset.queue)) tr.remove();
}

function renderConversations(conversations) {
  ui["conversation-count"].textContent = `(${conversations.length} shown)`;
  const seen = new Set();
  conversations.forEach((c, i) => {
    const uuid = c.conversation_uuid;
    seen.add(uuid);
    let tr = rows.get(uuid);
    if (!tr) {
      tr = h("tr", { "data-testid": "conversation-row", "data-conversation": uuid, tabindex: "0", "aria-selected": "false" });
      tr.addEventListener("click", () => watch(uuid, c.customer));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          watch(uuid, c.customer);
        }
      });
      rows.set(uuid, tr);
    }
    if (ui.conversations.children[i] !== tr) ui.conversations.insertBefore(tr, ui.conversations.children[i] || null);
    tr.dataset.state = c.state;
    tr.dataset.messages = String(c.message_count);
    tr.setAttribute("aria-label", `${c.customer}, ${c.state}, ${c.message_count} messages; press Enter to watch`);
    const state = tr._state || (tr._state = h("span", { class: "status" }));
    state.dataset.state = c.state === "closed" ? "closed" : c.state === "engaged" ? "open" : "connecting";
    state.textContent = c.state;
    cells(tr, [
      c.customer, c.queue_name, state, (c.agents || []).join(", ") || "—", c.message_count,
      c.last_message ? `${c.last_author}: ${c.last_message}` : "", clock(c.last_ms),
    ]);
    tr.children[5].className = "hide-narrow";
  });
  for (const [uuid, tr] of rows) {
    if (!seen.has(uuid)) {
      tr.remove();
      rows.delete(uuid);
    }
  }
}

// ---------------------------------------------------------------------------
// Watching one conversation

async function agentJwt() {
  if (auth && auth.jwt) return auth.jwt;
  const body = await api("PUT", `${REST}/conversation/agent/auth`, { key: auth && auth.key });
  auth = { ...auth, jwt: body.agent_auth.jwt };
  saveJson(sessionStorage, STORE, auth);
  return auth.jwt;
}

async function watch(uuid, customer, retried = false) {
  stopWatch();
  for (const [id, tr] of rows) tr.setAttribute("aria-selected", String(id === uuid));
  ui.watch.hidden = false;
  ui["watch-title"].textContent = customer || uuid;
  ui["watch-title"].dataset.conversation = uuid;
  clear(ui.frames);
  ui["copy-area"].hidden = true;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let url = `${scheme}://${location.host}/dashboard/watch/${encodeURIComponent(uuid)}`;
  if (!development) {
    try {
      url += `?token=${encodeURIComponent(await agentJwt())}`;
    } catch (err) {
      ui["watch-status"].textContent = `Cannot watch: ${err.message}`;
      return;
    }
  }
  const ws = new WebSocket(url);
  watching = { uuid, ws, raw: [], opened: false };
  const mine = watching;
  ui["watch-status"].textContent = "connecting…";
  ws.onopen = () => {
    mine.opened = true;
    ui["watch-status"].textContent = "live: every frame into and out of this conversation";
  };
  ws.onmessage = (event) => {
    let item;
    try {
      item = JSON.parse(event.data);
    } catch {
      return;
    }
    if (item.kind === "hello") return;
    if (item.kind === "dropped") {
      ui["watch-status"].textContent = `${item.count} frame(s) dropped: the page could not keep up`;
      return;
    }
    addFrame(mine, item);
  };
  ws.onclose = async (event) => {
    if (watching !== mine) return;
    if (!mine.opened && !development && !retried && auth) { // maybe an expired token
      auth.jwt = null;
      watch(uuid, customer, true);
      return;
    }
    ui["watch-status"].textContent = mine.opened ? `feed closed (${event.reason || event.code})` : "cannot watch this conversation (unknown, or not allowed)";
  };
}

function stopWatch() {
  if (watching) {
    const { ws } = watching;
    watching = null;
    ws.close(1000, "stopped");
  }
}

function addFrame(state, item) {
  const raw = JSON.stringify(item.frame);
  state.raw.push(raw);
  if (state.raw.length > MAX_FRAMES_KEPT) state.raw.shift();
  const label = { in: "← in", out: "→ out", history: "history" }[item.dir] || item.dir;
  const pre = h("pre", { "data-testid": "frame-raw", hidden: !ui["raw-toggle"].checked }, raw);
  const atEnd = ui.frames.scrollHeight - ui.frames.scrollTop - ui.frames.clientHeight < 60;
  ui.frames.append(h("li", { "data-testid": "frame", "data-dir": item.dir, "data-kind": kind(item.frame) },
    h("span", { class: "muted" }, clock(item.t), " "), h("span", { class: "dir" }, label), " ",
    h("span", { "data-testid": "frame-summary" }, describe(item.frame || {})), pre));
  while (ui.frames.childElementCount > MAX_FRAMES_SHOWN) ui.frames.firstElementChild.remove();
  if (atEnd) ui.frames.scrollTop = ui.frames.scrollHeight;
}

const kind = (f) => (f && f.type === "event" ? f.event_type || (f.error ? "error" : "event") : f && f.type) || "?";

function names(summary) {
  return (summary.participants || []).map((p) => `${p.conversation_participant_name} (${p.status})`).join(", ");
}

/** One line saying what a frame is and carries. */
export function describe(f) {
  if (f.type === "event" && !f.event_type && f.error) return `error ${f.error.error_code}: ${f.error.developer_message || ""}`;
  if (f.type === "message") {
    const m = f.message || {};
    return `message${m.author_conversation_participant_name ? ` from ${m.author_conversation_participant_name}` : ""}: ${m.body || ""}`;
  }
  if (f.type === "check queue position") return "check queue position";
  if (f.type === "ping") return "ping";
  const t = f.event_type;
  switch (t) {
    case "typing": {
      const e = f.event_typing || {};
      return e.value ? `typing${e.author_conversation_participant_name ? ` (${e.author_conversation_participant_name})` : ""}: ${e.value}` : "typing stopped";
    }
    case "queue position": {
      const e = f.event_queue_position || {};
      return `queue position ${e.position} (${e.available ? "an agent is online" : "no agent online"})`;
    }
    case "read message": return `read message ${(f.event_read_message || {}).conversation_message_uuid || ""}`;
    case "updated message": {
      const m = f.event_updated_message || {};
      const st = (m.transport_statuses || []).map((s) => s.status).join(", ");
      return `updated message "${(m.body || "").slice(0, 60)}" (${st})`;
    }
    case "add coupon": return `add coupon ${(f.event_add_coupon || {}).coupon_code || ""}`;
    case "add item": return `add item: ${((f.event_add_item || {}).items || []).map((i) => i.description || i.item_id).join(", ")}`;
    case "participant join": return `participant join: ${(f.event_participant_join_participant || {}).conversation_participant_name || ""}`;
    case "participant left": return `participant left: ${(f.event_participant_left_participant || {}).conversation_participant_name || ""}`;
    case "participant update": return `participant update: ${names(f.event_participant_update || {})}`;
    case "new conversation": return `new conversation: ${names(f.event_new_conversation || {})}`;
    case "new message": {
      const s = f.event_new_message || {};
      return `new message (${s.message_count} in all; last by ${s.last_conversation_participant_name || "?"})`;
    }
    case "conversation closed": return "conversation closed";
    case "webchat context": return `webchat context: ${(f.event_webchat_context || {}).url || ""}`;
    case "rrweb": {
      const e = f.event_rrweb || {};
      return `rrweb ${e.type} #${e.event_index} part ${e.data_part}/${e.data_total_parts} (${(e.data || "").length} characters)`;
    }
    case "queue status update": return "queue status update";
    case "queue new member": return "queue new member";
    default: return t || f.type || "frame";
  }
}

// ---------------------------------------------------------------------------
// Wiring

ui["key-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  const key = ui["dashboard-key"].value.trim();
  if (!key) return;
  auth = { key, jwt: null };
  saveJson(sessionStorage, STORE, auth);
  poll();
});
ui["raw-toggle"].addEventListener("change", () => {
  for (const pre of ui.frames.querySelectorAll("pre")) pre.hidden = !ui["raw-toggle"].checked;
});
ui["copy-frames"].addEventListener("click", async () => {
  const text = watching ? watching.raw.join("\n") : "";
  ui["copy-area"].value = text;
  ui["copy-area"].hidden = false;
  ui["copy-area"].select();
  try {
    await navigator.clipboard.writeText(text);
    ui["watch-status"].textContent = `${watching ? watching.raw.length : 0} frame(s) copied as JSON lines`;
  } catch {
    ui["watch-status"].textContent = "Select and copy the frames from the box below.";
  }
});
ui["stop-watch"].addEventListener("click", () => {
  stopWatch();
  ui.watch.hidden = true;
  for (const tr of rows.values()) tr.setAttribute("aria-selected", "false");
});

poll();
