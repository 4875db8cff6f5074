// The customer widget: one chat at a time, resumable after a reload (sessionStorage).
// Flow: POST /rest/v2/webchat-sim/customer_auth → websocket_url?token=JWT → "webchat start
// conversation" → queue position, agent join, messages, typing, read ticks, coupons, items.

import { api, REST } from "./api.js";
import { byTestId, clear, clock, h, keepAtBottom, loadJson, nearBottom, saveJson, showError } from "./dom.js";
import * as P from "./protocol.js";
import { Socket, withQuery } from "./socket.js";

const STORE = "webchat-sim.widget";
const TYPING_EVERY_MS = 800;
const RECORD_FLUSH_MS = 5000;
const READ_DELAY_MS = 300;

const ui = Object.fromEntries(
  [
    "connection", "error", "start-form", "name", "email", "language", "question", "start", "chat", "queue-position",
    "agent", "messages", "typing", "message-input", "send", "close", "ended", "ended-text", "new-chat",
  ].map((id) => [id, byTestId(id)]),
);
const sendForm = document.getElementById("send-form");

/** {jwt, websocket_url, arn, name, language, conversation_uuid, resume_token, cart_id, ucacid} */
let session = loadJson(sessionStorage, STORE);
let socket = null;
let pendingStart = null;
let shown = new Map(); // conversation_message_uuid -> <li>
let lastAgentMessage = null;
let lastReadSent = null;
let pageInfoSent = null; // the conversation the page context and recording went to
let typing = { sent: "", at: 0, timer: 0 };
let agentTypingTimer = 0;
let closed = false;
const recorder = new P.PageRecorder();
let rrwebIndex = 0;

const persist = () => saveJson(sessionStorage, STORE, session);
const conversation = () => (session ? session.conversation_uuid : null);

function setConnection(state, detail) {
  ui.connection.dataset.state = state;
  ui.connection.textContent = { open: "online", connecting: "connecting…", closed: "offline" }[state] + (detail ? ` (${detail})` : "");
}

function showForm(message) {
  ui["start-form"].hidden = false;
  ui.chat.hidden = true;
  ui.ended.hidden = true;
  ui.start.disabled = false;
  if (session) {
    ui.name.value = ui.name.value || session.name || "";
  }
  if (message) showError(ui.error, message);
}

function showChat() {
  ui["start-form"].hidden = true;
  ui.chat.hidden = false;
  ui.ended.hidden = true;
  sendForm.hidden = false;
  ui.close.hidden = false;
}

function resetTranscript() {
  clear(ui.messages);
  lastShown = null;
  pendingCards = [];
  if (session && session.cards) {
    session.cards = [];
    persist();
  }
  shown = new Map();
  lastAgentMessage = null;
  lastReadSent = null;
  closed = false;
  ui["queue-position"].textContent = "";
  ui["queue-position"].dataset.position = "";
  ui.agent.textContent = "";
  ui.typing.hidden = true;
}

// ---------------------------------------------------------------------------
// Starting, resuming

async function start(event) {
  event.preventDefault();
  const name = ui.name.value.trim();
  const question = ui.question.value.trim();
  const email = ui.email.value.trim() || undefined;
  const language = ui.language.value;
  if (!name) return fieldError(ui.name, "Please enter your name.");
  if (!question) return fieldError(ui.question, "Please tell us how we can help.");
  ui.start.disabled = true;
  const queue = new URLSearchParams(location.search).get("queue") || undefined;
  const frame = P.startFrame({ name, email, language, question, queue });
  resetTranscript();
  if (socket && socket.isOpen && session && session.jwt) { // a new chat on the same connection
    session.conversation_uuid = null;
    persist();
    socket.send(frame);
    return;
  }
  try {
    const body = compactBody({ name, email, language_iso_code: language });
    const auth = (await api("POST", `${REST}/webchat-sim/customer_auth`, { body })).customer_auth;
    session = {
      jwt: auth.jwt,
      websocket_url: auth.websocket_url,
      arn: auth.conversation_participant_arn,
      name,
      language,
      conversation_uuid: null,
      cart_id: P.randomHex(16).toUpperCase(),
      ucacid: P.randomHex(16),
    };
    persist();
    pendingStart = frame;
    openSocket();
  } catch (err) {
    showError(ui.error, `Could not start the chat: ${err.message}`);
    ui.start.disabled = false;
  }
}

function fieldError(input, message) {
  input.setAttribute("aria-invalid", "true");
  showError(ui.error, message);
  input.focus();
}

const compactBody = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v));

