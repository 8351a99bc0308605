/*
 * The outbox: messages typed here that the server has not stored yet.
 *
 * Every message goes into the outbox before it is sent, and leaves it only when its own
 * message.new arrives (stored: seq known) or when the person deletes it after a refusal. The
 * outbox lives in localStorage, one key per user, so a reload, a crash or a browser restart
 * keeps it; every tab of the user shares it. Stored shape:
 *   {"<room id>": [{client_msg_id, room, body, reply_to, attachments?, created_at, after_seq, state, code, detail}, …]}
 * in the order typed; state is "pending" or "failed" (code and detail then say why);
 * after_seq is the room's last seq known when it was typed (where a sync looks for it);
 * attachments (only when it has files) the uploaded attachment objects it sends the ids of,
 * kept whole so that a reload still draws them and re-sends the same ids.
 */
import { newId as randomId } from "./util.js";

/** The localStorage key of ``userId``'s outbox. */
export function outboxKey(userId) {
  return `chat.outbox.v1.${userId}`;
}

/**
 * The outbox of ``userId``. ``storage`` returns the Storage to keep it in (window.localStorage
 * unless a test passes another; reading it may throw when the browser blocks storage);
 * ``newId`` makes client_msg_ids.
 */
export function createOutbox({ userId, storage = () => window.localStorage, newId = randomId }) {
  return {
    key: outboxKey(userId),
    persistent: true, // false when localStorage is blocked or full: the outbox then lives in memory
    memory: {},
    listeners: [],
    notifyQueued: false,

    /** The whole outbox, read afresh (another tab may have changed it). */
    load() {
      if (this.persistent) {
        try {
          const data = JSON.parse(storage().getItem(this.key) || "{}");
          this.memory = data && typeof data === "object" && !Array.isArray(data) ? data : {};
        } catch (error) {
          if (!(error instanceof SyntaxError)) this.persistent = false; // blocked: keep the memory copy
          else this.memory = {}; // unreadable: nothing can be re-sent from it
        }
      }
      return this.memory;
    },

    save(data) {
      for (const roomId of Object.keys(data)) if (!data[roomId].length) delete data[roomId];
      this.memory = data;
      if (this.persistent) {
        try {
          if (Object.keys(data).length) storage().setItem(this.key, JSON.stringify(data));
          else storage().removeItem(this.key);
        } catch (error) {
          this.persistent = false; // quota or privacy settings: keep going in memory
        }
      }
      this.changed();
    },

    /** Tell the listeners once, after the current frame's handlers ran (so views draw once). */
    changed() {
      if (this.notifyQueued) return;
      this.notifyQueued = true;
      queueMicrotask(() => {
        this.notifyQueued = false;
        for (const listener of this.listeners) listener();
      });
    },

    onChange(listener) {
      this.listeners.push(listener);
    },

    /** The room's items (pending and failed), oldest first. */
    items(roomId) {
      const list = this.load()[roomId];
      if (!Array.isArray(list)) return [];
      return list.filter((item) => item && typeof item.client_msg_id === "string" && typeof item.body === "string");
    },

    /** The room's pending items, oldest first. */
    pending(roomId) {
      return this.items(roomId).filter((item) => item.state !== "failed");
    },

    /** Ids of the rooms with something pending. */
    rooms() {
      return Object.keys(this.load())
        .map(Number)
        .filter((roomId) => this.pending(roomId).length > 0);
    },

    get(clientMsgId) {
      for (const list of Object.values(this.load())) {
        const item = Array.isArray(list) && list.find((i) => i && i.client_msg_id === clientMsgId);
        if (item) return item;
      }
      return null;
    },

    add(roomId, body, afterSeq, replyTo = null, attachments = []) {
      const item = {
        client_msg_id: newId(),
        room: roomId,
        body,
        reply_to: replyTo, // the quote ({seq, sender, body}) of the message it replies to, or null
        created_at: new Date().toISOString(),
        after_seq: afterSeq,
        state: "pending",
      };
      if (attachments.length) item.attachments = attachments;
      const data = this.load();
      data[roomId] = [...this.items(roomId), item];
      this.save(data);
      return item;
    },

    /** Drop an item (stored, or deleted by the person); true when it was there. */
    settle(clientMsgId) {
      const data = this.load();
      for (const roomId of Object.keys(data)) {
        const list = Array.isArray(data[roomId]) ? data[roomId] : [];
        const kept = list.filter((item) => !item || item.client_msg_id !== clientMsgId);
        if (kept.length !== list.length) {
          data[roomId] = kept;
          this.save(data);
          return true;
        }
      }
      return false;
    },

    /** Change the item ``clientMsgId`` with ``changes`` and keep it; the item, or null. */
    update(clientMsgId, changes) {
      const data = this.load();
      for (const list of Object.values(data)) {
        const item = Array.isArray(list) && list.find((i) => i && i.client_msg_id === clientMsgId);
        if (!item) continue;
        Object.assign(item, changes);
        this.save(data);
        return item;
      }
      return null;
    },

    /** Mark a pending item failed: shown as not sent, never re-sent automatically. */
    fail(clientMsgId, code, detail) {
      return this.update(clientMsgId, { state: "failed", code, detail });
    },

    /** Make a failed item pending again (Retry, for refusals that may pass another time). */
    revive(clientMsgId) {
      return this.update(clientMsgId, { state: "pending", code: undefined, detail: undefined });
    },

    /** Tell the listeners when another tab of ``win`` sends, stores or deletes. */
    watch(win = window) {
      win.addEventListener("storage", (event) => {
        if (event.key === this.key || event.key === null) this.changed();
      });
    },
  };
}
