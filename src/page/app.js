/**
 * The run page at `GET /`: the editor and the runs list, and a run's live
 * view at `#/runs/<id>` (reloadable, shareable).
 *
 * @module
 */

import { byId } from "./dom.js";
import { startEditor } from "./editor.js";
import { showRun } from "./run-view.js";
import { startRunsList } from "./runs-list.js";

const submit = byId("submit");
const runs = startRunsList();
/** @type {(() => void) | undefined} */
let closeRun;
/** @type {string | undefined} */
let shown;

/** Shows what the URL's fragment names. */
function route() {
  const match = /^#\/runs\/([^/]+)$/.exec(location.hash);
  const runId = match === null ? undefined : safeDecode(match[1]);
  if (runId === shown && (runId !== undefined || closeRun === undefined)) return;
  closeRun?.();
  closeRun = undefined;
  shown = runId;
  runs.setCurrent(runId);
  submit.hidden = runId !== undefined;
  if (runId !== undefined) {
    closeRun = showRun(runId);
    document.title = `${runId} · dagstream`;
  } else document.title = "dagstream";
}

/** @param {string} text */
function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

startEditor((runId) => {
  location.hash = `#/runs/${encodeURIComponent(runId)}`;
  runs.refresh();
});
addEventListener("hashchange", route);
route();
