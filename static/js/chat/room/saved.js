/*
 * The open room's link to the drawer: a Save button on each message, "Saved" on the ones the
 * user keeps there (from the drawer's REST list, and live from drawer.changed).
 */
import { part } from "../util.js";

function markSaved(button) {
  button.textContent = "Saved";
  button.classList.add("is-saved");
  button.disabled = true;
}

function markUnsaved(button) {
  button.textContent = "Save";
  button.classList.remove("is-saved");
  button.disabled = false;
}

export function createSaved(view) {
  const { roomId, api, el } = view;
  const saved = new Map(); // drawer entry id -> message id

  function saveButton(messageId) {
    const element = el.list.querySelector(`.message[data-id="${messageId}"]`);
    return element ? part(element, "save") : null;
  }

  function isSaved(messageId) {
    for (const id of saved.values()) if (id === messageId) return true;
    return false;
  }

  function remember(entryId, messageId) {
    saved.set(entryId, messageId);
    const button = saveButton(messageId);
    if (button) markSaved(button);
  }

  async function save(message, button) {
    button.disabled = true;
    try {
      const entry = await api("POST", "/api/v1/drawer/", { message: message.id });
      saved.set(entry.id, message.id);
      markSaved(button);
      view.toast("Saved to your drawer.", { href: "/drawer/", text: "Open the drawer" });
    } catch (error) {
      button.disabled = false;
      view.toast(`Could not save: ${error.message}`);
    }
  }

  return {
    /** The Save button of a new message ``element``. */
    wire(element, message) {
      const button = part(element, "save");
      if (isSaved(message.id)) markSaved(button);
      button.addEventListener("click", () => save(message, button));
    },

    async load() {
      try {
        const page = await api("GET", `/api/v1/drawer/?room=${roomId}&limit=100`);
        for (const entry of page.results) {
          if (entry.message !== null) remember(entry.id, entry.message);
        }
      } catch (error) {
        // Only the "Saved" marks are missing; saving still works.
      }
    },

    attach(socket) {
      socket.on("drawer.changed", (frame) => {
        if (frame.action === "saved" && frame.entry.message !== null) {
          remember(frame.entry.id, frame.entry.message);
        } else if (frame.action === "removed" && saved.has(frame.id)) {
          const button = saveButton(saved.get(frame.id));
          saved.delete(frame.id);
          if (button) markUnsaved(button);
        }
      });
    },
  };
}
