/*
 * Reporting a message to the site's moderators: a Report button on others' messages opens the
 * page's report dialog (a reason and an optional note), which posts to
 * /api/v1/rooms/{room}/messages/{seq}/report/ (reporting it again changes nothing).
 */
import { byId, part } from "../util.js";

export function createReport(view) {
  const { roomId, api, me } = view;
  const dialog = byId("report-dialog");
  let current = null; // the message being reported

  async function submit(event) {
    event.preventDefault();
    if (current === null) return;
    const form = dialog.querySelector("form");
    const reason = form.elements.reason.value;
    const note = form.elements.note.value.trim();
    const message = current;
    dialog.close();
    try {
      await api("POST", `/api/v1/rooms/${roomId}/messages/${message.seq}/report/`, { reason, note });
      view.toast("Reported to the moderators. Thank you.");
    } catch (error) {
      view.toast(`Could not report it: ${error.message}`);
    }
  }

  return {
    /** The Report button of a message ``element`` (hidden on one's own and deleted messages). */
    wire(element, message) {
      const button = part(element, "report");
      if (!button) return;
      button.hidden = !dialog || message.deleted || message.sender.id === me.id || message.sender.id === null;
      button.addEventListener("click", () => {
        current = message;
        dialog.querySelector("form").reset();
        dialog.showModal();
      });
    },

    attach() {
      if (!dialog) return;
      dialog.querySelector("form").addEventListener("submit", submit);
      part(dialog, "cancel").addEventListener("click", () => dialog.close());
      dialog.addEventListener("close", () => {
        current = null;
      });
    },
  };
}
