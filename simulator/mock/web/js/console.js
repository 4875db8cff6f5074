// The agent console: log in with an API key (PUT /rest/v2/conversation/agent/auth), then
// websocket_url?token=JWT. Queues and their waiting customers from "queue status update",
// chats in tabs (history over REST), replies, canned messages, coupons, items, read, close.

import { api, REST } from "./api.js";
import { byTestId, clear, clock, duration, h, keepAtBottom, loadJson, nearBottom, saveJson, showError } from "./dom.js";
import * as P from "./protocol.js";
import { Socket, withQuery } from "./socket.js";

const STORE = "webchat-sim.console";
const TYPING_EVERY_MS = 800;
const READ_DELAY_MS = 300;

const ui = Object.fromEntries(
  [
    "agent-name", "agent-status", "connection", "logout", "error", "login-form", "api-key", "login", "take-next", "queues",
    "chat-tabs", "no-chats", "chat-typing", "reply-input", "reply-send", "mark-read", "close-chat", "canned-filter",
    "canned", "coupon-input", "push-coupon", "item-id", "item-description", "item-quantity", "item-price", "push-item",
  ].map((id) => [id, byTestId(id)]),
);
const workspace = document.getElementById("workspace");
const panels = document.getElementById("panels");
const composer = document.getElementById("composer");
const replyForm = document.getElementById("reply-form");
const statusLabel = document.getElementById("status-label");

/** {key, jwt, websocket_url, name, arn, user_id} */
let session = loadJson(sessionStorage, STORE);
let socket = null;
const queues = new Map(); // queue name -> {el, stats, list, entries: entry[], status}
const engaging = new Set(); // queue entry uuids this console asked to engage
const chats = new Map(); // conversation uuid -> chat (see openChat)
let active = null;
let canned = [];
let typing = { sent: "", at: 0, timer: 0, conversation: null };

const persist = () => saveJson(sessionStorage, STORE, session);
const isAgentArn = (arn) => typeof arn === "string" && arn.includes("/agent/");

function setConnection(state, detail) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = { open: "online", connecting: "connecting…", closed: "offline" }[state] + (detail ? ` (${detail})` : "");
}

// ---------------------------------------------------------------------------
// Logging in, REST with the agent's token

async function authenticate(key) {
  const auth = (await api("PUT", `${REST}/conversation/agent/auth`, { key })).agent_auth;
  session = {
    key,
    jwt: auth.jwt,
    websocket_url: auth.websocket_url,
    name: auth.conversation_participant_name,
    arn: auth.conversation_participant_arn,
    user_id: auth.user_id,
  };
  persist();
}

/** A REST call with the agent's JWT; an expired token is renewed once with the key. */
async function rest(method, path, body) {
  try {
    return await api(method, REST + path, { jwt: session.jwt, body });
  } catch (err) {
    if (err.status !== 401 || !session.key) throw err;
    await authenticate(session.key);
    return api(method, REST + path, { jwt: session.jwt, body });
  }
}

async function login(event) {
  event.preventDefault();
  const key = ui["api-key"].value.trim();
  if (!key) {
    showError(ui.error, "Enter an API key.");
    ui["api-key"].focus();
    return;
  }
  ui.login.disabled = true;
  try {
    await authenticate(key);
    enter();
  } catch (err) {
    showError(ui.error, `Login refused: ${err.message}`);
  } finally {
    ui.login.disabled = false;
  }
}

function enter() {
  ui["login-form"].hidden = true;
  workspace.hidden = false;
  statusLabel.hidden = false;
  ui.logout.hidden = false;
  ui["agent-name"].textContent = `Signed in as ${session.name}`;
  openSocket();
  loadCanned();
}

function logout() {
  if (socket) socket.close();
  session = null;
  persist();
  location.reload();
}

function openSocket() {
  socket = new Socket(() => withQuery(session.websocket_url, { token: session.jwt }), {
    onFrame,
    onStatus: setConnection,
    onGiveUp: async (event) => {
      if (/replaced/.test(event.reason || "")) return showError(ui.error, "You signed in from another window.", 0);
      try { // maybe the token expired: a new one, one more try
        await authenticate(session.key);
        socket.attempts = 0;
        socket.connect();
      } catch (err) {
        showError(ui.error, `Disconnected: ${err.message}`, 0);
      }
    },
  });
  socket.connect();
}

