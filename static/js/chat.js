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
 *  - a message is sent with a client_msg_id chosen here and kept in the outbox (localStorage, so
 *    a reload or a browser restart keeps it) until its own message.new arrives: `message.accepted`
 *    alone does not settle it. After every (re)connection the outbox's rooms are synced first and
 *    what is still pending is sent again with the same ids (the server stores it once whatever
 *    the number of sends); a refusal that cannot change (invalid, too_large, not_member,
 *    forbidden) marks it failed, never re-sent, until the person deletes it;
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
    restarting: false, // closed with 4503: until a connection opens, the server is restarting
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
        this.restarting = false;
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
          this.restarting = true;
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
      this.retryIn(delay, this.restarting ? "Server restarting… Reconnecting." : "You are offline. Reconnecting…");
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
      const newer = message.seq > room.last_seq; // a sync also replays older ones
      if (newer) {
        room.last_seq = message.seq;
        room.last_message = { seq: message.seq, preview: message.body.slice(0, 140), at: message.created_at };
      }
      if (message.sender.id === me.id) room.last_read_seq = Math.max(room.last_read_seq, message.seq);
      this.render(room, newer);
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
      if ("name" in frame) room.name = frame.name;
      if ("read_only" in frame) room.read_only = Boolean(frame.read_only);
      roomList.render(room, false);
    });
    socket.on("room.deleted", (frame) => roomList.remove(frame.room));
    socket.onOpen((reconnected) => {
      if (reconnected) roomList.refreshAll();
    });
  }

  // -- the outbox: messages typed here that the server has not stored yet ------------------------
  /*
   * Every message goes into the outbox before it is sent, and leaves it only when its own
   * message.new arrives (stored: seq known) or when the person deletes it after a refusal. The
   * outbox lives in localStorage, one key per user, so a reload, a crash or a browser restart
   * keeps it; every tab of the user shares it. Stored shape:
   *   {"<room id>": [{client_msg_id, room, body, created_at, after_seq, state, code, detail}, …]}
   * in the order typed; state is "pending" or "failed" (code and detail then say why);
   * after_seq is the room's last seq known when it was typed (where a sync looks for it).
   */
  const Outbox = {
    key: `chat.outbox.v1.${me.id}`,
    persistent: true, // false when localStorage is blocked or full: the outbox then lives in memory
    memory: {},
    listeners: [],
    notifyQueued: false,

    /** The whole outbox, read afresh (another tab may have changed it). */
    load() {
      if (this.persistent) {
        try {
          const data = JSON.parse(localStorage.getItem(this.key) || "{}");
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
          if (Object.keys(data).length) localStorage.setItem(this.key, JSON.stringify(data));
          else localStorage.removeItem(this.key);
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

    add(roomId, body, afterSeq) {
      const item = {
        client_msg_id: newId(),
        room: roomId,
        body,
        created_at: new Date().toISOString(),
        after_seq: afterSeq,
        state: "pending",
      };
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

    /** Mark a pending item failed: shown as not sent, never re-sent automatically. */
    fail(clientMsgId, code, detail) {
      const data = this.load();
      for (const list of Object.values(data)) {
        const item = Array.isArray(list) && list.find((i) => i && i.client_msg_id === clientMsgId);
        if (!item) continue;
        Object.assign(item, { state: "failed", code, detail });
        this.save(data);
        return item;
      }
      return null;
    },

    /** Make a failed item pending again (Retry, for refusals that may pass another time). */
    revive(clientMsgId) {
      const data = this.load();
      for (const list of Object.values(data)) {
        const item = Array.isArray(list) && list.find((i) => i && i.client_msg_id === clientMsgId);
        if (!item) continue;
        Object.assign(item, { state: "pending", code: undefined, detail: undefined });
        this.save(data);
        return item;
      }
      return null;
    },
  };

  window.addEventListener("storage", (event) => {
    if (event.key === Outbox.key || event.key === null) Outbox.changed(); // another tab sent, stored or deleted
  });

  // -- delivery: sending the outbox, and settling it -----------------------------------------------
  /*
   * A room's pending items go out only once that room was synced on the current connection: the
   * sync brings the message.new of whatever was stored before the connection dropped (settling
   * it without a re-send), and sends keep their order behind it. The room the page shows syncs
   * itself and calls roomSynced(); the outbox's other rooms are synced here.
   */
  const FINAL_REFUSALS = new Set(["invalid", "too_large", "not_member", "forbidden", "unauthenticated"]);
  const TRANSIENT_REFUSALS = new Set(["unavailable", "rate_limited"]);
  const RESEND_BASE_MS = 1000; // after `unavailable` / `rate_limited`, doubling
  const RESEND_MAX_MS = 30000;
  const UNSETTLED_RESEND_MS = 20000; // sent, no answer (a broker lost it?): send again, doubling
  const UNSETTLED_RESEND_MAX_MS = 300000;
  const OUTBOX_SYNC_REQ = "outbox-sync";

  const Delivery = {
    viewRoom: null, // the room the page shows and syncs itself
    synced: new Set(), // rooms synced on this connection: their items may go out
    syncing: [], // the rooms of the outbox's own sync, until its sync.done
    inFlight: new Set(), // client_msg_ids sent on this connection with no answer yet
    retries: new Map(), // room id -> {attempts, timer}: the room's next re-send

    /** Send ``body`` to ``roomId`` (whose last known seq is ``afterSeq``) through the outbox. */
    send(roomId, body, afterSeq) {
      const item = Outbox.add(roomId, body, afterSeq);
      this.flush(roomId); // goes now if the room is synced on an open socket, else after the next sync
      return item;
    },

    transmit(item) {
      const sent = socket.send({
        type: "message.send",
        room: item.room,
        client_msg_id: item.client_msg_id,
        body: item.body,
        req: item.client_msg_id,
      });
      if (sent) this.inFlight.add(item.client_msg_id);
      return sent;
    },

    /** Send the room's pending items not already on their way, in the order they were typed. */
    flush(roomId) {
      if (!socket.isOpen || !this.synced.has(roomId)) return;
      const items = Outbox.pending(roomId).filter((item) => !this.inFlight.has(item.client_msg_id));
      if (!items.length) return;
      for (const item of items) this.transmit(item);
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
        if (everything) for (const item of Outbox.pending(roomId)) this.inFlight.delete(item.client_msg_id);
        this.flush(roomId);
      }, delay);
      this.retries.set(roomId, retry);
    },

    /** A delay for the ``attempts``-th try: doubling, jittered, capped. */
    backoff(attempts) {
      const ceiling = Math.min(RESEND_MAX_MS, RESEND_BASE_MS * 2 ** attempts);
      return ceiling / 2 + (Math.random() * ceiling) / 2;
    },

    /** The wait a refusal names: a `retry_after` field (seconds), or "retry in 1.5 s" in its detail. */
    retryAfterMs(frame) {
      const named = Number(frame.retry_after);
      if (named > 0) return named * 1000;
      const match = /retry in ([0-9.]+) ?s/i.exec(frame.detail || "");
      return match ? Number(match[1]) * 1000 : 0;
    },

    /** The first sync of ``roomId`` on this connection is done: its pending items go out. */
    roomSynced(roomId) {
      if (this.synced.has(roomId)) return;
      this.synced.add(roomId);
      this.flush(roomId);
    },

    /** The seq a sync of ``roomId`` starts after: early enough to bring the pending items' message.new. */
    syncFrom(roomId, knownSeq) {
      let from = Number.isInteger(knownSeq) ? knownSeq : Infinity;
      for (const item of Outbox.pending(roomId)) {
        if (Number.isInteger(item.after_seq) && item.after_seq >= 0) from = Math.min(from, item.after_seq);
      }
      return Number.isFinite(from) ? from : 0;
    },

    /** Sync the outbox's rooms other than the page's own (which syncs itself). */
    syncRooms() {
      const rooms = {};
      this.syncing = Outbox.rooms().filter((roomId) => roomId !== this.viewRoom && !this.synced.has(roomId));
      for (const roomId of this.syncing) {
        const known = roomList.rooms.has(roomId) ? roomList.rooms.get(roomId).last_seq : undefined;
        rooms[roomId] = this.syncFrom(roomId, known);
      }
      if (this.syncing.length) socket.send({ type: "sync", rooms, req: OUTBOX_SYNC_REQ });
    },

    /** A message is stored: if it is one of ours, it leaves the outbox. */
    stored(message) {
      if (!message || message.sender.id !== me.id || !message.client_msg_id) return;
      this.inFlight.delete(message.client_msg_id);
      if (!Outbox.settle(message.client_msg_id)) return;
      const retry = this.retries.get(message.room);
      if (!retry) return;
      if (Outbox.pending(message.room).length === 0) {
        clearTimeout(retry.timer);
        this.retries.delete(message.room);
      } else {
        retry.attempts = 0; // it moves: wait the short time again
      }
    },

    onOpen() {
      this.synced.clear();
      this.inFlight.clear();
      this.syncRooms();
      Outbox.changed(); // "Waiting for connection…" becomes "Sending…"
    },

    onClose() {
      // Everything pending goes again after the next connection's sync.
      this.synced.clear();
      this.inFlight.clear();
      this.syncing = [];
      for (const retry of this.retries.values()) clearTimeout(retry.timer);
      this.retries.clear();
      Outbox.changed();
    },

    onError(frame) {
      if (frame.req === OUTBOX_SYNC_REQ) {
        // A room we left answers not_member (its sends will fail one by one, then sync.done
        // comes); a refused sync (rate_limited, unavailable) has no sync.done coming: ask again.
        if (frame.code !== "not_member") {
          this.syncing = [];
          setTimeout(() => socket.isOpen && this.syncRooms(), Math.max(this.retryAfterMs(frame), this.backoff(2)));
        }
        return;
      }
      const clientMsgId = frame.client_msg_id || (typeof frame.req === "string" ? frame.req : null);
      const item = clientMsgId ? Outbox.get(clientMsgId) : null;
      if (!item || item.state === "failed") return;
      this.inFlight.delete(clientMsgId);
      if (TRANSIENT_REFUSALS.has(frame.code)) {
        // Outcome unknown or refused for now: the same id goes again later (stored once).
        const retry = this.retries.get(item.room);
        this.schedule(item.room, Math.max(this.retryAfterMs(frame), this.backoff(retry ? retry.attempts : 0)));
      } else {
        Outbox.fail(clientMsgId, frame.code, frame.detail || frame.code);
      }
    },

    /** Words for an item's state, as shown next to it. */
    status(item) {
      if (item.state === "failed") return `Not sent: ${item.detail || item.code}`;
      return socket.isOpen ? "Sending…" : "Waiting for connection…";
    },

    /** A failed item may be tried again by hand when the refusal was not one that cannot change. */
    canRetry(item) {
      return item.state === "failed" && !FINAL_REFUSALS.has(item.code);
    },

    retry(clientMsgId) {
      const item = Outbox.revive(clientMsgId);
      if (item) this.flush(item.room);
    },
  };

  socket.on("message.new", (frame) => Delivery.stored(frame.message));
  socket.on("error", (frame) => Delivery.onError(frame));
  socket.on("sync.done", (frame) => {
    if (frame.req !== OUTBOX_SYNC_REQ) return;
    const rooms = Delivery.syncing;
    Delivery.syncing = [];
    for (const roomId of rooms) Delivery.roomSynced(roomId);
  });
  socket.onOpen(() => Delivery.onOpen());
  socket.onClose(() => Delivery.onClose());
  window.addEventListener("beforeunload", (event) => {
    // Only when the outbox could not be kept: leaving would lose what is still pending.
    if (!Outbox.persistent && Outbox.rooms().length) event.preventDefault();
  });

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
    const pendingShown = new Map(); // client_msg_id -> element of an outbox item
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
    let readOnly = false;
    let lastTypingSent = 0;
    Delivery.viewRoom = roomId;

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
      dropPending(message);
    }

    function flushAhead() {
      while (ahead.has(lastSeq + 1)) {
        const next = ahead.get(lastSeq + 1);
        ahead.delete(lastSeq + 1);
        append(next);
      }
    }

    function receive(message) {
      Delivery.stored(message); // from the page's data, a sync or REST too, not only live
      if (shown.has(message.seq) || message.seq <= lastSeq) {
        dropPending(message); // a repeat (sync after a reconnection, a re-send): already shown
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
      // From early enough to bring the message.new of pending messages stored meanwhile; repeats are dropped.
      const from = Delivery.syncFrom(roomId, lastSeq);
      socket.send({ type: "sync", rooms: { [roomId]: from }, req: `sync-${roomId}` });
    }

    function syncFinished() {
      syncing = false;
      Delivery.roomSynced(roomId); // the first one on this connection lets the outbox go
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

    // -- sending: the outbox's items of this room, drawn below the stored messages --
    function pendingElement(item) {
      const element = template.content.firstElementChild.cloneNode(true);
      element.classList.add("message-mine", "message-pending");
      element.dataset.clientMsgId = item.client_msg_id;
      part(element, "sender").textContent = me.username;
      setAvatar(part(element, "avatar"), me.username, me.id);
      setTime(part(element, "time"), item.created_at, true);
      renderText(part(element, "body"), item.body);
      part(element, "save").hidden = true;
      part(element, "edited").hidden = true;
      part(element, "retry").addEventListener("click", () => Delivery.retry(item.client_msg_id));
      part(element, "discard").addEventListener("click", () => Outbox.settle(item.client_msg_id));
      return element;
    }

    function showPendingState(element, item) {
      const failed = item.state === "failed";
      element.dataset.state = failed ? "failed" : "pending";
      element.classList.toggle("message-failed", failed);
      part(element, "status").textContent = Delivery.status(item);
      part(element, "retry").hidden = !Delivery.canRetry(item);
      part(element, "discard").hidden = !failed;
    }

    function isArriving(clientMsgId) {
      // Stored, but waiting behind a gap to be shown: keep the pending one until then.
      for (const message of ahead.values()) if (message.client_msg_id === clientMsgId) return true;
      return false;
    }

    /** Make the pending list match the outbox (this tab's sends, other tabs', a reload's). */
    function drawPending() {
      const items = Outbox.items(roomId);
      const ids = new Set(items.map((item) => item.client_msg_id));
      for (const [clientMsgId, element] of pendingShown) {
        if (ids.has(clientMsgId) || isArriving(clientMsgId)) continue;
        element.remove();
        pendingShown.delete(clientMsgId);
      }
      const stick = nearBottom();
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
      if (added && stick) scrollToBottom();
    }

    /** The stored message replaces its pending copy. */
    function dropPending(message) {
      if (message.sender.id !== me.id || !message.client_msg_id) return;
      const element = pendingShown.get(message.client_msg_id);
      if (!element) return;
      element.remove();
      pendingShown.delete(message.client_msg_id);
    }

    function sendMessage(body) {
      Delivery.send(roomId, body, lastSeq);
      drawPending();
      scrollToBottom();
    }

    Outbox.onChange(drawPending);

    socket.on("error", (frame) => {
      // A refused send is the outbox's; a refused sync or read of this room means we are out.
      if (frame.room === roomId && frame.code === "not_member" && !frame.client_msg_id) {
        leave("You are no longer a member of this room.");
      } else if (frame.req === `sync-${roomId}`) {
        // Refused for now (rate_limited, unavailable): no sync.done is coming, so ask again later;
        // the outbox waits for it.
        syncing = false;
        syncAgain = false;
        setTimeout(requestSync, Math.max(Delivery.retryAfterMs(frame), Delivery.backoff(2)));
      }
    });

    const maxBytes = config.max_body_bytes;
    byId("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = input.value;
      if (!body.trim() || !active || readOnly) return;
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
      Delivery.viewRoom = null;
      for (const item of Outbox.pending(roomId)) Outbox.fail(item.client_msg_id, "not_member", text);
    }

    /** A direct room whose other person is gone: readable, but nobody would read a reply. */
    function setReadOnly(value) {
      readOnly = Boolean(value);
      config.room.read_only = readOnly;
      byId("room-read-only").hidden = !readOnly;
      if (!active) return;
      input.disabled = readOnly;
      byId("composer-send").disabled = readOnly;
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
      if ("read_only" in frame) setReadOnly(frame.read_only);
      if (!("name" in frame)) return;
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
      markRead();
    });

    // -- first paint, from the page's own data --
    setReadOnly(config.room.read_only); // a missing field (an older server) is false
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
    drawPending(); // what the outbox still holds for this room, from before a reload too
    loadSaved();
    markRead();
    if (!readOnly) input.focus();
  }

  if (config.room) openRoom();

  window.Chat = { api, socket, me, setTime, toast };
  socket.connect();
})();
