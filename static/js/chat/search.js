/*
 * Message search in the sidebar (templates/chat/_search.html) over GET /api/v1/search/: the box
 * searches as the user types (debounced) and at once on Enter; on a room page it searches that
 * room unless "All rooms" is chosen. The results take the room list's place: room, sender, time
 * and the snippet with the matched words in <mark> (drawn as text, never as HTML); "More
 * results" follows `next_cursor`. A result is a link to its room opened at the message
 * (?at=seq); one in the room already open jumps there without leaving the page. Escape, or the
 * close button, gives the room list back.
 */
import { roomTitle, setTime } from "./format.js";
import { byId } from "./util.js";

export const DEBOUNCE_MS = 300;
export const TYPE_MIN_CHARS = 2; // typing searches from two characters; Enter searches any
export const PAGE_SIZE = 20;
// A page may hold no hits and still say there are more (the server skips what the user may no
// longer see); follow that many before asking the user to.
const EMPTY_PAGES_FOLLOWED = 3;

/** The API URL of a search for ``q``: in ``room`` (an id) or all rooms, from ``page`` ({cursor} or {before}). */
export function searchUrl({ q, room = null, page = null, limit = PAGE_SIZE }) {
  const params = new URLSearchParams({ q, limit: String(limit) });
  if (room) params.set("room", String(room));
  if (page && page.cursor) params.set("cursor", page.cursor);
  else if (page && page.before) params.set("before", String(page.before));
  return `/api/v1/search/?${params}`;
}

/**
 * Where the page after ``answer`` starts ({cursor}, or {before} from a server older than
 * `next_cursor`), or null at the end.
 */
export function nextPage(answer) {
  if ("next_cursor" in answer) return answer.next_cursor ? { cursor: answer.next_cursor } : null;
  return answer.next_before ? { before: answer.next_before } : null;
}

/** The page of ``hit``'s room opened at its message. */
export function hitUrl(hit) {
  return `/rooms/${hit.room}/?at=${hit.seq}`;
}

/**
 * Fill ``element`` with ``hit``'s snippet: its text segments as text, the matched ones in <mark>.
 * A hit without a snippet (an older server) shows its body.
 */
export function drawSnippet(element, hit) {
  const segments = Array.isArray(hit.snippet) && hit.snippet.length ? hit.snippet : [{ text: hit.body || "", hit: false }];
  element.replaceChildren();
  for (const segment of segments) {
    if (!segment.text) continue;
    if (segment.hit) {
      const mark = document.createElement("mark");
      mark.textContent = segment.text;
      element.append(mark);
    } else {
      element.append(document.createTextNode(segment.text));
    }
  }
}

/** What the live status line says of ``count`` hits shown for ``q``, ``more`` when another page exists. */
export function statusText(count, q, more) {
  const quoted = `“${q}”`;
  if (count === 0) return more ? `No results for ${quoted} so far` : `No messages match ${quoted}`;
  const noun = count === 1 ? "result" : "results";
  return more ? `${count} ${noun} for ${quoted}, more available` : `${count} ${noun} for ${quoted}`;
}

/**
 * The search of the sidebar. ``api`` calls the REST API; ``roomList`` (rooms.js) names the rooms
 * as the sidebar does; ``room`` is the open room ({id, jumpTo(seq)}) on a room page, else null.
 */
