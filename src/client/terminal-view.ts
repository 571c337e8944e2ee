/**
 * What the terminal view (`deno task run`) writes, worked out from a
 * {@linkcode RunState} and the time: one line per task, a summary line,
 * and on a terminal the escape codes that redraw the block in place. No
 * I/O here: {@linkcode TerminalView} returns the text, the command writes it.
 *
 * Two modes:
 *
 * - **live** (a terminal, colours allowed): the block of task lines and a
 *   summary is redrawn in place after each event and on each tick (cursor
 *   up, clear line), coloured by state, each line cut to the terminal's
 *   width, and kept within its height (a task block taller than the screen
 *   cannot be redrawn in place: the lines that matter most are shown, then
 *   a count of the others). Once the run is over the whole list is written
 *   one last time, so the scrollback keeps every task.
 * - **plain** (a pipe, or `NO_COLOR`): lines are only appended, with no
 *   escape code at all: one when a task starts, one when it ends (with its
 *   state and time), a progress line when a task's progress reaches a new
 *   tenth of its total (progress without a total prints only its first
 *   report), and the summary once the run is over. A start line waits for
 *   the next event or tick (a tenth of a second), so that a task that is
 *   skipped or cancelled without running, which also gets a `task_start`,
 *   shows no start.
 *
 * Text that comes from the run (ids, tool names, messages, outputs) is
 * written with its control characters replaced, so a tool cannot move the
 * cursor or change colours, and a line stays one line.
 *
 * @module
 */

import {
  countStates,
  type RunState,
  succeeded,
  type TaskState,
  type TaskView,
  TERMINAL_STATES,
} from "./run-state.ts";

/**
 * How the view writes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TerminalOptions } from "./terminal-view.ts";
 * const pipe: TerminalOptions = { live: false, color: false, columns: Infinity, rows: Infinity };
 * assert.equal(pipe.live, false);
 * ```
 */
export interface TerminalOptions {
  /** Redraw the block in place (cursor movement); else append plain lines. */
  live: boolean;
  /** Colour by state (ANSI SGR codes). */
  color: boolean;
  /** The terminal's width: a line never takes more than `columns - 1` cells. `Infinity`: no limit. */
  columns: number;
  /** The terminal's height: a live block never takes more than `rows - 1` lines. `Infinity`: no limit. */
  rows: number;
}

/** Each state's symbol. */
const SYMBOLS: Record<TaskState, string> = {
  pending: "·",
  running: "▶",
  success: "✓",
  error: "✗",
  skipped: "↷",
  cancelled: "⊘",
};

/** Each state's SGR colour code. */
const COLOURS: Record<TaskState, string> = {
  pending: "2",
  running: "36",
  success: "32",
  error: "31",
  skipped: "33",
  cancelled: "35",
};

/** Order of the states in the summary's counts. */
const STATE_ORDER: readonly TaskState[] = [
  "success",
  "error",
  "skipped",
  "cancelled",
  "running",
  "pending",
];

/** Widest id and tool columns; longer ones are cut. */
const MAX_ID_WIDTH = 24;
const MAX_TOOL_WIDTH = 28;
/** Longest output preview after a succeeded task. */
const MAX_PREVIEW = 60;
/** Cells of a progress bar, between its brackets. */
const BAR_CELLS = 10;

const ESC = "\x1b";

/**
 * A duration as people read it: `123 ms`, `4.5 s`, `2m 05s`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./terminal-view.ts";
 * assert.equal(formatDuration(12.4), "12 ms");
 * assert.equal(formatDuration(4_520), "4.5 s");
 * assert.equal(formatDuration(125_000), "2m 05s");
 * assert.equal(formatDuration(-3), "0 ms");
 * ```
 */