function openSocket() {
  if (socket) socket.close();
  socket = new Socket(() => withQuery(session.websocket_url, { token: session.jwt }), {
    onOpen: () => {
      if (pendingStart) {
        socket.send(pendingStart);
        pendingStart = null;
      } else if (conversation()) {
        socket.send(P.positionFrame(conversation())); // a chat that is gone answers not_a_participant
      }
    },
    onFrame,
    onStatus: setConnection,
    onGiveUp: () => {
      if (!conversation() || closed) return;
      showError(ui.error, "The connection was lost. Reload the page to try again.", 0);
    },
  });
  socket.connect();
}

function forget(message) {
  if (session) {
    session.conversation_uuid = null;
    persist();
  }
  resetTranscript();
  showForm(message);
}

// ---------------------------------------------------------------------------
// Frames from the server

function onFrame(frame) {
  if (P.isError(frame)) return onError(frame);
  const uuid = frame.conversation_uuid;
  if (frame.event_type === "new conversation") return onNewConversation(frame);
  if (uuid && uuid !== conversation()) return; // another of this customer's chats: the widget shows one
  if (frame.type === "message") return showMessage(frame.message || {});
  switch (frame.event_type) {
    case "queue position": return showPosition(frame.event_queue_position || {});
    case "participant join": return onJoin(frame.event_participant_join_participant || {});
    case "participant left": return onLeft(frame.event_participant_left_participant || {});
    case "participant update": return onUpdate(frame.event_participant_update || {});
    case "typing": return onTyping(frame.event_typing || {});
    case "read message": return onRead(frame.event_read_message || {});
    case "updated message": return showMessage(frame.event_updated_message || {});
    case "add coupon": return keepCard("coupon", frame.event_add_coupon || {});
    case "add item": return keepCard("item", frame.event_add_item || {});
    case "conversation closed": return onClosed();
    default: return undefined;
  }
}

function onError(frame) {
  const error = frame.error || {};
  const gone = ["not_a_participant", "conversation_closed"].includes(error.error_code) && error.object_id === conversation();
  if (gone && ui.messages.childElementCount === 0) return forget("Your previous chat is no longer available.");
  if (error.error_code === "resume_failed") return;
  if (error.error_code === "session_replaced") return showError(ui.error, "This chat was opened in another window.", 0);
  ui.start.disabled = false;
  showError(ui.error, error.user_message || "Something went wrong.");
}

function onNewConversation(frame) {
  const summary = frame.event_new_conversation || {};
  const uuid = frame.conversation_uuid || summary.conversation_uuid;
  if (conversation() && uuid !== conversation()) return;
  session.conversation_uuid = uuid;
  if (frame.resume_token) session.resume_token = frame.resume_token;
  persist();
  showChat();
  for (const p of summary.participants || []) {
    if (p.conversation_participant_arn !== session.arn && p.status !== "left") setAgent(p.conversation_participant_name, p.status);
  }
  if (summary.closed) return onClosed();
  showPendingCards(null);
  if (pageInfoSent !== uuid) {
    pageInfoSent = uuid;
    sendPageInfo(uuid);
  }
  ui["message-input"].focus();
}

function setAgent(name, status) {
  ui.agent.textContent = status === "disconnected" ? `${name} lost the connection; waiting for them to come back…` : `You are chatting with ${name}.`;
  ui.agent.dataset.agent = name;
}

function showPosition(position) {
  const n = position.position;
  const el = ui["queue-position"];
  el.dataset.position = String(n ?? "");
  el.dataset.available = String(Boolean(position.available));
  if (typeof n !== "number" || n < 1) {
    el.textContent = "";
    return;
  }
  const who = position.available ? "An agent is online and will be with you shortly." : "No agent is online right now; please wait.";
  el.textContent = `You are number ${n} in the queue. ${who}`;
}

function onJoin(participant) {
  if (participant.conversation_participant_arn === session.arn) return;
  setAgent(participant.conversation_participant_name);
  showPosition({ position: -1 });
  system(`${participant.conversation_participant_name} joined the chat`, "join");
}

function onLeft(participant) {
  if (participant.conversation_participant_arn === session.arn) return;
  system(`${participant.conversation_participant_name} left the chat`, "left");
  ui.agent.textContent = "";
}

function onUpdate(summary) {
  for (const p of summary.participants || []) {
    if (p.conversation_participant_arn !== session.arn && p.status !== "left") setAgent(p.conversation_participant_name, p.status);
  }
}

