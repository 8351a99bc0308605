/*
 * The drawer page: "more" (the next page as server-rendered HTML), note and tag editing and
 * removal over REST, and live changes from the user's other tabs (drawer.changed on the socket).
 * A saved message's attachments come as plain download links and are drawn as in the room
 * (room/gallery.js: previews that open the lightbox, file cards).
 * The filters are a plain GET form and need nothing from here.
 */
import { createLightbox, drawAttachments, openPreviewsIn } from "./room/gallery.js";
import { part } from "./util.js";

/** Draw the server-rendered attachment links under ``root`` as previews and file cards. */
export function drawSavedAttachments(root) {
  for (const box of root.querySelectorAll(".drawer-attachments")) {
    const attachments = Array.from(box.querySelectorAll("a[data-id]"), (link) => ({
      id: Number(link.dataset.id),
      kind: link.dataset.kind,
      name: link.dataset.name,
      size: Number(link.dataset.size),
      width: Number(link.dataset.width) || null,
      height: Number(link.dataset.height) || null,
      url: link.getAttribute("href"),
      thumbnail_url: link.dataset.thumbnailUrl || null,
    }));
    drawAttachments(box, attachments);
  }
}

/** Dates of saved messages in the reader's locale and time zone (the server renders UTC). */
export function localiseTimes(root) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    const when = new Date(time.dateTime);
    if (!Number.isNaN(when.getTime())) {
      time.textContent = when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      time.title = when.toLocaleString();
    }
  }
}

/** The tags typed in the edit form's field: comma-separated, trimmed, empty ones dropped. */
export function parseTags(text) {
  return text
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
}

/** Make the drawer's ``list`` (the <ol> of entries) live, with ``api`` for REST and ``socket`` for changes. */
export function setupDrawer({ list, api, socket, toast }) {
  function entryElement(id) {
    return list.querySelector(`.drawer-entry[data-entry="${id}"]`);
  }

  function showNoteAndTags(item, note, tags) {
    const view = part(item, "note-view");
    part(view, "note").textContent = note;
    view.hidden = !note;
    const tagList = part(item, "tags");
    tagList.replaceChildren(
      ...tags.map((tag) => {
        const chip = document.createElement("li");
        chip.className = "tag";
        chip.textContent = tag;
        return chip;
      }),
    );
    const form = part(item, "edit-form");
    form.elements.note.value = note;
    form.elements.tags.value = tags.join(", ");
  }

  function removeEntry(item) {
    item.remove();
    if (!list.querySelector(".drawer-entry")) {
      const empty = document.createElement("li");
      empty.className = "drawer-empty";
      empty.textContent = "Nothing left here.";
      list.prepend(empty);
    }
  }

  async function loadMore(link) {
    link.setAttribute("aria-disabled", "true");
    const url = new URL(link.href);
    url.searchParams.set("partial", "1");
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(response.statusText);
      // Parsed into an inert <template>: the fragment is our own server's Django-escaped HTML.
      const fragment = document.createElement("template");
      fragment.innerHTML = await response.text();
      localiseTimes(fragment.content);
      drawSavedAttachments(fragment.content);
      link.closest("li").replaceWith(fragment.content);
    } catch (error) {
      link.removeAttribute("aria-disabled");
      toast(`Could not load more: ${error.message}`);
    }
  }

  list.addEventListener("click", async (event) => {
    const target = event.target.closest("[data-action]");
    if (!target) return;
    const item = target.closest(".drawer-entry");
    const action = target.dataset.action;
    if (action === "more") {
      event.preventDefault();
      loadMore(target);
    } else if (action === "edit") {
      const form = part(item, "edit-form");
      form.hidden = !form.hidden;
      if (!form.hidden) form.elements.note.focus();
    } else if (action === "cancel") {
      part(item, "edit-form").hidden = true;
    } else if (action === "remove") {
      target.disabled = true;
      try {
        await api("DELETE", `/api/v1/drawer/${item.dataset.entry}/`);
        removeEntry(item);
        toast("Removed from your drawer.");
      } catch (error) {
        target.disabled = false;
        toast(`Could not remove it: ${error.message}`);
      }
    }
  });

  list.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-role='edit-form']");
    if (!form) return;
    event.preventDefault();
    const item = form.closest(".drawer-entry");
    const tags = parseTags(form.elements.tags.value);
    try {
      const entry = await api("PATCH", `/api/v1/drawer/${item.dataset.entry}/`, { note: form.elements.note.value, tags });
      showNoteAndTags(item, entry.note, entry.tags);
      form.hidden = true;
      part(form, "status").textContent = "";
    } catch (error) {
      part(form, "status").textContent = error.message;
    }
  });

  socket.on("drawer.changed", (frame) => {
    if (frame.action === "removed") {
      const item = entryElement(frame.id);
      if (item) removeEntry(item);
    } else if (frame.action === "updated") {
      const item = entryElement(frame.entry.id);
      if (item) showNoteAndTags(item, frame.entry.note, frame.entry.tags);
    } else if (frame.action === "saved") {
      const notice = document.getElementById("drawer-notice");
      notice.querySelector("a").href = location.pathname + location.search;
      notice.hidden = false;
    }
  });

  localiseTimes(document);
  drawSavedAttachments(list);
  const lightbox = document.getElementById("lightbox");
  if (lightbox) openPreviewsIn(list, createLightbox(lightbox).attach());
}