export function formatDuration(ms: number): string {
  const value = Number.isFinite(ms) ? Math.max(0, ms) : 0;
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${(Math.floor(value / 100) / 10).toFixed(1)} s`;
  const seconds = Math.floor(value / 1000);
  return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
}

/**
 * A task's progress as text: a bar and a percentage when its total is
 * known, else the progress number as reported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progressText } from "./terminal-view.ts";
 * assert.equal(progressText({ progress: 5, total: 10 }), "[#####-----] 50%");
 * assert.equal(progressText({ progress: 12, total: 10 }), "[##########] 100%");
 * assert.equal(progressText({ progress: 3 }), "progress 3");
 * ```
 */
export function progressText(progress: { progress: number; total?: number }): string {
  const { total } = progress;
  if (total === undefined || !(total > 0)) return `progress ${progress.progress}`;
  const ratio = Math.min(1, Math.max(0, progress.progress / total));
  const filled = Math.floor(ratio * BAR_CELLS);
  return `[${"#".repeat(filled)}${"-".repeat(BAR_CELLS - filled)}] ${Math.floor(ratio * 100)}%`;
}

/**
 * `text` made safe for one terminal line: line breaks and tabs become
 * spaces, other control characters (ESC included) and bidirectional
 * overrides become `�`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { oneLine } from "./terminal-view.ts";
 * assert.equal(oneLine("a\nb\tc"), "a b c");
 * assert.equal(oneLine("\x1b[2Jwiped"), "�[2Jwiped");
 * ```
 */
export function oneLine(text: string): string {
  return text
    .replace(/[\n\r\t\v\f]+/g, " ")
    .replace(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu, "\ufffd");
}

/**
 * How many terminal cells `text` takes: wide East Asian characters and
 * emoji take two, combining marks none, everything else one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { displayWidth } from "./terminal-view.ts";
 * assert.equal(displayWidth("abc"), 3);
 * assert.equal(displayWidth("日本"), 4);
 * assert.equal(displayWidth("e\u0301"), 1);
 * ```
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) width += charWidth(char);
  return width;
}

function charWidth(char: string): number {
  if (/\p{M}|[\u200b-\u200f\u2060]/u.test(char)) return 0;
  const code = char.codePointAt(0)!;
  const wide = (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1faff) ||
    (code >= 0x20000 && code <= 0x3fffd);
  return wide ? 2 : 1;
}

/** `text` cut to at most `width` cells, ending in `…` when cut. */
function cutToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 0) return "";
  let out = "";
  let used = 0;
  for (const char of text) {
    const w = charWidth(char);
    if (used + w > width - 1) break;
    out += char;
    used += w;
  }
  return `${out}…`;
}

/** `text` padded with spaces to `width` cells (cut first when wider). */
function padToWidth(text: string, width: number): string {
  const cut = cutToWidth(text, width);
  return cut + " ".repeat(Math.max(0, width - displayWidth(cut)));
}

/** A piece of a line and its SGR code, if any. */
type Segment = readonly [text: string, sgr?: string];

/**
 * Joins segments into a line of at most `width` cells, coloured when
 * `color` is set. Trailing spaces are dropped; a line too wide is cut and
 * ends in `…`.
 */
function renderSegments(segments: readonly Segment[], width: number, color: boolean): string {
  const pieces = segments.map(([text, sgr]) => [text, sgr] as [string, string | undefined]);
  while (pieces.length > 0 && pieces[pieces.length - 1][0].trim() === "") pieces.pop();
  if (pieces.length > 0) pieces[pieces.length - 1][0] = pieces[pieces.length - 1][0].trimEnd();
  const total = pieces.reduce((sum, [text]) => sum + displayWidth(text), 0);
  const cut = total > width;
  // A cut line keeps a cell for its "…".
  let budget = cut ? width - 1 : total;
  let out = "";
  for (const [text, sgr] of pieces) {
    if (budget <= 0) break;
    let piece = "";
    for (const char of text) {
      const w = charWidth(char);
      if (w > budget) break;
      piece += char;
      budget -= w;
    }
    out += color && sgr !== undefined && piece !== "" ? `${ESC}[${sgr}m${piece}${ESC}[0m` : piece;
  }
  return cut ? `${out}…` : out;
}

/**
 * Widths of the id and tool columns for a run's tasks, so that the lines
 * of one run line up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { columnWidths } from "./terminal-view.ts";
 * import { createRunState } from "./run-state.ts";
 * const state = createRunState({ tasks: [{ id: "fetch", tool: "mock:delay" }, { id: "a", tool: "x" }] });
 * assert.deepEqual(columnWidths(state), { id: 5, tool: 10 });
 * ```
 */
export function columnWidths(state: RunState): { id: number; tool: number } {
  let id = 1;
  let tool = 1;
  for (const task of state.tasks) {
    id = Math.max(id, displayWidth(oneLine(task.id)));
    tool = Math.max(tool, displayWidth(oneLine(task.tool)));
  }
  return { id: Math.min(id, MAX_ID_WIDTH), tool: Math.min(tool, MAX_TOOL_WIDTH) };
}

