/*
 * Files for the next message: the Attach button (a file picker, several files), a drop anywhere
 * on the conversation, an image pasted into the composer. Each file uploads at once
 * (`POST /api/v1/rooms/{room}/attachments/`, multipart field `file`; XMLHttpRequest, which
 * reports upload progress where fetch does not) and waits in the tray above the composer: a
 * preview of an image (a blob: URL, local, until the server's thumbnail is known), a progress
 * bar, a Remove button, and the server's own words when it refuses the file (413 too large,
 * 415 a type it does not take, 429 too many). Send takes the uploaded ones: their ids go with
 * the message (`attachments` of message.send), kept in the outbox with it.
 */
import { ApiError, detailText } from "../api.js";
import { humanSize } from "../format.js";
import { byId, csrfToken } from "../util.js";
import { fileLabel } from "./gallery.js";

export const DEFAULT_PER_MESSAGE = 10; // the server's CHAT_ATTACHMENTS_PER_MESSAGE default

/** The attachment object fields a message keeps (the upload answer also has room and created_at). */
export function messageAttachment(a) {
  const { id, kind, name, content_type, size, width, height, url, thumbnail_url } = a;
  return { id, kind, name, content_type, size, width, height, url, thumbnail_url };
}

/** Words for a refused upload when the answer carries none of the server's (a proxy's 413 page, …). */
function fallbackDetail(status) {
  if (status === 413) return "This file is too large.";
  if (status === 415) return "This type of file cannot be sent.";
  if (status === 429) return "Too many uploads; wait a moment and try again.";
  if (status === 404) return "You are no longer a member of this room.";
  return "The upload failed; try again.";
}

/**
 * Upload ``file`` to room ``roomId``; ``onProgress(loaded, total)`` as it goes. Returns
 * ``{promise, abort}``: the promise gives the attachment object, or throws an ApiError
 * (code "aborted" after abort()).
 */
export function uploadAttachment({ roomId, file, onProgress = () => {} }) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", `/api/v1/rooms/${roomId}/attachments/`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch (error) {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && data && data.id !== undefined) {
        resolve(data);
        return;
      }
      const problem = (data && data.error) || {};
      const detail = detailText(problem.detail) || fallbackDetail(xhr.status);
      reject(new ApiError(xhr.status, problem.code || "unavailable", detail));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "unavailable", "The server cannot be reached; try again.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "Removed.")));
    const form = new FormData();
    // A pasted image may come without a name; the server checks the content, the name is for people.
    form.append("file", file, file.name || "pasted-image.png");
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

let nextKey = 1;

