/**
 * Test helpers: promises the test settles by hand, bounded waits counted in
 * event-loop turns (never in milliseconds), and a tool executor whose calls
 * block until the test releases them.
 *
 * @module
 */

import type { DAGStructure, Task, ToolContext, ToolExecutor } from "../../../mod.ts";
import { realTurn } from "../_fake_clock.ts";

/** A promise with its settle functions, and whether it has settled. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  readonly settled: boolean;
}

/** A promise the test resolves or rejects by hand. */
export function deferred<T = void>(): Deferred<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  let settled = false;
  return {
    promise,
    resolve(value: T) {
      settled = true;
      resolve(value);
    },
    reject(reason: unknown) {
      settled = true;
      reject(reason);
    },
    get settled() {
      return settled;
    },
  };
}

/**
 * Lets `n` macrotask turns pass (every pending microtask runs in between),
 * on the real event loop even while a `FakeClock` is installed.
 */
export async function turns(n = 1): Promise<void> {
  for (let k = 0; k < n; k++) await realTurn();
}

/**
 * Waits, turn by turn, until `condition` holds; fails after `maxTurns` turns.
 * A liveness check for things that happen within a few microtasks, not a clock.
 */
export async function until(condition: () => boolean, what: string, maxTurns = 500): Promise<void> {
  for (let k = 0; k < maxTurns; k++) {
    if (condition()) return;
    await turns(1);
  }
  throw new Error(`still waiting after ${maxTurns} event-loop turns for: ${what}`);
}

/** A tool that answers at once with its tool name, task id and arguments. */
export const echoTool: ToolExecutor = (tool, args, ctx) =>
  Promise.resolve({ tool, taskId: ctx.taskId, args });

/**
 * A tool executor whose every call blocks until the test calls
 * {@linkcode GatedTools.release} (or `fail`) for that task id. Records the call
 * order, the signals handed to each call and how many calls are in flight.
 */
export class GatedTools {
  /** Task ids in the order their tool was called. */
  readonly calls: string[] = [];
  /** Arguments of each call, by task id. */
  readonly args = new Map<string, Record<string, unknown>>();
  /** The signal handed to each call, by task id. */
  readonly signals = new Map<string, AbortSignal>();
  /** Task ids whose tool call has returned or thrown. */
  readonly ended = new Set<string>();
  /** Calls in flight right now, and the most there ever were. */
  active = 0;
  maxActive = 0;
  readonly #gates = new Map<string, Deferred<unknown>>();

  /** The gate of a task, created on first use. */
  gate(taskId: string): Deferred<unknown> {
    let gate = this.#gates.get(taskId);
    if (gate === undefined) {
      gate = deferred<unknown>();
      this.#gates.set(taskId, gate);
    }
    return gate;
  }

  /** Lets a task's tool call return `output` (default `{ done: taskId }`). */
  release(taskId: string, output: unknown = { done: taskId }): void {
    this.gate(taskId).resolve(output);
  }

  /** Makes a task's tool call throw `error`. */
  fail(taskId: string, error: unknown = new Error(`${taskId} broke`)): void {
    this.gate(taskId).reject(error);
  }

  /** Whether the task's tool has been called. */
  called(taskId: string): boolean {
    return this.signals.has(taskId);
  }

  /** Releases every gate not yet settled (so nothing stays pending after a test). */
  releaseAll(): void {
    for (const [id, gate] of this.#gates) if (!gate.settled) gate.resolve({ done: id });
  }

  /** The tool executor to hand to the executor. */
  readonly tool: ToolExecutor = async (
    _tool: string,
    args: Record<string, unknown>,
    ctx: ToolContext,
  ) => {
    this.calls.push(ctx.taskId);
    this.args.set(ctx.taskId, args);
    this.signals.set(ctx.taskId, ctx.signal);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      return await this.gate(ctx.taskId).promise;
    } finally {
      this.active--;
      this.ended.add(ctx.taskId);
    }
  };
}

/** A tool call that waits for its signal and then rejects with the signal's reason. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/** `n` tasks, each depending on the one before (`t0 <- t1 <- ...`). */
export function chain(n: number, tool = "echo"): DAGStructure {
  const tasks: Task[] = new Array(n);
  for (let i = 0; i < n; i++) {
    tasks[i] = i === 0 ? { id: "t0", tool } : { id: `t${i}`, tool, dependsOn: [`t${i - 1}`] };
  }
  return { tasks };
}

/** `n` independent tasks. */
export function wide(n: number, tool = "echo"): DAGStructure {
  return { tasks: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, tool })) };
}

/** Task ids of a run's results, by status. */
export function idsWith(
  result: { results: { taskId: string; status: string }[] },
  status: "success" | "error",
): string[] {
  return result.results.filter((r) => r.status === status).map((r) => r.taskId);
}