/**
 * One task's line: its state's symbol and word, id, tool, time (since its
 * start while it runs, its tool's time once over), then its progress bar
 * and message while it runs, its error once failed, or a preview of its
 * output once succeeded. `now` is in ms since the epoch, on the clock of
 * the events' timestamps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRunState } from "./run-state.ts";
 * import { taskLine } from "./terminal-view.ts";
 * const state = createRunState({ tasks: [{ id: "fetch", tool: "mock:delay" }] });
 * const task = state.byId.get("fetch")!;
 * Object.assign(task, { state: "running", startedAt: 1000, progress: { progress: 1, total: 4 } });
 * const style = { color: false, columns: Infinity, widths: { id: 5, tool: 10 } };
 * assert.equal(taskLine(task, 1250, style), "▶ running    fetch  mock:delay   250 ms  [##--------] 25%");
 * ```
 */
export function taskLine(
  task: TaskView,
  now: number,
  style: { color: boolean; columns: number; widths: { id: number; tool: number }; time?: boolean },
): string {
  const sgr = COLOURS[task.state];
  const segments: Segment[] = [
    [`${SYMBOLS[task.state]} ${task.state.padEnd(9)}`, sgr],
    ["  "],
    [padToWidth(oneLine(task.id), style.widths.id), "1"],
    ["  "],
    [padToWidth(oneLine(task.tool), style.widths.tool), "2"],
  ];
  const time = style.time === false ? undefined : taskTime(task, now);
  segments.push(["  "], [(time ?? "").padStart(7)]);
  const detail = taskDetail(task);
  if (detail !== undefined) segments.push(["  "], detail);
  return renderSegments(segments, lineWidth(style.columns), style.color);
}

/** The time a task's line shows, if any. */
function taskTime(task: TaskView, now: number): string | undefined {
  if (task.state === "running") {
    return task.startedAt === undefined ? undefined : formatDuration(now - task.startedAt);
  }
  if (task.state === "pending" || task.state === "skipped") return undefined;
  // A task cancelled before it started never ran: no time.
  if (task.state === "cancelled" && !task.executionTimeMs) return undefined;
  return task.executionTimeMs === undefined ? undefined : formatDuration(task.executionTimeMs);
}

/** What follows a task's time on its line, if anything. */
function taskDetail(task: TaskView): Segment | undefined {
  if (task.state === "running" && task.progress !== undefined) {
    const message = task.progress.message ? ` ${oneLine(task.progress.message)}` : "";
    return [`${attemptText(task)}${progressText(task.progress)}${message}`, COLOURS.running];
  }
  if (task.state === "running" && task.attempt !== undefined) {
    return [`attempt ${task.attempt}, after: ${oneLine(task.retryError ?? "failed")}`, "2"];
  }
  if (task.state === "error" && (task.attempts ?? 1) > 1) {
    return [`${oneLine(task.error ?? "failed")} (${task.attempts} attempts)`, COLOURS.error];
  }
  if (task.state === "error") return [oneLine(task.error ?? "failed"), COLOURS.error];
  if (task.state === "skipped" || task.state === "cancelled") {
    return [oneLine(task.error ?? task.state), "2"];
  }
  if (task.state === "success" && task.output !== undefined) {
    const preview = outputPreview(task.output, task.truncated === true);
    return preview === undefined ? undefined : [`→ ${preview}`, "2"];
  }
  return undefined;
}

/** `attempt 2: ` while a retried task runs its second attempt, else nothing. */
function attemptText(task: TaskView): string {
  return task.attempt === undefined ? "" : `attempt ${task.attempt}: `;
}

