/*
 * Writing in the open room: the composer (Enter sends, Shift+Enter a new line, typing frames),
 * and the outbox's items of this room drawn below the stored messages as pending or failed,
 * with Retry / Delete, until their own message.new replaces them. The files for the next message
 * are attachments.js's tray: Send waits for their uploads, then sends the text (which may be
 * empty) with their ids.
 */
import { renderText, setAvatar, setTime } from "../format.js";
import { byId, part } from "../util.js";
import { drawMedia } from "./messages.js";
import { drawQuote } from "./replies.js";

const TYPING_SEND_EVERY_MS = 2000;

/** The UTF-8 size of ``body`` in bytes (the server's limit counts those). */
export function byteLength(body) {
  return new TextEncoder().encode(body).length;
}

export function createComposer(view) {
  const { roomId, me, socket, outbox, delivery, el } = view;
  const { input, pendingList, template } = el;
  const pendingShown = new Map(); // client_msg_id -> element of an outbox item
  let lastTypingSent = 0;
  let waitingForUploads = false; // Send was pressed while files were still uploading

  function pendingElement(item) {
    const element = template.content.firstElementChild.cloneNode(true);
    element.classList.add("message-mine", "message-pending");
    element.dataset.clientMsgId = item.client_msg_id;
    part(element, "sender").textContent = me.username;
    setAvatar(part(element, "avatar"), me.username, me.id);
    setTime(part(element, "time"), item.created_at, true);
    renderText(part(element, "body"), item.body);
    drawQuote(part(element, "quote"), item.reply_to || null);
    drawMedia(element, item);
    part(element, "save").hidden = true;
    part(element, "edited").hidden = true;
    part(element, "retry").addEventListener("click", () => delivery.retry(item.client_msg_id));
    part(element, "discard").addEventListener("click", () => outbox.settle(item.client_msg_id));
    return element;
  }

  function showPendingState(element, item) {
    const failed = item.state === "failed";
    element.dataset.state = failed ? "failed" : "pending";
    element.classList.toggle("message-failed", failed);
    part(element, "status").textContent = delivery.status(item);
    part(element, "retry").hidden = !delivery.canRetry(item);
    part(element, "discard").hidden = !failed;
  }

  function resize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
  }

  return {
    /** Make the pending list match the outbox (this tab's sends, other tabs', a reload's). */
    drawPending() {
      const items = outbox.items(roomId);
      const ids = new Set(items.map((item) => item.client_msg_id));
      for (const [clientMsgId, element] of pendingShown) {
        // Stored, but waiting behind a gap to be shown: keep the pending one until then.
        if (ids.has(clientMsgId) || view.timeline.isArriving(clientMsgId)) continue;
        element.remove();
        pendingShown.delete(clientMsgId);
      }
      const stick = view.timeline.nearBottom();
      let added = false;
      for (const item of items) {
        let element = pendingShown.get(item.client_msg_id);
        if (!element) {
          element = pendingElement(item);
          pendingShown.set(item.client_msg_id, element);
          added = true;
        }
        if (pendingList.lastElementChild !== element) pendingList.append(element); // the order typed
        showPendingState(element, item);
      }
      if (added && stick) view.timeline.scrollToBottom();
    },

    /** The stored message replaces its pending copy. */
    dropPending(message) {
      if (message.sender.id !== me.id || !message.client_msg_id) return;
      const element = pendingShown.get(message.client_msg_id);
      if (!element) return;
      element.remove();
      pendingShown.delete(message.client_msg_id);
    },

    /** Send ``body`` with ``attachments`` (attachment objects, uploaded to this room). */
    send(body, attachments = []) {
      delivery.send(roomId, body, view.timeline.lastSeq, view.replies.take(), attachments);
      this.drawPending();
      view.timeline.scrollToBottom();
    },

    /** Send what the composer holds: its text and the tray's uploaded files (either may be missing). */
    async submit() {
      if (!view.active || view.readOnly || waitingForUploads) return;
      const files = view.attachments;
      if (files.busy) {
        if (!input.value.trim() && !files.items.length) return;
        // The message goes once the files are up; typing meanwhile still goes with it.
        waitingForUploads = true;
        view.toast("Sending once the files have uploaded…");
        await files.settled();
        waitingForUploads = false;
        if (!view.active || view.readOnly) return;
      }
      const body = input.value;
      const attachments = files.ready();
      if (!body.trim() && !attachments.length) return;
      const size = byteLength(body);
      if (size > view.maxBytes) {
        view.toast(`This message is too long (${size} bytes; the limit is ${view.maxBytes}).`);
        return;
      }
      input.value = "";
      resize();
      files.sent();
      // Blank text beside files is no text: the server refuses a blank body but takes an empty one.
      this.send(body.trim() ? body : "", attachments);
    },

    attach() {
      outbox.onChange(() => this.drawPending());
      const form = byId("composer");
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.submit();
      });
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          form.requestSubmit();
        } else if (event.key === "ArrowUp" && input.value === "" && view.editing.editLast()) {
          event.preventDefault(); // as in Slack: the Up arrow in an empty composer edits one's last message
        }
      });
      input.addEventListener("input", () => {
        resize();
        const now = Date.now();
        if (input.value.trim() && now - lastTypingSent > TYPING_SEND_EVERY_MS && socket.send({ type: "typing", room: roomId })) {
          lastTypingSent = now;
        }
      });
    },
  };
}
