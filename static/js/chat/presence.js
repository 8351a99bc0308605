/*
 * Presence (docs/protocol.md, "Presence"): who is online, away or offline. A map user id ->
 * {status, last_seen}, fed by the REST shapes (members, the direct rooms' other person) and kept
 * live by `presence.updated` frames; the parts that draw a dot listen to its changes. It also
 * tells the server this person is here (`presence.active`) when they type, click, scroll, focus
 * the page or bring it back into view: at most once per ACTIVE_EVERY_MS, or at once when the server says
 * they are away (their own presence.updated). An idle page turns "away".
 */
import { formatTime } from "./format.js";

export const ACTIVE_EVERY_MS = 30000;
const AWAY_EVERY_MS = 1000; // while the server says we are away: the frame that brings us back, not a burst
const LABELS = { online: "Online", away: "Away", offline: "Offline" };

/** The hover text of a presence: "Online", "Away, last seen 14:05", "Offline, last seen Nov 25, 14:05". */
export function presenceTitle(presence, now = new Date()) {
  if (!presence || !LABELS[presence.status]) return "";
  const seen = presence.last_seen ? formatTime(presence.last_seen, true, now) : "";
  if (presence.status === "online" || !seen) return LABELS[presence.status];
  return `${LABELS[presence.status]}, last seen ${seen}`;
}

/** Draw ``presence`` on a dot ``element``: its status (data-status, for the stylesheet) and hover text; hidden when unknown. */
export function setPresence(element, presence) {
  if (!element) return;
  const known = Boolean(presence && LABELS[presence.status]);
  element.hidden = !known;
  element.dataset.status = known ? presence.status : "";
  element.title = known ? presenceTitle(presence) : "";
  if (known) element.setAttribute("aria-label", element.title);
  else element.removeAttribute("aria-label");
}

/**
 * Who is around, kept live by ``socket``; sends `presence.active` for the user ``me`` on activity
 * in ``win`` / ``doc`` at most once per ``everyMs`` while the page is visible (at once while away).
 */
export function createPresence({ socket, me, win = window, doc = document, everyMs = ACTIVE_EVERY_MS }) {
  const states = new Map();
  const listeners = [];
  let lastSent = -Infinity;
  return {
    /** What is known of ``userId`` (null: nothing, or someone the server does not show). */
    get(userId) {
      return states.get(userId) || null;
    },

    /** Take ``presence`` ({status, last_seen}) of ``userId`` from a REST answer or a frame; listeners hear of a change. */
    set(userId, presence) {
      if (!presence || userId == null) return;
      const known = states.get(userId);
      if (known && known.status === presence.status && known.last_seen === presence.last_seen) return;
      const state = { status: presence.status, last_seen: presence.last_seen || null };
      states.set(userId, state);
      for (const listener of listeners) listener(userId, state);
    },

    /** ``listener(userId, presence)`` runs on every change. */
    onChange(listener) {
      listeners.push(listener);
    },

    /** Tell the server the person is here: at most once per everyMs unless ``now`` or away; never from a hidden page. */
    active(now = false) {
      if (doc.visibilityState === "hidden") return;
      const at = Date.now();
      const mine = states.get(me.id);
      const away = Boolean(mine && mine.status === "away");
      if (!now && at - lastSent < (away ? AWAY_EVERY_MS : everyMs)) return;
      if (socket.send({ type: "presence.active" })) lastSent = at;
    },

    attach() {
      socket.on("presence.updated", (frame) => this.set(frame.user.id, frame));
      const onActivity = () => this.active();
      for (const type of ["keydown", "pointerdown", "wheel", "focus"]) win.addEventListener(type, onActivity, { passive: true });
      doc.addEventListener("visibilitychange", () => {
        if (doc.visibilityState === "visible") this.active(true); // back from another tab: at once
      });
      // A new connection: the server counts it online; it learns of an open, visible page's person at once.
      socket.onOpen(() => this.active(true));
    },
  };
}
