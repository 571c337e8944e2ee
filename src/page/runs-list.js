/**
 * The list of recent runs in the sidebar: `GET /runs`, again every second
 * while the tab is visible, so a run started by any client shows up; each
 * item carries `data-run-id` and `data-status` (the API's status words).
 *
 * @module
 */

import { api } from "./api.js";
import { byId, formatDuration, formatTime, h } from "./dom.js";

const POLL_MS = 1000;

/**
 * Starts the list.
 *
 * @returns {{ refresh(): Promise<void>; setCurrent(runId: string | undefined): void }}
 */
export function startRunsList() {
  const list = byId("runs", HTMLOListElement);
  const empty = byId("runs-empty");
  const problem = byId("runs-error");
  /** @type {Map<string, HTMLLIElement>} */
  const items = new Map();
  /** @type {string | undefined} */
  let current;
  let refreshing = false;

  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const response = await api("/runs?limit=50");
      if (!response.ok) {
        problem.textContent = `The runs cannot be listed: ${response.status}`;
        problem.hidden = false;
        await response.body?.cancel();
        return;
      }
      problem.hidden = true;
      const { runs } = await response.json();
      render(runs);
    } catch {
      problem.textContent = "The server cannot be reached.";
      problem.hidden = false;
    } finally {
      refreshing = false;
    }
  }

  /** @param {{ runId: string; status: string; createdAt: string; startedAt?: string; finishedAt?: string }[]} runs */
  function render(runs) {
    const seen = new Set();
    /** @type {HTMLLIElement[]} */
    const ordered = [];
    for (const run of runs) {
      seen.add(run.runId);
      let item = items.get(run.runId);
      if (item === undefined) {
        item = /** @type {HTMLLIElement} */ (h("li", { "data-run-id": run.runId }));
        items.set(run.runId, item);
      }
      item.dataset.status = run.status;
      const start = run.startedAt ?? run.createdAt;
      const end = run.finishedAt === undefined ? Date.now() : Date.parse(run.finishedAt);
      const when = run.startedAt === undefined
        ? `created ${formatTime(run.createdAt)}`
        : `${formatTime(start)} · ${formatDuration(end - Date.parse(start))}`;
      const link = h(
        "a",
        {
          href: `#/runs/${encodeURIComponent(run.runId)}`,
          "aria-current": run.runId === current ? "page" : undefined,
        },
        h("span", { class: "run-id", title: run.runId }, run.runId),
        h("span", { class: "status" }, run.status),
        h("span", { class: "run-when" }, when),
      );
      item.replaceChildren(link);
      ordered.push(item);
    }
    for (const [id, item] of items) {
      if (!seen.has(id)) {
        item.remove();
        items.delete(id);
      }
    }
    ordered.forEach((item, k) => {
      if (list.children[k] !== item) list.insertBefore(item, list.children[k] ?? null);
    });
    empty.hidden = runs.length > 0;
  }

  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, POLL_MS);
  document.addEventListener("dagstream:run-over", () => refresh());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
  refresh();

  return {
    refresh,
    setCurrent(runId) {
      current = runId;
      for (const [id, item] of items) {
        const link = item.firstElementChild;
        if (id === runId) link?.setAttribute("aria-current", "page");
        else link?.removeAttribute("aria-current");
      }
    },
  };
}
