/*
 * Mute / Unmute in the room's header: PUT or DELETE /api/v1/rooms/{id}/mute/. The button follows
 * room.updated {muted} from the user's other pages too; the sidebar and the notifications read
 * the same flag from the room list.
 */
import { byId } from "../util.js";

export function createMute(view) {
  const { roomId, room, api, socket, roomList } = view;
  const button = byId("mute-toggle");

  function show(muted) {
    room.muted = muted;
    button.textContent = muted ? "Unmute" : "Mute";
    button.setAttribute("aria-pressed", String(muted));
  }

  return {
    attach() {
      show(Boolean(room.muted));
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const summary = await api(room.muted ? "DELETE" : "PUT", `/api/v1/rooms/${roomId}/mute/`);
          show(summary.muted);
          const listed = roomList.rooms.get(roomId);
          if (listed) {
            listed.muted = summary.muted;
            roomList.render(listed, false);
            roomList.updateTitle();
          }
        } catch (error) {
          view.toast(`Could not change it: ${error.message}`);
        } finally {
          button.disabled = false;
        }
      });
      socket.on("room.updated", (frame) => {
        if (frame.room === roomId && "muted" in frame) show(Boolean(frame.muted));
      });
    },
  };
}
