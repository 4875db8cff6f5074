// Frames of the webchat-sim dialect (docs/protocol.md), built the way the server
// validates them: snake_case keys, no nulls, absent optional fields left out.

export function uuid4() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16)); // works outside secure contexts too
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (v) => v.toString(16).padStart(2, "0")).join("");
}

const ev = (eventType, conversationUuid, payload) => {
  const frame = { type: "event", event_type: eventType };
  if (conversationUuid) frame.conversation_uuid = conversationUuid;
  return Object.assign(frame, payload);
};

const compact = (object) => Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== null && v !== ""));

/** Customer: start a chat. */
export function startFrame({ name, email, language, question, queue }) {
  return ev("webchat start conversation", null, {
    event_engage_customer: compact({
      conversation_participant_name: name,
      email,
      participant_language_iso_code: language,
      question,
      queue_name: queue,
    }),
  });
}

export function messageFrame(conversationUuid, body, language) {
  return {
    type: "message",
    conversation_uuid: conversationUuid,
    message: compact({ body, client_message_id: uuid4(), language_iso_code: language }),
  };
}

export const typingFrame = (c, value) => ev("typing", c, { event_typing: { value } });
export const readFrame = (c, messageUuid) => ev("read message", c, { event_read_message: { conversation_message_uuid: messageUuid } });
export const closeFrame = (c) => ev("conversation closed", c, {});
export const positionFrame = (c) => ({ type: "check queue position", conversation_uuid: c });
export const pingFrame = () => ({ type: "ping" });
export const engageFrame = (queueUuid) => ev("engage customer", null, { event_engage_customer: { conversation_webchat_queue_uuid: queueUuid } });
export const couponFrame = (c, code) => ev("add coupon", c, { event_add_coupon: { coupon_code: code } });
export const itemFrame = (c, items) => ev("add item", c, { event_add_item: { items } });
export const contextFrame = (c, context) => ev("webchat context", c, { event_webchat_context: compact(context) });

// ---------------------------------------------------------------------------
// SHA-256 (hex) of a string's UTF-8 bytes, synchronous and in plain JS:
// crypto.subtle exists only in secure contexts, and the mock may be reached over http.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

export function sha256Hex(text) {
  const bytes = new TextEncoder().encode(text);
  const length = bytes.length;
  const padded = new Uint8Array((((length + 9 + 63) / 64) | 0) * 64);
  padded.set(bytes);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
  view.setUint32(padded.length - 4, (length << 3) >>> 0);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Uint32Array(64);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15], b = W[i - 2];
      const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
      const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  return Array.from(H, (v) => v.toString(16).padStart(8, "0")).join("");
}

// ---------------------------------------------------------------------------
// rrweb: a recording is one JSON array of rrweb events; it is cut into parts of at
// most `chunkBytes` UTF-8 bytes (never inside a code point), each with the SHA-256
// of its data, the last (and every) part with the SHA-256 of the whole recording.

export const RRWEB_CHUNK_BYTES = 16000; // frames stay well below the server's 64 KiB limit

function cut(data, chunkBytes) {
  const encoder = new TextEncoder();
  const parts = [];
  let current = "";
  let size = 0;
  for (const ch of data) { // iterates code points
    const n = ch.length === 1 && ch.charCodeAt(0) < 0x80 ? 1 : encoder.encode(ch).length;
    if (size + n > chunkBytes && current) {
      parts.push(current);
      current = "";
      size = 0;
    }
    current += ch;
    size += n;
  }
  parts.push(current);
  return parts;
}

/** The `rrweb` frames carrying one recording (`type` "init" or "events"). */
export function rrwebFrames(conversationUuid, type, eventIndex, events, chunkBytes = RRWEB_CHUNK_BYTES) {
  const data = JSON.stringify(events);
  const parts = cut(data, chunkBytes);
  const total = sha256Hex(data);
  return parts.map((part, i) =>
    ev("rrweb", conversationUuid, {
      event_rrweb: {
        type,
        event_index: eventIndex,
        data: part,
        data_part: i + 1,
        data_total_parts: parts.length,
        data_sha256: sha256Hex(part),
        data_total_sha256: total,
      },
    }),
  );
}

