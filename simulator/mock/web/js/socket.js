// One websocket to the mock: JSON frames in and out, an application ping now and then
// (the server closes connections silent for its idle timeout), reconnection with backoff.

import { pingFrame } from "./protocol.js";

export class Socket {
  /**
   * url(): the URL to open (called before every attempt, so it may change).
   * handlers: onFrame(frame), onOpen(isReconnect), onStatus(state, detail), onGiveUp(event)
   */
  constructor(url, handlers, { reconnect = true, pingSeconds = 60, maxAttempts = 8 } = {}) {
    this.url = url;
    this.handlers = handlers;
    this.reconnect = reconnect;
    this.pingSeconds = pingSeconds;
    this.maxAttempts = maxAttempts;
    this.ws = null;
    this.stopped = false;
    this.attempts = 0;
    this.opened = 0;
    this.queue = [];
  }

  connect() {
    this.stopped = false;
    this.status("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      const again = this.opened > 0;
      this.opened += 1;
      this.attempts = 0;
      this.status("open");
      this.pinger = setInterval(() => this.send(pingFrame()), this.pingSeconds * 1000);
      this.handlers.onOpen && this.handlers.onOpen(again);
      for (const frame of this.queue.splice(0)) this.send(frame);
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object" && frame.type !== "ping") this.handlers.onFrame(frame);
    };
    ws.onclose = (event) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      const replaced = event.code === 1000 && /replaced/.test(event.reason);
      if (this.stopped || replaced || !this.reconnect || this.attempts >= this.maxAttempts) {
        this.status("closed", event.reason || `closed (${event.code})`);
        if (!this.stopped) this.handlers.onGiveUp && this.handlers.onGiveUp(event);
        return;
      }
      this.attempts += 1;
      const delay = Math.min(10000, 500 * 2 ** this.attempts);
      this.status("connecting", `reconnecting in ${Math.round(delay / 1000)} s`);
      this.retry = setTimeout(() => this.connect(), delay);
    };
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (this.isOpen) this.ws.send(JSON.stringify(frame));
    else if (!this.stopped && this.queue.length < 100) this.queue.push(frame);
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.pinger);
    this.queue = [];
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
    this.status("closed");
  }

  status(state, detail = "") {
    this.handlers.onStatus && this.handlers.onStatus(state, detail);
  }
}

/** URL with query parameters appended. */
export function withQuery(url, params) {
  const u = new URL(url, location.href);
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null) u.searchParams.set(key, value);
  return u.toString();
}