/** The tray of the room ``view`` (room/index.js): uploads for the next message. */
export function createAttachments(view) {
  const { roomId } = view;
  const tray = byId("attach-tray");
  const fileInput = byId("composer-file");
  const button = byId("composer-attach");
  const drop = byId("conversation");
  const perMessage = view.maxAttachments || DEFAULT_PER_MESSAGE;

  const a = {
    items: [], // {key, file, state: "uploading"|"done"|"failed", attachment, error, preview, upload, element}
    waiters: [],

    /** Whether files can be added now (an active room one may write in). */
    get open() {
      return view.active && !view.readOnly;
    },

    /** Uploads still on their way. */
    get busy() {
      return this.items.some((item) => item.state === "uploading");
    },

    /** The uploaded attachments, in the order added. */
    ready() {
      return this.items.filter((item) => item.state === "done").map((item) => messageAttachment(item.attachment));
    },

    /** Resolves once nothing is uploading any more. */
    settled() {
      if (!this.busy) return Promise.resolve();
      return new Promise((resolve) => this.waiters.push(resolve));
    },

    add(files) {
      if (!this.open) return;
      const list = Array.from(files || []).filter((file) => file && typeof file.size === "number");
      const room = perMessage - this.items.filter((item) => item.state !== "failed").length;
      if (list.length > room) view.toast(`At most ${perMessage} files go with one message.`);
      for (const file of list.slice(0, Math.max(0, room))) this.start(file);
    },

    start(file) {
      const item = { key: nextKey++, file, state: "uploading", attachment: null, error: "", preview: null };
      if (file.type.startsWith("image/")) item.preview = URL.createObjectURL(file);
      item.element = this.itemElement(item);
      this.items.push(item);
      tray.append(item.element);
      this.draw(item);
      item.upload = uploadAttachment({
        roomId,
        file,
        onProgress: (loaded, total) => this.progress(item, total ? loaded / total : 0),
      });
      item.upload.promise.then(
        (attachment) => {
          item.state = "done";
          item.attachment = attachment;
          this.draw(item);
        },
        (error) => {
          if (error.code === "aborted") return;
          item.state = "failed";
          item.error = error.message;
          this.draw(item);
          if (error.status === 404) view.leave("You are no longer a member of this room.");
        },
      ).finally(() => this.wake());
    },

    wake() {
      if (this.busy) return;
      for (const resolve of this.waiters.splice(0)) resolve();
    },

    itemElement(item) {
      const element = document.createElement("li");
      element.className = "attach-item";
      element.dataset.key = item.key;
      const thumb = document.createElement("span");
      thumb.className = "attach-thumb";
      thumb.setAttribute("aria-hidden", "true");
      const label = () => {
        thumb.replaceChildren(fileLabel(item.file.name));
        thumb.classList.add("attach-thumb-file");
      };
      if (item.preview) {
        const img = document.createElement("img");
        img.src = item.preview;
        img.alt = "";
        img.addEventListener("error", label); // says image, is not one: the server will say so too
        thumb.append(img);
      } else {
        label();
      }
      const text = document.createElement("span");
      text.className = "attach-text";
      const name = document.createElement("span");
      name.className = "attach-name";
      name.textContent = item.file.name || "pasted image";
      name.title = name.textContent;
      const status = document.createElement("span");
      status.className = "attach-status";
      status.dataset.role = "status";
      const bar = document.createElement("progress");
      bar.className = "attach-progress";
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", `Uploading ${name.textContent}`);
      text.append(name, bar, status);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "attach-remove";
      remove.textContent = "×";
      remove.setAttribute("aria-label", `Remove ${name.textContent}`);
      remove.title = "Remove";
      remove.addEventListener("click", () => this.remove(item));
      element.append(thumb, text, remove);
      return element;
    },

    progress(item, fraction) {
      if (item.state !== "uploading") return;
      const bar = item.element.querySelector("progress");
      bar.value = Math.round(fraction * 100);
      item.element.querySelector("[data-role=status]").textContent = `${bar.value}% of ${humanSize(item.file.size)}`;
    },

    draw(item) {
      const { element } = item;
      element.dataset.state = item.state;
      element.classList.toggle("is-failed", item.state === "failed");
      const bar = element.querySelector("progress");
      bar.hidden = item.state !== "uploading";
      const status = element.querySelector("[data-role=status]");
      status.removeAttribute("role");
      if (item.state === "uploading") {
        status.textContent = `Uploading… ${humanSize(item.file.size)}`;
      } else if (item.state === "done") {
        status.textContent = humanSize(item.attachment.size);
      } else {
        status.textContent = item.error;
        status.setAttribute("role", "alert"); // read out at once: the file will not go
      }
      tray.hidden = this.items.length === 0;
    },

    forget(item) {
      if (item.preview) URL.revokeObjectURL(item.preview);
      item.element.remove();
      this.items = this.items.filter((other) => other !== item);
      tray.hidden = this.items.length === 0;
    },

    remove(item) {
      if (item.state === "uploading") item.upload.abort();
      this.forget(item);
      this.wake();
      view.el.input.focus();
    },

    /** The message went: its files leave the tray (refused ones stay until removed, to be seen). */
    sent() {
      for (const item of this.items.filter((i) => i.state === "done")) this.forget(item);
    },

    attach() {
      button.addEventListener("click", () => {
        if (this.open) fileInput.click();
      });
      fileInput.addEventListener("change", () => {
        this.add(fileInput.files);
        fileInput.value = ""; // choosing the same file again is a change too
        view.el.input.focus();
      });
      // Paste: files on the clipboard (a screenshot, a copied image) are attached; text pastes as text.
      view.el.input.addEventListener("paste", (event) => {
        const data = event.clipboardData;
        const files = data ? Array.from(data.files || []) : [];
        if (!files.length) return;
        if (!data.types.includes("text/plain")) event.preventDefault();
        this.add(files);
      });
      // Drop: anywhere on the conversation; the shade says where files go while dragging.
      let depth = 0;
      const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
      // (Files are always taken off the browser, which would otherwise open them in place of the
      // chat; a room one cannot write in just does not keep them.)
      drop.addEventListener("dragenter", (event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        depth += 1;
        drop.classList.toggle("is-dropping", this.open);
      });
      drop.addEventListener("dragover", (event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = this.open ? "copy" : "none";
      });
      drop.addEventListener("dragleave", (event) => {
        if (!carriesFiles(event)) return;
        depth = Math.max(0, depth - 1);
        if (depth === 0) drop.classList.remove("is-dropping");
      });
      drop.addEventListener("drop", (event) => {
        depth = 0;
        drop.classList.remove("is-dropping");
        if (!carriesFiles(event)) return;
        event.preventDefault(); // never let the browser open the file in place of the chat
        this.add(event.dataTransfer.files);
        view.el.input.focus();
      });
      // A file let go of beside the conversation (the sidebar, the header) must not replace the page either.
      for (const type of ["dragover", "drop"]) {
        window.addEventListener(type, (event) => {
          if (carriesFiles(event)) event.preventDefault();
        });
      }
      window.addEventListener("pagehide", () => {
        for (const item of this.items) if (item.preview) URL.revokeObjectURL(item.preview);
      });
    },
  };
  return a;
}
