/*
 * Browser notifications (the Notification API) while the page is hidden: for messages that
 * mention the user and for direct messages; none for one's own, none from a muted room (its
 * mentions still count in the sidebar). Browsers ask for the permission only after a click, so
 * a button in the sidebar asks for it while it is undecided.
 */
import { mentionsMe, messagePreview, roomTitle } from "./format.js";

const BODY_CHARS = 200;

/** Whether ``message`` (just stored, seen by ``meId``) calls for a notification, given its ``room`` (a room-list entry or undefined). */
export function notifies(message, meId, room) {
  if (message.sender.id === meId || message.deleted) return false;
  if (room && room.muted) return false;
  return (room && room.kind === "direct") || mentionsMe(message, meId);
}

export function createNotifier({ socket, roomList, me, button }) {
  const supported = typeof window.Notification === "function";
  const shown = new Set(); // "room:seq": a sync after a reconnection replays messages

  function refreshButton() {
    if (button) button.hidden = !supported || window.Notification.permission !== "default";
  }

  return {
    attach() {
      refreshButton();
      if (button) {
        button.addEventListener("click", async () => {
          await window.Notification.requestPermission();
          refreshButton();
        });
      }
      socket.on("message.new", async (frame) => {
        const message = frame.message;
        if (!supported || window.Notification.permission !== "granted" || document.visibilityState === "visible") return;
        // A room the list does not know yet (a first direct message): what kind is it, is it muted?
        if (!roomList.rooms.has(message.room)) await roomList.refreshOne(message.room);
        const room = roomList.rooms.get(message.room);
        const key = `${message.room}:${message.seq}`;
        if (!notifies(message, me.id, room) || shown.has(key)) return;
        shown.add(key);
        const where = room && room.kind !== "direct" ? ` in ${roomTitle(room)}` : "";
        const note = new window.Notification(`${message.sender.username}${where}`, {
          body: messagePreview(message).slice(0, BODY_CHARS), // a photo alone still says what came
          tag: `room-${message.room}`,
        });
        note.onclick = () => {
          window.focus();
          window.location.assign(`/rooms/${message.room}/?at=${message.seq}`);
        };
      });
    },
  };
}