async function loadCanned() {
  try {
    canned = (await rest("GET", "/conversation/canned_messages")).conversation_canned_messages || [];
  } catch (err) {
    canned = [];
    showError(ui.error, `Canned messages: ${err.message}`);
  }
  renderCanned();
}

function renderCanned() {
  const needle = ui["canned-filter"].value.trim().toLowerCase();
  clear(ui.canned);
  for (const c of canned) {
    const text = `${c.short_code}: ${c.canned_message}`;
    if (needle && !text.toLowerCase().includes(needle)) continue;
    ui.canned.append(h("li", {}, h("button", {
      type: "button", "data-testid": "canned-message", "data-code": c.short_code, title: c.canned_message,
      onclick: () => insertReply(c.canned_message),
    }, h("b", {}, c.short_code), " ", c.canned_message)));
  }
}

function insertReply(text) {
  const box = ui["reply-input"];
  const start = box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? box.value.length;
  box.value = box.value.slice(0, start) + text + box.value.slice(end);
  box.focus();
  box.selectionStart = box.selectionEnd = start + text.length;
  onReplyInput();
}

// ---------------------------------------------------------------------------
// Queues

function queueBox(name) {
  let q = queues.get(name);
  if (q) return q;
  const stats = h("dl", { class: "stats", "data-testid": "queue-stats" });
  const list = h("ol", { class: "entries", "data-testid": "queue-entries", "aria-label": `Waiting in ${name}` });
  const mine = h("span", { class: "status", "data-testid": "my-status" });
  const el = h("section", { class: "queue-box", "data-testid": "queue", "data-queue": name, "aria-label": `Queue ${name}` },
    h("div", { class: "row" }, h("h3", { class: "grow" }, name), mine), stats, list);
  ui.queues.append(el);
  q = { el, stats, list, mine, entries: [], status: null };
  queues.set(name, q);
  return q;
}

function stat(label, value, testid) {
  return h("div", {}, h("dt", {}, label), h("dd", { "data-testid": testid }, String(value)));
}

function onQueueStatus(status) {
  const q = queueBox(status.queue_name);
  q.status = status;
  clear(q.stats).append(
    stat("waiting", status.customer_waiting_count ?? 0, "queue-waiting"),
    stat("agents", `${status.agent_available_count ?? 0}/${status.agent_count ?? 0}`, "queue-agents"),
    stat("chatting", status.customer_active_count ?? 0, "queue-chatting"),
    stat("avg hold", duration(status.customer_average_hold_time_seconds), "queue-hold"),
    stat("avg chat", duration(status.customer_average_chat_time_seconds), "queue-chat"),
    stat("abandoned", status.customer_abandon_count ?? 0, "queue-abandoned"),
  );
  const me = (status.agents || []).find((a) => a.conversation_participant_arn === session.arn);
  q.mine.textContent = me ? `you: ${me.agent_status}` : "you: signed out";
  q.mine.dataset.state = me && me.agent_status === "available" ? "open" : "connecting";
  q.entries = (status.queue_entries || []).filter((e) => !engaging.has(e.conversation_webchat_queue_uuid));
  renderEntries(q);
}

function onNewMember(entry) {
  const q = queueBox(entry.queue_name);
  if (q.entries.some((e) => e.conversation_webchat_queue_uuid === entry.conversation_webchat_queue_uuid)) return;
  q.entries.push(entry);
  renderEntries(q);
}

