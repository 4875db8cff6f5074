// Small DOM helpers. Text always goes in as text nodes (never innerHTML): frames carry
// whatever other clients typed.

/** h("li", {class: "x", "data-testid": "message", onclick: fn}, "text", child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
export const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** "14:05" from an ISO date-time or epoch milliseconds. */
export function clock(when) {
  if (when === undefined || when === null) return "";
  const date = new Date(when);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** "1m 05s" from seconds. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Show a message in a role="alert" element; hide it again after a while. */
export function showError(el, text, ms = 8000) {
  el.textContent = text;
  el.hidden = !text;
  clearTimeout(el._timer);
  if (text && ms) el._timer = setTimeout(() => { el.hidden = true; }, ms);
}

/** Scroll a message list to its end if the reader was near it already. */
export function keepAtBottom(list, wasNear) {
  if (wasNear) list.scrollTop = list.scrollHeight;
}

export function nearBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 60;
}

export function loadJson(storage, key) {
  try {
    const text = storage.getItem(key);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

export function saveJson(storage, key, value) {
  try {
    if (value === null || value === undefined) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: the page still works, it just cannot resume */
  }
}
