/*
 * The one WebSocket to /ws/chat/ (the session cookie authenticates it): connecting, backing off,
 * the close codes of docs/protocol.md, and handing each frame to the handlers of its type.
 * What to do after a connection opens (sync, then re-send the outbox) belongs to the modules
 * that register onOpen handlers; handlers of a type run in the order they were registered.
 */
import { part } from "./util.js";

export const CLOSE_UNAUTHENTICATED = 4401; // logged out, account gone: never reconnect by itself
export const CLOSE_SUSPENDED = 4403; // a moderator suspended the account: never reconnect by itself
export const CLOSE_TOO_MANY_SOCKETS = 4429; // this user has too many sockets open
export const CLOSE_GOING_AWAY = 4503; // the server is stopping; another takes over soon
export const CLOSE_EVENTS_LOST = 4012; // reconnect and sync (the default path)
export const CLOSE_TOO_SLOW = 4408; // this page read too slowly (a stalled tab): the default path too

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 10000;
const TOO_MANY_SOCKETS_RETRY_MS = 30000; // close code 4429: at least this long, or a click on Retry
const RESTART_RETRY_MIN_MS = 500; // close code 4503: spread the pages over a short window
const RESTART_RETRY_MAX_MS = 3000;

const OFFLINE_TEXT = "You are offline. Reconnecting…";
const RESTARTING_TEXT = "Server restarting… Reconnecting.";

/**
 * What to do after a close with ``code``, given the failed ``attempts`` so far and whether the
 * server said it was ``restarting``: ``{stop, text}`` or ``{delay, text, attempts, restarting}``
 * (the new counters). ``random`` is Math.random unless a test fixes it.
 */
export function reconnectPlan(code, { attempts = 0, restarting = false, random = Math.random } = {}) {
  if (code === CLOSE_UNAUTHENTICATED) {
    // Logged out (here or elsewhere), or the account is gone: reconnecting cannot help.
    return { stop: true, text: "Your session has ended. Log in again to keep chatting." };
  }
  if (code === CLOSE_SUSPENDED) {
    // Reconnecting is refused until the suspension ends; the log-in page says until when.
    return { stop: true, text: "A moderator suspended your account. Log in again to see until when." };
  }
  if (code === CLOSE_TOO_MANY_SOCKETS) {
    // Another try soon would only be refused again.
    const delay = TOO_MANY_SOCKETS_RETRY_MS * (1 + random() / 2);
    return { delay, text: "Too many open tabs/devices; close one to keep chatting here.", attempts, restarting };
  }
  if (code === CLOSE_GOING_AWAY) {
    const delay = RESTART_RETRY_MIN_MS + random() * (RESTART_RETRY_MAX_MS - RESTART_RETRY_MIN_MS);
    return { delay, text: RESTARTING_TEXT, attempts: 0, restarting: true };
  }
  // 4012 (events may have been lost), 4408 (read too slowly), a network failure, a crash: the
  // sync after the reconnection catches up either way. Exponential backoff with jitter, so a
  // restarted server is not hit by every page at once.
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempts);
  const delay = ceiling / 2 + (random() * ceiling) / 2;
  return { delay, text: restarting ? RESTARTING_TEXT : OFFLINE_TEXT, attempts: attempts + 1, restarting };
}

/** The "offline" banner of ``element`` (the page may have none: then it does nothing). */
export function createBanner(element) {
  return {
    element,
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
}

function loginAgain() {
  location.assign(`/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
}

/**
 * A socket to ``url`` that reconnects by itself. ``banner`` shows the connection's state;
 * ``onUnauthenticated`` runs on close code 4401 or 4403 (by default: go to the login page).
 */
export function createSocket({ url, banner = createBanner(null), onUnauthenticated = loginAgain }) {
  return {
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

    /** ``handler(frame)`` runs for every frame of ``type``. */
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

    dispatch(frame) {
      for (const handler of this.handlers.get(frame.type) || []) handler(frame);
    },

    connect() {
      clearTimeout(this.timer);
      this.timer = null;
      if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
      const ws = new WebSocket(url);
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
        this.dispatch(frame);
      };
      ws.onclose = (event) => this.closed(ws, event.code);
    },

    /**
     * Give ``this.ws`` up now, as if it had closed with 1006: the network went, and its close
     * handshake may never finish (the browser waits for the server's answer, up to a minute), so
     * waiting for ``onclose`` would leave the page looking connected and nothing reconnecting.
     */
    abandon() {
      const ws = this.ws;
      // Closing already: the server's own close code (a log-out, a restart) is on its way.
      if (!ws || ws.readyState > WebSocket.OPEN) return;
      // Nothing more from it counts (the next connection's sync catches up), not even a late open.
      ws.onopen = null;
      ws.onmessage = null;
      ws.close();
      this.closed(ws, 1006);
    },

    /** ``ws`` ended with ``code``: tell the handlers and plan the next connection (once per ws). */
    closed(ws, code) {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const handler of this.closeHandlers) handler();
      if (this.stopped) return;
      const plan = reconnectPlan(code, { attempts: this.attempts, restarting: this.restarting });
      if (plan.stop) {
        this.stopped = true;
        banner.show(plan.text, false);
        onUnauthenticated();
        return;
      }
      this.attempts = plan.attempts;
      this.restarting = plan.restarting;
      this.retryIn(plan.delay, plan.text, { hold: code === CLOSE_TOO_MANY_SOCKETS });
    },

    /** Connect again after ``delay``; with ``hold``, not before it even when the network returns. */
    retryIn(delay, text, { hold = false } = {}) {
      clearTimeout(this.timer);
      this.notBefore = hold ? Date.now() + delay : 0;
      banner.show(text);
      this.timer = setTimeout(() => this.connect(), delay);
    },
  };
}

/** The chat socket of this page's host. */
export function chatSocketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws/chat/`;
}

/** Reconnect on the person's "Retry now" and when the browser is back online; stop when leaving. */
export function watchConnectivity(socket, banner) {
  // "Retry now" is the person's call (they may just have closed another tab); "online" is not.
  if (banner.element) part(banner.element, "retry").addEventListener("click", () => socket.connect());
  window.addEventListener("online", () => {
    if (Date.now() >= socket.notBefore) socket.connect();
  });
  window.addEventListener("offline", () => {
    // The socket can look open for a long while after the network went; start over at once.
    socket.abandon();
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
}
