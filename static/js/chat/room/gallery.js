/*
 * Attachments as the conversation shows them (docs/api.md, the message object's `attachments`):
 * images as previews (the server's thumbnail, drawn at its final size before it loads, so the
 * timeline does not jump when it arrives) that open in a lightbox, and other files as cards
 * (a type label, the name, the size, a download link). The files are served by this site to
 * members only (`url`, `thumbnail_url`); nothing here ever builds a URL of its own.
 *
 * The lightbox is the page's <dialog id="lightbox">: the full image (`url`), the message's other
 * images with the arrow keys or buttons, closed by Esc, a click beside the controls, its button
 * or the browser's Back (opening it adds a history entry); focus goes back to the preview.
 */
import { fitWithin, humanSize } from "../format.js";
import { part } from "../util.js";

export const PREVIEW_BOX = 240; // px: the largest side of an image preview in a message

/** "PDF", "ZIP", … for a file card's icon: the name's extension, or "FILE". */
export function fileLabel(name) {
  const match = /\.([A-Za-z0-9]{1,5})$/.exec(name || "");
  return match ? match[1].toUpperCase() : "FILE";
}

function imagePreview(attachment) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "attachment-image";
  button.dataset.url = attachment.url;
  button.dataset.name = attachment.name;
  button.dataset.width = attachment.width || "";
  button.dataset.height = attachment.height || "";
  button.title = attachment.name;
  const img = document.createElement("img");
  // A thumbnail the server could not make: the image itself, drawn at the same reserved size.
  img.src = attachment.thumbnail_url || attachment.url;
  img.alt = attachment.name; // the button's accessible name: what the picture is
  const size = fitWithin(attachment.width, attachment.height, PREVIEW_BOX);
  img.width = size.width;
  img.height = size.height;
  img.decoding = "async";
  img.draggable = false;
  button.append(img);
  return button;
}

function fileCard(attachment) {
  const link = document.createElement("a");
  link.className = "attachment-file";
  link.href = attachment.url;
  link.download = attachment.name;
  const size = humanSize(attachment.size);
  link.title = `Download ${attachment.name}`;
  const icon = document.createElement("span");
  icon.className = "attachment-file-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = fileLabel(attachment.name);
  const text = document.createElement("span");
  text.className = "attachment-file-text";
  const name = document.createElement("span");
  name.className = "attachment-file-name";
  name.textContent = attachment.name;
  const meta = document.createElement("span");
  meta.className = "attachment-file-size";
  meta.textContent = size;
  text.append(name, meta);
  link.append(icon, text);
  return link;
}

/** Draw ``attachments`` (a message's list; none for a deleted message) into ``container``, hidden when empty. */
export function drawAttachments(container, attachments) {
  if (!container) return;
  const list = Array.isArray(attachments) ? attachments : [];
  container.replaceChildren();
  container.hidden = list.length === 0;
  const images = list.filter((a) => a.kind === "image" && a.url);
  if (images.length) {
    const grid = document.createElement("div");
    grid.className = "attachment-images";
    grid.append(...images.map(imagePreview));
    container.append(grid);
  }
  for (const attachment of list) if (!images.includes(attachment)) container.append(fileCard(attachment));
}

