/*
 * Reactions on stored messages: a row of chips under each message (emoji and count, mine
 * highlighted, who reacted on hover), a click on a chip adds or takes back mine, and a React
 * button opens the six emojis the server knows. Changes go over the socket (reaction.add,
 * reaction.remove) and show when reaction.added / reaction.removed come back, for every member
 * alike; doing the same thing twice changes nothing.
 */
import { part } from "../util.js";

export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

/** ``reactions`` (the message's list) with ``user`` added to or removed from ``emoji``; a new list. */
export function applyReaction(reactions, emoji, user, added) {
  const list = (reactions || []).map((r) => ({ ...r, users: [...r.users] }));
  let entry = list.find((r) => r.emoji === emoji);
  if (added) {
    if (!entry) {
      entry = { emoji, count: 0, users: [] };
      list.push(entry);
      list.sort((a, b) => REACTIONS.indexOf(a.emoji) - REACTIONS.indexOf(b.emoji));
    }
    if (entry.users.some((u) => u.id === user.id)) return list;
    entry.users.push(user);
    entry.count += 1;
  } else if (entry && entry.users.some((u) => u.id === user.id)) {
    entry.users = entry.users.filter((u) => u.id !== user.id);
    entry.count -= 1;
  }
  return list.filter((r) => r.count > 0);
}

export function createReactions(view) {
  const { socket, roomId, me } = view;
  let picker = null; // the open picker's element

  function mine(reaction) {
    return reaction.users.some((u) => u.id === me.id);
  }

  function send(entry, emoji, on) {
    const frame = { type: on ? "reaction.add" : "reaction.remove", room: roomId, seq: entry.message.seq, emoji };
    if (!socket.send(frame)) view.toast("You are offline; try again when the connection is back.");
  }

  function closePicker() {
    if (picker) picker.remove();
    picker = null;
  }

  function openPicker(entry, button) {
    const wasOpenHere = picker && picker.dataset.seq === String(entry.message.seq);
    closePicker();
    if (wasOpenHere) return;
    picker = document.createElement("div");
    picker.className = "reaction-picker";
    picker.dataset.seq = entry.message.seq;
    picker.setAttribute("role", "menu");
    for (const emoji of REACTIONS) {
      const choice = document.createElement("button");
      choice.type = "button";
      choice.className = "reaction-choice";
      choice.setAttribute("role", "menuitem");
      choice.textContent = emoji;
      const have = (entry.message.reactions || []).find((r) => r.emoji === emoji);
      choice.setAttribute("aria-pressed", String(Boolean(have && mine(have))));
      choice.addEventListener("click", () => {
        closePicker();
        send(entry, emoji, !(have && mine(have)));
      });
      picker.append(choice);
    }
    button.after(picker);
    picker.querySelector("button").focus();
  }

  return {
    /** Draw ``entry``'s chips as its message's reactions are now. */
    draw(entry) {
      const row = part(entry.element, "reactions");
      const react = part(entry.element, "react");
      const reactions = entry.message.deleted ? [] : entry.message.reactions || [];
      react.hidden = Boolean(entry.message.deleted);
      row.replaceChildren(
        ...reactions.map((reaction) => {
          const chip = document.createElement("button");
          chip.type = "button";
          chip.className = "reaction";
          chip.classList.toggle("reaction-mine", mine(reaction));
          chip.setAttribute("aria-pressed", String(mine(reaction)));
          chip.title = reaction.users.map((u) => u.username).join(", ");
          chip.dataset.emoji = reaction.emoji;
          chip.textContent = `${reaction.emoji} ${reaction.count}`;
          chip.addEventListener("click", () => send(entry, reaction.emoji, !mine(reaction)));
          return chip;
        }),
      );
      row.hidden = reactions.length === 0;
    },

    /** The React button and chips of a new message's element. */
    wire(entry) {
      const react = part(entry.element, "react");
      react.addEventListener("click", () => openPicker(entry, react));
      this.draw(entry);
    },

    attach() {
      const change = (frame, added) => {
        const entry = frame.room === roomId ? view.timeline.shown.get(frame.seq) : null;
        if (!entry) return;
        entry.message.reactions = applyReaction(entry.message.reactions, frame.emoji, frame.user, added);
        this.draw(entry);
      };
      socket.on("reaction.added", (frame) => change(frame, true));
      socket.on("reaction.removed", (frame) => change(frame, false));
      document.addEventListener("keydown", (event) => {
        if (event.key === "Escape") closePicker();
      });
      document.addEventListener("click", (event) => {
        if (picker && !picker.contains(event.target) && !event.target.closest("[data-role=react]")) closePicker();
      });
    },
  };
}
