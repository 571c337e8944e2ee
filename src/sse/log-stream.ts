/**
 * The log reader: the one way a run's events become an SSE response. Every
 * stream dagstream serves — the bundled server's `POST /execute` and
 * `GET /runs/<id>/events`, and the library's `handleSSERequest` — is a
 * {@linkcode LogReader} on the run's {@linkcode RunLog}: it replays the log
 * after a cursor, then follows it live, at its client's own pace, and hands
 * the frames to an {@linkcode SSEBody}.
 *
 * Its place is a sequence id, and what it sends are views of the log's
 * shared blocks (at most 64 KiB each), not copies: the body holds one such
 * view until the client takes it, and the HTTP layer a few more while the
 * socket is full. So a slow or stalled reader costs only references to
 * bytes the log keeps anyway — unless those bytes give way meanwhile, when
 * it keeps its few blocks alive.
 *
 * The policy for slow readers and backpressure, written once here:
 *
 * - **The run never waits for a reader**, unless that reader was opened with
 *   `holdRun`: then the run's sink waits ({@linkcode LogReader.holdBack})
 *   while the reader's client has `holdRun.events` events, or more than
 *   `holdRun.bytes` bytes, not yet taken, until it has taken everything.
 *   (`handleSSERequest` holds its run at `maxBufferSize` events; the server's
 *   runs are never held.)
 * - **A reader whose next events have given way** in the log (past the log's
 *   byte bound) gets an `error` event with `code: "events_lost"`, how many it
 *   missed and, when known, where the full result is; then its stream closes.
 * - **A client that goes away** ends its reader at once; with
 *   `cancelRunOnLeave` it also cancels the run.
 *
 * @module
 */

import type { RunLog } from "./run-log.ts";
import { SSEBody } from "./body.ts";
import { DEFAULT_RETRY_MS, formatSSEFrame } from "./frame.ts";
import type { WireErrorEvent } from "./wire-events.ts";

/**
 * What a log reader needs of a run: its event log, and a way to cancel it
 * (for a reader whose client owns the run). The bundled server's runs are
 * such runs; so is the one `handleSSERequest` makes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LoggedRun } from "./log-stream.ts";
 * import { RunLog } from "./run-log.ts";
 * const controller = new AbortController();
 * const run: LoggedRun = {
 *   log: new RunLog(1 << 20),
 *   cancel: (reason) => controller.abort(new Error(reason)),
 * };
 * run.cancel("client disconnected");
 * assert.ok(controller.signal.aborted);
 * ```
 */
export interface LoggedRun {
  /** The run's events. */
  readonly log: RunLog;
  /** Cancels the run (its tools see their signal abort); the result is ignored. */
  cancel(reason: string): unknown;
}

/**
 * Settings of a {@linkcode LogReader}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunStreamOptions } from "./log-stream.ts";
 * const resume: RunStreamOptions = { after: 41, resultUrl: "/runs/abc" };
 * assert.equal(resume.after, 41);
 * ```
 */
export interface RunStreamOptions {
  /** Replay the events after this sequence id. Default 0: all of them. */
  after?: number;
  /** `retry:` announced first, in ms. Default 2000. */
  retryMs?: number;
  /** Idle ms before a `: keep-alive` comment; 0 disables. Default 15000. */
  heartbeatMs?: number;
  /** Cancel the run when this reader's client goes away. Default false. */
  cancelRunOnLeave?: boolean;
  /** Where the run's full result is, for the `events_lost` error. */
  resultUrl?: string;
  /**
   * Hold the run back for this reader's client: the run's sink waits
   * ({@linkcode LogReader.holdBack}) while the client has `events` events,
   * or more than `bytes` bytes, not yet taken. Default: never.
   */
  holdRun?: { events: number; bytes: number };
  /**
   * This reader is the only one the log will ever have (nobody replays the
   * run later): frames give way as soon as its client has taken them, and
   * the whole log once the stream ends. Default false.
   */
  soleReader?: boolean;
}

/**
 * Builds the frame of an `error` event that is not part of the run's log
 * (no `id:`): a shutdown notice, or the `events_lost` error of a reader.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outOfLogErrorFrame } from "./log-stream.ts";
 * const frame = outOfLogErrorFrame("the server is shutting down", { code: "shutdown" });
 * assert.match(frame, /^event: error\ndata: \{"error":"the server is shutting down","timestamp":"[^"]+","code":"shutdown"\}\n\n$/);
 * ```
 */
export function outOfLogErrorFrame(
  message: string,
  extra: Omit<WireErrorEvent["data"], "error" | "timestamp"> = {},
): string {
  const data: WireErrorEvent["data"] = {
    error: message,
    timestamp: new Date().toISOString(),
    ...extra,
  };
  return formatSSEFrame({ event: "error", data: JSON.stringify(data) });
}

/**
 * One client's SSE stream of a run: reads the run's log from a cursor and
 * feeds the frames to {@linkcode LogReader.body}, as the policy of this
 * module says.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LogReader } from "./log-stream.ts";
 * import { RunLog } from "./run-log.ts";
 * import { parseSSEStream } from "./client.ts";
 *
 * const log = new RunLog(1 << 20);
 * const reader = new LogReader({ log, cancel: () => {} }, { retryMs: 1000, heartbeatMs: 0 });
 * log.append({ type: "task_start", data: { taskId: "a", tool: "echo", timestamp: "t" } });
 * log.end();
 * const events = await parseSSEStream(reader.body.readable);
 * assert.deepEqual(events, [
 *   { id: "1", type: "task_start", data: { taskId: "a", tool: "echo", timestamp: "t" } },
 * ]);
 * ```
 */