/** The start of an output's JSON text, on one line. */
function outputPreview(output: unknown, truncated: boolean): string | undefined {
  let text: string | undefined;
  try {
    // A truncated output is already the start of its JSON text.
    text = truncated && typeof output === "string" ? output : JSON.stringify(output);
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  const line = oneLine(text);
  return line.length > MAX_PREVIEW || truncated ? `${line.slice(0, MAX_PREVIEW - 1)}…` : line;
}

/** Cells a line may take in a terminal `columns` wide: one is left free, so no line wraps. */
function lineWidth(columns: number): number {
  return Number.isFinite(columns) ? Math.max(1, columns - 1) : Infinity;
}

/**
 * The run's summary line: a verdict, the count of tasks in each state,
 * and the run's time: its wall-clock time once over, else the time since
 * its first task started.
 *
 * The verdict is `interrupted` when the watcher stopped the run (Ctrl-C),
 * `running` while it goes on, then `succeeded` when every task succeeded,
 * `cancelled` when some were cancelled and none failed, else `failed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyRunEvent, createRunState } from "./run-state.ts";
 * import { summaryLine } from "./terminal-view.ts";
 * const state = createRunState({ tasks: [{ id: "a", tool: "mock:echo" }] });
 * const at = "2026-01-01T00:00:00.000Z";
 * applyRunEvent(state, "task_start", { taskId: "a", timestamp: at });
 * applyRunEvent(state, "task_complete", { taskId: "a", status: "success", executionTimeMs: 3, timestamp: at });
 * applyRunEvent(state, "execution_complete", { totalTasks: 1, successCount: 1, errorCount: 0, totalExecutionTimeMs: 4.2 });
 * assert.equal(summaryLine(state, 0, { color: false }), "succeeded: 1 task (1 success) in 4 ms");
 * ```
 */
export function summaryLine(
  state: RunState,
  now: number,
  style: { color: boolean; columns?: number; interrupted?: boolean },
): string {
  const verdict = runVerdict(state, style.interrupted === true);
  const counts = countStates(state);
  const parts = STATE_ORDER.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
  const n = state.tasks.length;
  const segments: Segment[] = [
    [`${verdict}:`, VERDICT_COLOURS[verdict]],
    [` ${n} task${n === 1 ? "" : "s"}${parts.length > 0 ? ` (${parts.join(", ")})` : ""}`],
  ];
  const wall = runTime(state, now);
  if (wall !== undefined) segments.push([` in ${formatDuration(wall)}`]);
  if (state.error !== undefined) {
    segments.push([` — run error: ${oneLine(state.error.error)}`, COLOURS.error]);
  }
  return renderSegments(segments, lineWidth(style.columns ?? Infinity), style.color);
}

/** What a run came to, as its summary line says it. */
type Verdict = "interrupted" | "running" | "succeeded" | "cancelled" | "failed";

const VERDICT_COLOURS: Record<Verdict, string> = {
  interrupted: "35",
  running: "36",
  succeeded: "32",
  cancelled: "35",
  failed: "31",
};

function runVerdict(state: RunState, interrupted: boolean): Verdict {
  if (interrupted) return "interrupted";
  if (!state.over) return "running";
  if (succeeded(state)) return "succeeded";
  const counts = countStates(state);
  return counts.cancelled > 0 && counts.error === 0 && state.error === undefined
    ? "cancelled"
    : "failed";
}

/** The run's wall-clock time once over, else the time since its first task started. */
function runTime(state: RunState, now: number): number | undefined {
  if (state.summary !== undefined) return state.summary.totalExecutionTimeMs;
  let first: number | undefined;
  for (const task of state.tasks) {
    if (task.startedAt !== undefined && (first === undefined || task.startedAt < first)) {
      first = task.startedAt;
    }
  }
  return first === undefined ? undefined : now - first;
}

/**
 * The escape codes that replace a block of `previousHeight` lines, drawn
 * just above the cursor, by `lines`: cursor up to the block's first line,
 * each line cleared and rewritten, then whatever is left below cleared
 * (the new block may be shorter). The cursor ends below the new block.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redraw } from "./terminal-view.ts";
 * assert.equal(redraw(["a", "b"], 0), "\x1b[2Ka\n\x1b[2Kb\n\x1b[J");
 * assert.equal(redraw(["a"], 2), "\x1b[2A\r\x1b[2Ka\n\x1b[J");
 * ```
 */
export function redraw(lines: readonly string[], previousHeight: number): string {
  const up = previousHeight > 0 ? `${ESC}[${previousHeight}A\r` : "";
  return `${up}${lines.map((line) => `${ESC}[2K${line}\n`).join("")}${ESC}[J`;
}

/** How much each state's task is worth showing when not all fit: lower first. */
const SHOW_FIRST: Record<TaskState, number> = {
  running: 0,
  error: 1,
  cancelled: 2,
  pending: 3,
  skipped: 4,
  success: 5,
};

/**
 * The tasks a block of at most `maxLines` task lines shows: all of them
 * when they fit; else, in declaration order, those that matter most
 * (running, then failed, cancelled, pending, skipped, succeeded), one line
 * fewer, and the number left out.
 */
function visibleTasks(
  state: RunState,
  maxLines: number,
): { shown: readonly TaskView[]; hidden: number } {
  const tasks = state.tasks;
  if (tasks.length <= maxLines) return { shown: tasks, hidden: 0 };
  const room = Math.max(0, maxLines - 1);
  const picked = new Set(
    tasks
      .map((task, index) => ({ task, index }))
      .sort((a, b) => SHOW_FIRST[a.task.state] - SHOW_FIRST[b.task.state] || a.index - b.index)
      .slice(0, room)
      .map(({ task }) => task),
  );
  return { shown: tasks.filter((task) => picked.has(task)), hidden: tasks.length - picked.size };
}

/**
 * The terminal view of one run: what to write after each event, on each
 * tick, and at the end (see the module documentation for the two modes).
 * It keeps what it needs to know of what it wrote before (the height of
 * the live block; which lines a pipe has had), nothing else.
 *
 * @example A pipe: one line per start and end, then the summary
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyRunEvent, createRunState } from "./run-state.ts";
 * import { TerminalView } from "./terminal-view.ts";
 * const state = createRunState({ tasks: [{ id: "a", tool: "mock:echo" }] });
 * const view = new TerminalView(state, { live: false, color: false, columns: Infinity, rows: Infinity });
 * const at = "2026-01-01T00:00:00.000Z";
 * let out = view.changed(applyRunEvent(state, "task_start", { taskId: "a", timestamp: at }), 0);
 * out += view.tick(0); // nothing: a pipe is not redrawn
 * out += view.changed(applyRunEvent(state, "task_complete", {
 *   taskId: "a", status: "success", executionTimeMs: 2, timestamp: at,
 * }), 0);
 * applyRunEvent(state, "execution_complete", { totalExecutionTimeMs: 3 });
 * out += view.finish(0);
 * assert.equal(out, [
 *   "▶ running    a  mock:echo",
 *   "✓ success    a  mock:echo     2 ms",
 *   "succeeded: 1 task (1 success) in 3 ms",
 *   "",
 * ].join("\n"));
 * ```
 *
 * @example A terminal: the block is redrawn in place
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRunState } from "./run-state.ts";
 * import { TerminalView } from "./terminal-view.ts";
 * const state = createRunState({ tasks: [{ id: "a", tool: "mock:echo" }] });
 * const view = new TerminalView(state, { live: true, color: true, columns: 80, rows: 24 });
 * const first = view.tick(0);
 * assert.ok(!first.includes("\x1b[2A")); // nothing to go back over yet
 * assert.ok(view.tick(0).startsWith("\x1b[2A\r")); // task line + summary line
 * ```
 */
export class TerminalView {
  readonly #state: RunState;
  #options: TerminalOptions;
  readonly #widths: { id: number; tool: number };
  /** Lines of the live block now on screen. */
  #height = 0;
  /** Plain mode: tasks whose start line was written, or waits to be. */
  readonly #started = new Set<TaskView>();
  /** Plain mode: start lines not written yet, by task (see #plainTaskLine). */
  readonly #pendingStarts = new Map<TaskView, string>();
  /** Plain mode: tasks whose end line was written. */
  readonly #ended = new Set<TaskView>();
  /** Plain mode: the attempt each retried task's last line showed. */
  readonly #attemptShown = new Map<TaskView, number>();
  /** Plain mode: the progress tenth each task's last progress line showed (-1: a total-less report). */
  readonly #tenths = new Map<TaskView, number>();
  /** Plain mode: whether the run's error was written. */
  #errorPrinted = false;

  /** A view of `state` (which the caller updates with `applyRunEvent`). */
  constructor(state: RunState, options: TerminalOptions) {
    this.#state = state;
    this.#options = { ...options };
    this.#widths = columnWidths(state);
  }

  /** Takes the terminal's new size into account from the next draw on. */
  resize(columns: number, rows: number): void {
    this.#options = { ...this.#options, columns, rows };
  }

  /**
   * What to write once an event was folded into the state: `change` is
   * what `applyRunEvent` returned for it; `now` is on the clock of the
   * events' timestamps. Live: the redrawn block; plain: the lines it adds
   * (often none).
   */
  changed(change: TaskView | true | undefined, now: number): string {
    if (this.#options.live) return change === undefined ? "" : this.#draw(now);
    if (change === true) return this.#flushStarts() + this.#runErrorLine();
    return change === undefined ? "" : this.#plainTaskLine(change, now);
  }

  /**
   * What to write on a clock tick: live, the redrawn block (running times
   * move on); plain, the start lines held back since the last event.
   */
  tick(now: number): string {
    return this.#options.live ? this.#draw(now) : this.#flushStarts();
  }

  /**
   * What to write once the run is over, or once the watcher stops
   * (`interrupted`): live, every task's line (however many) and the
   * summary, in place of the block, left as they are for the scrollback;
   * plain, the summary line (after the run's error, if not written yet).
   */
  finish(now: number, interrupted = false): string {
    const { color, columns } = this.#options;
    const summary = summaryLine(this.#state, now, { color, columns, interrupted });
    if (!this.#options.live) return `${this.#flushStarts()}${this.#runErrorLine()}${summary}\n`;
    const lines = this.#state.tasks.map((task) =>
      taskLine(task, now, { color, columns, widths: this.#widths })
    );
    const up = this.#height > 0 ? `${ESC}[${this.#height}A\r` : "";
    this.#height = 0;
    return `${up}${ESC}[J${[...lines, summary].join("\n")}\n`;
  }

  #draw(now: number): string {
    const { color, columns, rows } = this.#options;
    // The summary takes a line, and one is left free so the block never scrolls.
    const maxTaskLines = Number.isFinite(rows) ? Math.max(1, rows - 2) : Infinity;
    const { shown, hidden } = visibleTasks(this.#state, maxTaskLines);
    const lines = shown.map((task) =>
      taskLine(task, now, { color, columns, widths: this.#widths })
    );
    if (hidden > 0) {
      lines.push(renderSegments([[`… ${hidden} more not shown`, "2"]], lineWidth(columns), color));
    }
    lines.push(summaryLine(this.#state, now, { color, columns }));
    const text = redraw(lines, this.#height);
    this.#height = lines.length;
    return text;
  }

  /**
   * The lines a change of `task` adds to a pipe. A skipped task, and one
   * cancelled before it ran, get a `task_start` right before their
   * `task_complete`: a start line would say they ran. So a start line is
   * held back until the next event or tick, and dropped when that event
   * is the task's own end without having run.
   */
  #plainTaskLine(task: TaskView, now: number): string {
    const style = { color: false, columns: Infinity, widths: this.#widths };
    if (TERMINAL_STATES.has(task.state)) {
      if (this.#ended.has(task)) return "";
      this.#ended.add(task);
      const ran = task.state !== "skipped" &&
        !(task.state === "cancelled" && !task.executionTimeMs);
      if (!ran) this.#pendingStarts.delete(task);
      return `${this.#flushStarts()}${taskLine(task, now, style)}\n`;
    }
    if (task.state !== "running") return "";
    if (!this.#started.has(task)) {
      const out = this.#flushStarts();
      this.#started.add(task);
      this.#pendingStarts.set(task, `${taskLine(task, now, { ...style, time: false })}\n`);
      if (task.progress === undefined) return out;
      return out + this.#flushStarts() + this.#plainProgressLine(task, now);
    }
    if (task.attempt !== undefined && this.#attemptShown.get(task) !== task.attempt) {
      // A retry: one line saying which attempt starts, and why the last one failed.
      this.#attemptShown.set(task, task.attempt);
      return `${this.#flushStarts()}${taskLine(task, now, { ...style, time: false })}\n`;
    }
    return this.#flushStarts() + this.#plainProgressLine(task, now);
  }

  /** A progress line when the task's progress reached a new tenth of its total (or is its first report). */
  #plainProgressLine(task: TaskView, now: number): string {
    const progress = task.progress;
    if (progress === undefined) return "";
    const known = progress.total !== undefined && progress.total > 0;
    // Without a total there is no tenth to reach: only the first report prints.
    const tenth = known
      ? Math.min(10, Math.max(0, Math.floor((progress.progress / progress.total!) * 10)))
      : -1;
    const last = this.#tenths.get(task);
    if (last !== undefined && !(known && tenth > last)) return "";
    this.#tenths.set(task, tenth);
    return `${taskLine(task, now, { color: false, columns: Infinity, widths: this.#widths })}\n`;
  }

  #flushStarts(): string {
    const out = [...this.#pendingStarts.values()].join("");
    this.#pendingStarts.clear();
    return out;
  }

  #runErrorLine(): string {
    const error = this.#state.error;
    if (error === undefined || this.#errorPrinted) return "";
    this.#errorPrinted = true;
    return `run error: ${oneLine(error.error)}${error.code ? ` (${oneLine(error.code)})` : ""}\n`;
  }
}
