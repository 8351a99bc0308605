/*
 * Delivery: sending the outbox's messages over the socket, and settling them.
 *
 * A room's pending items go out only once that room was synced on the current connection: the
 * sync brings the message.new of whatever was stored before the connection dropped (settling
 * it without a re-send), and sends keep their order behind it. The room the page shows syncs
 * itself and calls roomSynced(); the outbox's other rooms are synced here. A refusal that cannot
 * change (invalid, too_large, not_member, forbidden) marks the item failed, never re-sent; on
 * unavailable / rate_limited, or with no answer at all, the same client_msg_id goes again later
 * (the server stores it once).
 */

const FINAL_REFUSALS = new Set(["invalid", "too_large", "not_member", "forbidden", "unauthenticated"]);
const TRANSIENT_REFUSALS = new Set(["unavailable", "rate_limited"]);
const RESEND_BASE_MS = 1000; // after `unavailable` / `rate_limited`, doubling
const RESEND_MAX_MS = 30000;
const UNSETTLED_RESEND_MS = 20000; // sent, no answer (a broker lost it?): send again, doubling
const UNSETTLED_RESEND_MAX_MS = 300000;
const OUTBOX_SYNC_REQ = "outbox-sync";
const CHECK_SYNC_REQ = "outbox-check"; // a sync that may settle an item refused for good (its answer needs nothing)

