/*
 * The open room's messages, in seq order, each once: a message.new whose seq is already shown
 * is dropped, one that skips a seq waits while `sync` fetches what is missing (paging over REST
 * when the server answers `sync.gap`). Also older history (the "load older" button and scrolling
 * up), the "New messages" divider, the user's own read position (room.read when the latest
 * message is on screen), and going to one message (a link to it, a quote, a search result).
 *
 * Opened at a message far up (?at=seq), the page holds the history around it; the first sync
 * brings everything after it (a sync, then REST pages on `sync.gap`), so the shown messages stay
 * one unbroken run up to the newest and live ones append as usual. Until the user goes to the
 * bottom themselves (Newer messages ↓, sending, scrolling there), nothing that arrives scrolls
 * the message they came for away.
 */
import { isSystemLine, makeDivider, makeInvitePrompt, messageElement, regroup, systemLineElement } from "./messages.js";

const NEAR_BOTTOM_PX = 48;

/**
 * The timeline of ``view`` (see room/index.js), starting from the page's ``state``
 * ({messages, last_seq, last_read_seq}).
 */
export function createTimeline(view, state) {
  const { roomId, socket, api, me, delivery, el } = view;
  const { timeline, list, jumpLatest, loadOlderButton } = el;

  const t = {
    shown: new Map(), // seq -> {message, element}
    ahead: new Map(), // seq -> message that arrived past a gap, waiting for sync
    // The read position when the room was opened: the "new messages" divider stays there.
    enteredAt: state.last_read_seq,
    hadUnread: state.last_seq > state.last_read_seq,
    divider: null,
    firstSeq: null, // the oldest message shown
    lastSeq: state.last_seq, // every message up to this one is shown (or older than firstSeq)
    readSent: state.last_read_seq,
    readHeld: false, // "Mark unread" (reads.js): read nothing by itself until the user sends
    hasOlder: false,
    loadingOlder: false,
    syncing: false,
    syncAgain: false,
    gapFilling: false,
    focused: null, // the element of the message gone to (highlighted)
    holdScroll: false, // opened at a message: what arrives never scrolls to the bottom by itself
    caughtUp: false, // the first sync of the page finished: the newest message is shown

    element(message) {
      if (isSystemLine(message)) return systemLineElement(message);
      const element = messageElement(el.template, message, me);
      view.saved.wire(element, message);
      view.report.wire(element, message);
      return element;
    },

    /**
     * Keep ``entry`` ({message, element}) among the shown messages, its buttons wired; false for a
     * system line, which has no actions, counter or grouping and is not in ``shown``.
     */
    wire(entry) {
      if (isSystemLine(entry.message)) return false;
      this.shown.set(entry.message.seq, entry);
      view.editing.wire(entry);
      view.reactions.wire(entry);
      view.replies.wire(entry);
      return true;
    },

    /** Show ``message``, which is the one right after ``lastSeq``. */
    append(message) {
      const element = this.element(message);
      if (this.hadUnread && !this.divider && message.seq > this.enteredAt) {
        this.divider = makeDivider();
        list.append(this.divider);
      }
      list.append(element);
      this.lastSeq = message.seq;
      if (this.firstSeq === null) {
        this.firstSeq = message.seq;
        this.setHasOlder(message.seq > 1);
      }
      const entry = { message, element };
      if (!this.wire(entry)) return;
      // Storing a message moves its sender's read position to it: news only for one stored after
      // the page's data was read, which has the positions since ("Mark unread" included).
      if (message.sender.id !== null && message.seq > state.last_seq) {
        const sender = view.members.get(message.sender.id);
        if (sender && sender.last_read_seq < message.seq) view.members.setRead(message.sender.id, message.seq);
        if (message.sender.id === me.id) this.readSent = Math.max(this.readSent, message.seq);
      }
      view.members.showCounter(entry);
      regroup(element);
      view.composer.dropPending(message);
    },

    flushAhead() {
      while (this.ahead.has(this.lastSeq + 1)) {
        const next = this.ahead.get(this.lastSeq + 1);
        this.ahead.delete(this.lastSeq + 1);
        this.append(next);
      }
    },

    receive(message) {
      delivery.stored(message); // from the page's data, a sync or REST too, not only live
      if (this.shown.has(message.seq) || message.seq <= this.lastSeq) {
        view.composer.dropPending(message); // a repeat (sync after a reconnection, a re-send): already shown
        return;
      }
      if (message.seq === this.lastSeq + 1) {
        this.append(message);
        this.flushAhead();
      } else {
        this.ahead.set(message.seq, message);
        this.requestSync();
      }
    },

    /** Stored, but waiting behind a gap to be shown. */
    isArriving(clientMsgId) {
      for (const message of this.ahead.values()) if (message.client_msg_id === clientMsgId) return true;
      return false;
    },

    nearBottom() {
      return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < NEAR_BOTTOM_PX;
    },

    /** To the newest message; what arrives after follows again (the user left the message gone to). */
    scrollToBottom() {
      this.holdScroll = false;
      timeline.scrollTop = timeline.scrollHeight;
    },

    /** Highlight ``entry``'s message (the previous one no longer) and bring it to the middle of the timeline. */
    focus(entry) {
      if (this.focused) this.focused.classList.remove("is-focused");
      this.focused = entry.element;
      // The class again, after a reflow, restarts its flash (app.css) on a message already focused.
      void entry.element.offsetWidth;
      entry.element.classList.add("is-focused");
      // At once, not smoothly: older history loaded meanwhile sets scrollTop, which would stop a
      // smooth scroll halfway. The flash shows where the eye should go.
      entry.element.scrollIntoView({ block: "center" });
    },

    /** Whether the message gone to is (partly) in the timeline's visible part. */
    focusedInView() {
      if (!this.focused || !this.focused.isConnected) return false;
      const box = timeline.getBoundingClientRect();
      const rect = this.focused.getBoundingClientRect();
      return rect.bottom > box.top && rect.top < box.bottom;
    },

    /**
     * Go to message ``seq``: here when it is shown, else the page opened at it (the server renders
     * the history around it). The one way to go to a message: quotes and search results use it.
     */
    jumpTo(seq) {
      const entry = this.shown.get(seq);
      if (!entry) {
        window.location.assign(`/rooms/${roomId}/?at=${seq}`);
        return;
      }
      this.holdScroll = true;
      this.focus(entry);
      if (!this.nearBottom()) jumpLatest.hidden = false;
    },

    onNew(message) {
      if (message.room !== roomId || !view.active) return;
      view.typing.stop(message.sender.id);
      // One's own message (sent here or elsewhere) follows to the bottom, except while the page
      // shows a message gone to: the sync after the page loads replays one's own older ones too.
      const stick = !this.holdScroll && (this.nearBottom() || message.sender.id === me.id);
      const before = this.lastSeq;
      this.receive(message);
      if (this.lastSeq === before) return;
      if (stick) this.scrollToBottom();
      else jumpLatest.hidden = false;
      this.markRead();
    },

    // -- catching up --
    requestSync() {
      if (!socket.isOpen) return; // the next connection syncs
      if (this.syncing) {
        this.syncAgain = true;
        return;
      }
      this.syncing = true;
      // From early enough to bring the message.new of pending messages stored meanwhile; repeats are dropped.
      const from = delivery.syncFrom(roomId, this.lastSeq);
      socket.send({ type: "sync", rooms: { [roomId]: from }, req: `sync-${roomId}` });
    },

    /** A sync of the room was refused for now: no sync.done is coming, so ask again after ``delay``. */
    syncRefused(delay) {
      this.syncing = false;
      this.syncAgain = false;
      setTimeout(() => this.requestSync(), delay);
    },

    /** The socket (re)opened: whatever was stored meanwhile comes with a new sync. */
    resync() {
      // A sync asked on a dead socket has no answer coming, so ask again.
      this.syncing = false;
      this.syncAgain = false;
      this.requestSync();
    },

    syncFinished() {
      this.syncing = false;
      this.caughtUp = true;
      delivery.roomSynced(roomId); // the first one on this connection lets the outbox go
      if (this.ahead.size) {
        // Seqs have no holes, so this should not happen; never keep messages hidden for it.
        for (const seq of Array.from(this.ahead.keys()).sort((a, b) => a - b)) {
          if (seq > this.lastSeq) this.append(this.ahead.get(seq));
        }
        this.ahead.clear();
      }
      if (this.syncAgain) {
        this.syncAgain = false;
        this.requestSync();
      }
      this.markRead();
    },

    async fillGap() {
      // More was missed than one sync frame carries: page through REST.
      this.gapFilling = true;
      const stick = !this.holdScroll && this.nearBottom();
      try {
        for (;;) {
          const page = await api("GET", `/api/v1/rooms/${roomId}/messages/?after=${this.lastSeq}&limit=200`);
          for (const message of page.messages) this.receive(message);
          this.flushAhead();
          if (!page.has_newer || page.messages.length === 0) break;
        }
      } catch (error) {
        if (error.code === "not_member") view.leave("You are no longer a member of this room.");
      } finally {
        this.gapFilling = false;
        if (stick) this.scrollToBottom();
        else if (!this.nearBottom()) jumpLatest.hidden = false;
        this.syncFinished();
      }
    },

    /** Show the prompt to invite people (a group room nobody but its owner is in) or take it away. */
    showInvitePrompt(show) {
      const prompt = timeline.querySelector("#invite-prompt");
      if (show && !prompt) list.after(makeInvitePrompt(() => view.members.openInvite()));
      else if (!show && prompt) prompt.remove();
    },

    // -- older history --
    setHasOlder(value) {
      this.hasOlder = value;
      loadOlderButton.hidden = !this.hasOlder;
      el.historyStart.hidden = this.hasOlder || this.firstSeq === null;
    },

    async loadOlder() {
      if (this.loadingOlder || !this.hasOlder || this.firstSeq === null) return;
      this.loadingOlder = true;
      loadOlderButton.disabled = true;
      try {
        const page = await api("GET", `/api/v1/rooms/${roomId}/messages/?before=${this.firstSeq}&limit=${view.pageSize}`);
        const height = timeline.scrollHeight;
        const top = timeline.scrollTop;
        const oldFirst = list.querySelector(".message");
        const added = [];
        const fragment = document.createDocumentFragment();
        for (const message of page.messages) {
          if (this.shown.has(message.seq) || message.seq >= this.firstSeq) continue;
          const entry = { message, element: this.element(message) };
          entry.wired = this.wire(entry);
          fragment.append(entry.element);
          added.push(entry);
        }
        list.prepend(fragment);
        if (added.length) this.firstSeq = added[0].message.seq;
        for (const entry of added) {
          if (!entry.wired) continue;
          view.members.showCounter(entry);
          regroup(entry.element);
        }
        regroup(oldFirst);
        this.setHasOlder(page.has_older && added.length > 0);
        // Keep what the reader was looking at in place.
        timeline.scrollTop = top + (timeline.scrollHeight - height);
      } catch (error) {
        view.toast(`Could not load older messages: ${error.message}`);
      } finally {
        this.loadingOlder = false;
        loadOlderButton.disabled = false;
      }
    },

    // -- read position --
    markRead() {
      if (!view.active || document.visibilityState !== "visible" || !this.nearBottom()) return;
      jumpLatest.hidden = true;
      if (this.readHeld || this.lastSeq <= this.readSent) return;
      if (!socket.send({ type: "room.read", room: roomId, seq: this.lastSeq })) return;
      this.readSent = this.lastSeq;
      view.members.setRead(me.id, this.lastSeq);
      view.roomList.setRead(roomId, this.lastSeq);
    },

    /** The first paint, from the page's own data; ``at`` is a seq to show in focus (a link to it). */
    paint(at) {
      this.lastSeq = state.messages.length ? state.messages[0].seq - 1 : state.last_seq;
      for (const message of state.messages) this.receive(message);
      if (this.firstSeq === null) this.setHasOlder(state.last_seq > 0);
      const focus = at ? this.shown.get(at) : null;
      if (focus) {
        this.holdScroll = true;
        this.focus(focus);
        // Newer messages below it, or on their way (the first sync brings those after the page).
        jumpLatest.hidden = this.nearBottom() && this.lastSeq >= state.last_seq;
      } else if (this.divider) {
        // The divider near the top, with a little of what was read before it for context.
        timeline.scrollTop = this.divider.offsetTop - Math.min(120, timeline.clientHeight / 5);
      } else {
        this.scrollToBottom();
      }
    },

    attach() {
      loadOlderButton.addEventListener("click", () => this.loadOlder());
      let scrollQueued = false;
      timeline.addEventListener("scroll", () => {
        if (scrollQueued) return;
        scrollQueued = true;
        requestAnimationFrame(() => {
          scrollQueued = false;
          // At the bottom, all shown, the message gone to out of sight: the user came down from it.
          if (this.holdScroll && this.caughtUp && !this.gapFilling && this.nearBottom() && !this.focusedInView()) {
            this.holdScroll = false;
          }
          this.markRead();
          if (timeline.scrollTop < 80) this.loadOlder();
        });
      });
      document.addEventListener("visibilitychange", () => this.markRead());
      window.addEventListener("focus", () => this.markRead());
      jumpLatest.addEventListener("click", () => {
        this.scrollToBottom();
        this.markRead();
      });
      socket.on("sync.gap", (frame) => {
        if (frame.room === roomId) this.fillGap();
      });
      socket.on("sync.done", (frame) => {
        if (frame.req === `sync-${roomId}` && !this.gapFilling) this.syncFinished();
      });
      socket.on("message.new", (frame) => this.onNew(frame.message));
    },
  };
  return t;
}