function system(text, kind) {
  const near = nearBottom(ui.messages);
  ui.messages.append(h("li", { "data-testid": "system", "data-author": "system", "data-kind": kind }, text));
  keepAtBottom(ui.messages, near);
}

function insertByEpoch(li, epoch) {
  const near = nearBottom(ui.messages);
  li.dataset.epoch = String(epoch || 0);
  ui.messages.append(li); // messages arrive in order; a replay after a resume carries older ones only once
  keepAtBottom(ui.messages, near);
}

function showMessage(m) {
  const uuid = m.conversation_message_uuid;
  if (!uuid) return;
  const mine = m.author_conversation_participant_arn === session.arn;
  let li = shown.get(uuid);
  if (!li) {
    const media = (m.media_urls || []).filter((u) => /^https?:\/\//.test(u));
    li = h(
      "li",
      { "data-testid": "message", "data-author": mine ? "customer" : "agent", "data-uuid": uuid },
      h("span", { class: "meta" }, mine ? "You" : m.author_conversation_participant_name || "Agent", " · ", clock(m.message_dts)),
      h("span", { class: "body", "data-testid": "message-body" }, m.body || ""),
      media.map((u) => h("a", { href: u, target: "_blank", rel: "noopener noreferrer" }, " attachment")),
      mine ? h("span", { class: "tick", "data-testid": "tick" }) : null,
    );
    shown.set(uuid, li);
    insertByEpoch(li, m.message_epoch);
    lastShown = uuid;
    showPendingCards(uuid);
  }
  if (mine) setTick(li, m.transport_statuses || []);
  else {
    lastAgentMessage = uuid;
    ui.typing.hidden = true;
    maybeRead();
  }
}

function setTick(li, statuses) {
  const tick = li.querySelector(".tick");
  if (!tick || tick.dataset.status === "read") return;
  const states = statuses.map((s) => s.status);
  const status = states.includes("read") ? "read" : states.includes("sent") ? "sent" : states.includes("queued") ? "queued" : "stored";
  tick.dataset.status = status;
  tick.textContent = { read: "✓✓ Read", sent: "✓ Sent", queued: "✓ Delivered when the agent is back", stored: "✓" }[status];
  tick.setAttribute("aria-label", { read: "read", sent: "sent", queued: "waiting", stored: "sent" }[status]);
}

function onRead(read) {
  const target = shown.get(read.conversation_message_uuid);
  if (!target) return;
  const upTo = Number(target.dataset.epoch);
  for (const li of shown.values()) {
    if (li.dataset.author === "customer" && Number(li.dataset.epoch) <= upTo) setTick(li, [{ status: "read" }]);
  }
}

let readTimer = 0;

/** A read receipt for the latest agent message, a moment after it shows (one for a burst,
 * and none for a goodbye whose "conversation closed" is right behind it). */
function maybeRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (document.visibilityState !== "visible" || !lastAgentMessage || lastAgentMessage === lastReadSent || closed) return;
    lastReadSent = lastAgentMessage;
    socket.send(P.readFrame(conversation(), lastAgentMessage));
  }, READ_DELAY_MS);
}

function onTyping(event) {
  if (event.author_conversation_participant_arn === session.arn) return;
  clearTimeout(agentTypingTimer);
  if (!event.value) {
    ui.typing.hidden = true;
    return;
  }
  ui.typing.textContent = `${event.author_conversation_participant_name || "The agent"} is typing…`;
  ui.typing.hidden = false;
  agentTypingTimer = setTimeout(() => { ui.typing.hidden = true; }, 8000);
}

// Coupons and items are not replayed by the server on a resume: the widget keeps them in
// sessionStorage, each after the message it followed, and shows them again after a reload.
const MAX_CARDS = 50;
let lastShown = null; // uuid of the latest message shown
let pendingCards = []; // kept cards of a resumed chat, not shown yet

function keepCard(kind, payload) {
  if (session) {
    session.cards = [...(session.cards || []), { kind, payload, after: lastShown }].slice(-MAX_CARDS);
    persist();
  }
  showCard({ kind, payload });
}

function showCard(card) {
  if (card.kind === "coupon") showCoupon(card.payload);
  else showItems(card.payload);
}

function showPendingCards(after) {
  const now = pendingCards.filter((c) => c.after === after);
  if (!now.length) return;
  pendingCards = pendingCards.filter((c) => c.after !== after);
  now.forEach(showCard);
}

