/*
 * The web chat's client. One WebSocket to /ws/chat/ (the session cookie authenticates it) keeps
 * the room list, the open room and the drawer live; REST (/api/v1/) pages history and changes
 * memberships. Plain JavaScript: no build step, no dependency, nothing loaded from elsewhere.
 * The protocol is docs/protocol.md.
 *
 * Rules that keep the conversation right whatever the network does:
 *  - a room's messages are shown in seq order, each once: a message.new whose seq is already
 *    shown is dropped, one that skips a seq waits while `sync` fetches what is missing;
 *  - after every (re)connection the client sends `sync` with the last seq it has, and pages
 *    over REST when the server answers `sync.gap`;
 *  - a message is sent with a client_msg_id chosen here; until its message.new arrives it stays
 *    "pending", and it is sent again with the same id after a reconnection (the server stores
 *    it once whatever the number of sends);
 *  - message bodies only ever become text nodes; http(s) URLs become <a> elements built here.
 */
(function () {
  "use strict";

  const configElement = document.getElementById("chat-config");
  if (!configElement) return;
  const config = JSON.parse(configElement.textContent);
  const me = config.me;

  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const TOO_MANY_SOCKETS_RETRY_MS = 30000; // close code 4429: at least this long, or a click on Retry
  const RESTART_RETRY_MIN_MS = 500; // close code 4503: the server is stopping; another takes over soon
  const RESTART_RETRY_MAX_MS = 3000;
  const TYPING_SEND_EVERY_MS = 2000;
  const TYPING_SHOW_MS = 4000;
  const GROUP_WITHIN_MS = 5 * 60 * 1000;
  const NEAR_BOTTOM_PX = 48;

  // -- helpers ------------------------------------------------------------------------------------
  const byId = (id) => document.getElementById(id);
  const part = (root, role) => root.querySelector(`[data-role="${role}"]`);

  function cookie(name) {
    for (const item of document.cookie.split(";")) {
      const [key, ...rest] = item.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return cookie("csrftoken") || (input ? input.value : "");
  }

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail);
      this.status = status;
      this.code = code;
    }
  }

  function detailText(detail) {
    if (!detail) return "";
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map(detailText).join(" ");
    if (typeof detail === "object") return Object.values(detail).map(detailText).join(" ");
    return String(detail);
  }

  /** Call the REST API with the session cookie (and the CSRF token DRF requires for changes). */
  async function api(method, url, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw new ApiError(0, "unavailable", "The server cannot be reached; try again.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || "unavailable", detailText(error.detail) || response.statusText);
    }
    return data;
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // randomUUID exists only in secure contexts (https, localhost); a LAN address over http is not one.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;

  function trimUrl(raw) {
    // Trailing punctuation ends the sentence, not the link; a ")" closing a "(" in the URL stays.
    let url = raw;
    while (/[.,;:!?'")\]}]$/.test(url)) {
      if (url.endsWith(")") && (url.match(/\(/g) || []).length >= (url.match(/\)/g) || []).length) break;
      url = url.slice(0, -1);
    }
    return url;
  }

  /** Show ``text`` in ``element`` as text, with http(s) URLs as safe links. Never parses HTML. */
  function renderText(element, text) {
    element.replaceChildren();
    let last = 0;
    for (const match of text.matchAll(URL_PATTERN)) {
      const raw = trimUrl(match[0]);
      let url;
      try {
        url = new URL(raw);
      } catch (error) {
        continue;
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") continue;
      element.append(text.slice(last, match.index));
      const link = document.createElement("a");
      link.href = url.href;
      link.textContent = raw;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      element.append(link);
      last = match.index + raw.length;
    }
    element.append(text.slice(last));
  }

  const timeFormat = { hour: "numeric", minute: "2-digit" };
  const dayFormat = { month: "short", day: "numeric" };

  /** "14:05" today, "Nov 25" (rooms) or "Nov 25, 14:05" (messages) on other days. */
  function formatTime(iso, withTime) {
    const date = new Date(iso);
    if (!iso || Number.isNaN(date.getTime())) return "";
    if (date.toDateString() === new Date().toDateString()) return date.toLocaleTimeString([], timeFormat);
    const day = date.toLocaleDateString([], dayFormat);
    return withTime ? `${day}, ${date.toLocaleTimeString([], timeFormat)}` : day;
  }

  function setTime(element, iso, withTime) {
    element.dateTime = iso || "";
    element.textContent = formatTime(iso, withTime);
    element.title = iso ? new Date(iso).toLocaleString() : "";
  }

  function setAvatar(element, name, key) {
    element.textContent = (name || "?").charAt(0).toUpperCase();
    let hash = 0;
    for (const ch of String(key)) hash = (hash * 31 + ch.codePointAt(0)) % 997;
    // Steps of the golden angle: neighbouring keys get clearly different colours.
    element.style.setProperty("--avatar-hue", String(Math.round((hash * 137.508) % 360)));
  }

  function roomTitle(room) {
    if (room.kind === "direct") return (room.other_user && room.other_user.username) || "deleted user";
    return room.name;
  }

  let toastTimer = null;
  function toast(text, link) {
    let box = byId("toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.className = "toast";
      box.setAttribute("role", "status");
      document.body.append(box);
    }
    box.replaceChildren(text);
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      box.append(" ", a);
    }
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (box.hidden = true), 4000);
  }

  // -- the offline banner ---------------------------------------------------------------------------
  const banner = {
    element: byId("offline-banner"),
    show(text, canRetry = true) {
      if (!this.element) return;
      part(this.element, "text").textContent = text;
      part(this.element, "retry").hidden = !canRetry;
      this.element.hidden = false;
      document.body.classList.add("is-offline");
    },
    hide() {
      if (!this.element) return;
      this.element.hidden = true;
      document.body.classList.remove("is-offline");
    },
  };

  // -- the socket -----------------------------------------------------------------------------------
  const socket = {
    ws: null,
    attempts: 0,
    timer: null,
    connectedOnce: false,
    stopped: false,
    notBefore: 0, // no automatic reconnection before this time (close code 4429)
    handlers: new Map(),
    openHandlers: [],
    closeHandlers: [],

    on(type, handler) {
      if (!this.handlers.has(type)) this.handlers.set(type, []);
      this.handlers.get(type).push(handler);
    },

    /** ``handler(reconnected)`` runs on every successful connection. */
    onOpen(handler) {
      this.openHandlers.push(handler);
    },

    /** ``handler()`` runs whenever a connection ends (or fails to open). */
    onClose(handler) {
      this.closeHandlers.push(handler);
    },

    get isOpen() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    },

    send(frame) {
      if (!this.isOpen) return false;
      this.ws.send(JSON.stringify(frame));
      return true;
    },

    connect() {
      clearTimeout(this.timer);
      this.timer = null;
      if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${scheme}://${location.host}/ws/chat/`);
      this.ws = ws;
      ws.onopen = () => {
        this.attempts = 0;
        banner.hide();
        const reconnected = this.connectedOnce;
        this.connectedOnce = true;
        for (const handler of this.openHandlers) handler(reconnected);
      };
      ws.onmessage = (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        for (const handler of this.handlers.get(frame.type) || []) handler(frame);
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        for (const handler of this.closeHandlers) handler();
        if (this.stopped) return;
        if (event.code === 4401) {
          // Logged out (here or elsewhere), or the account is gone: reconnecting cannot help.
          this.stopped = true;
          banner.show("Your session has ended. Log in again to keep chatting.", false);
          location.assign(`/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
        } else if (event.code === 4429) {
          // Too many sockets for this user: another try soon would only be refused again.
          const delay = TOO_MANY_SOCKETS_RETRY_MS * (1 + Math.random() / 2);
          this.retryIn(delay, "Too many open tabs/devices; close one to keep chatting here.");
        } else if (event.code === 4503) {
          // The server is going away on purpose; spread the pages over a short window.
          this.attempts = 0;
          const delay = RESTART_RETRY_MIN_MS + Math.random() * (RESTART_RETRY_MAX_MS - RESTART_RETRY_MIN_MS);
          this.retryIn(delay, "Server restarting… Reconnecting.");
        } else {
          // 4012 (events may have been lost), a network failure, a crash: the sync after the
          // reconnection catches up either way.
          this.retryLater();
        }
      };
    },

    retryLater() {
      // Exponential backoff with jitter, so a restarted server is not hit by every page at once.
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempts);
      const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
      this.attempts += 1;
      this.retryIn(delay, "You are offline. Reconnecting…");
    },

    retryIn(delay, text) {
      clearTimeout(this.timer);
      this.notBefore = Date.now() + delay;
      banner.show(text);
      this.timer = setTimeout(() => this.connect(), delay);
    },
  };

  // "Retry now" is the person's call (they may just have closed another tab); "online" is not.
  if (banner.element) part(banner.element, "retry").addEventListener("click", () => socket.connect());
  window.addEventListener("online", () => {
    if (Date.now() >= socket.notBefore) socket.connect();
  });
  window.addEventListener("offline", () => {
    // The socket can look open for a long while after the network went; start over at once.
    if (socket.ws) socket.ws.close();
  });
  window.addEventListener("pagehide", () => {
    socket.stopped = true; // leaving the page: no "offline" flash while it unloads
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      socket.stopped = false;
      socket.connect();
    }
  });

  // -- the room list ------------------------------------------------------------------------------
  const roomList = {
    element: byId("room-list"),
    template: byId("room-row-template"),
    rooms: new Map(),
    current: config.room ? config.room.id : null,
    baseTitle: document.title,

    init() {
      if (!this.element) return;
      for (const room of config.rooms || []) this.rooms.set(room.id, room);
      for (const room of this.rooms.values()) this.render(room, false);
      this.updateTitle();
    },

    unread(room) {
      return Math.max(0, room.last_seq - room.last_read_seq);
    },

    row(roomId) {
      return this.element.querySelector(`[data-room="${roomId}"]`);
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
      setAvatar(part(row, "avatar"), title, room.id);
      const last = room.last_message;
      part(row, "preview").textContent = last ? last.preview : "No messages yet";
      setTime(part(row, "time"), last ? last.at : "", false);
      const unread = this.unread(room);
      const badge = part(row, "badge");
      badge.textContent = unread > 99 ? "99+" : String(unread);
      badge.setAttribute("aria-label", `${unread} unread`);
      badge.hidden = unread === 0;
      row.classList.toggle("has-unread", unread > 0);
      const isCurrent = room.id === this.current;
      row.classList.toggle("is-current", isCurrent);
      if (isCurrent) part(row, "link").setAttribute("aria-current", "page");
      if (toTop && this.element.firstElementChild !== row) this.element.prepend(row);
      byId("room-list-empty").hidden = true;
    },

    remove(roomId) {
      this.rooms.delete(roomId);
      if (!this.element) return;
      const row = this.row(roomId);
      if (row) row.remove();
      byId("room-list-empty").hidden = this.rooms.size > 0;
      this.updateTitle();
    },

    updateTitle() {
      let total = 0;
      for (const room of this.rooms.values()) total += this.unread(room);
      document.title = total ? `(${total}) ${this.baseTitle}` : this.baseTitle;
    },

    onMessage(message) {
      const room = this.rooms.get(message.room);
      if (!room) {
        this.refreshOne(message.room);
        return;
      }
      if (message.seq > room.last_seq) {
        room.last_seq = message.seq;
        room.last_message = { seq: message.seq, preview: message.body.slice(0, 140), at: message.created_at };
      }
      if (message.sender.id === me.id) room.last_read_seq = Math.max(room.last_read_seq, message.seq);
      this.render(room, true);
      this.updateTitle();
    },

    setRead(roomId, seq) {
      const room = this.rooms.get(roomId);
      if (!room || room.last_read_seq === seq) return;
      room.last_read_seq = seq;
      this.render(room, false);
      this.updateTitle();
    },

    async refreshOne(roomId) {
      try {
        const room = await api("GET", `/api/v1/rooms/${roomId}/`);
        this.rooms.set(room.id, room);
        this.render(room, true);
        this.updateTitle();
      } catch (error) {
        if (error.code === "not_member") this.remove(roomId);
      }
    },

    /** After a reconnection: whatever happened meanwhile, the server's list is the truth. */
    async refreshAll() {
      if (!this.element) return;
      let rooms;
      try {
        rooms = await api("GET", "/api/v1/rooms/");
      } catch (error) {
        return;
      }
      this.rooms = new Map(rooms.map((room) => [room.id, room]));
      for (const row of Array.from(this.element.children)) {
        if (!this.rooms.has(Number(row.dataset.room))) row.remove();
      }
      for (const room of rooms.slice().reverse()) this.render(room, true);
      byId("room-list-empty").hidden = rooms.length > 0;
      this.updateTitle();
    },
  };

  if (roomList.element) {
    roomList.init();
    socket.on("message.new", (frame) => roomList.onMessage(frame.message));
    socket.on("room.read", (frame) => {
      if (frame.user === me.id) roomList.setRead(frame.room, frame.seq);
    });
    socket.on("participant.added", (frame) => {
      if (frame.user === me.id) roomList.refreshOne(frame.room);
    });
    socket.on("participant.removed", (frame) => {
      if (frame.user === me.id) roomList.remove(frame.room);
    });
    socket.on("room.updated", (frame) => {
      const room = roomList.rooms.get(frame.room);
      if (!room) return;
      room.name = frame.name;
      roomList.render(room, false);
    });
    socket.on("room.deleted", (frame) => roomList.remove(frame.room));
    socket.onOpen((reconnected) => {
      if (reconnected) roomList.refreshAll();
    });
  }

  // -- finding people (new direct room, invitations) --------------------------------------------
  let suggestTimer = null;
  function suggestUsers(input) {
    const list = byId("user-suggestions");
    if (!list) return;
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(async () => {
      const q = input.value.trim();
      if (!q) return;
      try {
        const users = await api("GET", `/api/v1/users/?q=${encodeURIComponent(q)}`);
        list.replaceChildren(
          ...users.map((user) => {
            const option = document.createElement("option");
            option.value = user.username;
            return option;
          }),
        );
      } catch (error) {
        // Suggestions are a convenience; typing the exact name still works.
      }
    }, 250);
  }

  async function findUser(username) {
    const users = await api("GET", `/api/v1/users/?q=${encodeURIComponent(username)}`);
    const user = users.find((u) => u.username.toLowerCase() === username.toLowerCase());
    if (!user) throw new ApiError(404, "not_found", `Nobody is called “${username}”.`);
    return user;
  }

  function setupNewRoom() {
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
    direct.addEventListener("input", () => suggestUsers(direct));
    byId("new-direct-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const username = direct.value.trim();
      if (!username) return;
      try {
        const user = await findUser(username);
        const room = await api("POST", "/api/v1/rooms/", { kind: "direct", user: user.id });
        location.assign(`/rooms/${room.id}/`);
      } catch (error) {
        status.textContent = error.message;
      }
    });
  }

  setupNewRoom();

  // -- the open room --------------------------------------------------------------------------------
  function openRoom() {
    const roomId = config.room.id;
    const state = config.state;
    const timeline = byId("timeline");
    const list = byId("messages");
    const pendingList = byId("pending");
    const template = byId("message-template");
    const input = byId("composer-input");
    const notice = byId("room-notice");
    const jumpLatest = byId("jump-latest");
    const loadOlderButton = byId("load-older");

    const shown = new Map(); // seq -> {message, element}
    const ahead = new Map(); // seq -> message that arrived past a gap, waiting for sync
    const pending = new Map(); // client_msg_id -> {body, element, failed}
    const members = new Map(); // user id -> {id, username, role, last_read_seq}
    const saved = new Map(); // drawer entry id -> message id
    const typers = new Map(); // user id -> {username, timer}

    // The read position when the room was opened: the "new messages" divider stays there.
    const enteredAt = state.last_read_seq;
    const hadUnread = state.last_seq > state.last_read_seq;
    let divider = null;
    let firstSeq = null; // the oldest message shown
    let lastSeq = state.last_seq; // every message up to this one is shown (or older than firstSeq)
    let readSent = state.last_read_seq;
    let hasOlder = false;
    let loadingOlder = false;
    let syncing = false;
    let syncAgain = false;
    let gapFilling = false;
    let active = true;
    let lastTypingSent = 0;

    // -- members and unread counters --
    function setMembers(participants) {
      members.clear();
      for (const p of participants) {
        members.set(p.user.id, { id: p.user.id, username: p.user.username, role: p.role, last_read_seq: p.last_read_seq });
      }
      renderMembers();
      updateCounters(0, Infinity);
    }

    async function refreshMembers() {
      try {
        setMembers(await api("GET", `/api/v1/rooms/${roomId}/participants/`));
      } catch (error) {
        if (error.code === "not_member") leave("You are no longer a member of this room.");
      }
    }

    function myRole() {
      const mine = members.get(me.id);
      return mine ? mine.role : null;
    }

    function canManage() {
      return myRole() === "owner" || myRole() === "admin";
    }

    function renderMembers() {
      const memberList = byId("member-list");
      const memberTemplate = byId("member-template");
      const items = [];
      for (const member of members.values()) {
        const item = memberTemplate.content.firstElementChild.cloneNode(true);
        item.dataset.user = member.id;
        setAvatar(part(item, "avatar"), member.username, member.id);
        part(item, "name").textContent = member.id === me.id ? `${member.username} (you)` : member.username;
        part(item, "role").textContent = member.role === "member" ? "" : member.role;
        const removable =
          config.room.kind === "group" &&
          member.id !== me.id &&
          (myRole() === "owner" || (myRole() === "admin" && member.role === "member"));
        const remove = part(item, "remove");
        remove.hidden = !removable;
        remove.addEventListener("click", () => removeMember(member));
        items.push(item);
      }
      memberList.replaceChildren(...items);
      const count = members.size;
      byId("room-meta").textContent = `${count} member${count === 1 ? "" : "s"}`;
      const invite = byId("invite-form");
      if (invite) invite.hidden = !canManage();
    }

    /** How many members have not read up to ``seq``: the number shown next to a message. */
    function unreadCount(seq) {
      let count = 0;
      for (const member of members.values()) if (member.last_read_seq < seq) count += 1;
      return count;
    }

    function showCounter(entry) {
      const counter = part(entry.element, "unread");
      const count = entry.message.deleted ? 0 : members.size ? unreadCount(entry.message.seq) : entry.message.unread_count;
      counter.textContent = count > 0 ? String(count) : "";
    }

    /** Refresh the counters of the messages with low < seq <= high. */
    function updateCounters(low, high) {
      for (const [seq, entry] of shown) if (seq > low && seq <= high) showCounter(entry);
    }

    function setMemberRead(userId, seq) {
      const member = members.get(userId);
      if (!member || member.last_read_seq === seq) return;
      const before = member.last_read_seq;
      member.last_read_seq = seq;
      updateCounters(Math.min(before, seq), Math.max(before, seq));
    }

    // -- drawing messages --
    function messageElement(message) {
      const element = template.content.firstElementChild.cloneNode(true);
      element.dataset.seq = message.seq;
      element.dataset.id = message.id;
      element.dataset.sender = message.sender.id === null ? "" : message.sender.id;
      element.dataset.at = Date.parse(message.created_at) || 0;
      element.classList.toggle("message-mine", message.sender.id === me.id);
      part(element, "sender").textContent = message.sender.username;
      setAvatar(part(element, "avatar"), message.sender.username, message.sender.id ?? "deleted");
      setTime(part(element, "time"), message.created_at, true);
      drawBody(element, message);
      const save = part(element, "save");
      if (isSaved(message.id)) markSaved(save);
      save.addEventListener("click", () => saveToDrawer(message, save));
      return element;
    }

    function drawBody(element, message) {
      const body = part(element, "body");
      if (message.deleted) {
        body.textContent = "This message was deleted.";
      } else {
        renderText(body, message.body);
      }
      element.classList.toggle("message-deleted", Boolean(message.deleted));
      part(element, "edited").hidden = !message.edited_at || Boolean(message.deleted);
      part(element, "save").hidden = Boolean(message.deleted);
    }

    function previousMessage(element) {
      const before = element.previousElementSibling;
      return before && before.classList.contains("message") ? before : null;
    }

    /** A message right after one of the same sender (within minutes) drops its name and avatar. */
    function regroup(element) {
      if (!element || !element.classList.contains("message")) return;
      const before = previousMessage(element);
      const continued =
        before !== null &&
        element.dataset.sender !== "" &&
        before.dataset.sender === element.dataset.sender &&
        Number(element.dataset.at) - Number(before.dataset.at) < GROUP_WITHIN_MS;
      element.classList.toggle("message-cont", continued);
    }

    function makeDivider() {
      const item = document.createElement("li");
      item.className = "divider";
      item.id = "new-messages";
      const label = document.createElement("span");
      label.textContent = "New messages";
      item.append(label);
      return item;
    }

    /** Show ``message``, which is the one right after ``lastSeq``. */
    function append(message) {
      const element = messageElement(message);
      if (hadUnread && !divider && message.seq > enteredAt) {
        divider = makeDivider();
        list.append(divider);
      }
      list.append(element);
      const entry = { message, element };
      shown.set(message.seq, entry);
      lastSeq = message.seq;
      if (firstSeq === null) {
        firstSeq = message.seq;
        setHasOlder(message.seq > 1);
      }
      if (message.sender.id !== null) {
        const sender = members.get(message.sender.id);
        // Storing a message moves its sender's read position to it.
        if (sender && sender.last_read_seq < message.seq) setMemberRead(message.sender.id, message.seq);
        if (message.sender.id === me.id) readSent = Math.max(readSent, message.seq);
      }
      showCounter(entry);
      regroup(element);
      settlePending(message);
    }

    function flushAhead() {
      while (ahead.has(lastSeq + 1)) {
        const next = ahead.get(lastSeq + 1);
        ahead.delete(lastSeq + 1);
        append(next);
      }
    }

    function receive(message) {
      if (shown.has(message.seq) || message.seq <= lastSeq) {
        settlePending(message); // a repeat (sync after a reconnection, a re-send): already shown
        return;
      }
      if (message.seq === lastSeq + 1) {
        append(message);
        flushAhead();
      } else {
        ahead.set(message.seq, message);
        requestSync();
      }
    }

    function nearBottom() {
      return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < NEAR_BOTTOM_PX;
    }

    function scrollToBottom() {
      timeline.scrollTop = timeline.scrollHeight;
    }

    function onNew(message) {
      if (message.room !== roomId || !active) return;
      stopTyping(message.sender.id);
      const stick = nearBottom() || message.sender.id === me.id;
      const before = lastSeq;
      receive(message);
      if (lastSeq === before) return;
      if (stick) scrollToBottom();
      else jumpLatest.hidden = false;
      markRead();
    }

    // -- catching up --
    function requestSync() {
      if (!socket.isOpen) return; // the next connection syncs
      if (syncing) {
        syncAgain = true;
        return;
      }
      syncing = true;
      socket.send({ type: "sync", rooms: { [roomId]: lastSeq }, req: `sync-${roomId}` });
    }

    function syncFinished() {
      syncing = false;
      if (ahead.size) {
        // Seqs have no holes, so this should not happen; never keep messages hidden for it.
        for (const seq of Array.from(ahead.keys()).sort((a, b) => a - b)) {
          if (seq > lastSeq) append(ahead.get(seq));
        }
        ahead.clear();
      }
      if (syncAgain) {
        syncAgain = false;
        requestSync();
      }
      markRead();
    }

    async function fillGap() {
      // More was missed than one sync frame carries: page through REST.
      gapFilling = true;
      const stick = nearBottom();
      try {
        for (;;) {
          const page = await api("GET", `/api/v1/rooms/${roomId}/messages/?after=${lastSeq}&limit=200`);
          for (const message of page.messages) receive(message);
          flushAhead();
          if (!page.has_newer || page.messages.length === 0) break;
        }
      } catch (error) {
        if (error.code === "not_member") leave("You are no longer a member of this room.");
      } finally {
        gapFilling = false;
        if (stick) scrollToBottom();
        syncFinished();
      }
    }

    socket.on("sync.gap", (frame) => {
      if (frame.room === roomId) fillGap();
    });
    socket.on("sync.done", (frame) => {
      if (frame.req === `sync-${roomId}` && !gapFilling) syncFinished();
    });

    // -- older history --
    function setHasOlder(value) {
      hasOlder = value;
      loadOlderButton.hidden = !hasOlder;
      byId("history-start").hidden = hasOlder || firstSeq === null;
    }

    async function loadOlder() {
      if (loadingOlder || !hasOlder || firstSeq === null) return;
      loadingOlder = true;
      loadOlderButton.disabled = true;
      try {
        const page = await api("GET", `/api/v1/rooms/${roomId}/messages/?before=${firstSeq}&limit=${config.page_size}`);
        const height = timeline.scrollHeight;
        const top = timeline.scrollTop;
        const oldFirst = list.querySelector(".message");
        const added = [];
        const fragment = document.createDocumentFragment();
        for (const message of page.messages) {
          if (shown.has(message.seq) || message.seq >= firstSeq) continue;
          const entry = { message, element: messageElement(message) };
          shown.set(message.seq, entry);
          fragment.append(entry.element);
          added.push(entry);
        }
        list.prepend(fragment);
        if (added.length) firstSeq = added[0].message.seq;
        for (const entry of added) {
          showCounter(entry);
          regroup(entry.element);
        }
        regroup(oldFirst);
        setHasOlder(page.has_older && added.length > 0);
        // Keep what the reader was looking at in place.
        timeline.scrollTop = top + (timeline.scrollHeight - height);
      } catch (error) {
        toast(`Could not load older messages: ${error.message}`);
      } finally {
        loadingOlder = false;
        loadOlderButton.disabled = false;
      }
    }

    loadOlderButton.addEventListener("click", loadOlder);

    // -- read position --
    function markRead() {
      if (!active || document.visibilityState !== "visible" || !nearBottom()) return;
      jumpLatest.hidden = true;
      if (lastSeq <= readSent) return;
      if (!socket.send({ type: "room.read", room: roomId, seq: lastSeq })) return;
      readSent = lastSeq;
      setMemberRead(me.id, lastSeq);
      roomList.setRead(roomId, lastSeq);
    }

    let scrollQueued = false;
    timeline.addEventListener("scroll", () => {
      if (scrollQueued) return;
      scrollQueued = true;
      requestAnimationFrame(() => {
        scrollQueued = false;
        markRead();
        if (timeline.scrollTop < 80) loadOlder();
      });
    });
    document.addEventListener("visibilitychange", markRead);
    window.addEventListener("focus", markRead);
    jumpLatest.addEventListener("click", () => {
      scrollToBottom();
      markRead();
    });

    // -- sending --
    function pendingElement(body) {
      const message = {
        id: null,
        seq: 0,
        sender: me,
        body,
        created_at: new Date().toISOString(),
        edited_at: null,
        deleted: false,
      };
      const element = template.content.firstElementChild.cloneNode(true);
      element.classList.add("message-mine", "message-pending");
      part(element, "sender").textContent = me.username;
      setAvatar(part(element, "avatar"), me.username, me.id);
      setTime(part(element, "time"), message.created_at, true);
      renderText(part(element, "body"), body);
      part(element, "save").hidden = true;
      part(element, "edited").hidden = true;
      return element;
    }

    function setPendingStatus(item, text, failed) {
      item.failed = failed;
      part(item.element, "status").textContent = text;
      part(item.element, "retry").hidden = !failed;
      item.element.classList.toggle("message-failed", failed);
    }

    function transmit(clientMsgId) {
      const item = pending.get(clientMsgId);
      if (!item) return;
      const sent = socket.send({ type: "message.send", room: roomId, client_msg_id: clientMsgId, body: item.body, req: clientMsgId });
      setPendingStatus(item, sent ? "Sending…" : "Waiting for connection…", false);
    }

    function settlePending(message) {
      if (message.sender.id !== me.id) return;
      const item = pending.get(message.client_msg_id);
      if (!item) return;
      item.element.remove();
      pending.delete(message.client_msg_id);
    }

    function sendMessage(body) {
      const clientMsgId = newId();
      const element = pendingElement(body);
      const item = { body, element, failed: false };
      pending.set(clientMsgId, item);
      part(element, "retry").addEventListener("click", () => transmit(clientMsgId));
      pendingList.append(element);
      transmit(clientMsgId);
      scrollToBottom();
    }

    socket.on("message.accepted", (frame) => {
      const item = pending.get(frame.client_msg_id);
      if (item && !item.failed) setPendingStatus(item, "Sent", false);
    });

    socket.on("error", (frame) => {
      const item = frame.client_msg_id ? pending.get(frame.client_msg_id) : null;
      if (item) {
        setPendingStatus(item, `Not sent: ${frame.detail}`, true);
      } else if (frame.room === roomId && frame.code === "not_member") {
        leave("You are no longer a member of this room.");
      }
    });

    const maxBytes = config.max_body_bytes;
    byId("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = input.value;
      if (!body.trim() || !active) return;
      const size = new TextEncoder().encode(body).length;
      if (size > maxBytes) {
        toast(`This message is too long (${size} bytes; the limit is ${maxBytes}).`);
        return;
      }
      input.value = "";
      resizeComposer();
      sendMessage(body);
    });

    function resizeComposer() {
      input.style.height = "auto";
      input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
    }

    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        byId("composer").requestSubmit();
      }
    });
    input.addEventListener("input", () => {
      resizeComposer();
      const now = Date.now();
      if (input.value.trim() && now - lastTypingSent > TYPING_SEND_EVERY_MS && socket.send({ type: "typing", room: roomId })) {
        lastTypingSent = now;
      }
    });

    window.addEventListener("beforeunload", (event) => {
      if (pending.size) event.preventDefault(); // unsent messages would be lost
    });

    // -- typing --
    function showTyping() {
      const names = Array.from(typers.values(), (t) => t.username);
      const line = byId("typing");
      if (names.length === 0) line.textContent = "";
      else if (names.length === 1) line.textContent = `${names[0]} is typing…`;
      else if (names.length === 2) line.textContent = `${names[0]} and ${names[1]} are typing…`;
      else line.textContent = "Several people are typing…";
    }

    function stopTyping(userId) {
      const typer = typers.get(userId);
      if (!typer) return;
      clearTimeout(typer.timer);
      typers.delete(userId);
      showTyping();
    }

    socket.on("typing", (frame) => {
      if (frame.room !== roomId || frame.user.id === me.id) return;
      stopTyping(frame.user.id);
      typers.set(frame.user.id, {
        username: frame.user.username,
        timer: setTimeout(() => stopTyping(frame.user.id), TYPING_SHOW_MS),
      });
      showTyping();
    });

    // -- the drawer --
    function isSaved(messageId) {
      for (const id of saved.values()) if (id === messageId) return true;
      return false;
    }

    function markSaved(button) {
      button.textContent = "Saved";
      button.classList.add("is-saved");
      button.disabled = true;
    }

    function markSavedMessage(messageId) {
      const element = list.querySelector(`.message[data-id="${messageId}"]`);
      if (element) markSaved(part(element, "save"));
    }

    async function saveToDrawer(message, button) {
      button.disabled = true;
      try {
        const entry = await api("POST", "/api/v1/drawer/", { message: message.id });
        saved.set(entry.id, message.id);
        markSaved(button);
        toast("Saved to your drawer.", { href: "/drawer/", text: "Open the drawer" });
      } catch (error) {
        button.disabled = false;
        toast(`Could not save: ${error.message}`);
      }
    }

    async function loadSaved() {
      try {
        const page = await api("GET", `/api/v1/drawer/?room=${roomId}&limit=100`);
        for (const entry of page.results) {
          if (entry.message === null) continue;
          saved.set(entry.id, entry.message);
          markSavedMessage(entry.message);
        }
      } catch (error) {
        // Only the "Saved" marks are missing; saving still works.
      }
    }

    socket.on("drawer.changed", (frame) => {
      if (frame.action === "saved" && frame.entry.message !== null) {
        saved.set(frame.entry.id, frame.entry.message);
        markSavedMessage(frame.entry.message);
      } else if (frame.action === "removed" && saved.has(frame.id)) {
        const messageId = saved.get(frame.id);
        saved.delete(frame.id);
        const element = list.querySelector(`.message[data-id="${messageId}"]`);
        if (element) {
          const button = part(element, "save");
          button.textContent = "Save";
          button.classList.remove("is-saved");
          button.disabled = false;
        }
      }
    });

    // -- membership --
    function leave(text) {
      if (!active) return;
      active = false;
      notice.textContent = text;
      notice.hidden = false;
      input.disabled = true;
      byId("composer-send").disabled = true;
      byId("leave-room").hidden = true;
      for (const item of pending.values()) setPendingStatus(item, "Not sent", true);
    }

    async function removeMember(member) {
      if (!window.confirm(`Remove ${member.username} from this room?`)) return;
      try {
        await api("DELETE", `/api/v1/rooms/${roomId}/participants/${member.id}/`);
        toast(`${member.username} was removed.`);
      } catch (error) {
        toast(`Could not remove ${member.username}: ${error.message}`);
      }
    }

    byId("leave-room").addEventListener("click", async () => {
      const question =
        myRole() === "owner" && members.size > 1
          ? "Leave this room? Another member becomes its owner."
          : "Leave this room? You will no longer see its messages.";
      if (!window.confirm(question)) return;
      try {
        await api("DELETE", `/api/v1/rooms/${roomId}/participants/${me.id}/`);
        location.assign("/");
      } catch (error) {
        toast(`Could not leave: ${error.message}`);
      }
    });

    const membersToggle = byId("members-toggle");
    membersToggle.addEventListener("click", () => {
      const panel = byId("members-panel");
      panel.hidden = !panel.hidden;
      membersToggle.setAttribute("aria-expanded", String(!panel.hidden));
    });

    const inviteForm = byId("invite-form");
    if (inviteForm) {
      const inviteInput = byId("invite-username");
      const inviteStatus = byId("invite-status");
      inviteInput.addEventListener("input", () => suggestUsers(inviteInput));
      inviteForm.addEventListener("submit", async (event) => {
        event.preventDefault();
        const username = inviteInput.value.trim();
        if (!username) return;
        try {
          const user = await findUser(username);
          await api("POST", `/api/v1/rooms/${roomId}/participants/`, { user: user.id });
          inviteStatus.textContent = `${user.username} is now a member.`;
          inviteInput.value = "";
          refreshMembers();
        } catch (error) {
          inviteStatus.textContent = error.message;
        }
      });
    }

    socket.on("room.read", (frame) => {
      if (frame.room !== roomId) return;
      setMemberRead(frame.user, frame.seq);
      if (frame.user === me.id) readSent = Math.max(readSent, frame.seq);
    });
    socket.on("participant.added", (frame) => {
      if (frame.room === roomId) refreshMembers();
    });
    socket.on("participant.removed", (frame) => {
      if (frame.room !== roomId) return;
      if (frame.user === me.id) {
        leave("You are no longer a member of this room.");
        return;
      }
      members.delete(frame.user);
      stopTyping(frame.user);
      renderMembers();
      updateCounters(0, Infinity);
    });
    socket.on("participant.updated", (frame) => {
      const member = frame.room === roomId ? members.get(frame.user) : null;
      if (!member) return;
      member.role = frame.role;
      renderMembers();
    });
    socket.on("room.updated", (frame) => {
      if (frame.room !== roomId) return;
      config.room.name = frame.name;
      const title = roomTitle(config.room);
      byId("room-title").textContent = title;
      roomList.baseTitle = `${title} · Chat`;
      roomList.updateTitle();
    });
    socket.on("room.deleted", (frame) => {
      if (frame.room === roomId) leave("This room was deleted.");
    });
    socket.on("message.new", (frame) => onNew(frame.message));
    socket.on("message.updated", (frame) => {
      const entry = frame.room === roomId ? shown.get(frame.seq) : null;
      if (!entry) return;
      entry.message.body = frame.body;
      entry.message.edited_at = frame.edited_at;
      drawBody(entry.element, entry.message);
    });
    socket.on("message.deleted", (frame) => {
      const entry = frame.room === roomId ? shown.get(frame.seq) : null;
      if (!entry) return;
      entry.message.deleted = true;
      entry.message.body = "";
      drawBody(entry.element, entry.message);
      showCounter(entry);
    });

    socket.onOpen((reconnected) => {
      if (!active) return;
      // Whatever was stored while the page loaded or the socket was down comes with sync;
      // a sync asked on a dead socket has no answer coming, so ask again.
      syncing = false;
      syncAgain = false;
      requestSync();
      if (reconnected) refreshMembers();
      for (const clientMsgId of pending.keys()) {
        if (!pending.get(clientMsgId).failed) transmit(clientMsgId);
      }
      markRead();
    });

    // -- first paint, from the page's own data --
    setMembers(config.members);
    lastSeq = state.messages.length ? state.messages[0].seq - 1 : state.last_seq;
    for (const message of state.messages) receive(message);
    if (firstSeq === null) setHasOlder(state.last_seq > 0);
    const focus = config.at ? shown.get(config.at) : null;
    if (focus) {
      focus.element.classList.add("is-focused");
      focus.element.scrollIntoView({ block: "center" });
    } else if (divider) {
      // The divider near the top, with a little of what was read before it for context.
      timeline.scrollTop = divider.offsetTop - Math.min(120, timeline.clientHeight / 5);
    } else {
      scrollToBottom();
    }
    loadSaved();
    markRead();
    input.focus();
  }

  if (config.room) openRoom();

  window.Chat = { api, socket, me, setTime, toast };
  socket.connect();
})();
