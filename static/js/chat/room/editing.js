/*
 * Changing stored messages: Edit (one's own, within the server's edit window) and Delete (one's
 * own, or anyone's for the room's owner and admins) on each message, and the Up arrow in an
 * empty composer to edit one's last message. Both go over the socket (message.edit,
 * message.delete) and through Kafka like a send; the change shows when message.updated or
 * message.deleted comes back, on every page of every member alike.
 */
import { part } from "../util.js";

let nextReq = 1;

/** Whether ``message`` (by user ``meId``) may still be edited, given the window in seconds (0: always). */
export function editable(message, meId, windowS, now = Date.now()) {
  if (message.deleted || message.sender.id !== meId) return false;
  return !windowS || now - Date.parse(message.created_at) <= windowS * 1000;
}

/** Whether the user ``meId``, of room role ``role``, may delete ``message``. */
export function deletable(message, meId, role) {
  return !message.deleted && (message.sender.id === meId || role === "owner" || role === "admin");
}

export function createEditing(view) {
  const { socket, roomId, me } = view;
  const windowS = view.editWindowS || 0;
  const waiting = new Map(); // req -> {done(), failed(detail)}

  function request(frame, callbacks) {
    const req = `change-${roomId}-${nextReq++}`;
    if (!socket.send({ ...frame, room: roomId, req })) {
      callbacks.failed("You are offline; try again when the connection is back.");
      return;
    }
    waiting.set(req, callbacks);
  }

  function close(entry) {
    const form = entry.element.querySelector(".message-editor");
    if (form) form.remove();
    part(entry.element, "body").hidden = false;
    entry.editing = false;
  }

  function open(entry) {
    if (entry.editing || !editable(entry.message, me.id, windowS)) return;
    entry.editing = true;
    const body = part(entry.element, "body");
    const form = document.createElement("form");
    form.className = "message-editor";
    const input = document.createElement("textarea");
    input.className = "message-editor-input";
    input.setAttribute("aria-label", "Edit your message");
    input.value = entry.message.body;
    input.rows = Math.min(8, entry.message.body.split("\n").length);
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "button button-small";
    save.textContent = "Save";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "link-button";
    cancel.textContent = "Cancel";
    const hint = document.createElement("span");
    hint.className = "muted message-editor-hint";
    hint.textContent = "Enter to save, Esc to cancel";
    form.append(input, save, cancel, hint);
    body.hidden = true;
    body.after(form);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);

    cancel.addEventListener("click", () => {
      close(entry);
      view.el.input.focus();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        cancel.click();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value;
      if (text === entry.message.body) return cancel.click();
      if (!text.trim()) return view.toast("A message cannot be empty; use Delete to remove it.");
      save.disabled = true;
      request(
        { type: "message.edit", seq: entry.message.seq, body: text },
        {
          done() {
            close(entry);
            view.el.input.focus();
          },
          failed(detail) {
            save.disabled = false;
            view.toast(`Could not edit: ${detail}`);
          },
        },
      );
    });
  }

  function remove(entry) {
    const own = entry.message.sender.id === me.id;
    const question = own
      ? "Delete this message for everyone?"
      : `Delete ${entry.message.sender.username}'s message for everyone?`;
    if (!window.confirm(question)) return;
    request(
      { type: "message.delete", seq: entry.message.seq },
      { done() {}, failed: (detail) => view.toast(`Could not delete: ${detail}`) },
    );
  }

  return {
    /** Show or hide the Edit and Delete buttons of ``entry`` as the user's rights are now. */
    draw(entry) {
      part(entry.element, "edit").hidden = !editable(entry.message, me.id, windowS);
      part(entry.element, "delete").hidden = !deletable(entry.message, me.id, view.members.myRole());
      if (entry.message.deleted && entry.editing) close(entry);
    },

    /** The buttons of a new message's element. */
    wire(entry) {
      part(entry.element, "edit").addEventListener("click", () => open(entry));
      part(entry.element, "delete").addEventListener("click", () => remove(entry));
      this.draw(entry);
    },

    /** Edit the newest message of one's own that can still be edited (the Up arrow). */
    editLast() {
      const entries = [...view.timeline.shown.values()].sort((a, b) => b.message.seq - a.message.seq);
      const last = entries.find((entry) => editable(entry.message, me.id, windowS));
      if (!last) return false;
      last.element.scrollIntoView({ block: "nearest" });
      open(last);
      return true;
    },

    /** Redraw every message's buttons (the user's role changed). */
    redraw() {
      for (const entry of view.timeline.shown.values()) this.draw(entry);
    },

    attach() {
      const settle = (frame, outcome) => {
        const callbacks = waiting.get(frame.req);
        if (!callbacks) return;
        waiting.delete(frame.req);
        if (outcome === "done") callbacks.done();
        else callbacks.failed(frame.detail);
      };
      socket.on("message.edit.accepted", (frame) => settle(frame, "done"));
      socket.on("message.delete.accepted", (frame) => settle(frame, "done"));
      socket.on("error", (frame) => settle(frame, "failed"));
      socket.onClose(() => {
        for (const callbacks of waiting.values()) callbacks.failed("The connection was lost; try again.");
        waiting.clear();
      });
    },
  };
}
