// Calls to /api/v1: same-origin cookies, the session's CSRF token on every
// change, and RFC 9457 problems turned into ApiError (status, type, detail).

let csrfToken = "";

export function setCsrfToken(token) {
  csrfToken = token || "";
}

export class ApiError extends Error {
  constructor(status, problem, retryAfter = null) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem || {};
    // "https://qorgau.kz/problems/invitation-used" -> "invitation-used"
    this.type = String(this.problem.type || "").split("/").pop();
    // Seconds the server asked us to wait (503 while its database restarts, 429).
    this.retryAfter = retryAfter;
  }
}

// `onResponse(response)` sees the answer's headers (js/replica.js: the replica's lag).
export async function api(path, { method = "GET", body, headers = {}, onResponse } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD" && csrfToken) {
    init.headers["X-CSRF-Token"] = csrfToken;
  }
  const response = await fetch(path, init);
  if (onResponse) onResponse(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const wait = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new ApiError(response.status, data, Number.isFinite(wait) && wait >= 0 ? wait : null);
  }
  return data;
}
