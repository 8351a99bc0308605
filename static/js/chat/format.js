/*
 * How things read on screen: room titles, times, avatars, message text with links, unread
 * badges. Pure functions of their arguments, except setTime, setAvatar and renderText, which
 * write the result into the element they are given.
 */

/** A room's title: a group's name, or the other person's username in a direct room. */
export function roomTitle(room) {
  if (room.kind === "direct") return (room.other_user && room.other_user.username) || "deleted user";
  return room.name;
}

/**
 * The key of ``room``'s avatar colour (setAvatar): a group's id, or in a direct room the other
 * person's user id, as their messages and member entry use, so they wear one colour everywhere
 * ("deleted" once their account is gone, as their messages then say).
 */
export function roomAvatarKey(room) {
  if (room.kind === "direct") return (room.other_user && room.other_user.id) ?? "deleted";
  return room.id;
}

/** Messages the user has not read in ``room`` (a room-list entry: last_seq, last_read_seq). */
export function unreadCount(room) {
  return Math.max(0, room.last_seq - room.last_read_seq);
}

/** What an unread badge says: the count, capped at "99+". */
export function badgeText(count) {
  return count > 99 ? "99+" : String(count);
}

const timeFormat = { hour: "numeric", minute: "2-digit" };
const dayFormat = { month: "short", day: "numeric" };

/** "14:05" today, "Nov 25" (rooms) or "Nov 25, 14:05" (messages) on other days ("" if not a time). */
export function formatTime(iso, withTime, now = new Date()) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  if (date.toDateString() === now.toDateString()) return date.toLocaleTimeString([], timeFormat);
  const day = date.toLocaleDateString([], dayFormat);
  return withTime ? `${day}, ${date.toLocaleTimeString([], timeFormat)}` : day;
}

/** Fill a <time> element: machine value, the short form, the full local time on hover. */
export function setTime(element, iso, withTime) {
  element.dateTime = iso || "";
  element.textContent = formatTime(iso, withTime);
  element.title = iso ? new Date(iso).toLocaleString() : "";
}

/** The hue (0-359) of ``key``'s avatar: stable per key, far apart for neighbouring keys. */
export function avatarHue(key) {
  let hash = 0;
  for (const ch of String(key)) hash = (hash * 31 + ch.codePointAt(0)) % 997;
  // Steps of the golden angle: neighbouring keys get clearly different colours.
  return Math.round((hash * 137.508) % 360);
}

export function setAvatar(element, name, key) {
  element.textContent = (name || "?").charAt(0).toUpperCase();
  element.style.setProperty("--avatar-hue", String(avatarHue(key)));
}

/** "alice is typing…" and its plural forms, "" when nobody is. */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/** A URL found in text without the punctuation that ends the sentence around it. */
export function trimUrl(raw) {
  // Trailing punctuation ends the sentence, not the link; a ")" closing a "(" in the URL stays.
  let url = raw;
  while (/[.,;:!?'")\]}]$/.test(url)) {
    if (url.endsWith(")") && (url.match(/\(/g) || []).length >= (url.match(/\)/g) || []).length) break;
    url = url.slice(0, -1);
  }
  return url;
}

// "@name" where a name starts, as the server finds mentions (chat_messages.services._MENTION).
// (\p{L}\p{N}_ is Python's \w: a Hangul or accented name is a name on both sides.)
const MENTION_PATTERN = /(?<![\p{L}\p{N}_@])@([\p{L}\p{N}_.+-]*[\p{L}\p{N}_])/gu;

/** Append ``text`` to ``element`` with each @mention in a span (``mention-me`` for ``me``'s name or @room). */
function appendMentions(element, text, me) {
  let last = 0;
  for (const match of text.matchAll(MENTION_PATTERN)) {
    element.append(text.slice(last, match.index));
    const span = document.createElement("span");
    span.className = "mention";
    const name = match[1].toLowerCase();
    if (me && (name === me || name === "room")) span.classList.add("mention-me");
    span.textContent = match[0];
    element.append(span);
    last = match.index + match[0].length;
  }
  element.append(text.slice(last));
}

/**
 * Show ``text`` in ``element`` as text, with http(s) URLs as safe links and @mentions marked
 * (``me``: the reader's lower-cased username when the message mentions them). Never parses HTML.
 */
export function renderText(element, text, me = null) {
  element.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const raw = trimUrl(match[0]);
    let url;
    try {
      url = new URL(raw);
    } catch (error) {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    appendMentions(element, text.slice(last, match.index), me);
    const link = document.createElement("a");
    link.href = url.href;
    link.textContent = raw;
    link.rel = "noopener noreferrer nofollow";
    link.target = "_blank";
    element.append(link);
    last = match.index + raw.length;
  }
  appendMentions(element, text.slice(last), me);
}

/** Whether ``message`` (a message object) mentions the user ``meId`` (the server's list). */
export function mentionsMe(message, meId) {
  return Array.isArray(message.mentions) && message.mentions.includes(meId);
}

/** A file size for people: "812 B", "14.2 KB", "3.1 MB" (binary units, as file managers show them). */
export function humanSize(bytes) {
  const size = Number(bytes);
  if (!Number.isFinite(size) || size < 0) return "";
  if (size < 1024) return `${size} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/**
 * The size to draw an image of ``width`` x ``height`` at, within ``box`` x ``box`` pixels and never
 * larger than itself: set before it loads, so the conversation does not jump when it arrives.
 * Unknown dimensions get the whole box.
 */
export function fitWithin(width, height, box) {
  if (!(width > 0 && height > 0)) return { width: box, height: box };
  const scale = Math.min(1, box / width, box / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** What a list shows for ``message``: its text, or for a message of attachments only their names. */
export function messagePreview(message) {
  if (message.body || !Array.isArray(message.attachments) || message.attachments.length === 0) return message.body;
  return `📎 ${message.attachments.map((a) => a.name).join(", ")}`;
}