export function createSearch({ api, roomList, room = null }) {
  const form = byId("search-form");
  if (!form) return { attach() {} };
  const input = byId("search-input");
  const results = byId("search-results");
  const status = byId("search-status");
  const errorLine = byId("search-error");
  const hits = byId("search-hits");
  const more = byId("search-more");
  const sidebar = form.closest(".sidebar");
  const app = form.closest(".chat-app");

  let timer = null;
  let asked = 0; // the number of the latest request: an answer to an older one is dropped
  let current = null; // {q, room, next, count}

  function scopeRoom() {
    if (!room) return null;
    const checked = form.querySelector("input[name=search-scope]:checked");
    return checked && checked.value === "all" ? null : room.id;
  }

  function roomName(hit) {
    const known = roomList && roomList.rooms.get(hit.room);
    if (known) return roomTitle(known);
    return hit.room_name || `Room ${hit.room}`;
  }

  function hitElement(hit) {
    const item = document.createElement("li");
    item.className = "search-hit";
    const link = document.createElement("a");
    link.className = "search-hit-link";
    link.href = hitUrl(hit);
    link.dataset.room = hit.room;
    link.dataset.seq = hit.seq;
    const head = document.createElement("span");
    head.className = "search-hit-head";
    const where = document.createElement("span");
    where.className = "search-hit-room";
    where.textContent = roomName(hit);
    const who = document.createElement("span");
    who.className = "search-hit-sender";
    who.textContent = (hit.sender && hit.sender.username) || "deleted user";
    const when = document.createElement("time");
    when.className = "search-hit-time";
    setTime(when, hit.created_at, true);
    head.append(where, who, when);
    const text = document.createElement("span");
    text.className = "search-hit-snippet";
    drawSnippet(text, hit);
    link.append(head, text);
    link.addEventListener("click", (event) => {
      // Here already: go to the message without reloading the page (jumpTo opens it at the
      // message when it is not among those loaded).
      if (!room || hit.room !== room.id || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      showConversation();
      room.jumpTo(hit.seq);
    });
    item.append(link);
    return item;
  }

  function open() {
    results.hidden = false;
    sidebar.classList.add("is-searching");
  }

  /** Back to the room list: the results, the query and any pending search are dropped. */
  function close() {
    clearTimeout(timer);
    asked += 1;
    current = null;
    results.hidden = true;
    sidebar.classList.remove("is-searching");
    hits.replaceChildren();
    more.hidden = true;
    errorLine.hidden = true;
    status.textContent = "";
    input.value = "";
    showConversation();
  }

  /** A narrow screen shows the room again (the search had taken its place). */
  function showConversation() {
    if (app) app.classList.remove("is-searching");
  }

  function showError(error) {
    errorLine.textContent = `Search failed: ${error.message || "the server did not answer."}`;
    errorLine.dataset.code = error.code || "";
    errorLine.hidden = false;
    status.textContent = "Search failed";
  }

  /** Fetch the page ``page`` of ``search`` and add its hits; empty pages that say "more" are followed a few times. */
  async function fetchInto(search, page, ticket) {
    let next = page;
    for (let followed = 0; ; followed += 1) {
      const answer = await api("GET", searchUrl({ q: search.q, room: search.room, page: next }));
      if (ticket !== asked) return false;
      for (const hit of answer.hits) hits.append(hitElement(hit));
      search.count += answer.hits.length;
      next = nextPage(answer);
      if (answer.hits.length || !next || followed >= EMPTY_PAGES_FOLLOWED) break;
    }
    search.next = next;
    return true;
  }

  async function run(page = null) {
    const q = input.value.trim();
    clearTimeout(timer);
    if (!q) {
      close();
      return;
    }
    const ticket = ++asked;
    const first = page === null;
    const search = first ? { q, room: scopeRoom(), next: null, count: 0 } : current;
    if (first) {
      current = search;
      hits.replaceChildren();
      more.hidden = true;
    }
    open();
    errorLine.hidden = true;
    status.textContent = first ? "Searching…" : "Loading more results…";
    results.setAttribute("aria-busy", "true");
    more.disabled = true;
    try {
      if (!(await fetchInto(search, page, ticket))) return;
      status.textContent = statusText(search.count, search.q, Boolean(search.next));
      more.hidden = !search.next;
    } catch (error) {
      if (ticket === asked) showError(error);
    } finally {
      if (ticket === asked) {
        results.removeAttribute("aria-busy");
        more.disabled = false;
      }
    }
  }

  function links() {
    return Array.from(hits.querySelectorAll(".search-hit-link"));
  }

  return {
    run,
    close,

    /** Open the search (a room page's header button): the box focused, this room's scope, on a narrow screen in the room's place. */
    focus() {
      const here = form.querySelector("input[name=search-scope][value=room]");
      if (here && !here.checked) {
        here.checked = true;
        here.dispatchEvent(new Event("change"));
      }
      if (app) app.classList.add("is-searching");
      input.focus();
      input.select();
    },

    attach() {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        run();
      });
      input.addEventListener("input", () => {
        clearTimeout(timer);
        const q = input.value.trim();
        if (!q) {
          if (current) close();
          return;
        }
        if (q.length >= TYPE_MIN_CHARS) timer = setTimeout(() => run(), DEBOUNCE_MS);
      });
      for (const radio of form.querySelectorAll("input[name=search-scope]")) {
        radio.addEventListener("change", () => {
          input.placeholder = scopeRoom() ? "Search this room" : "Search all your rooms";
          if (input.value.trim()) run();
        });
      }
      more.addEventListener("click", () => {
        if (current && current.next) run(current.next);
      });
      byId("search-close").addEventListener("click", () => {
        close();
        input.focus();
      });
      // Escape anywhere in the search closes it; the arrows move between the box and the results.
      const keys = (event) => {
        if (event.key === "Escape" && (current || (app && app.classList.contains("is-searching")))) {
          event.preventDefault();
          event.stopPropagation();
          close();
          input.focus();
          return;
        }
        if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
        const all = links();
        if (!all.length) return;
        const at = all.indexOf(document.activeElement);
        if (event.target === input && event.key === "ArrowDown") all[0].focus();
        else if (at >= 0 && event.key === "ArrowDown") all[Math.min(at + 1, all.length - 1)].focus();
        else if (at === 0 && event.key === "ArrowUp") input.focus();
        else if (at > 0) all[at - 1].focus();
        else return;
        event.preventDefault();
      };
      form.addEventListener("keydown", keys);
      results.addEventListener("keydown", keys);
    },
  };
}
