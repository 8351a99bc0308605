/*
 * The room list in the sidebar: one row per room (cloned from the page's <template>), unread
 * badges, the newest conversation on top, the unread total in the tab's title; kept live by the
 * socket. Also the sidebar's "New" panel (a group room, or a direct room with someone).
 */
import { findUser, suggestUsers } from "./people.js";
import { badgeText, mentionsMe, messagePreview, roomAvatarKey, roomTitle, setAvatar, setTime, unreadCount } from "./format.js";
import { setPresence } from "./presence.js";
import { byId, part, toast } from "./util.js";

/**
 * Record ``message`` (a message.new) in its list entry ``room``; true when it is the room's newest,
 * which moves the room to the top. A sync also replays older ones, which change nothing but the
 * sender's own read position.
 */
export function applyMessage(room, message, meId) {
  const newer = message.seq > room.last_seq;
  if (newer) {
    // A system line ("bob joined") is read with all before it, as the server counts it: a room
    // that was read stays read.
    const caughtUp = room.last_read_seq >= room.last_seq && message.seq === room.last_seq + 1;
    if (message.kind === "system" && caughtUp) room.last_read_seq = message.seq;
    room.last_seq = message.seq;
    // Files without text read as their names, as the server's own preview does.
    room.last_message = { seq: message.seq, preview: messagePreview(message).slice(0, 140), at: message.created_at };
    if (message.sender.id !== meId && mentionsMe(message, meId)) room.mentions = (room.mentions || 0) + 1;
  }
  if (message.sender.id === meId) room.last_read_seq = Math.max(room.last_read_seq, message.seq);
  return newer;
}

/** The unread messages of all ``rooms`` (the tab title's number); a muted room counts its mentions only. */
export function totalUnread(rooms) {
  let total = 0;
  for (const room of rooms) total += room.muted ? room.mentions || 0 : unreadCount(room);
  return total;
}

/**
 * The room list drawn in ``element`` from rows cloned out of ``template``; ``empty`` is the
 * "no rooms yet" line; ``rooms`` the first data (the server's order, newest first); ``current``
 * the id of the room the page shows (or null); ``api`` fetches rooms that appear; ``presence``
 * (presence.js) puts a dot on each direct room for the other person.
 */
