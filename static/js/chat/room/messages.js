/*
 * Drawing one message of a room: its element (cloned from the page's <template>), its body
 * (text with safe links, or "deleted"), and the grouping of consecutive messages of one sender.
 * Also a system line ("alice added bob"), and the prompt of a group room nobody else is in yet.
 */
import { mentionsMe, renderText, setAvatar, setTime } from "../format.js";
import { part } from "../util.js";
import { drawAttachments } from "./gallery.js";

export const GROUP_WITHIN_MS = 5 * 60 * 1000;

/**
 * Whether a message by ``sender`` at ``at`` (ms) continues the one before it (``previous``:
 * {sender, at}, or null): same known sender, within minutes. A deleted account ("") never does.
 */
export function continues(previous, sender, at) {
  return previous !== null && sender !== "" && previous.sender === sender && at - previous.at < GROUP_WITHIN_MS;
}

/** The element of a stored ``message`` seen by the user ``me`` ({id, username}; its buttons not wired yet). */
export function messageElement(template, message, me) {
  const meId = me.id;
  const element = template.content.firstElementChild.cloneNode(true);
  element.dataset.seq = message.seq;
  element.dataset.id = message.id;
  element.dataset.sender = message.sender.id === null ? "" : message.sender.id;
  element.dataset.at = Date.parse(message.created_at) || 0;
  element.classList.toggle("message-mine", message.sender.id === meId);
  part(element, "sender").textContent = message.sender.username;
  setAvatar(part(element, "avatar"), message.sender.username, message.sender.id ?? "deleted");
  setTime(part(element, "time"), message.created_at, true);
  drawBody(element, message, me);
  return element;
}

/** The body as it is now (edited, deleted), its mentions marked for the reader ``me`` ({id, username}). */
export function drawBody(element, message, me = null) {
  const body = part(element, "body");
  const forMe = me !== null && mentionsMe(message, me.id);
  element.classList.toggle("message-mentions-me", forMe && !message.deleted);
  if (message.deleted) {
    body.textContent = "This message was deleted.";
  } else {
    renderText(body, message.body, forMe ? me.username.toLowerCase() : null);
  }
  element.classList.toggle("message-deleted", Boolean(message.deleted));
  part(element, "edited").hidden = !message.edited_at || Boolean(message.deleted);
  part(element, "save").hidden = Boolean(message.deleted);
  drawMedia(element, message);
}

/**
 * The message's attachments (none once it is deleted, whatever a stale copy says), and its text
 * line left out when it has files and no words.
 */
export function drawMedia(element, message) {
  const attachments = message.deleted ? [] : message.attachments || [];
  const box = part(element, "attachments");
  // An edit changes only the words: a drawn list that did not change keeps its loaded images.
  const key = attachments.map((a) => a.id).join(",");
  if (box && box.dataset.drawn !== key) {
    drawAttachments(box, attachments);
    box.dataset.drawn = key;
  }
  part(element, "body").hidden = !message.deleted && !message.body && attachments.length > 0;
  element.classList.toggle("message-has-attachments", attachments.length > 0);
}

function previousMessage(element) {
  const before = element.previousElementSibling;
  return before && before.classList.contains("message") ? before : null;
}

/** A message right after one of the same sender (within minutes) drops its name and avatar. */
export function regroup(element) {
  if (!element || !element.classList.contains("message")) return;
  const before = previousMessage(element);
  const previous = before && { sender: before.dataset.sender, at: Number(before.dataset.at) };
  element.classList.toggle("message-cont", continues(previous, element.dataset.sender, Number(element.dataset.at)));
}

/** Whether ``message`` is a system line (a join, leave, removal or rename), not someone's words. */
export function isSystemLine(message) {
  return message.kind === "system";
}

/**
 * The element of a system line: its text centred and muted, with its time; no sender, avatar,
 * actions or unread counter, and not a ``.message`` (so the messages around it never group
 * across it). One a site moderator deleted stays hidden.
 */
export function systemLineElement(message) {
  const item = document.createElement("li");
  item.className = "system-line";
  item.dataset.seq = message.seq;
  item.dataset.event = message.system ? message.system.event : "";
  item.hidden = Boolean(message.deleted);
  const text = document.createElement("span");
  text.className = "system-line-text";
  text.textContent = message.body;
  const time = document.createElement("time");
  time.className = "message-time";
  setTime(time, message.created_at, true);
  item.append(text, time);
  return item;
}

/** The empty state of a group room with nobody but its owner: a prompt whose button calls ``onInvite``. */
export function makeInvitePrompt(onInvite) {
  const box = document.createElement("div");
  box.className = "invite-prompt";
  box.id = "invite-prompt";
  const text = document.createElement("p");
  text.textContent = "Invite people to start: Members → Invite";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button button-small";
  button.textContent = "Invite people";
  button.addEventListener("click", onInvite);
  box.append(text, button);
  return box;
}

/** The "New messages" line above the first message not read when the room was opened. */
export function makeDivider() {
  const item = document.createElement("li");
  item.className = "divider";
  item.id = "new-messages";
  const label = document.createElement("span");
  label.textContent = "New messages";
  item.append(label);
  return item;
}
