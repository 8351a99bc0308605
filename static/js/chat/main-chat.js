/*
 * The chat pages' entry module (templates/chat/_layout.html): the room list, and the open room
 * on a room page. Plain ES modules: no build step, no dependency, nothing loaded from elsewhere.
 * The protocol is docs/protocol.md. The modules:
 *   main-chat.js, main-drawer.js  one entry per page: read the page's data, start, connect
 *   app.js       what every page starts: socket + banner, room list, outbox + delivery
 *   socket.js    the WebSocket: connect, back-off, close codes, frame dispatch
 *   outbox.js    the pending messages, in localStorage
 *   delivery.js  sending the outbox after each sync, settling and failing its items
 *   rooms.js     the sidebar's room list (badges, order, unread title) and "New" panel
 *   search.js    message search in the sidebar: results that open the room at the message
 *   room/        the open room (room/index.js says which part does what)
 *   drawer.js    the drawer page
 *   api.js, people.js, format.js, util.js  REST calls, user lookups, shared helpers
 */
import { start } from "./app.js";
import { openRoom } from "./room/index.js";
import { createSearch } from "./search.js";
import { byId, readConfig } from "./util.js";

const config = readConfig();
if (config) {
  const app = start(config);
  const view = config.room ? openRoom(app) : null;
  const room = view && { id: view.roomId, jumpTo: (seq) => view.timeline.jumpTo(seq) };
  const search = createSearch({ api: app.api, roomList: app.roomList, room });
  search.attach();
  const opener = byId("search-open");
  if (opener) opener.addEventListener("click", () => search.focus());
  app.socket.connect();
}
