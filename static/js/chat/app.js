/*
 * What every page with the chat's data (the `chat-config` json_script block) starts: the socket
 * with its offline banner, the outbox and its delivery, the sidebar's room list when the page
 * has one, and browser notifications. The handlers are registered in this order on purpose: for a frame type that
 * several modules take (message.new, sync.done, error), the room list runs first, then the
 * outbox's delivery, then the open room (page entries register theirs after start()).
 */
import { api } from "./api.js";
import { createDelivery } from "./delivery.js";
import { createNotifier } from "./notify.js";
import { createOutbox } from "./outbox.js";
import { createPresence } from "./presence.js";
import { createRoomList, setupNewRoom } from "./rooms.js";
import { setTime } from "./format.js";
import { chatSocketUrl, createBanner, createSocket, watchConnectivity } from "./socket.js";
import { byId, toast } from "./util.js";
import { createWarnings } from "./warnings.js";

/** Start the shared parts for the page's ``config``; connect with ``app.socket.connect()`` once the page's own parts are attached. */
export function start(config) {
  const me = config.me;
  const banner = createBanner(byId("offline-banner"));
  const socket = createSocket({ url: chatSocketUrl(), banner });
  watchConnectivity(socket, banner);
  // Who is online: shared by the room list and the open room's members and header.
  const presence = createPresence({ socket, me });
  presence.attach();

  const listElement = byId("room-list");
  const roomList = createRoomList({
    element: listElement,
    template: byId("room-row-template"),
    empty: byId("room-list-empty"),
    rooms: listElement ? config.rooms || [] : [],
    current: config.room ? config.room.id : null,
    api,
    presence,
  });
  if (listElement) {
    roomList.init();
    roomList.attach(socket, me);
  }

  const outbox = createOutbox({ userId: me.id });
  outbox.watch(window);
  const delivery = createDelivery({
    socket,
    outbox,
    me,
    knownSeq: (roomId) => (roomList.rooms.has(roomId) ? roomList.rooms.get(roomId).last_seq : undefined),
  });
  delivery.attach();

  createNotifier({ socket, roomList, me, button: byId("notifications-enable") }).attach();
  // Moderators' warnings: a banner until dismissed (docs/moderation.md).
  const warnings = createWarnings({ socket, api });
  warnings.attach();
  warnings.load();
  setupNewRoom(api);
  // A handle for the console and the browser tests (they close the socket through it); no module reads it.
  window.Chat = { api, socket, me, setTime, toast };
  return { config, me, api, socket, banner, roomList, outbox, delivery, presence };
}
