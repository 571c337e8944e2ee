/**
 * Shared helpers of the streaming tests: deferred promises, gated tools the
 * test releases, event sinks that record what they receive (and can be made
 * slow), and ordering checks. Not a test file (no `_test` suffix).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { SSEEvent, TaskResult, ToolContext, ToolExecutor } from "../../../mod.ts";
import { realTurn } from "../_fake_clock.ts";

/** A promise with its resolve/reject exposed. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason?: unknown) => void;
}

/** Creates a {@linkcode Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  return Promise.withResolvers<T>();
}

/**
 * Lets every pending microtask and one macrotask run (on the real event
 * loop, also while a `FakeClock` is installed). Used only to give code a
 * chance to do something it must not do (never as a time bound).
 */
export function tick(): Promise<void> {
  return realTurn();
}

/** Whether `promise` has settled, after letting queued work run. */
export async function promiseState(
  promise: Promise<unknown>,
): Promise<"pending" | "fulfilled" | "rejected"> {
  let state: "pending" | "fulfilled" | "rejected" = "pending";
  promise.then(() => state = "fulfilled", () => state = "rejected");
  await tick();
  return state;
}

/** A tool call seen by a {@linkcode GatedTools}. */
export interface ToolCall {
  tool: string;
  args: Record<string, unknown>;
  ctx: ToolContext;
}

/**
 * Tools that block until the test releases them. `release(id, value)`
 * resolves the call of task `id` (before or after it started), `fail(id)`
 * rejects it. A call rejects when its signal aborts. `started(id)` resolves
 * once the task's tool has been called; `aborted(id)` once its signal aborts.
 */
export class GatedTools {
  readonly calls: ToolCall[] = [];
  running = 0;
  maxRunning = 0;
  readonly #gates = new Map<string, Deferred<unknown>>();
  readonly #started = new Map<string, Deferred<void>>();
  readonly #aborted = new Map<string, Deferred<unknown>>();

  /** Tasks whose ids are listed here run at once, returning their arguments. */
  constructor(readonly immediate: ReadonlySet<string> = new Set()) {}

  readonly executor: ToolExecutor = (tool, args, ctx) => {
    this.calls.push({ tool, args, ctx });
    this.#get(this.#started, ctx.taskId).resolve();
    if (this.immediate.has(ctx.taskId)) return Promise.resolve(args);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const gate = this.#get(this.#gates, ctx.taskId);
    const aborted = this.#get(this.#aborted, ctx.taskId);
    const onAbort = () => {
      aborted.resolve(ctx.signal.reason);
      gate.reject(ctx.signal.reason);
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener("abort", onAbort, { once: true });
    return gate.promise.finally(() => {
      this.running--;
      ctx.signal.removeEventListener("abort", onAbort);
    });
  };

  /** Resolves the tool call of task `id` with `value` (default: its arguments). */
  release(id: string, value?: unknown): void {
    const call = this.calls.find((c) => c.ctx.taskId === id);
    this.#get(this.#gates, id).resolve(value === undefined ? call?.args ?? {} : value);
  }

  /** Rejects the tool call of task `id`. */
  fail(id: string, error: unknown = new Error(`${id} failed`)): void {
    this.#get(this.#gates, id).reject(error);
  }

  /** Resolves once the tool of task `id` has been called. */
  started(id: string): Promise<void> {
    return this.#get(this.#started, id).promise;
  }

  /** Resolves with the abort reason once task `id`'s signal aborts. */
  aborted(id: string): Promise<unknown> {
    return this.#get(this.#aborted, id).promise;
  }

  /** Ids of the tasks whose tool has been called, in call order. */
  get calledIds(): string[] {
    return this.calls.map((c) => c.ctx.taskId);
  }

  #get<T>(map: Map<string, Deferred<T>>, id: string): Deferred<T> {
    let d = map.get(id);
    if (d === undefined) {
      d = deferred<T>();
      d.promise.catch(() => {});
      map.set(id, d);
    }
    return d;
  }
}

/**
 * A WritableStream of events that records them. With `slow: true` every
 * write waits until the test calls `releaseWrite()` (or `releaseAll()`).
 */
export class EventSink {
  readonly events: SSEEvent[] = [];
  readonly stream: WritableStream<SSEEvent>;
  closed = false;
  abortReason: unknown = undefined;
  aborted = false;
  /** Writes the sink has been asked for but not finished (slow mode). */
  readonly pendingWrites: Deferred<void>[] = [];
  #autoRelease: boolean;
  #waiters: { predicate: (e: SSEEvent) => boolean; resolve: (e: SSEEvent) => void }[] = [];
  #writeWaiters: (() => void)[] = [];
  readonly #done = deferred<void>();

