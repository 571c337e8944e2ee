/**
 * A run, live: its DAG (`graph-view.js`), a timeline with one bar per task
 * from its start to its end, the selected task's details, and **Cancel**
 * while it runs. It reads `GET /runs/<id>` for the DAG, then the run's
 * events with `EventSource`, which reconnects by itself after a dropped
 * connection and resumes after the last event it saw (`Last-Event-ID`):
 * states only move forward, so a replayed event changes nothing. A run that
 * finished before the page opened is replayed the same way; tasks whose
 * events the server no longer holds are filled in from the run's result.
 *
 * @module
 */

import {
  applyRunEvent,
  createRunState,
  failureState,
  TERMINAL_STATES,
} from "../client/run-state.ts";
import { api, eventsUrl, readProblem } from "./api.js";
import { byId, formatDuration, formatTime, h, renderSoon } from "./dom.js";
import { drawGraph } from "./graph-view.js";

/** @typedef {import("../client/run-state.ts").RunState} RunState */
/** @typedef {import("../client/run-state.ts").TaskView} TaskView */

const EVENT_TYPES = [
  "task_start",
  "task_progress",
  "task_retry",
  "task_complete",
  "execution_complete",
];
const OVER = new Set(["succeeded", "failed", "cancelled"]);

/**
 * Shows run `runId` in the run view, until the returned function is called.
 *
 * @param {string} runId
 * @returns {() => void} closes the view
 */
