/*
 * Small DOM and browser helpers shared by every module of the web client. Nothing here keeps
 * state except the toast's timer.
 */

export const byId = (id) => document.getElementById(id);

/** The element of ``root`` marked ``data-role="<role>"`` (templates name their parts that way). */
export const part = (root, role) => root.querySelector(`[data-role="${role}"]`);

/** The page's data: the json_script block the server renders (null on a page without it). */
export function readConfig(id = "chat-config") {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

/** The value of cookie ``name`` in ``cookies`` (document.cookie's format), or "". */
export function cookie(name, cookies = document.cookie) {
  for (const item of cookies.split(";")) {
    const [key, ...rest] = item.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return cookie("csrftoken") || (input ? input.value : "");
}

/** A random UUID (v4), the client_msg_id of a message. */
export function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  // randomUUID exists only in secure contexts (https, localhost); a LAN address over http is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

let toastTimer = null;

/** A short note at the bottom of the page, with an optional ``{href, text}`` link; gone after 4 s. */
export function toast(text, link) {
  let box = byId("toast");
  if (!box) {
    box = document.createElement("div");
    box.id = "toast";
    box.className = "toast";
    box.setAttribute("role", "status");
    document.body.append(box);
  }
  box.replaceChildren(text);
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    box.append(" ", a);
  }
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 4000);
}
