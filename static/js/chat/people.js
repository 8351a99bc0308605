/*
 * Finding people by name (a new direct room, an invitation): suggestions while typing, and the
 * exact user for a name.
 */
import { ApiError } from "./api.js";

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

/** The user called ``username`` (any case), or an ApiError not_found. */
export async function findUser(api, username) {
  const users = await api("GET", `/api/v1/users/?q=${encodeURIComponent(username)}`);
  const user = users.find((u) => u.username.toLowerCase() === username.toLowerCase());
  if (!user) throw new ApiError(404, "not_found", `Nobody is called “${username}”.`);
  return user;
}