function showCoupon(coupon) {
  const code = coupon.coupon_code || "";
  const codeEl = h("span", { class: "code", "data-testid": "coupon-code" }, code);
  const copy = h("button", { type: "button", class: "secondary", "data-testid": "copy-coupon" }, "Copy code");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(code);
      copy.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(codeEl); // no clipboard outside secure contexts: select it instead
    }
  });
  const near = nearBottom(ui.messages);
  ui.messages.append(
    h("li", { class: "card", "data-testid": "coupon-card", "data-author": "agent" },
      h("span", { class: "meta" }, `Coupon from ${coupon.agent_name || "your agent"}`), codeEl, " ", copy),
  );
  keepAtBottom(ui.messages, near);
}

function money(currency) {
  if (!currency) return "";
  if (currency.localized_formatted) return currency.localized_formatted;
  if (typeof currency.value === "number") return `${currency.value.toFixed(2)} ${currency.currency_code || ""}`.trim();
  return "";
}

function showItems(event) {
  const near = nearBottom(ui.messages);
  const items = event.items || [];
  ui.messages.append(
    h("li", { class: "card", "data-testid": "item-card", "data-author": "agent" },
      h("span", { class: "meta" }, `${event.agent_name || "Your agent"} added to your cart`),
      h("ul", {}, items.map((item) => h("li", { "data-testid": "cart-item" },
        h("b", {}, item.description || item.item_id || "item"),
        item.quantity ? ` × ${item.quantity}` : "",
        money(item.unit_cost) ? ` · ${money(item.unit_cost)}` : "",
      )))),
  );
  keepAtBottom(ui.messages, near);
}

function onClosed() {
  closed = true;
  ui.typing.hidden = true;
  sendForm.hidden = true;
  ui.close.hidden = true;
  ui.ended.hidden = false;
  ui["queue-position"].textContent = "";
  system("The chat has ended", "closed");
  if (session) {
    session.conversation_uuid = null;
    persist();
  }
  ui["new-chat"].focus();
}

// ---------------------------------------------------------------------------
// Sending

function sendMessage(event) {
  event.preventDefault();
  const body = ui["message-input"].value.trim();
  if (!body || !conversation() || closed) return;
  // Typing stops first: the message may be the conversation's last frame (an
  // autopilot closes at once on a goodbye; a typing frame after it is refused).
  sendTyping("");
  socket.send(P.messageFrame(conversation(), body, session.language));
  ui["message-input"].value = "";
  ui["message-input"].focus();
}

function sendTyping(value) {
  clearTimeout(typing.timer);
  if (!conversation() || closed || value === typing.sent) return;
  typing = { sent: value, at: Date.now(), timer: 0 };
  socket.send(P.typingFrame(conversation(), value.slice(0, 2000)));
}

function onInput() {
  const wait = TYPING_EVERY_MS - (Date.now() - typing.at);
  clearTimeout(typing.timer);
  if (wait <= 0 || !ui["message-input"].value) sendTyping(ui["message-input"].value);
  else typing.timer = setTimeout(() => sendTyping(ui["message-input"].value), wait);
}

/** The page's context and an rrweb recording of it (init now, then what the visitor does). */
function sendPageInfo(uuid) {
  socket.send(P.contextFrame(uuid, { url: location.href, cart_id: session.cart_id, ucacid: session.ucacid }));
  rrwebIndex = 0;
  for (const frame of P.rrwebFrames(uuid, "init", rrwebIndex, recorder.snapshot())) socket.send(frame);
}

setInterval(() => {
  const events = recorder.take();
  if (!events.length || !conversation() || closed || !socket || !socket.isOpen) return;
  rrwebIndex += 1;
  for (const frame of P.rrwebFrames(conversation(), "events", rrwebIndex, events)) socket.send(frame);
}, RECORD_FLUSH_MS);

// ---------------------------------------------------------------------------
// Wiring

ui["start-form"].addEventListener("submit", start);
for (const input of [ui.name, ui.question]) input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
sendForm.addEventListener("submit", sendMessage);
ui["message-input"].addEventListener("input", onInput);
ui["message-input"].addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) sendMessage(e);
});
ui.close.addEventListener("click", () => {
  if (conversation()) socket.send(P.closeFrame(conversation()));
});
ui["new-chat"].addEventListener("click", () => {
  resetTranscript();
  ui.question.value = "";
  showForm();
  ui.question.focus();
});
document.addEventListener("visibilitychange", maybeRead);

if (session && session.jwt && session.conversation_uuid) { // a reload: resume the chat
  pendingCards = [...(session.cards || [])];
  showChat();
  openSocket();
} else {
  showForm();
  ui.name.focus();
}