function renderEntries(q) {
  clear(q.list);
  for (const entry of q.entries) {
    const waited = entry.join_dts ? (Date.now() - Date.parse(entry.join_dts)) / 1000 : 0;
    q.list.append(h("li", { "data-testid": "queue-entry", "data-queue-uuid": entry.conversation_webchat_queue_uuid },
      h("div", { class: "row" },
        h("b", { class: "grow" }, entry.conversation_participant_name || "Customer"),
        h("span", { class: "muted" }, entry.participant_language_iso_code || ""),
        h("time", { class: "muted", datetime: entry.join_dts || "" }, duration(waited))),
      entry.question ? h("q", {}, entry.question) : null,
      h("div", {}, h("button", { type: "button", class: "secondary", "data-testid": "engage", onclick: () => engage(entry) }, "Engage"))));
  }
  if (!q.entries.length) q.list.append(h("li", { class: "muted", "data-testid": "queue-empty" }, "Nobody waiting"));
  const waiting = [...queues.values()].some((x) => x.entries.length);
  ui["take-next"].disabled = !waiting;
}

function engage(entry) {
  const uuid = entry.conversation_webchat_queue_uuid;
  engaging.add(uuid);
  socket.send(P.engageFrame(uuid));
  const q = queues.get(entry.queue_name);
  if (q) {
    q.entries = q.entries.filter((e) => e.conversation_webchat_queue_uuid !== uuid);
    renderEntries(q);
  }
}

function takeNext() {
  const all = [...queues.values()].flatMap((q) => q.entries);
  all.sort((a, b) => Date.parse(a.join_dts || 0) - Date.parse(b.join_dts || 0));
  if (all.length) engage(all[0]);
}

