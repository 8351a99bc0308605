/*
 * The open group room's name and topic: the topic under the title (live for every member, from
 * room.updated), and for the room's owner and admins the Settings dialog (a <dialog>) that
 * renames it and changes its topic (PATCH /api/v1/rooms/{id}/); the owner also deletes the room
 * there, after a confirm (DELETE; every member's page then hears room.deleted). The title itself
 * is room/index.js's, which renames it on the same frame.
 */
import { byId } from "../util.js";

/** Which of the dialog's parts the user ``role`` may see: {manage: Settings at all, remove: Delete room}. */
export function settingsRights(kind, role) {
  const manage = kind === "group" && (role === "owner" || role === "admin");
  return { manage, remove: manage && role === "owner" };
}

/** The PATCH body for what changed between the ``room`` and the form's ``name`` and ``topic`` (null: nothing). */
export function settingsChanges(room, name, topic) {
  const changes = {};
  if (name.trim() !== room.name) changes.name = name.trim();
  if (topic.trim() !== (room.topic || "")) changes.topic = topic.trim();
  return Object.keys(changes).length ? changes : null;
}

export function createSettings(view) {
  const { roomId, room, api } = view;
  const topicLine = byId("room-topic");
  const open = byId("room-settings-open");
  const dialog = byId("room-settings");
  const form = byId("room-settings-form");
  const nameInput = byId("room-settings-name");
  const topicInput = byId("room-settings-topic");
  const status = byId("room-settings-status");
  const deleteZone = byId("room-delete-zone");

  function rights() {
    return settingsRights(room.kind, view.active ? view.members.myRole() : null);
  }

  async function save(event) {
    event.preventDefault();
    const changes = settingsChanges(room, nameInput.value, topicInput.value);
    if (!changes) {
      dialog.close();
      return;
    }
    status.textContent = "Saving…";
    try {
      await api("PATCH", `/api/v1/rooms/${roomId}/`, changes);
      // The title and topic change when room.updated comes back, on every member's page alike.
      dialog.close();
    } catch (error) {
      status.textContent = error.message;
    }
  }

  async function remove() {
    const question = `Delete "${room.name}" and all of its messages, for every member? This cannot be undone.`;
    if (!window.confirm(question)) return;
    try {
      await api("DELETE", `/api/v1/rooms/${roomId}/`);
      location.assign("/");
    } catch (error) {
      status.textContent = `Could not delete the room: ${error.message}`;
    }
  }

  return {
    /** The topic under the title: the room's as it is now ("" hides the line). */
    drawTopic() {
      if (!topicLine) return;
      topicLine.textContent = room.topic || "";
      topicLine.title = room.topic || "";
      topicLine.hidden = !room.topic;
    },

    /** Show the Settings button and the dialog's parts to whom they are for (roles change live). */
    drawRights() {
      if (!open) return;
      const { manage, remove: canRemove } = rights();
      open.hidden = !manage;
      deleteZone.hidden = !canRemove;
      if (!manage && dialog.open) dialog.close();
    },

    openDialog() {
      if (!rights().manage) return;
      nameInput.value = room.name;
      topicInput.value = room.topic || "";
      status.textContent = "";
      this.drawRights();
      dialog.showModal();
      nameInput.focus();
    },

    attach(socket) {
      this.drawTopic();
      if (open) {
        open.addEventListener("click", () => this.openDialog());
        form.addEventListener("submit", save);
        byId("room-settings-cancel").addEventListener("click", () => dialog.close());
        byId("room-delete").addEventListener("click", remove);
      }
      socket.on("room.updated", (frame) => {
        if (frame.room !== roomId || !("topic" in frame)) return;
        room.topic = frame.topic;
        this.drawTopic();
      });
      // After members.js has applied them: the user's own role, or the user out of the room.
      for (const type of ["participant.updated", "participant.removed", "room.deleted"]) {
        socket.on(type, (frame) => {
          if (frame.room === roomId) this.drawRights();
        });
      }
    },
  };
}
