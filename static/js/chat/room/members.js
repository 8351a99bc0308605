/*
 * The open room's members: the members panel (roles, remove, invite, leave, who is online), their
 * read positions, the number next to each message of the members who have not read it yet, and
 * in a direct room the other person's presence in the header.
 */
import { suggestUsers, findUser } from "../people.js";
import { setAvatar } from "../format.js";
import { presenceTitle, setPresence } from "../presence.js";
import { byId, part } from "../util.js";

/** How many of ``members`` (each with last_read_seq) have not read up to ``seq``. */
export function unreadBy(members, seq) {
  let count = 0;
  for (const member of members) if (member.last_read_seq < seq) count += 1;
  return count;
}

/** Whether a member with ``myRole`` may remove ``member`` (a group room only; never oneself). */
export function canRemove({ kind, myRole, meId }, member) {
  return kind === "group" && member.id !== meId && (myRole === "owner" || (myRole === "admin" && member.role === "member"));
}

/**
 * Opening and closing the members panel: the Members button toggles it. Where the stylesheet lays
 * it over the conversation (a phone: position absolute) it is a sheet: its × button, Esc or a tap
 * on the shaded conversation closes it, and focus moves into it and back to the button. Beside
 * the conversation (a wide screen) only the button opens and closes it.
 */
export function attachMembersPanel({ panel, toggle, close }) {
  const covers = () => getComputedStyle(panel).position === "absolute";
  const setOpen = (open) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (covers()) (open ? close : toggle).focus();
  };
  toggle.addEventListener("click", () => setOpen(panel.hidden));
  close.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden && covers()) setOpen(false);
  });
  // Capturing: a tap on the shade closes the sheet instead of acting on what lies under it.
  document.addEventListener(
    "click",
    (event) => {
      if (panel.hidden || !covers() || panel.contains(event.target) || toggle.contains(event.target)) return;
      if (panel.parentElement.contains(event.target)) {
        event.preventDefault();
        event.stopPropagation();
      }
      setOpen(false);
    },
    true,
  );
}

