/*
 * The REST API (/api/v1/) with the session cookie. Errors arrive as {"error": {"code", "detail"}}
 * (docs/protocol.md) and are thrown as ApiError, whose message is the detail as text.
 */
import { csrfToken } from "./util.js";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

/** An error's detail (a string, a list, or DRF's field -> messages object) as one line of text. */
export function detailText(detail) {
  if (!detail) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map(detailText).join(" ");
  if (typeof detail === "object") return Object.values(detail).map(detailText).join(" ");
  return String(detail);
}

/** Call the REST API with the session cookie (and the CSRF token DRF requires for changes). */
export async function api(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, "unavailable", "The server cannot be reached; try again.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "unavailable", detailText(error.detail) || response.statusText);
  }
  return data;
}