export function createRoomList({
  element,
  template,
  empty,
  rooms = [],
  current = null,
  api,
  presence = null,
  baseTitle = document.title,
}) {
  return {
    element,
    template,
    empty,
    rooms: new Map(rooms.map((room) => [room.id, room])),
    current,
    baseTitle,
    presence,

    init() {
      if (!this.element) return;
      for (const room of this.rooms.values()) this.learnPresence(room);
      if (this.presence) this.presence.onChange((userId) => this.presenceChanged(userId));
      // The server drew the rows in its order; a row it did not draw goes on top, so the last first.
      for (const room of Array.from(this.rooms.values()).reverse()) this.render(room, false);
      this.updateTitle();
    },

    /** The ids of the rows, top to bottom. */
    order() {
      return Array.from(this.element.children, (row) => Number(row.dataset.room));
    },

    row(roomId) {
      return this.element.querySelector(`[data-room="${roomId}"]`);
    },

    /** A direct room's other person, while the server shows their presence (they share the room). */
    otherShown(room) {
      return room.kind === "direct" && room.other_user && room.other_user.presence ? room.other_user : null;
    },

    /** Hand what a room's data says of the other person's presence to the shared map. */
    learnPresence(room) {
      const other = this.otherShown(room);
      if (other && this.presence) this.presence.set(other.id, other.presence);
    },

    presenceChanged(userId) {
      for (const room of this.rooms.values()) {
        const other = this.otherShown(room);
        if (other && other.id === userId) this.render(room, false);
      }
    },

    render(room, toTop) {
      if (!this.element) return;
      let row = this.row(room.id);
      if (!row) {
        row = this.template.content.firstElementChild.cloneNode(true);
        toTop = true;
      }
      row.dataset.room = room.id;
      part(row, "link").href = `/rooms/${room.id}/`;
      const title = roomTitle(room);
      part(row, "name").textContent = title;
      setAvatar(part(row, "avatar"), title, roomAvatarKey(room));
      const last = room.last_message;
      part(row, "preview").textContent = last ? last.preview : "No messages yet";
      setTime(part(row, "time"), last ? last.at : "", false);
      const unread = unreadCount(room);
      const badge = part(row, "badge");
      badge.textContent = badgeText(unread);
      badge.setAttribute("aria-label", `${unread} unread`);
      badge.hidden = unread === 0 || Boolean(room.muted); // muted: no badge, mentions still count
      const mentions = room.mentions || 0;
      const mentionBadge = part(row, "mentions");
      mentionBadge.textContent = `@${mentions > 1 ? badgeText(mentions) : ""}`;
      mentionBadge.setAttribute("aria-label", `${mentions} mention${mentions === 1 ? "" : "s"} of you`);
      mentionBadge.hidden = mentions === 0;
      part(row, "muted").hidden = !room.muted;
      const other = this.otherShown(room);
      setPresence(part(row, "presence"), other && this.presence ? this.presence.get(other.id) || other.presence : null);
      row.classList.toggle("has-unread", (unread > 0 && !room.muted) || mentions > 0);
      const isCurrent = room.id === this.current;
      row.classList.toggle("is-current", isCurrent);
      if (isCurrent) part(row, "link").setAttribute("aria-current", "page");
      if (toTop && this.element.firstElementChild !== row) this.element.prepend(row);
      if (this.empty) this.empty.hidden = true;
    },

    remove(roomId) {
      this.rooms.delete(roomId);
      if (!this.element) return;
      const row = this.row(roomId);
      if (row) row.remove();
      if (this.empty) this.empty.hidden = this.rooms.size > 0;
      this.updateTitle();
    },

    updateTitle() {
      const total = totalUnread(this.rooms.values());
      document.title = total ? `(${total}) ${this.baseTitle}` : this.baseTitle;
    },

    onMessage(message, meId) {
      const room = this.rooms.get(message.room);
      if (!room) {
        this.refreshOne(message.room);
        return;
      }
      this.render(room, applyMessage(room, message, meId));
      this.updateTitle();
    },

    setRead(roomId, seq) {
      const room = this.rooms.get(roomId);
      if (!room || room.last_read_seq === seq) return;
      const before = room.last_read_seq;
      room.last_read_seq = seq;
      // Which mentions lie above a position is the server's to say, unless all is read.
      if (seq >= room.last_seq) room.mentions = 0;
      else if (room.mentions || seq < before) this.refreshOne(roomId);
      this.render(room, false);
      this.updateTitle();
    },

    async refreshOne(roomId) {
      try {
        const room = await api("GET", `/api/v1/rooms/${roomId}/`);
        const known = this.rooms.get(room.id);
        keepNewer(room, known);
        this.rooms.set(room.id, room);
        this.learnPresence(room);
        this.render(room, !known);
        this.updateTitle();
      } catch (error) {
        if (error.code === "not_member") this.remove(roomId);
      }
    },

    /** On each connection: whatever happened while none was open, the server's list is the truth. */
    async refreshAll() {
      if (!this.element) return;
      let rooms;
      try {
        rooms = await api("GET", "/api/v1/rooms/");
      } catch (error) {
        return;
      }
      for (const room of rooms) keepNewer(room, this.rooms.get(room.id));
      this.rooms = new Map(rooms.map((room) => [room.id, room]));
      for (const room of rooms) this.learnPresence(room);
      for (const row of Array.from(this.element.children)) {
        if (!this.rooms.has(Number(row.dataset.room))) row.remove();
      }
      for (const room of rooms.slice().reverse()) this.render(room, true);
      if (this.empty) this.empty.hidden = rooms.length > 0;
      this.updateTitle();
    },

    /** Keep the list live from ``socket``'s frames for the user ``me``. */
    attach(socket, me) {
      socket.on("message.new", (frame) => this.onMessage(frame.message, me.id));
      socket.on("room.read", (frame) => {
        if (frame.user === me.id) this.setRead(frame.room, frame.seq);
      });
      socket.on("participant.added", async (frame) => {
        if (frame.user !== me.id) return;
        await this.refreshOne(frame.room);
        // Someone added the user: say who, and where, with the way there.
        const room = this.rooms.get(frame.room);
        if (frame.by && room) toast(`${frame.by.username} added you to ${roomTitle(room)}`, { href: `/rooms/${room.id}/`, text: "Open" });
      });
      socket.on("participant.removed", (frame) => {
        if (frame.user === me.id) this.remove(frame.room);
      });
      socket.on("room.updated", (frame) => {
        const room = this.rooms.get(frame.room);
        if (!room) return;
        if ("name" in frame) room.name = frame.name;
        if ("read_only" in frame) room.read_only = Boolean(frame.read_only);
        if ("muted" in frame) room.muted = Boolean(frame.muted);
        this.render(room, false);
        this.updateTitle();
      });
      socket.on("room.deleted", (frame) => this.remove(frame.room));
      // The newest message edited or deleted: the preview must not keep the words that went.
      const newestChanged = (frame, preview) => {
        const room = this.rooms.get(frame.room);
        if (!room || !room.last_message || room.last_message.seq !== frame.seq) return;
        room.last_message.preview = preview;
        this.render(room, false);
      };
      socket.on("message.updated", (frame) => newestChanged(frame, frame.body.slice(0, 140)));
      socket.on("message.deleted", (frame) => newestChanged(frame, ""));
      // The first connection too: the page drew the list before its socket opened, and a
      // message stored in between reached no socket of this page.
      socket.onOpen(() => this.refreshAll());
    },
  };
}

/**
 * A message that came while the server's answer was on its way makes the list newer than the
 * answer: then keep the list's newest message and read position (the frames of both came after
 * the answer was read). Otherwise the answer is at least as new and is taken as it is.
 */
function keepNewer(answer, known) {
  if (known && known.last_seq > answer.last_seq) {
    answer.last_seq = known.last_seq;
    answer.last_message = known.last_message;
    answer.last_read_seq = known.last_read_seq;
  }
}

/** The sidebar's "New" panel: create a group room, or open a direct room with someone. */
export function setupNewRoom(api) {
  const toggle = byId("new-room-toggle");
  const panel = byId("new-room");
  if (!toggle || !panel) return;
  const status = byId("new-room-status");
  toggle.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) byId("new-group-name").focus();
  });
  byId("new-group-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = byId("new-group-name").value.trim();
    if (!name) return;
    try {
      const room = await api("POST", "/api/v1/rooms/", { kind: "group", name });
      location.assign(`/rooms/${room.id}/`);
    } catch (error) {
      status.textContent = error.message;
    }
  });
  const direct = byId("new-direct-username");
  direct.addEventListener("input", () => suggestUsers(api, direct));
  byId("new-direct-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = direct.value.trim();
    if (!username) return;
    try {
      const user = await findUser(api, username);
      const room = await api("POST", "/api/v1/rooms/", { kind: "direct", user: user.id });
      location.assign(`/rooms/${room.id}/`);
    } catch (error) {
      status.textContent = error.message;
    }
  });
}
