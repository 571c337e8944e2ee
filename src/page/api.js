/**
 * The page's calls to the server's API. Every call carries the token when
 * the server asked for one (`401`): the page asks once per tab, in a dialog,
 * and keeps it in `sessionStorage` (gone when the tab closes). `EventSource`
 * cannot send headers, so event streams carry it as `?access_token=`.
 *
 * @module
 */

import { byId } from "./dom.js";

const TOKEN_KEY = "dagstream.token";

/** @type {string | null} */
let token = sessionStorage.getItem(TOKEN_KEY);
/** @type {Promise<void> | undefined} */
let asking;

// Escape would leave every waiting call waiting: the dialog stays until a token is given.
document.getElementById("token-dialog")?.addEventListener("cancel", (event) => {
  event.preventDefault();
});

/**
 * Calls the API; on `401`, asks for the token and calls again.
 *
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
export async function api(path, init = {}) {
  for (;;) {
    const headers = new Headers(init.headers);
    if (!headers.has("accept")) headers.set("accept", "application/json");
    if (token !== null) headers.set("authorization", `Bearer ${token}`);
    const response = await fetch(path, { ...init, headers, cache: "no-store" });
    if (response.status !== 401) return response;
    await response.body?.cancel();
    await askForToken(token !== null);
  }
}

/**
 * The URL of a run's event stream (after event `after`, when given), with
 * the token when there is one.
 *
 * @param {string} runId
 * @param {number} [after]
 * @returns {string}
 */
export function eventsUrl(runId, after = 0) {
  const query = new URLSearchParams();
  if (after > 0) query.set("lastEventId", String(after));
  if (token !== null) query.set("access_token", token);
  const path = `/runs/${encodeURIComponent(runId)}/events`;
  return query.size === 0 ? path : `${path}?${query}`;
}

/**
 * A problem answer's `detail` and `errors`, or a line for any other answer.
 *
 * @param {Response} response
 * @returns {Promise<{ detail: string; errors: { path: string; message: string }[] }>}
 */
export async function readProblem(response) {
  try {
    const problem = await response.json();
    return {
      detail: String(problem.detail ?? problem.title ?? response.statusText),
      errors: Array.isArray(problem.errors) ? problem.errors : [],
    };
  } catch {
    return { detail: `${response.status} ${response.statusText}`, errors: [] };
  }
}

/**
 * Shows the token dialog (once, however many calls wait for it).
 *
 * @param {boolean} wrong whether the token given before was refused
 * @returns {Promise<void>}
 */
function askForToken(wrong) {
  asking ??= new Promise((resolve) => {
    const dialog = byId("token-dialog", HTMLDialogElement);
    const form = byId("token-form", HTMLFormElement);
    const input = byId("token", HTMLInputElement);
    const problem = byId("token-problem");
    problem.textContent = wrong ? "The server refused that token." : "";
    input.value = "";
    /** @param {SubmitEvent} event */
    const submitted = (event) => {
      event.preventDefault();
      if (input.value === "") return;
      token = input.value;
      sessionStorage.setItem(TOKEN_KEY, token);
      form.removeEventListener("submit", submitted);
      dialog.close();
      asking = undefined;
      resolve();
    };
    form.addEventListener("submit", submitted);
    dialog.showModal();
    input.focus();
  });
  return asking;
}