async function setAgentStatus() {
  const status = ui["agent-status"].value;
  try {
    for (const name of queues.keys()) {
      await rest("PUT", `/conversation/conversations/queues/${encodeURIComponent(name)}/status`, { agent_status: status });
    }
  } catch (err) {
    showError(ui.error, `Status not changed: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------
// Chats

function customerOf(summary) {
  return (summary.participants || []).find((p) => !isAgentArn(p.conversation_participant_arn)) || {};
}

function openChat(summary) {
  const uuid = summary.conversation_uuid;
  let chat = chats.get(uuid);
  if (chat) {
    updateHeader(chat, summary);
    if (summary.closed) markClosed(chat);
    return chat;
  }
  const customer = customerOf(summary);
  const name = customer.conversation_participant_name || "Customer";
  const badge = h("span", { class: "badge", "data-testid": "unread", hidden: true }, "0");
  const tab = h("button", {
    type: "button", role: "tab", id: `tab-${uuid}`, "aria-controls": `panel-${uuid}`, "aria-selected": "false",
    tabindex: "-1", "data-testid": "chat-tab", "data-conversation": uuid, onclick: () => activate(uuid),
  }, name, " ", badge);
  const list = h("ol", { class: "messages", "data-testid": "chat-messages", "aria-label": `Messages with ${name}`, tabindex: "0" });
  const who = h("p", { class: "muted", "data-testid": "customer-status" });
  const context = h("p", { class: "muted", "data-testid": "chat-context" }, "Page: not sent yet");
  const recording = h("p", { class: "muted", "data-testid": "chat-recording" }, "Recording: none yet");
  const panel = h("section", {
    role: "tabpanel", id: `panel-${uuid}`, "aria-labelledby": `tab-${uuid}`, hidden: true,
    "data-testid": "chat-panel", "data-conversation": uuid,
  }, h("h3", {}, name), who, context, recording, list);
  chat = {
    uuid, name, tab, badge, panel, list, who, context, recording, shown: new Map(), unread: 0, closed: false,
    lastCustomer: null, lastReadSent: null, readTimer: 0, draft: "", typingText: "", typingTimer: 0,
    rrweb: { payloads: 0, events: 0, href: "", parts: [], size: 0 },
  };
  chats.set(uuid, chat);
  ui["chat-tabs"].append(tab);
  panels.append(panel);
  ui["no-chats"].hidden = true;
  updateHeader(chat, summary);
  if (!active) activate(uuid);
  loadHistory(chat);
  if (summary.closed) markClosed(chat);
  return chat;
}

function updateHeader(chat, summary) {
  const customer = customerOf(summary);
  const bits = [customer.email, customer.language_iso_code && `language ${customer.language_iso_code}`, customer.status && `customer ${customer.status}`];
  chat.who.textContent = bits.filter(Boolean).join(" · ");
  chat.who.dataset.status = customer.status || "";
}

async function loadHistory(chat) {
  try {
    const body = await rest("GET", `/conversation/conversations/${encodeURIComponent(chat.uuid)}/messages/0?limit=200`);
    for (const m of body.conversation_messages || []) addMessage(chat, m);
  } catch (err) {
    if (err.status !== 404) showError(ui.error, `History of ${chat.name}: ${err.message}`);
  }
}

function activate(uuid) {
  const chat = chats.get(uuid);
  if (!chat) return;
  if (active && chats.has(active)) chats.get(active).draft = ui["reply-input"].value;
  active = uuid;
  for (const c of chats.values()) {
    const on = c === chat;
    c.tab.setAttribute("aria-selected", String(on));
    c.tab.tabIndex = on ? 0 : -1;
    c.panel.hidden = !on;
  }
  composer.hidden = false;
  ui["reply-input"].value = chat.draft;
  setUnread(chat, 0);
  showTyping(chat);
  setComposerEnabled(!chat.closed);
  chat.list.scrollTop = chat.list.scrollHeight;
  maybeRead(chat);
}

function setComposerEnabled(on) {
  for (const id of ["reply-input", "reply-send", "mark-read", "close-chat", "push-coupon", "push-item"]) ui[id].disabled = !on;
}

function setUnread(chat, n) {
  chat.unread = n;
  chat.badge.textContent = String(n);
  chat.badge.hidden = n === 0;
  chat.badge.setAttribute("aria-label", `${n} unread`);
}

function system(chat, text, kind) {
  const near = nearBottom(chat.list);
  chat.list.append(h("li", { "data-testid": "system", "data-author": "system", "data-kind": kind }, text));
  keepAtBottom(chat.list, near);
}

function addMessage(chat, m) {
  const uuid = m.conversation_message_uuid;
  if (!uuid) return;
  const fromAgent = isAgentArn(m.author_conversation_participant_arn);
  const mine = m.author_conversation_participant_arn === session.arn;
  let li = chat.shown.get(uuid);
  if (!li) {
    li = h("li", { "data-testid": "message", "data-author": fromAgent ? "agent" : "customer", "data-uuid": uuid, "data-epoch": m.message_epoch || 0 },
      h("span", { class: "meta" }, mine ? "You" : m.author_conversation_participant_name || "", " · ", clock(m.message_dts)),
      h("span", { class: "body", "data-testid": "message-body" }, m.body || ""),
      mine ? h("span", { class: "tick", "data-testid": "tick" }) : null);
    chat.shown.set(uuid, li);
    const near = nearBottom(chat.list);
    const epoch = Number(m.message_epoch || 0);
    const after = [...chat.list.children].find((x) => x.dataset.epoch && Number(x.dataset.epoch) > epoch);
    chat.list.insertBefore(li, after || null); // REST history and websocket replay may interleave
    keepAtBottom(chat.list, near || chat.uuid !== active);
    if (!fromAgent) {
      if (!chat.lastCustomer || epoch >= chat.lastCustomer.epoch) chat.lastCustomer = { uuid, epoch };
      if (chat.uuid !== active || document.visibilityState !== "visible") setUnread(chat, chat.unread + 1);
      chat.typingText = "";
      showTyping(chat);
      maybeRead(chat);
    }
  }
  if (mine) setTick(li, m.transport_statuses || []);
}

function setTick(li, statuses) {
  const tick = li.querySelector(".tick");
  if (!tick || tick.dataset.status === "read") return;
  const states = statuses.map((s) => s.status);
  const status = states.includes("read") ? "read" : states.includes("sent") ? "sent" : states.includes("queued") ? "queued" : "stored";
  tick.dataset.status = status;
  tick.textContent = { read: "✓✓ Read", sent: "✓ Sent", queued: "✓ Queued", stored: "✓" }[status];
}

/** A read receipt for the chat's latest customer message: at once with the button
 * (`force`), else a moment after it shows in the active chat (one for a burst). */
function maybeRead(chat, force = false) {
  if (!chat) return;
  clearTimeout(chat.readTimer);
  const send = () => {
    if (chat.closed || !chat.lastCustomer) return;
    if (!force && (chat.uuid !== active || document.visibilityState !== "visible")) return;
    if (chat.lastCustomer.uuid === chat.lastReadSent && !force) return;
    chat.lastReadSent = chat.lastCustomer.uuid;
    socket.send(P.readFrame(chat.uuid, chat.lastCustomer.uuid));
    setUnread(chat, 0);
  };
  if (force) send();
  else chat.readTimer = setTimeout(send, READ_DELAY_MS);
}

function onRead(chat, read) {
  const target = chat.shown.get(read.conversation_message_uuid);
  if (!target) return;
  const upTo = Number(target.dataset.epoch);
  for (const li of chat.shown.values()) if (Number(li.dataset.epoch) <= upTo) setTick(li, [{ status: "read" }]);
}

function showTyping(chat) {
  if (chat.uuid !== active) return;
  ui["chat-typing"].textContent = chat.typingText ? `${chat.name} is typing: “${chat.typingText.slice(-120)}”` : "";
}

function onTyping(chat, event) {
  if (event.author_conversation_participant_arn === session.arn) return;
  clearTimeout(chat.typingTimer);
  chat.typingText = event.value || "";
  showTyping(chat);
  if (chat.typingText) chat.typingTimer = setTimeout(() => { chat.typingText = ""; showTyping(chat); }, 8000);
}

function onRRWeb(chat, part) {
  const r = chat.rrweb;
  if (part.data_part === 1) {
    r.parts = [];
    r.size = 0;
  }
  r.size += (part.data || "").length;
  if (r.size > 2_000_000) return; // too big to show here; the count goes on with the next payload
  r.parts.push(part.data || "");
  if (part.data_part !== part.data_total_parts) return;
  r.payloads += 1;
  try {
    const events = JSON.parse(r.parts.join(""));
    r.events += events.length;
    const meta = events.find((e) => e.type === 4);
    if (meta && meta.data) r.href = meta.data.href;
  } catch {
    /* not JSON: counted, not shown */
  }
  r.parts = [];
  chat.recording.textContent = `Recording: ${r.payloads} payload(s), ${r.events} rrweb events${r.href ? ` of ${r.href}` : ""}`;
  chat.recording.dataset.events = String(r.events);
}

function markClosed(chat) {
  if (chat.closed) return;
  chat.closed = true;
  chat.tab.dataset.closed = "true";
  system(chat, "Conversation closed", "closed");
  if (chat.uuid === active) setComposerEnabled(false);
}

function onFrame(frame) {
  if (P.isError(frame)) {
    const error = frame.error || {};
    if (["already_engaged", "queue_entry_not_found"].includes(error.error_code)) engaging.add(error.object_id);
    return showError(ui.error, `${error.user_message || "Refused"} (${error.error_code}: ${error.developer_message || ""})`);
  }
  switch (frame.event_type) {
    case "queue status update": return onQueueStatus(frame.event_queue_status_update || {});
    case "queue new member": return onNewMember(frame.event_queue_new_member || {});
    case "new conversation": return openChat(frame.event_new_conversation || { conversation_uuid: frame.conversation_uuid });
    default: break;
  }
  const chat = chats.get(frame.conversation_uuid);
  if (!chat) return;
  if (frame.type === "message") return addMessage(chat, frame.message || {});
  switch (frame.event_type) {
    case "participant join": {
      const p = frame.event_participant_join_participant || {};
      updateHeader(chat, frame.event_participant_join || {});
      return system(chat, p.conversation_participant_arn === session.arn ? "You joined" : `${p.conversation_participant_name} joined`, "join");
    }
    case "participant left": {
      const p = frame.event_participant_left_participant || {};
      updateHeader(chat, frame.event_participant_left || {});
      return system(chat, `${p.conversation_participant_name} left`, "left");
    }
    case "participant update": return updateHeader(chat, frame.event_participant_update || {});
    case "typing": return onTyping(chat, frame.event_typing || {});
    case "read message": return onRead(chat, frame.event_read_message || {});
    case "updated message": return addMessage(chat, frame.event_updated_message || {});
    case "webchat context": {
      const c = frame.event_webchat_context || {};
      chat.context.textContent = `Page: ${c.url || "?"}${c.cart_id ? ` · cart ${c.cart_id}` : ""}`;
      chat.context.dataset.url = c.url || "";
      return undefined;
    }
    case "rrweb": return onRRWeb(chat, frame.event_rrweb || {});
    case "conversation closed": return markClosed(chat);
    default: return undefined;
  }
}

// ---------------------------------------------------------------------------
// Sending

function reply(event) {
  event.preventDefault();
  const body = ui["reply-input"].value.trim();
  const chat = chats.get(active);
  if (!body || !chat || chat.closed) return;
  sendTyping("");  // typing stops first: the customer may close as soon as the message comes
  socket.send(P.messageFrame(chat.uuid, body));
  ui["reply-input"].value = "";
  chat.draft = "";
}

function sendTyping(value) {
  clearTimeout(typing.timer);
  const chat = chats.get(active);
  if (!chat || chat.closed) return;
  if (value === typing.sent && typing.conversation === chat.uuid) return;
  typing = { sent: value, at: Date.now(), timer: 0, conversation: chat.uuid };
  socket.send(P.typingFrame(chat.uuid, value.slice(0, 2000)));
}

function onReplyInput() {
  const wait = TYPING_EVERY_MS - (Date.now() - typing.at);
  clearTimeout(typing.timer);
  if (wait <= 0 || !ui["reply-input"].value) sendTyping(ui["reply-input"].value);
  else typing.timer = setTimeout(() => sendTyping(ui["reply-input"].value), wait);
}

function withActive(fn) {
  const chat = chats.get(active);
  if (chat && !chat.closed) fn(chat);
}

function pushItem() {
  const quantity = Number(ui["item-quantity"].value) || 1;
  const price = Number(ui["item-price"].value);
  const item = { item_id: ui["item-id"].value.trim() || "ITEM", description: ui["item-description"].value.trim() || undefined, quantity };
  if (Number.isFinite(price)) {
    item.unit_cost = { value: price, currency_code: "USD" };
    item.total_cost = { value: Math.round(price * quantity * 100) / 100, currency_code: "USD" };
  }
  if (item.description === undefined) delete item.description;
  withActive((chat) => socket.send(P.itemFrame(chat.uuid, [item])));
}

// ---------------------------------------------------------------------------
// Wiring

ui["login-form"].addEventListener("submit", login);
ui.logout.addEventListener("click", logout);
ui["take-next"].addEventListener("click", takeNext);
ui["agent-status"].addEventListener("change", setAgentStatus);
ui["canned-filter"].addEventListener("input", renderCanned);
replyForm.addEventListener("submit", reply);
ui["reply-input"].addEventListener("input", onReplyInput);
ui["reply-input"].addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) reply(e);
});
ui["mark-read"].addEventListener("click", () => withActive((chat) => maybeRead(chat, true)));
ui["close-chat"].addEventListener("click", () => withActive((chat) => socket.send(P.closeFrame(chat.uuid))));
ui["push-coupon"].addEventListener("click", () => {
  const code = ui["coupon-input"].value.trim();
  if (!code) return showError(ui.error, "Enter a coupon code.");
  return withActive((chat) => socket.send(P.couponFrame(chat.uuid, code)));
});
ui["push-item"].addEventListener("click", pushItem);
ui["chat-tabs"].addEventListener("keydown", (e) => { // arrow keys move between tabs
  if (!["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) return;
  const tabs = [...chats.values()].map((c) => c.tab);
  const at = tabs.indexOf(document.activeElement);
  if (at < 0) return;
  const next = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: tabs.length - 1 }[e.key];
  const tab = tabs[(next + tabs.length) % tabs.length];
  tab.focus();
  activate(tab.dataset.conversation);
  e.preventDefault();
});
document.addEventListener("visibilitychange", () => maybeRead(chats.get(active)));
setInterval(() => { // waiting times, in place (no re-render under the pointer)
  for (const el of ui.queues.querySelectorAll("time[datetime]")) {
    const at = Date.parse(el.getAttribute("datetime"));
    if (!Number.isNaN(at)) el.textContent = duration((Date.now() - at) / 1000);
  }
}, 5000);

if (session && session.jwt) enter();
else ui["api-key"].focus();