/** The lightbox over ``dialog`` (the page's <dialog id="lightbox">). */
export function createLightbox(dialog) {
  const image = part(dialog, "image");
  const name = part(dialog, "name");
  const count = part(dialog, "count");
  const download = part(dialog, "download");
  const prev = part(dialog, "prev");
  const next = part(dialog, "next");
  const closeButton = part(dialog, "close");
  const box = {
    items: [], // [{url, name, width, height}] of one message
    index: 0,
    opener: null, // the preview that opened it: focus goes back there
    inHistory: false, // whether our history entry is still on top (Back closes the lightbox)
    backPending: false, // closed by other means: our history.back() has not come back yet
    pushAfterBack: false, // opened again before it did: add the entry once it has

    get isOpen() {
      return dialog.open;
    },

    show(index) {
      const count_ = this.items.length;
      this.index = (index + count_) % count_;
      const item = this.items[this.index];
      image.removeAttribute("src"); // no moment of the previous picture under the new name
      if (item.width && item.height) {
        image.width = item.width;
        image.height = item.height;
      } else {
        image.removeAttribute("width");
        image.removeAttribute("height");
      }
      image.alt = item.name;
      image.src = item.url;
      name.textContent = item.name;
      count.textContent = count_ > 1 ? `${this.index + 1} / ${count_}` : "";
      download.href = item.url;
      download.download = item.name;
      download.setAttribute("aria-label", `Download ${item.name}`);
      prev.hidden = next.hidden = count_ < 2;
    },

    /** Show ``items`` from ``index``; ``opener`` gets the focus back when it closes. */
    open(items, index, opener = null) {
      if (!items.length) return;
      this.items = items;
      this.opener = opener;
      this.show(index);
      if (!dialog.open) {
        dialog.showModal();
        this.addHistoryEntry();
      }
      closeButton.focus();
    },

    addHistoryEntry() {
      if (this.backPending) {
        this.pushAfterBack = true; // an entry pushed now would be the one that back() takes away
        return;
      }
      history.pushState({ lightbox: true }, "");
      this.inHistory = true;
    },

    close() {
      if (dialog.open) dialog.close();
    },

    /** After the dialog closed, by whatever means. */
    closed() {
      image.removeAttribute("src");
      this.pushAfterBack = false;
      if (this.inHistory) {
        this.inHistory = false;
        this.backPending = true;
        history.back(); // drop the entry we added: Back must not "close" a closed lightbox
      }
      if (this.opener && this.opener.isConnected) this.opener.focus();
      this.opener = null;
    },

    attach() {
      dialog.addEventListener("close", () => this.closed());
      closeButton.addEventListener("click", () => this.close());
      prev.addEventListener("click", () => this.show(this.index - 1));
      next.addEventListener("click", () => this.show(this.index + 1));
      dialog.addEventListener("keydown", (event) => {
        if (event.key === "ArrowLeft" && this.items.length > 1) {
          event.preventDefault();
          this.show(this.index - 1);
        } else if (event.key === "ArrowRight" && this.items.length > 1) {
          event.preventDefault();
          this.show(this.index + 1);
        }
      });
      // A click anywhere but on a control (the shade, the picture) closes it.
      dialog.addEventListener("click", (event) => {
        if (!event.target.closest("button, a")) this.close();
      });
      window.addEventListener("popstate", () => {
        if (this.backPending) {
          this.backPending = false; // our own back(), done
          if (this.pushAfterBack && dialog.open) {
            this.pushAfterBack = false;
            this.addHistoryEntry();
          }
          return;
        }
        if (!this.inHistory) return;
        this.inHistory = false; // Back took our entry away already
        this.close();
      });
      return this;
    },
  };
  return box;
}

/** The images of the message ``element`` as the lightbox shows them. */
export function messageImages(element) {
  return Array.from(element.querySelectorAll(".attachment-image"), (button) => ({
    url: button.dataset.url,
    name: button.dataset.name,
    width: Number(button.dataset.width) || 0,
    height: Number(button.dataset.height) || 0,
  }));
}

/** Open the lightbox from any preview inside ``root`` (one listener for every message, present and future). */
export function openPreviewsIn(root, lightbox) {
  root.addEventListener("click", (event) => {
    const button = event.target.closest(".attachment-image");
    if (!button || !root.contains(button)) return;
    const message = button.closest(".message, .drawer-entry") || button.parentElement;
    const buttons = Array.from(message.querySelectorAll(".attachment-image"));
    lightbox.open(messageImages(message), buttons.indexOf(button), button);
  });
}