  constructor(options: { slow?: boolean; failOn?: (e: SSEEvent, n: number) => boolean } = {}) {
    this.#autoRelease = !options.slow;
    this.stream = new WritableStream<SSEEvent>({
      write: (event) => {
        if (options.failOn?.(event, this.events.length)) throw new Error("downstream broke");
        this.events.push(event);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.predicate(event)) return true;
          w.resolve(event);
          return false;
        });
        if (this.#autoRelease) return;
        const gate = deferred<void>();
        this.pendingWrites.push(gate);
        for (const wake of this.#writeWaiters.splice(0)) wake();
        return gate.promise;
      },
      close: () => {
        this.closed = true;
        this.#done.resolve();
      },
      abort: (reason) => {
        this.aborted = true;
        this.abortReason = reason;
        this.#done.resolve();
      },
    });
  }

  /** Resolves with the first event (already received or to come) matching. */
  waitFor(predicate: (e: SSEEvent) => boolean): Promise<SSEEvent> {
    const seen = this.events.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }

  /** Resolves once a write is waiting to be released (slow mode). */
  async writeWaiting(): Promise<void> {
    while (this.pendingWrites.length === 0) {
      await new Promise<void>((resolve) => this.#writeWaiters.push(resolve));
    }
  }

  /** Finishes the oldest pending write (slow mode). */
  releaseWrite(): void {
    const gate = this.pendingWrites.shift();
    assert.ok(gate, "no write is pending");
    gate.resolve();
  }

  /** Finishes every pending write and stops holding later ones. */
  releaseAll(): void {
    this.#autoRelease = true;
    for (const gate of this.pendingWrites.splice(0)) gate.resolve();
  }

  /** Resolves once the sink is closed or aborted. */
  get done(): Promise<void> {
    return this.#done.promise;
  }
}

/** Whether an event is `type` for task `id`. */
export function isTask(type: "task_start" | "task_complete", id: string) {
  return (e: SSEEvent): boolean => e.type === type && e.data.taskId === id;
}

/** Index of the event of `type` for task `id`; fails if absent or repeated. */
export function indexOfTask(
  events: readonly SSEEvent[],
  type: "task_start" | "task_complete",
  id: string,
): number {
  const found = events.flatMap((e, i) => isTask(type, id)(e) ? [i] : []);
  assert.equal(found.length, 1, `expected exactly one ${type} for ${id}, got ${found.length}`);
  return found[0];
}

/** Asserts that `value` is an ISO 8601 timestamp as `Date#toISOString` writes them. */
export function assertIsoTimestamp(value: unknown): void {
  assert.equal(typeof value, "string");
  assert.match(value as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  assert.equal(new Date(value as string).toISOString(), value);
}

/**
 * Checks the event-order contract of one run: each task has exactly one
 * start then one complete, a task starts only after each of its
 * dependencies completed, and exactly one `execution_complete` comes last.
 */
export function assertRunOrder(
  events: readonly SSEEvent[],
  tasks: readonly { id: string; dependsOn?: string[] }[],
): void {
  for (const task of tasks) {
    const start = indexOfTask(events, "task_start", task.id);
    const complete = indexOfTask(events, "task_complete", task.id);
    assert.ok(start < complete, `${task.id}: task_start must precede task_complete`);
    for (const dep of task.dependsOn ?? []) {
      assert.ok(
        indexOfTask(events, "task_complete", dep) < start,
        `${dep}'s task_complete must precede ${task.id}'s task_start`,
      );
    }
  }
  const finals = events.flatMap((e, i) => e.type === "execution_complete" ? [i] : []);
  assert.deepEqual(finals, [events.length - 1], "exactly one execution_complete, last");
  assert.equal(events.length, tasks.length * 2 + 1);
}

/** A result without its timing, for comparing runs. */
export function withoutTimes(
  results: readonly TaskResult[],
): Omit<TaskResult, "executionTimeMs">[] {
  return results.map(({ executionTimeMs: _, ...rest }) => rest);
}

/** A ReadableStream of the given byte chunks. */
export function byteStream(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  });
}

/** Splits bytes into chunks at the given offsets. */
export function splitBytes(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(bytes.length, c))))]
    .sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) out.push(bytes.subarray(from, p));
    from = p;
  }
  if (from < bytes.length) out.push(bytes.subarray(from));
  return out;
}

/** Event number `n` for buffer tests: a task_start whose taskId is `e<n>`. */
export function ev(n: number): SSEEvent {
  return {
    type: "task_start",
    data: { taskId: `e${n}`, tool: "t", timestamp: "2024-01-01T00:00:00.000Z" },
  };
}

/** The task ids of events made by {@linkcode ev}, in order. */
export function ids(events: readonly SSEEvent[]): string[] {
  return events.map((e) => (e.data as { taskId: string }).taskId);
}
