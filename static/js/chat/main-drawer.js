/*
 * The drawer page's entry module (templates/drawer/drawer.html): the shared socket and outbox
 * (a message still pending from a room page keeps going out from here), and the drawer itself.
 */
import { start } from "./app.js";
import { setupDrawer } from "./drawer.js";
import { readConfig, toast } from "./util.js";

const config = readConfig();
if (config) {
  const app = start(config);
  const list = document.getElementById("drawer-entries");
  if (list) setupDrawer({ list, api: app.api, socket: app.socket, toast });
  app.socket.connect();
}