// rrweb event and node types (rrweb/packages/types)
const FULL_SNAPSHOT = 2, INCREMENTAL = 3, META = 4;
const MOUSE_INTERACTION = 2, SCROLL = 3, INPUT = 5, CLICK = 2;

/** Records the page: a Meta + FullSnapshot `init`, then clicks, inputs (masked) and scrolls. */
export class PageRecorder {
  constructor(root = document) {
    this.root = root;
    this.ids = new WeakMap();
    this.nextId = 1;
    this.pending = [];
    this.listening = false;
  }

  idOf(node) {
    for (let n = node; n; n = n.parentNode) if (this.ids.has(n)) return this.ids.get(n);
    return 1;
  }

  serialize(node) {
    const id = this.nextId++;
    this.ids.set(node, id);
    switch (node.nodeType) {
      case Node.DOCUMENT_NODE:
        return { type: 0, childNodes: Array.from(node.childNodes, (c) => this.serialize(c)), id };
      case Node.DOCUMENT_TYPE_NODE:
        return { type: 1, name: node.name, publicId: node.publicId, systemId: node.systemId, id };
      case Node.ELEMENT_NODE: {
        const tagName = node.tagName.toLowerCase();
        const attributes = {};
        for (const attr of node.attributes) if (!attr.name.startsWith("on")) attributes[attr.name] = attr.value;
        if ("value" in node && (tagName === "input" || tagName === "textarea")) attributes.value = "*".repeat(node.value.length);
        const childNodes = tagName === "script" ? [] : Array.from(node.childNodes, (c) => this.serialize(c));
        return { type: 2, tagName, attributes, childNodes, id };
      }
      case Node.TEXT_NODE:
        return { type: 3, textContent: node.parentNode && node.parentNode.nodeName === "SCRIPT" ? "" : node.textContent, id };
      case Node.COMMENT_NODE:
        return { type: 5, textContent: node.textContent, id };
      default:
        return { type: 3, textContent: "", id };
    }
  }

  /** The `init` recording: Meta, then the FullSnapshot of the document as it is now. */
  snapshot() {
    this.ids = new WeakMap();
    this.nextId = 1;
    const now = Date.now();
    const meta = { type: META, data: { href: location.href, width: innerWidth, height: innerHeight }, timestamp: now };
    const node = this.serialize(this.root);
    const full = { type: FULL_SNAPSHOT, data: { node, initialOffset: { left: scrollX, top: scrollY } }, timestamp: now + 1 };
    this.listen();
    this.pending = [];
    return [meta, full];
  }

  listen() {
    if (this.listening) return;
    this.listening = true;
    const push = (data) => this.pending.length < 500 && this.pending.push({ type: INCREMENTAL, data, timestamp: Date.now() });
    addEventListener("click", (e) => push({ source: MOUSE_INTERACTION, type: CLICK, id: this.idOf(e.target), x: e.clientX, y: e.clientY }), true);
    addEventListener("input", (e) => {
      const value = e.target && "value" in e.target ? String(e.target.value) : "";
      push({ source: INPUT, text: "*".repeat(value.length), isChecked: false, id: this.idOf(e.target) });
    }, true);
    addEventListener("scroll", () => push({ source: SCROLL, id: 1, x: scrollX, y: scrollY }), { passive: true });
  }

  /** The events recorded since the last call (empty: nothing happened). */
  take() {
    const events = this.pending;
    this.pending = [];
    return events;
  }
}

/** Error frames carry `error` and no `event_type` (docs/protocol.md, section 5). */
export const isError = (frame) => frame.type === "event" && !frame.event_type && frame.error;
