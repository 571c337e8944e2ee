/**
 * The terminal view of `deno task run`: a live block redrawn in place with
 * cursor movement and colours; plain lines with no escape code at all
 * (a pipe, or NO_COLOR); progress bars; lines cut to the terminal's width
 * and a block kept within its height; the summary line.
 */

// These regular expressions are meant to match escape codes.
// deno-lint-ignore-file no-control-regex

import assert from "node:assert/strict";
import { applyRunEvent, createRunState, type RunState } from "../../../src/client/run-state.ts";
import {
  displayWidth,
  formatDuration,
  progressText,
  redraw,
  summaryLine,
  taskLine,
  type TerminalOptions,
  TerminalView,
} from "../../../src/client/terminal-view.ts";

const PLAIN: TerminalOptions = { live: false, color: false, columns: Infinity, rows: Infinity };
const LIVE: TerminalOptions = { live: true, color: true, columns: 80, rows: 24 };
/** The events' clock, in ms since the epoch; `at(ms)` is its ISO timestamp. */
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms).toISOString();

/** Any escape sequence (ESC) or other C0/C1 control but the newline. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

/** `text` with its SGR colour codes removed. */
function withoutColour(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

function diamond(): RunState {
  return createRunState({
    tasks: [
      { id: "fetch", tool: "mock:delay" },
      { id: "left", tool: "mock:echo" },
      { id: "right", tool: "mock:delay" },
      { id: "join", tool: "mock:echo" },
    ],
  });
}

/** Folds one event into `state` and hands what the view writes for it to `out`. */
function feed(
  state: RunState,
  view: TerminalView,
  out: string[],
  type: string,
  data: Record<string, unknown>,
  now: number,
) {
  out.push(view.changed(applyRunEvent(state, type, data), T0 + now));
}

const start = (taskId: string, ms: number) =>
  ["task_start", { taskId, timestamp: at(ms) }] as const;
const success = (taskId: string, ms: number, executionTimeMs: number, output: unknown = {}) =>
  [
    "task_complete",
    { taskId, status: "success", output, executionTimeMs, timestamp: at(ms) },
  ] as const;
const failure = (taskId: string, ms: number, error: string, executionTimeMs = 0) =>
  ["task_complete", {
    taskId,
    status: "error",
    error,
    executionTimeMs,
    timestamp: at(ms),
  }] as const;

Deno.test("live: the block is drawn, then redrawn in place with cursor-up and clear-line codes, in colour", () => {
  const state = diamond();
  const view = new TerminalView(state, LIVE);
  const first = view.tick(T0);
  assert.ok(!/\x1b\[\d+A/.test(first), "nothing to go back over before the first frame");
  assert.equal(first.split("\x1b[2K").length - 1, 5, "four task lines and a summary, each cleared");
  const frames: string[] = [];
  feed(state, view, frames, ...start("fetch", 0), 0);
  assert.ok(frames[0].startsWith("\x1b[5A\r"), "back up over the five lines drawn");
  assert.match(frames[0], /\x1b\[36m▶ running/, "running is cyan");
  feed(state, view, frames, ...success("fetch", 200, 200), 200);
  assert.match(frames[1], /\x1b\[32m✓ success/, "success is green");
  assert.ok(frames[1].endsWith("\x1b[J"), "whatever is below the block is cleared");
  feed(state, view, frames, ...failure("left", 201, "boom", 1), 201);
  assert.match(frames[2], /\x1b\[31m✗ error/, "error is red");
  assert.match(frames[2], /\x1b\[31mboom/, "and so is its message");
  // A replayed event changes nothing: nothing is redrawn for it.
  feed(state, view, frames, ...start("fetch", 0), 300);
  assert.equal(frames[3], "");
});

Deno.test("live: a tick moves a running task's time on", () => {
  const state = diamond();
  const view = new TerminalView(state, LIVE);
  applyRunEvent(state, ...start("fetch", 0));
  assert.match(withoutColour(view.tick(T0 + 50)), /fetch {2}mock:delay +50 ms/);
  assert.match(withoutColour(view.tick(T0 + 1250)), /fetch {2}mock:delay +1\.2 s/);
});

Deno.test("live: the final frame lists every task and the summary, for the scrollback", () => {
  const state = createRunState({
    tasks: Array.from({ length: 30 }, (_, i) => ({ id: `t${i}`, tool: "mock:echo" })),
  });
  const view = new TerminalView(state, { ...LIVE, rows: 10 });
  const drawn = view.tick(T0);
  // A block taller than the screen cannot be redrawn in place: it keeps within rows - 1.
  assert.equal(drawn.split("\n").length - 1, 9);
  assert.match(drawn, /… 23 more not shown/); // 7 task lines, this one, the summary
  const final = view.finish(T0);
  assert.ok(final.startsWith("\x1b[9A\r\x1b[J"), "the block is replaced");
  assert.equal(final.split("\n").length - 1, 31, "30 tasks and the summary");
});

Deno.test("live: when not every task fits, the running and failed ones are shown first", () => {
  const state = createRunState({
    tasks: Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, tool: "mock:echo" })),
  });
  applyRunEvent(state, ...start("t15", 0));
  applyRunEvent(state, ...failure("t17", 1, "boom", 1));
  const view = new TerminalView(state, { ...LIVE, color: false, rows: 6 });
  const lines = view.tick(T0).split("\n").map((line) => line.replace("\x1b[2K", ""));
  // rows 6: four lines for tasks at most, the last of them the count of the others.
  assert.deepEqual(lines.slice(0, 3).map((line) => line.split(/\s+/)[2]), ["t0", "t15", "t17"]);
  assert.match(lines[3], /^… 17 more not shown$/);
});

Deno.test("plain: one line per start and end, progress per tenth, the summary, and no escape code", () => {
  const state = diamond();
  const view = new TerminalView(state, PLAIN);
  const out: string[] = [];
  feed(state, view, out, ...start("fetch", 0), 0);
  out.push(view.tick(T0 + 100)); // the start line comes out on the tick
  for (const progress of [1, 2, 5, 6, 30, 100]) {
    feed(state, view, out, "task_progress", {
      taskId: "fetch",
      progress,
      total: 100,
      message: `at ${progress}`,
      timestamp: at(100 + progress),
    }, 100 + progress);
  }
  feed(state, view, out, ...success("fetch", 300, 300, { waitedMs: 300 }), 300);
  feed(state, view, out, ...success("fetch", 300, 300), 301); // replayed: no second line
  feed(state, view, out, ...start("left", 301), 301);
  feed(state, view, out, ...failure("left", 302, "boom", 1), 302);
  feed(state, view, out, ...start("right", 302), 302);
  feed(state, view, out, ...failure("right", 302, "Dependency left failed"), 302);
  feed(state, view, out, ...start("join", 302), 302);
  feed(state, view, out, ...failure("join", 302, "Dependency left failed"), 302);
  feed(state, view, out, "execution_complete", { totalExecutionTimeMs: 303 }, 303);
  out.push(view.finish(T0 + 303));
  const text = out.join("");
  assert.doesNotMatch(text, CONTROL);
  assert.deepEqual(text.split("\n"), [
    "▶ running    fetch  mock:delay",
    "▶ running    fetch  mock:delay   101 ms  [----------] 1% at 1",
    "▶ running    fetch  mock:delay   130 ms  [###-------] 30% at 30",
    "▶ running    fetch  mock:delay   200 ms  [##########] 100% at 100",
    '✓ success    fetch  mock:delay   300 ms  → {"waitedMs":300}',
    "▶ running    left   mock:echo",
    "✗ error      left   mock:echo      1 ms  boom",
    // Skipped without running: their task_start gives no start line.
    "↷ skipped    right  mock:delay           Dependency left failed",
    "↷ skipped    join   mock:echo            Dependency left failed",
    "failed: 4 tasks (1 success, 1 error, 2 skipped) in 303 ms",
    "",
  ]);
});

Deno.test("plain: progress without a total prints its first report only", () => {
  const state = diamond();
  const view = new TerminalView(state, PLAIN);
  const out: string[] = [];
  feed(state, view, out, ...start("fetch", 0), 0);
  for (const progress of [1, 2, 3]) {
    feed(state, view, out, "task_progress", { taskId: "fetch", progress, timestamp: at(10) }, 10);
  }
  assert.deepEqual(out.join("").split("\n"), [
    "▶ running    fetch  mock:delay",
    "▶ running    fetch  mock:delay    10 ms  progress 1",
    "",
  ]);
});

Deno.test("plain: a run error is written once, before the summary", () => {
  const state = diamond();
  const view = new TerminalView(state, PLAIN);
  const out: string[] = [];
  feed(state, view, out, "error", { error: "the run failed", code: "stream_failed" }, 0);
  out.push(view.finish(T0));
  assert.deepEqual(out.join("").split("\n"), [
    "run error: the run failed (stream_failed)",
    "running: 4 tasks (4 pending) — run error: the run failed",
    "",
  ]);
});

Deno.test("colour off (a pipe, NO_COLOR): no escape code, even from a tool's text", () => {
  const state = diamond();
  applyRunEvent(state, ...start("fetch", 0));
  applyRunEvent(state, ...failure("fetch", 5, "\x1b[2J\x1b[31mwiped\nsecond line", 5));
  applyRunEvent(state, ...start("left", 5));
  applyRunEvent(state, "task_progress", {
    taskId: "left",
    progress: 1,
    total: 2,
    message: "\x1b]0;title\x07",
  });
  applyRunEvent(state, ...start("right", 5));
  applyRunEvent(state, ...success("right", 6, 1, { text: "\x1b[1mbold\u009b" }));
  const widths = { id: 5, tool: 10 };
  for (const task of state.tasks) {
    const line = taskLine(task, T0 + 10, { color: false, columns: Infinity, widths });
    assert.doesNotMatch(line, CONTROL, line);
    assert.doesNotMatch(line, /\n/);
  }
  const line = taskLine(state.byId.get("fetch")!, T0, { color: false, columns: Infinity, widths });
  assert.match(line, /�\[2J�\[31mwiped second line$/);
  // With colour on, the tool's text is still defused: only the view's own codes remain.
  const coloured = taskLine(state.byId.get("fetch")!, T0, {
    color: true,
    columns: Infinity,
    widths,
  });
  assert.deepEqual(
    coloured.match(/\x1b\[[0-9;]*m/g)?.every((c) => /^\x1b\[(0|1|2|31)m$/.test(c)),
    true,
  );
  assert.doesNotMatch(coloured, /\x1b\[2J/);
});

Deno.test("progress: a bar and a percentage with a total, the number without", () => {
  assert.equal(progressText({ progress: 0, total: 10 }), "[----------] 0%");
  assert.equal(progressText({ progress: 5, total: 10 }), "[#####-----] 50%");
  assert.equal(progressText({ progress: 9.99, total: 10 }), "[#########-] 99%");
  assert.equal(progressText({ progress: 10, total: 10 }), "[##########] 100%");
  assert.equal(progressText({ progress: 15, total: 10 }), "[##########] 100%");
  assert.equal(progressText({ progress: -1, total: 10 }), "[----------] 0%");
  assert.equal(progressText({ progress: 7 }), "progress 7");
  assert.equal(progressText({ progress: 7, total: 0 }), "progress 7");
  const state = diamond();
  applyRunEvent(state, ...start("fetch", 0));
  applyRunEvent(state, "task_progress", {
    taskId: "fetch",
    progress: 1,
    total: 2,
    message: "half",
  });
  assert.equal(
    taskLine(state.byId.get("fetch")!, T0 + 2500, {
      color: false,
      columns: Infinity,
      widths: { id: 5, tool: 10 },
    }),
    "▶ running    fetch  mock:delay    2.5 s  [#####-----] 50% half",
  );
});

Deno.test("width: a line never takes more than columns - 1 cells, and a cut one ends in …", () => {
  const state = createRunState({
    tasks: [{ id: "a-rather-long-task-identifier", tool: "mcp-server:some-long-tool-name" }],
  });
  applyRunEvent(state, ...start("a-rather-long-task-identifier", 0));
  applyRunEvent(state, ...failure("a-rather-long-task-identifier", 1, "x".repeat(500), 1));
  const task = state.tasks[0];
  for (const columns of [10, 40, 80, 120]) {
    for (const color of [false, true]) {
      const line = taskLine(task, T0, { color, columns, widths: { id: 24, tool: 28 } });
      const visible = withoutColour(line);
      assert.ok(displayWidth(visible) <= columns - 1, `${columns}: ${visible}`);
      assert.ok(visible.endsWith("…"), visible);
    }
  }
  // The id column is cut at 24 cells.
  const line = taskLine(task, T0, {
    color: false,
    columns: Infinity,
    widths: { id: 24, tool: 28 },
  });
  assert.match(line, /^✗ error {6}a-rather-long-task-iden… {2}mcp-server:some-long-tool-n… /);
  // Wide characters take two cells each.
  const wide = createRunState({ tasks: [{ id: "日本語のタスク", tool: "mock:echo" }] });
  const cut = taskLine(wide.tasks[0], T0, {
    color: false,
    columns: 20,
    widths: { id: 14, tool: 9 },
  });
  assert.ok(displayWidth(cut) <= 19, cut);
  // The live view cuts every line of its block, the summary included.
  const view = new TerminalView(state, { ...LIVE, columns: 30 });
  for (const drawn of view.tick(T0).split("\n")) {
    const visible = withoutColour(drawn).replace(/\x1b\[(\d+A\r|2K|J)/g, "");
    assert.ok(displayWidth(visible) <= 29, visible);
  }
});

Deno.test("summary: verdict, counts by state, and the run's time", () => {
  const state = diamond();
  assert.equal(summaryLine(state, T0, { color: false }), "running: 4 tasks (4 pending)");
  applyRunEvent(state, ...start("fetch", 0));
  assert.equal(
    summaryLine(state, T0 + 1500, { color: false }),
    "running: 4 tasks (1 running, 3 pending) in 1.5 s",
  );
  assert.equal(
    summaryLine(state, T0 + 1500, { color: false, interrupted: true }),
    "interrupted: 4 tasks (1 running, 3 pending) in 1.5 s",
  );
  applyRunEvent(state, ...success("fetch", 10, 10));
  for (const id of ["left", "right", "join"]) {
    applyRunEvent(state, ...start(id, 10));
    applyRunEvent(state, ...failure(id, 11, "aborted: interrupted", 1));
  }
  applyRunEvent(state, "execution_complete", { totalExecutionTimeMs: 12.6 });
  assert.equal(
    summaryLine(state, T0 + 99_999, { color: false }),
    "cancelled: 4 tasks (1 success, 3 cancelled) in 13 ms",
  );
  state.byId.get("join")!.state = "error";
  assert.equal(
    summaryLine(state, T0, { color: false }),
    "failed: 4 tasks (1 success, 1 error, 2 cancelled) in 13 ms",
  );
  assert.match(summaryLine(state, T0, { color: true }), /^\x1b\[31mfailed:\x1b\[0m /);
  for (const task of state.tasks) task.state = "success";
  assert.equal(summaryLine(state, T0, { color: false }), "succeeded: 4 tasks (4 success) in 13 ms");
  assert.match(summaryLine(state, T0, { color: true }), /^\x1b\[32msucceeded:\x1b\[0m /);
});

Deno.test("times: ms, tenths of seconds, minutes", () => {
  assert.equal(formatDuration(0), "0 ms");
  assert.equal(formatDuration(999.4), "999 ms");
  assert.equal(formatDuration(1000), "1.0 s");
  assert.equal(formatDuration(59_999), "59.9 s");
  assert.equal(formatDuration(60_000), "1m 00s");
  assert.equal(formatDuration(3_599_000), "59m 59s");
  assert.equal(formatDuration(NaN), "0 ms");
});

Deno.test("redraw: up over the old block, each line cleared, the rest below cleared", () => {
  assert.equal(redraw([], 0), "\x1b[J");
  assert.equal(redraw(["x", "y", "z"], 5), "\x1b[5A\r\x1b[2Kx\n\x1b[2Ky\n\x1b[2Kz\n\x1b[J");
});