export function createMembers(view) {
  const { roomId, api, me, room } = view;
  const members = new Map(); // user id -> {id, username, role, last_read_seq}
  const presence = view.roomList.presence; // the page's presence map (presence.js), shared with the room list

  const m = {
    get(userId) {
      return members.get(userId);
    },

    get size() {
      return members.size;
    },

    set(participants) {
      members.clear();
      for (const p of participants) {
        members.set(p.user.id, { id: p.user.id, username: p.user.username, role: p.role, last_read_seq: p.last_read_seq });
        if (presence && p.presence) presence.set(p.user.id, p.presence);
      }
      this.render();
      this.updateCounters(0, Infinity);
    },

    async refresh() {
      try {
        this.set(await api("GET", `/api/v1/rooms/${roomId}/participants/`));
      } catch (error) {
        if (error.code === "not_member") view.leave("You are no longer a member of this room.");
      }
    },

    myRole() {
      const mine = members.get(me.id);
      return mine ? mine.role : null;
    },

    canManage() {
      return this.myRole() === "owner" || this.myRole() === "admin";
    },

    render() {
      const memberList = byId("member-list");
      const memberTemplate = byId("member-template");
      const items = [];
      const rights = { kind: room.kind, myRole: this.myRole(), meId: me.id };
      for (const member of members.values()) {
        const item = memberTemplate.content.firstElementChild.cloneNode(true);
        item.dataset.user = member.id;
        setAvatar(part(item, "avatar"), member.username, member.id);
        part(item, "name").textContent = member.id === me.id ? `${member.username} (you)` : member.username;
        part(item, "role").textContent = member.role === "member" ? "" : member.role;
        setPresence(part(item, "presence"), presence ? presence.get(member.id) : null);
        const remove = part(item, "remove");
        remove.hidden = !canRemove(rights, member);
        remove.addEventListener("click", () => this.remove(member));
        items.push(item);
      }
      memberList.replaceChildren(...items);
      this.drawHeaderPresence();
      const count = members.size;
      byId("room-meta").textContent = `${count} member${count === 1 ? "" : "s"}`;
      const invite = byId("invite-form");
      if (invite) invite.hidden = !this.canManage();
      // A group room with nobody else in it shows its owner a prompt to invite people.
      view.timeline.showInvitePrompt(room.kind === "group" && count === 1 && this.canManage());
    },

    /** A direct room's header: the other person's presence while they are in the room. */
    drawHeaderPresence() {
      const header = byId("room-presence");
      if (!header) return;
      const other = room.kind === "direct" ? Array.from(members.values()).find((m) => m.id !== me.id) : null;
      const state = other && presence ? presence.get(other.id) : null;
      header.hidden = !state;
      setPresence(part(header, "dot"), state);
      part(header, "label").textContent = presenceTitle(state);
    },

    /** A member's presence changed: their dot, and the header of a direct room. */
    presenceChanged(userId) {
      if (!members.has(userId)) return;
      const item = byId("member-list").querySelector(`[data-user="${userId}"]`);
      if (item) setPresence(part(item, "presence"), presence.get(userId));
      this.drawHeaderPresence();
    },

    /** Open the panel at its invite field (the button of the empty room's prompt). */
    openInvite() {
      if (byId("members-panel").hidden) byId("members-toggle").click();
      byId("invite-username").focus();
    },

    /** The counter of a shown message (``entry``: {message, element}). */
    showCounter(entry) {
      const counter = part(entry.element, "unread");
      const message = entry.message;
      const count = message.deleted ? 0 : members.size ? unreadBy(members.values(), message.seq) : message.unread_count;
      counter.textContent = count > 0 ? String(count) : "";
    },

    /** Refresh the counters of the messages with low < seq <= high. */
    updateCounters(low, high) {
      for (const [seq, entry] of view.timeline.shown) if (seq > low && seq <= high) this.showCounter(entry);
    },

    setRead(userId, seq) {
      const member = members.get(userId);
      if (!member || member.last_read_seq === seq) return;
      const before = member.last_read_seq;
      member.last_read_seq = seq;
      this.updateCounters(Math.min(before, seq), Math.max(before, seq));
    },

    async remove(member) {
      if (!window.confirm(`Remove ${member.username} from this room?`)) return;
      try {
        await api("DELETE", `/api/v1/rooms/${roomId}/participants/${member.id}/`);
        view.toast(`${member.username} was removed.`);
      } catch (error) {
        view.toast(`Could not remove ${member.username}: ${error.message}`);
      }
    },

    /** The panel's controls, and the socket's membership frames. */
    attach(socket) {
      byId("leave-room").addEventListener("click", async () => {
        const question =
          this.myRole() === "owner" && members.size > 1
            ? "Leave this room? Another member becomes its owner."
            : "Leave this room? You will no longer see its messages.";
        if (!window.confirm(question)) return;
        try {
          await api("DELETE", `/api/v1/rooms/${roomId}/participants/${me.id}/`);
          location.assign("/");
        } catch (error) {
          view.toast(`Could not leave: ${error.message}`);
        }
      });

      attachMembersPanel({ panel: byId("members-panel"), toggle: byId("members-toggle"), close: byId("members-close") });
      if (presence) presence.onChange((userId) => this.presenceChanged(userId));

      const inviteForm = byId("invite-form");
      if (inviteForm) {
        const inviteInput = byId("invite-username");
        const inviteStatus = byId("invite-status");
        inviteInput.addEventListener("input", () => suggestUsers(api, inviteInput));
        inviteForm.addEventListener("submit", async (event) => {
          event.preventDefault();
          const username = inviteInput.value.trim();
          if (!username) return;
          try {
            const user = await findUser(api, username);
            await api("POST", `/api/v1/rooms/${roomId}/participants/`, { user: user.id });
            inviteStatus.textContent = `${user.username} is now a member.`;
            inviteInput.value = "";
            this.refresh();
          } catch (error) {
            inviteStatus.textContent = error.message;
          }
        });
      }

      socket.on("room.read", (frame) => {
        if (frame.room !== roomId) return;
        this.setRead(frame.user, frame.seq);
        if (frame.user === me.id) view.timeline.readSent = Math.max(view.timeline.readSent, frame.seq);
      });
      socket.on("participant.added", (frame) => {
        if (frame.room === roomId) this.refresh();
      });
      socket.on("participant.removed", (frame) => {
        if (frame.room !== roomId) return;
        if (frame.user === me.id) {
          view.leave("You are no longer a member of this room.");
          return;
        }
        members.delete(frame.user);
        view.typing.stop(frame.user);
        this.render();
        this.updateCounters(0, Infinity);
      });
      socket.on("participant.updated", (frame) => {
        const member = frame.room === roomId ? members.get(frame.user) : null;
        if (!member) return;
        member.role = frame.role;
        this.render();
        if (frame.user === me.id) view.editing.redraw(); // deleting others' messages comes with the role
      });
    },
  };
  return m;
}
