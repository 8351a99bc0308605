/*
 * Read positions made visible and movable in the open room: who has read a message (a popover
 * from GET /api/v1/rooms/{id}/messages/{seq}/readers/, opened from the message's unread counter
 * or its "Seen by"), and "Mark unread" on others' messages (room.mark_unread: the room shows as
 * unread from that message). After marking, the page stops reading by itself (timeline.readHeld)
 * until the user sends a message or opens the room again, or the room would be read at once.
 * The buttons are in the message template; one listener on the list serves every message.
 */
import { byId } from "../util.js";

let nextReq = 1;

/**
 * What the popover says of a message by ``senderId``: its readers but the sender (who wrote it),
 * the user ``meId`` named "you", and how many have not read it. ``readers`` is the API's list.
 */
export function readersSummary(readers, unreadCount, senderId, meId) {
  const names = readers.filter((r) => r.id !== senderId).map((r) => (r.id === meId ? `${r.username} (you)` : r.username));
  let pending;
  if (unreadCount === 0) pending = "Everyone has read it.";
  else pending = `${unreadCount} ${unreadCount === 1 ? "member has" : "members have"} not read it yet.`;
  return { names, empty: names.length === 0 ? "Nobody has read it yet." : "", pending };
}

export function createReads(view) {
  const { roomId, api, me, socket, el } = view;
  const popover = byId("readers-popover");
  const list = byId("readers-list");
  const pendingLine = byId("readers-pending");
  let shownFor = null; // the element the popover is about
  let asked = 0; // the latest request: an older answer arriving late is dropped

  function place(anchor) {
    // Below the anchor, inside the window (fixed: the timeline scrolls under it).
    const box = anchor.getBoundingClientRect();
    const width = popover.offsetWidth;
    const left = Math.max(8, Math.min(box.left, window.innerWidth - width - 8));
    const below = box.bottom + 6;
    const top = below + popover.offsetHeight > window.innerHeight - 8 ? box.top - popover.offsetHeight - 6 : below;
    popover.style.left = `${left}px`;
    popover.style.top = `${Math.max(8, top)}px`;
  }

  function close() {
    popover.hidden = true;
    shownFor = null;
  }

  async function showReaders(element, anchor) {
    if (shownFor === element) {
      close();
      return;
    }
    const seq = Number(element.dataset.seq);
    const senderId = element.dataset.sender === "" ? null : Number(element.dataset.sender);
    const request = ++asked;
    shownFor = element;
    list.replaceChildren();
    pendingLine.textContent = "Loading…";
    popover.hidden = false;
    place(anchor);
    try {
      const answer = await api("GET", `/api/v1/rooms/${roomId}/messages/${seq}/readers/`);
      if (request !== asked) return;
      const summary = readersSummary(answer.readers, answer.unread_count, senderId, me.id);
      list.replaceChildren(
        ...summary.names.map((name) => {
          const item = document.createElement("li");
          item.textContent = name;
          return item;
        })
      );
      if (summary.empty) {
        const item = document.createElement("li");
        item.className = "muted";
        item.textContent = summary.empty;
        list.append(item);
      }
      pendingLine.textContent = summary.pending;
    } catch (error) {
      if (request === asked) pendingLine.textContent = `Could not load who has read it: ${error.message}`;
    }
    if (request === asked && !popover.hidden) place(anchor);
  }

  function markUnread(element) {
    if (!view.active) return;
    const seq = Number(element.dataset.seq);
    const req = `unread-${roomId}-${nextReq++}`;
    if (!socket.send({ type: "room.mark_unread", room: roomId, seq, req })) {
      view.toast("You are offline; try again when the connection is back.");
      return;
    }
    // Held from now on: the room.read coming back must not be undone by the page reading again.
    view.timeline.readHeld = true;
    view.toast("Marked unread from here. It stays unread until you send a message or open the room again.");
  }

  return {
    attach() {
      el.list.addEventListener("click", (event) => {
        const target = event.target.closest('[data-role="unread"], [data-role="readers"], [data-role="mark-unread"]');
        const element = target ? target.closest(".message") : null;
        if (!element || !element.dataset.seq) return;
        event.stopPropagation(); // the document's click closes the popover
        if (target.dataset.role === "mark-unread") markUnread(element);
        else if (target.dataset.role === "readers" || target.textContent !== "") showReaders(element, target);
      });
      document.addEventListener("click", (event) => {
        if (!popover.hidden && !popover.contains(event.target)) close();
      });
      document.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && !popover.hidden) close();
      });
      el.timeline.addEventListener("scroll", () => {
        if (!popover.hidden) close();
      });
      socket.on("error", (frame) => {
        if (typeof frame.req !== "string" || !frame.req.startsWith(`unread-${roomId}-`)) return;
        view.timeline.readHeld = false;
        view.toast(`Could not mark it unread: ${frame.detail}`);
      });
      // Sending is reading: the server moved the read position to the user's own message.
      socket.on("message.new", (frame) => {
        const message = frame.message;
        if (message.room !== roomId || message.sender.id !== me.id || !view.timeline.readHeld) return;
        view.timeline.readHeld = false;
        view.timeline.markRead();
      });
    },
  };
}
