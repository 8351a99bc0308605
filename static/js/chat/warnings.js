/*
 * Moderators' warnings to the user (docs/moderation.md): the ones not dismissed yet, from REST at
 * start and live from `moderation.warning.v1`, shown in a banner at the top of the page, each with
 * a Dismiss button (PATCH {dismissed: true}).
 */
import { byId } from "./util.js";

function bannerElement() {
  let box = byId("moderation-warnings");
  if (!box) {
    box = document.createElement("div");
    box.id = "moderation-warnings";
    box.className = "moderation-warnings";
    box.setAttribute("role", "alert");
    box.hidden = true;
    document.body.prepend(box);
  }
  return box;
}

export function createWarnings({ socket, api }) {
  const shown = new Map(); // warning id -> its element

  function show(warning) {
    if (warning.dismissed || shown.has(warning.id)) return;
    const box = bannerElement();
    const item = document.createElement("div");
    item.className = "moderation-warning";
    item.dataset.id = warning.id;
    const text = document.createElement("span");
    text.textContent = `A moderator warned you: ${warning.text}`;
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link-button";
    dismiss.dataset.role = "dismiss";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", () => hide(warning.id, true));
    item.append(text, " ", dismiss);
    box.append(item);
    box.hidden = false;
    shown.set(warning.id, item);
  }

  async function hide(id, tellServer) {
    const item = shown.get(id);
    if (item) item.remove();
    shown.delete(id);
    if (shown.size === 0) bannerElement().hidden = true;
    if (!tellServer) return;
    try {
      await api("PATCH", `/api/v1/account/warnings/${id}/`, { dismissed: true });
    } catch (error) {
      // Shown again on the next page load; nothing else depends on it.
    }
  }

  return {
    attach() {
      socket.on("moderation.warning.v1", (frame) => show(frame.warning));
    },

    async load() {
      try {
        const { warnings } = await api("GET", "/api/v1/account/warnings/");
        for (const warning of warnings.slice().reverse()) show(warning);
      } catch (error) {
        // No banner this time; the warnings stay listed for the next load.
      }
    },
  };
}
