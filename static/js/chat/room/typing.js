/*
 * "alice is typing…" under the open room's timeline: shown for a few seconds after each typing
 * frame, gone when that person's message arrives or they leave.
 */
import { typingText } from "../format.js";
import { byId } from "../util.js";

const TYPING_SHOW_MS = 4000;

export function createTyping({ roomId, me }) {
  const typers = new Map(); // user id -> {username, timer}

  return {
    show() {
      byId("typing").textContent = typingText(Array.from(typers.values(), (t) => t.username));
    },

    stop(userId) {
      const typer = typers.get(userId);
      if (!typer) return;
      clearTimeout(typer.timer);
      typers.delete(userId);
      this.show();
    },

    attach(socket) {
      socket.on("typing", (frame) => {
        if (frame.room !== roomId || frame.user.id === me.id) return;
        this.stop(frame.user.id);
        typers.set(frame.user.id, {
          username: frame.user.username,
          timer: setTimeout(() => this.stop(frame.user.id), TYPING_SHOW_MS),
        });
        this.show();
      });
    },
  };
}