/** A delay for the ``attempts``-th try: doubling, jittered, capped. */
export function backoff(attempts, random = Math.random) {
  const ceiling = Math.min(RESEND_MAX_MS, RESEND_BASE_MS * 2 ** attempts);
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** The wait a refusal names: a `retry_after` field (seconds), or "retry in 1.5 s" in its detail. */
export function retryAfterMs(frame) {
  const named = Number(frame.retry_after);
  if (named > 0) return named * 1000;
  const match = /retry in ([0-9.]+) ?s/i.exec(frame.detail || "");
  return match ? Number(match[1]) * 1000 : 0;
}

/** A failed item may be tried again by hand when the refusal was not one that cannot change. */
export function canRetry(item) {
  return item.state === "failed" && !FINAL_REFUSALS.has(item.code);
}

/** The seq a sync of a room starts after: early enough to bring its ``pending`` items' message.new. */
export function syncFrom(pending, knownSeq) {
  let from = Number.isInteger(knownSeq) ? knownSeq : Infinity;
  for (const item of pending) {
    if (Number.isInteger(item.after_seq) && item.after_seq >= 0) from = Math.min(from, item.after_seq);
  }
  return Number.isFinite(from) ? from : 0;
}

/**
 * Delivery of ``outbox`` over ``socket`` for the user ``me``. ``knownSeq(roomId)`` is the room's
 * last seq as far as the page knows (undefined when it does not).
 */
export function createDelivery({ socket, outbox, me, knownSeq = () => undefined }) {
  return {
    viewRoom: null, // the room the page shows and syncs itself
    synced: new Set(), // rooms synced on this connection: their items may go out
    syncing: [], // the rooms of the outbox's own sync, until its sync.done
    inFlight: new Set(), // client_msg_ids sent on this connection with no answer yet
    // room id -> the client_msg_id sent and not yet accepted. One at a time per room: a later
    // message must not reach the broker while an earlier one is refused for now (rate_limited,
    // unavailable) and will go again, or the room would store them out of the order typed.
    unaccepted: new Map(),
    retries: new Map(), // room id -> {attempts, timer}: the room's next re-send
    backoff,
    retryAfterMs,
    canRetry,

    /** Send ``body`` to ``roomId`` (whose last known seq is ``afterSeq``) through the outbox;
     * ``replyTo``: the quote of the message it replies to; ``attachments``: uploaded attachment
     * objects that go with it (by id). */
    send(roomId, body, afterSeq, replyTo = null, attachments = []) {
      const item = outbox.add(roomId, body, afterSeq, replyTo, attachments);
      this.flush(roomId); // goes now if the room is synced on an open socket, else after the next sync
      return item;
    },

    transmit(item) {
      const frame = {
        type: "message.send",
        room: item.room,
        client_msg_id: item.client_msg_id,
        body: item.body,
        req: item.client_msg_id,
      };
      if (item.reply_to) frame.reply_to = item.reply_to.seq;
      // The same ids on every re-send: the server stores the message (and attaches them) once.
      if (Array.isArray(item.attachments) && item.attachments.length) frame.attachments = item.attachments.map((a) => a.id);
      const sent = socket.send(frame);
      if (sent) this.inFlight.add(item.client_msg_id);
      return sent;
    },

    /** Send the room's next pending item not already on its way; the next goes once it is accepted. */
    flush(roomId) {
      if (!socket.isOpen || !this.synced.has(roomId) || this.unaccepted.has(roomId)) return;
      const next = outbox.pending(roomId).find((item) => !this.inFlight.has(item.client_msg_id));
      if (!next) return;
      if (this.transmit(next)) this.unaccepted.set(roomId, next.client_msg_id);
      // No message.new for a long while (a broker lost what it had accepted?): all of them again.
      const retry = this.retries.get(roomId);
      const attempts = retry ? retry.attempts : 0;
      this.schedule(roomId, Math.min(UNSETTLED_RESEND_MAX_MS, UNSETTLED_RESEND_MS * 2 ** attempts), true);
    },

    /** Flush the room after ``delay`` (``everything``: the ones on their way too) unless it settles first. */
    schedule(roomId, delay, everything = false) {
      const retry = this.retries.get(roomId) || { attempts: 0, timer: null };
      clearTimeout(retry.timer);
      retry.timer = setTimeout(() => {
        retry.attempts += 1;
        if (everything) {
          for (const item of outbox.pending(roomId)) this.inFlight.delete(item.client_msg_id);
          this.unaccepted.delete(roomId);
        }
        this.flush(roomId);
      }, delay);
      this.retries.set(roomId, retry);
    },

    /** The first sync of ``roomId`` on this connection is done: its pending items go out. */
    roomSynced(roomId) {
      if (this.synced.has(roomId)) return;
      this.synced.add(roomId);
      this.flush(roomId);
    },

    /** The seq a sync of ``roomId`` starts after: early enough to bring the pending items' message.new. */
    syncFrom(roomId, knownSeq) {
      return syncFrom(outbox.pending(roomId), knownSeq);
    },

    /** Sync the outbox's rooms other than the page's own (which syncs itself). */
    syncRooms() {
      const rooms = {};
      this.syncing = outbox.rooms().filter((roomId) => roomId !== this.viewRoom && !this.synced.has(roomId));
      for (const roomId of this.syncing) rooms[roomId] = this.syncFrom(roomId, knownSeq(roomId));
      if (this.syncing.length) socket.send({ type: "sync", rooms, req: OUTBOX_SYNC_REQ });
    },

    /** A message is stored: if it is one of ours, it leaves the outbox. */
    stored(message) {
      if (!message || message.sender.id !== me.id || !message.client_msg_id) return;
      this.inFlight.delete(message.client_msg_id);
      if (!outbox.settle(message.client_msg_id)) return;
      const retry = this.retries.get(message.room);
      if (!retry) return;
      if (outbox.pending(message.room).length === 0) {
        clearTimeout(retry.timer);
        this.retries.delete(message.room);
      } else {
        retry.attempts = 0; // it moves: wait the short time again
      }
    },

    /** The broker has the room's message: the room's next pending one may go. */
    accepted(frame) {
      if (this.unaccepted.get(frame.room) !== frame.client_msg_id) return;
      this.unaccepted.delete(frame.room);
      this.flush(frame.room);
    },

    onOpen() {
      this.synced.clear();
      this.inFlight.clear();
      this.unaccepted.clear();
      this.syncRooms();
      outbox.changed(); // "Waiting for connection…" becomes "Sending…"
    },

    onClose() {
      // Everything pending goes again after the next connection's sync.
      this.synced.clear();
      this.inFlight.clear();
      this.unaccepted.clear();
      this.syncing = [];
      for (const retry of this.retries.values()) clearTimeout(retry.timer);
      this.retries.clear();
      outbox.changed();
    },

    onError(frame) {
      if (frame.req === OUTBOX_SYNC_REQ) {
        // A room we left answers not_member (its sends will fail one by one, then sync.done
        // comes); a refused sync (rate_limited, unavailable) has no sync.done coming: ask again.
        if (frame.code !== "not_member") {
          this.syncing = [];
          setTimeout(() => socket.isOpen && this.syncRooms(), Math.max(retryAfterMs(frame), backoff(2)));
        }
        return;
      }
      const clientMsgId = frame.client_msg_id || (typeof frame.req === "string" ? frame.req : null);
      const item = clientMsgId ? outbox.get(clientMsgId) : null;
      if (!item || item.state === "failed") return;
      this.inFlight.delete(clientMsgId);
      const wasNext = this.unaccepted.get(item.room) === clientMsgId;
      if (wasNext) this.unaccepted.delete(item.room);
      if (TRANSIENT_REFUSALS.has(frame.code)) {
        // Outcome unknown or refused for now: the same id goes again later (stored once), and
        // the room's later messages wait behind it.
        const retry = this.retries.get(item.room);
        this.schedule(item.room, Math.max(retryAfterMs(frame), backoff(retry ? retry.attempts : 0)));
      } else {
        outbox.fail(clientMsgId, frame.code, frame.detail || frame.code);
        // Files are checked before the broker. Today's server lets a re-send of a stored key through
        // (persist announces the stored message again), but a server from before that, or a check
        // that read "not stored" just before persist stored it and attached its files, refuses it
        // `invalid`. A sync from before it brings its message.new, which settles it, failed or not;
        // for a send that really was invalid it brings nothing (one sync per such refusal).
        if (frame.code === "invalid" && Array.isArray(item.attachments) && item.attachments.length) {
          socket.send({ type: "sync", rooms: { [item.room]: syncFrom([item], knownSeq(item.room)) }, req: CHECK_SYNC_REQ });
        }
        if (wasNext) this.flush(item.room); // refused for good: the next one goes
      }
    },

    onSyncDone(frame) {
      if (frame.req !== OUTBOX_SYNC_REQ) return;
      const rooms = this.syncing;
      this.syncing = [];
      for (const roomId of rooms) this.roomSynced(roomId);
    },

    /** Words for an item's state, as shown next to it. */
    status(item) {
      if (item.state === "failed") return `Not sent: ${item.detail || item.code}`;
      return socket.isOpen ? "Sending…" : "Waiting for connection…";
    },

    retry(clientMsgId) {
      const item = outbox.revive(clientMsgId);
      if (item) this.flush(item.room);
    },

    /** Take the socket's frames and connection changes (after the room list's handlers). */
    attach() {
      socket.on("message.new", (frame) => this.stored(frame.message));
      socket.on("message.accepted", (frame) => this.accepted(frame));
      socket.on("error", (frame) => this.onError(frame));
      socket.on("sync.done", (frame) => this.onSyncDone(frame));
      socket.onOpen(() => this.onOpen());
      socket.onClose(() => this.onClose());
      window.addEventListener("beforeunload", (event) => {
        // Only when the outbox could not be kept: leaving would lose what is still pending.
        if (!outbox.persistent && outbox.rooms().length) event.preventDefault();
      });
    },
  };
}