export function showRun(runId) {
  const section = byId("run");
  const idText = byId("run-id");
  const statusText = byId("run-status");
  const times = byId("run-times");
  const cancel = byId("cancel", HTMLButtonElement);
  const problem = byId("run-problem");
  const timeline = byId("timeline");
  const details = byId("details-body");

  let closed = false;
  /** @type {EventSource | undefined} */
  let source;
  /** @type {ReturnType<typeof drawGraph> | undefined} */
  let graph;
  /** @type {RunState | undefined} */
  let state;
  /** @type {Record<string, any>} */
  let run = { runId, status: "running" };
  /** @type {string | undefined} */
  let selectedId;
  /** @type {Set<TaskView>} */
  const changed = new Set();
  /** @type {Map<string, HTMLElement>} */
  const bars = new Map();
  /** @type {Map<string, HTMLElement>} */
  const tooks = new Map();
  let ticker = 0;
  /** The id of the last event seen: a new stream resumes after it. */
  let lastEventId = 0;
  /** Streams opened again in a row after one closed early; the wait grows with it. */
  let reopened = 0;
  let reopenTimer = 0;

  section.hidden = false;
  idText.textContent = runId;
  problem.hidden = true;
  timeline.replaceChildren(
    h("span", { class: "muted" }, "task"),
    h("span", { class: "muted", id: "timeline-span" }),
    h("span", { class: "muted" }, "time"),
  );
  details.replaceChildren(h("p", { class: "muted" }, "Select a task in the graph."));
  setStatus("…");

  const render = renderSoon(() => {
    if (closed || state === undefined || graph === undefined) return;
    const now = Date.now();
    for (const task of changed) graph.update(task, now);
    changed.clear();
    // Running tasks' clocks tick.
    for (const task of state.tasks) if (task.state === "running") graph.update(task, now);
    drawTimeline(now);
    drawTimes(now);
    if (selectedId !== undefined) {
      drawDetails(/** @type {TaskView} */ (state.byId.get(selectedId)), now);
    }
  });

  const onCancel = async () => {
    cancel.disabled = true;
    try {
      const response = await api(`/runs/${encodeURIComponent(runId)}`, { method: "DELETE" });
      if (!response.ok && response.status !== 409) {
        showProblem((await readProblem(response)).detail);
      } else await response.body?.cancel();
    } catch {
      showProblem("The server cannot be reached.");
    }
  };
  cancel.addEventListener("click", onCancel);

  load();

  return () => {
    closed = true;
    source?.close();
    clearTimeout(reopenTimer);
    graph?.dispose();
    clearInterval(ticker);
    cancel.removeEventListener("click", onCancel);
    section.hidden = true;
  };

  async function load() {
    // `.` and `..` are not ids: as path segments they would name other routes.
    if (runId === "." || runId === "..") return showProblem(`no run with id "${runId}"`);
    let response;
    try {
      response = await api(`/runs/${encodeURIComponent(runId)}`);
    } catch {
      return showProblem("The server cannot be reached.");
    }
    if (closed) return;
    if (!response.ok) return showProblem((await readProblem(response)).detail);
    run = await response.json();
    if (closed) return;
    state = createRunState(run.dag);
    graph = drawGraph(state, run.dag, select);
    for (const task of state.tasks) {
      const bar = h("div", {
        class: "bar-line",
        "data-timeline-task-id": task.id,
        "data-state": "pending",
        hidden: true,
      });
      const took = h("span", { class: "took" });
      bars.set(task.id, bar);
      tooks.set(task.id, took);
      timeline.append(
        h("span", { class: "label", title: task.id }, task.id),
        h("div", { class: "track" }, bar),
        took,
      );
    }
    setStatus(run.status);
    ticker = setInterval(() => {
      if (state !== undefined && state.tasks.some((t) => t.state === "running")) render();
    }, 250);
    listen();
  }

  function listen() {
    const events = new EventSource(eventsUrl(runId, lastEventId));
    source = events;
    for (const type of EVENT_TYPES) {
      events.addEventListener(type, (event) => {
        const message = /** @type {MessageEvent} */ (event);
        const id = Number(message.lastEventId);
        if (id > lastEventId) lastEventId = id;
        reopened = 0;
        onEvent(type, message.data);
      });
    }
    events.addEventListener("open", () => setNotice(""));
    events.addEventListener("error", (event) => {
      if (event instanceof MessageEvent) {
        // The run's own `error` event: the stream ends after it.
        onEvent("error", event.data);
        return;
      }
      if (events.readyState === EventSource.CONNECTING) {
        setNotice("Connection lost: reconnecting…");
        return;
      }
      // Closed for good (the run is over with nothing left, or it expired).
      setNotice("");
      finish();
    });
  }

  /**
   * @param {string} type
   * @param {string} text
   */
  function onEvent(type, text) {
    if (state === undefined) return;
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return;
    }
    const result = applyRunEvent(state, type, data);
    if (result === undefined) return;
    if (result !== true) {
      changed.add(result);
      const bar = bars.get(result.id);
      if (bar) bar.dataset.state = result.state;
    }
    if (type === "error" && state.error) showProblem(state.error.error);
    if (type === "execution_complete" || type === "error") finish();
    render();
  }

  /** The stream is over: the run's final status and result fill in what the events did not. */
  async function finish() {
    source?.close();
    let response;
    try {
      response = await api(`/runs/${encodeURIComponent(runId)}`);
    } catch {
      return;
    }
    if (closed) return void await response.body?.cancel();
    if (!response.ok) {
      const { detail } = await readProblem(response);
      showProblem(`Live updates stopped: ${detail}`);
      if (response.status !== 404) reopen();
      return;
    }
    run = await response.json();
    if (state === undefined || closed) return;
    if (!OVER.has(run.status) && !state.over) {
      // The stream closed while the run goes on (the server refused it for a
      // while, the token changed, this watcher fell behind): open it again.
      setStatus(run.status);
      reopen();
      return;
    }
    problem.hidden = state.error === undefined;
    for (const result of run.result?.results ?? []) {
      const task = state.byId.get(result.taskId);
      if (task === undefined) continue;
      if (!TERMINAL_STATES.has(task.state)) {
        task.state = result.status === "success" ? "success" : failureState(result.error);
        task.executionTimeMs = result.executionTimeMs;
        task.progress = undefined;
      }
      if (result.status === "success") {
        task.output = result.output;
        task.truncated = false;
      } else task.error ??= result.error;
      changed.add(task);
      const bar = bars.get(task.id);
      if (bar) bar.dataset.state = task.state;
    }
    // A cancelled run that never started a task: its tasks end cancelled.
    if (run.status === "cancelled") {
      for (const task of state.tasks) {
        if (!TERMINAL_STATES.has(task.state)) {
          task.state = "cancelled";
          changed.add(task);
        }
      }
    }
    setStatus(run.status);
    render();
    // The runs list shows the new status now rather than at its next poll.
    document.dispatchEvent(new CustomEvent("dagstream:run-over"));
  }

  /** Opens the run's stream again after a wait that grows while it keeps closing early. */
  function reopen() {
    const delay = Math.min(10_000, 1000 * 2 ** reopened++);
    setNotice(`Live updates paused: trying again in ${Math.round(delay / 1000)} s…`);
    reopenTimer = setTimeout(() => {
      if (closed) return;
      setNotice("");
      listen();
    }, delay);
  }

  /** @param {string} taskId */
  function select(taskId) {
    selectedId = taskId;
    graph?.selected(taskId);
    // At once, not at the next frame: the click's answer is the details.
    const task = state?.byId.get(taskId);
    if (task !== undefined) drawDetails(task, Date.now());
  }

  /** @param {string} status */
  function setStatus(status) {
    statusText.textContent = status;
    statusText.dataset.status = status;
    section.dataset.status = status;
    cancel.hidden = OVER.has(status) || status === "…";
    cancel.disabled = false;
  }

  /** @param {string} text */
  function setNotice(text) {
    const notice = document.getElementById("notice");
    if (notice) notice.textContent = text;
  }

  /** @param {string} text */
  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = false;
  }

  /** @param {number} now */
  function drawTimes(now) {
    const started = run.startedAt ? Date.parse(run.startedAt) : undefined;
    const ended = run.finishedAt ? Date.parse(run.finishedAt) : undefined;
    if (started === undefined) {
      times.textContent = run.createdAt ? `created ${formatTime(run.createdAt)}` : "";
      return;
    }
    const over = state?.over || OVER.has(run.status);
    const end = ended ??
      (over && state?.summary ? started + state.summary.totalExecutionTimeMs : now);
    times.textContent = `started ${formatTime(started)} · ${formatDuration(end - started)}`;
  }

  /** @param {number} now */
  function drawTimeline(now) {
    if (state === undefined) return;
    let first = Infinity;
    let last = -Infinity;
    for (const task of state.tasks) {
      if (task.startedAt === undefined) continue;
      first = Math.min(first, task.startedAt);
      last = Math.max(last, task.endedAt ?? (task.state === "running" ? now : task.startedAt));
    }
    if (first === Infinity) return;
    const span = Math.max(last - first, 1);
    const axis = document.getElementById("timeline-span");
    if (axis) axis.textContent = `${formatTime(first)} → ${formatDuration(span)}`;
    for (const task of state.tasks) {
      const bar = bars.get(task.id);
      if (bar === undefined || task.startedAt === undefined) continue;
      const end = task.endedAt ?? (task.state === "running" ? now : task.startedAt);
      bar.hidden = false;
      // A bar that ends the run still shows: it starts at most 2px before the end.
      bar.style.left = `min(${((task.startedAt - first) / span) * 100}%, calc(100% - 2px))`;
      bar.style.width = `${((end - task.startedAt) / span) * 100}%`;
      const took = formatDuration(task.executionTimeMs ?? end - task.startedAt);
      bar.title = `${task.id}: ${task.state}, ${took}`;
      const label = tooks.get(task.id);
      if (label) label.textContent = took;
    }
  }

  /**
   * @param {TaskView} task
   * @param {number} now
   */
  function drawDetails(task, now) {
    const elapsed = task.executionTimeMs ??
      (task.startedAt === undefined ? undefined : now - task.startedAt);
    const rows = [
      ["Task", task.id],
      ["Tool", task.tool],
      ["State", task.state],
      ["Started", task.startedAt === undefined ? "not yet" : formatTime(task.startedAt)],
      ["Time", elapsed === undefined ? "" : formatDuration(elapsed)],
    ];
    const attempts = task.attempts ?? task.attempt;
    if (attempts !== undefined && attempts > 1) {
      rows.push(["Attempts", String(attempts)]);
      if (task.retryError !== undefined) rows.push(["Last retry after", task.retryError]);
    }
    if (task.progress) {
      const { progress, total, message } = task.progress;
      rows.push([
        "Progress",
        `${progress}${total === undefined ? "" : ` of ${total}`}${message ? ` — ${message}` : ""}`,
      ]);
    }
    const parts = [
      h("dl", {}, ...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      h("h4", {}, "Arguments"),
      h("pre", {}, JSON.stringify(task.arguments, null, 2)),
    ];
    if (task.state === "success") {
      parts.push(h("h4", {}, task.truncated ? "Output (preview)" : "Output"));
      parts.push(
        h("pre", { "data-output": "" }, JSON.stringify(task.output, null, 2) ?? "undefined"),
      );
    } else if (task.error !== undefined) {
      parts.push(h("h4", {}, "Error"), h("pre", { "data-error": "" }, task.error));
    }
    details.replaceChildren(...parts);
  }
}
