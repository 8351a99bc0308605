/*
 * The chat pages' entry module (templates/chat/_layout.html): the room list, and the open room
 * on a room page. Plain ES modules: no build step, no dependency, nothing loaded from elsewhere.
 * The protocol is docs/protocol.md.
 */
import { start } from "./app.js";
import { openRoom } from "./room/index.js";
import { setTime } from "./format.js";
import { readConfig, toast } from "./util.js";

const config = readConfig();
if (config) {
  const app = start(config);
  if (config.room) openRoom(app);
  // A handle for the console and the browser tests (they close the socket through it).
  window.Chat = { api: app.api, socket: app.socket, me: app.me, setTime, toast };
  app.socket.connect();
}
