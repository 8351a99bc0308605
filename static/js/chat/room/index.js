/*
 * The open room (templates/chat/room.html): puts together its parts, each in its own module,
 * around one shared ``view`` (the room, the page's elements, the services, and the parts
 * themselves, so that they can call each other):
 *   timeline.js  the messages in seq order, sync and gaps, older history, the read position
 *   messages.js  one message's element
 *   members.js   the members panel and the per-message unread counters
 *   composer.js  the composer and the outbox's pending / failed items of this room
 *   attachments.js  files for the next message: Attach, drop, paste, uploads, the tray
 *   gallery.js   attachments in messages: image previews, the lightbox, file cards
 *   typing.js    "… is typing"
 *   saved.js     Save to the drawer
 *   report.js    Report a message to the site's moderators
 *   editing.js   Edit and Delete on stored messages, the Up arrow
 *   reactions.js reactions under each message, the React picker
 *   replies.js   Reply, the quote above a reply, the reply bar over the composer
 *   mute.js      Mute / Unmute in the header
 *   settings.js  the topic under the title; Settings (rename, topic, delete) for owners and admins
 *   reads.js     who has read a message (a popover), Mark unread
 * and owns the room's state (active, read-only) and its frames about the room as a whole.
 */
import { roomTitle } from "../format.js";
import { byId, toast } from "../util.js";
import { drawBody } from "./messages.js";
import { createAttachments } from "./attachments.js";
import { createComposer } from "./composer.js";
import { createEditing } from "./editing.js";
import { createLightbox, openPreviewsIn } from "./gallery.js";
import { createReactions } from "./reactions.js";
import { createMute } from "./mute.js";
import { createReplies } from "./replies.js";
import { createMembers } from "./members.js";
import { createReads } from "./reads.js";
import { createReport } from "./report.js";
import { createSaved } from "./saved.js";
import { createSettings } from "./settings.js";
import { createTimeline } from "./timeline.js";
import { createTyping } from "./typing.js";

/**
 * Show the room of ``config`` (the page's data) live over ``socket``; ``delivery`` and
 * ``outbox`` send what is typed, ``roomList`` is the sidebar's list.
 */
export function openRoom({ config, socket, api, outbox, delivery, roomList }) {
  const room = config.room;
  const view = {
    roomId: room.id,
    room,
    me: config.me,
    pageSize: config.page_size,
    maxBytes: config.max_body_bytes,
    maxAttachments: config.max_attachments, // undefined from a server that does not say: the default
    editWindowS: config.edit_window_s,
    socket,
    api,
    outbox,
    delivery,
    roomList,
    toast,
    el: {
      timeline: byId("timeline"),
      list: byId("messages"),
      pendingList: byId("pending"),
      template: byId("message-template"),
      input: byId("composer-input"),
      notice: byId("room-notice"),
      jumpLatest: byId("jump-latest"),
      loadOlderButton: byId("load-older"),
      historyStart: byId("history-start"),
    },
    active: true,
    readOnly: false,

    /** The user is out of the room (removed, or it was deleted): read-only, its sends fail. */
    leave(text) {
      if (!this.active) return;
      this.active = false;
      this.el.notice.textContent = text;
      this.el.notice.hidden = false;
      this.el.input.disabled = true;
      byId("composer-send").disabled = true;
      byId("composer-attach").disabled = true;
      byId("leave-room").hidden = true;
      delivery.viewRoom = null;
      for (const item of outbox.pending(this.roomId)) outbox.fail(item.client_msg_id, "not_member", text);
    },

    /** A direct room whose other person is gone: readable, but nobody would read a reply. */
    setReadOnly(value) {
      this.readOnly = Boolean(value);
      room.read_only = this.readOnly;
      byId("room-read-only").hidden = !this.readOnly;
      if (!this.active) return;
      this.el.input.disabled = this.readOnly;
      byId("composer-send").disabled = this.readOnly;
      byId("composer-attach").disabled = this.readOnly;
    },
  };
  delivery.viewRoom = view.roomId;
  view.members = createMembers(view);
  view.typing = createTyping(view);
  view.saved = createSaved(view);
  view.report = createReport(view);
  view.editing = createEditing(view);
  view.reactions = createReactions(view);
  view.replies = createReplies(view);
  view.mute = createMute(view);
  view.composer = createComposer(view);
  view.attachments = createAttachments(view);
  view.lightbox = createLightbox(byId("lightbox"));
  view.timeline = createTimeline(view, config.state);
  view.settings = createSettings(view);
  view.reads = createReads(view);

  view.timeline.attach();
  view.composer.attach();
  view.attachments.attach();
  view.lightbox.attach();
  openPreviewsIn(view.el.timeline, view.lightbox);
  view.typing.attach(socket);
  view.saved.attach(socket);
  view.report.attach();
  view.editing.attach();
  view.reactions.attach();
  view.replies.attach();
  view.mute.attach();
  view.members.attach(socket);
  attachRoomFrames(view);
  view.settings.attach(socket); // after members and the room's frames: it reads what they applied
  view.reads.attach();

  // -- first paint, from the page's own data --
  view.setReadOnly(room.read_only); // a missing field (an older server) is false
  view.members.set(config.members);
  view.timeline.paint(config.at);
  view.composer.drawPending(); // what the outbox still holds for this room, from before a reload too
  view.saved.load();
  view.timeline.markRead();
  if (!view.readOnly) view.el.input.focus();
  return view;
}

/** Frames about the room as a whole and its messages' changes; what to do on a (re)connection. */
function attachRoomFrames(view) {
  const { socket, roomId, room, delivery, roomList } = view;
  socket.on("error", (frame) => {
    // A refused send is the outbox's; a refused sync or read of this room means we are out.
    if (frame.room === roomId && frame.code === "not_member" && !frame.client_msg_id) {
      view.leave("You are no longer a member of this room.");
    } else if (frame.req === `sync-${roomId}`) {
      // Refused for now (rate_limited, unavailable): ask again later; the outbox waits for it.
      view.timeline.syncRefused(Math.max(delivery.retryAfterMs(frame), delivery.backoff(2)));
    }
  });
  socket.on("room.updated", (frame) => {
    if (frame.room !== roomId) return;
    if ("read_only" in frame) view.setReadOnly(frame.read_only);
    if (!("name" in frame)) return;
    room.name = frame.name;
    const title = roomTitle(room);
    byId("room-title").textContent = title;
    roomList.baseTitle = `${title} · Chat`;
    roomList.updateTitle();
  });
  socket.on("room.deleted", (frame) => {
    if (frame.room === roomId) view.leave("This room was deleted.");
  });
  socket.on("message.updated", (frame) => {
    const entry = frame.room === roomId ? view.timeline.shown.get(frame.seq) : null;
    if (!entry) return;
    entry.message.body = frame.body;
    entry.message.edited_at = frame.edited_at;
    drawBody(entry.element, entry.message, view.me);
    view.editing.draw(entry);
    view.replies.edited(entry);
  });
  socket.on("message.deleted", (frame) => {
    const entry = frame.room === roomId ? view.timeline.shown.get(frame.seq) : null;
    if (!entry) return;
    entry.message.deleted = true;
    entry.message.body = "";
    drawBody(entry.element, entry.message, view.me);
    view.editing.draw(entry);
    view.reactions.draw(entry);
    view.replies.deleted(entry);
    view.members.showCounter(entry);
  });
  socket.onOpen((reconnected) => {
    if (!view.active) return;
    // Whatever was stored while the page loaded or the socket was down comes with sync.
    view.timeline.resync();
    if (reconnected) view.members.refresh();
    view.timeline.markRead();
  });
}
