/*
 * Finding people by name (a new direct room, an invitation): suggestions while typing, and the
 * exact user for a name.
 */
import { ApiError } from "./api.js";
import { readConfig } from "./util.js";

let suggestTimer = null;

/** Fill ``list`` (a <datalist>) with the usernames matching what ``input`` holds, shortly after typing stops. */
export function suggestUsers(api, input, list = document.getElementById("user-suggestions")) {
  if (!list) return;
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(async () => {
    const q = input.value.trim();
    if (!q) return;
    try {
      const users = await api("GET", `/api/v1/users/?q=${encodeURIComponent(q)}`);
      list.replaceChildren(
        ...users.map((user) => {
          const option = document.createElement("option");
          option.value = user.username;
          return option;
        }),
      );
    } catch (error) {
      // Suggestions are a convenience; typing the exact name still works.
    }
  }, 250);
}

/** Whether ``username`` is the signed-in user's own name (any case), per the page's chat-config. */
export function isMe(username, me = (readConfig() || {}).me) {
  return Boolean(me) && me.username.toLowerCase() === username.toLowerCase();
}

/** The user called ``username`` (any case), or an ApiError: not_found, or invalid for oneself. */
export async function findUser(api, username) {
  // The search leaves the asker out, so one's own name would read "Nobody is called …".
  if (isMe(username)) throw new ApiError(400, "invalid", "That's you: pick someone else.");
  const users = await api("GET", `/api/v1/users/?q=${encodeURIComponent(username)}`);
  const user = users.find((u) => u.username.toLowerCase() === username.toLowerCase());
  if (!user) throw new ApiError(404, "not_found", `Nobody is called “${username}”.`);
  return user;
}