export class LogReader {
  /** The response body; pass `body.readable` to `new Response(...)`. */
  readonly body: SSEBody;
  readonly #log: RunLog;
  readonly #hold: { events: number; bytes: number } | undefined;
  readonly #sole: boolean;
  readonly #resultUrl: string | undefined;
  /** Sequence id of the last event the client has taken. */
  #taken: number;
  /** Resolves the run's sink once the client has caught up; undefined when not held. */
  #held: PromiseWithResolvers<void> | undefined;

  /**
   * Opens the stream and starts following the log.
   *
   * @param run the run whose log to read
   * @param options where to start, the body's settings, and the policy's options
   */
  constructor(run: LoggedRun, options: RunStreamOptions = {}) {
    this.#log = run.log;
    this.#hold = options.holdRun;
    this.#sole = options.soleReader ?? false;
    this.#resultUrl = options.resultUrl;
    this.#taken = options.after ?? 0;
    const cancelRun = options.cancelRunOnLeave ?? false;
    this.body = new SSEBody({
      retryMs: options.retryMs ?? DEFAULT_RETRY_MS,
      heartbeatMs: options.heartbeatMs,
      onCancel: () => {
        if (cancelRun) run.cancel("client disconnected");
      },
    });
    // Aborted when the body ends (closed, or the client left): stops waiting on the log.
    const left = new AbortController();
    this.body.finished.then(() => {
      left.abort();
      this.#release();
      if (this.#sole) this.#log.discard();
    });
    this.#follow(left.signal).catch(() => this.body.close());
  }

  /** Sequence id of the last event the client has taken (the cursor it started from, at first). */
  get takenSeq(): number {
    return this.#taken;
  }

  /** Events of the log the client has not taken yet. */
  get unreadEvents(): number {
    return Math.max(0, this.#log.lastSeq - this.#taken);
  }

  /** Bytes of the log's frames the client has not taken yet (those still kept). */
  get unreadBytes(): number {
    return this.#log.bytesAfter(this.#taken);
  }

  /**
   * The backpressure of a reader opened with `holdRun`, for the run's sink to
   * return after each append: `undefined` while the run may go on, else a
   * promise that resolves once the client has taken every event appended so
   * far (or has gone away). Always `undefined` without `holdRun`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LogReader } from "./log-stream.ts";
   * import { RunLog } from "./run-log.ts";
   *
   * const log = new RunLog(1 << 20);
   * const reader = new LogReader({ log, cancel: () => {} }, {
   *   heartbeatMs: 0,
   *   holdRun: { events: 2, bytes: 1 << 20 },
   * });
   * const sink = (n: number) => {
   *   log.append({ type: "task_start", data: { taskId: `t${n}`, tool: "echo", timestamp: "t" } });
   *   return reader.holdBack();
   * };
   * assert.equal(sink(1), undefined);
   * const held = sink(2); // two events unread: the run waits
   * assert.ok(held instanceof Promise);
   * const text = new Response(reader.body.readable).text(); // the client reads
   * await held; // it took both
   * assert.equal(reader.unreadEvents, 0);
   * log.end();
   * assert.match(await text, /^retry: 2000\n\nid: 1\n[^]*id: 2\n/);
   * ```
   */
  holdBack(): Promise<void> | undefined {
    const hold = this.#hold;
    if (hold === undefined || this.body.ended) return undefined;
    if (this.unreadEvents < hold.events && this.unreadBytes <= hold.bytes) {
      return undefined;
    }
    this.#held ??= Promise.withResolvers<void>();
    return this.#held.promise;
  }

  async #follow(left: AbortSignal): Promise<void> {
    const body = this.body;
    const log = this.#log;
    let cursor = this.#taken;
    while (!body.ended) {
      const read = log.readChunk(cursor);
      switch (read.kind) {
        case "frames":
          body.push(read.bytes, read.events);
          cursor = read.lastSeq;
          await body.drained(0);
          if (!body.ended) this.#took(cursor);
          break;
        case "lost": {
          const url = this.#resultUrl;
          body.push(outOfLogErrorFrame(
            `${read.missed} event(s) after id ${cursor} are no longer kept` +
              (url === undefined ? "" : `; the full result is at ${url}`),
            url === undefined
              ? { code: "events_lost", missedEvents: read.missed }
              : { code: "events_lost", missedEvents: read.missed, resultUrl: url },
          ));
          body.close();
          return;
        }
        case "end":
          body.close();
          return;
        case "wait":
          await log.changed(left);
          break;
      }
    }
  }

  /** The client has taken every frame through `seq`. */
  #took(seq: number): void {
    this.#taken = seq;
    if (this.#sole) this.#log.dropThrough(seq);
    if (seq >= this.#log.lastSeq) this.#release();
  }

  /** Lets a held run go on. */
  #release(): void {
    const held = this.#held;
    this.#held = undefined;
    held?.resolve();
  }
}

/**
 * Opens a reader's SSE body on `run` (a {@linkcode LogReader} for callers
 * that need only its body).
 *
 * @returns the body to send; pass `body.readable` to `new Response(...)`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runEventStream } from "./log-stream.ts";
 * import { RunLog } from "./run-log.ts";
 *
 * const log = new RunLog(100);
 * for (let i = 0; i < 5; i++) log.append({ type: "error", data: { error: "x", timestamp: "t" } });
 * log.end(); // 100 bytes keep only the last frames: a reader from 0 missed some
 * const body = runEventStream({ log, cancel: () => {} }, { heartbeatMs: 0, resultUrl: "/runs/1" });
 * const text = await new Response(body.readable).text();
 * assert.match(text, /"code":"events_lost","missedEvents":\d,"resultUrl":"\/runs\/1"/);
 * ```
 */
export function runEventStream(run: LoggedRun, options: RunStreamOptions = {}): SSEBody {
  return new LogReader(run, options).body;
}
