/**
 * Where the terminal view's events come from: a run executed in this
 * process (`local-run.ts`) or one executed by a dagstream server and read
 * from its event stream (`remote-run.ts`). Both look the same to the view.
 *
 * @module
 */

import type { ValidationIssue } from "../dag/issues.ts";
import type { ViewedTaskSpec } from "./run-state.ts";

/**
 * A run being watched: its tasks, and its events in order as they happen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunSource } from "./run-source.ts";
 * const source: RunSource = {
 *   tasks: [{ id: "a", tool: "mock:echo" }],
 *   async follow(onEvent) {
 *     onEvent("task_start", { taskId: "a", tool: "mock:echo", timestamp: new Date().toISOString() });
 *   },
 *   async cancel() {},
 *   async close() {},
 * };
 * const types: string[] = [];
 * await source.follow((type) => types.push(type));
 * assert.deepEqual(types, ["task_start"]);
 * ```
 */
export interface RunSource {
  /** The run's tasks, in declaration order. */
  readonly tasks: readonly ViewedTaskSpec[];
  /**
   * Hands each of the run's events (its type and parsed data) to `onEvent`,
   * in order, and resolves once the run is over (its `execution_complete`
   * was handed over, or the server says there is nothing more).
   *
   * @throws {RunSourceError} when the events cannot be had any more
   */
  follow(onEvent: (type: string, data: unknown) => void): Promise<void>;
  /** Asks the run to stop: running tools see their signal abort, the others do not start. */
  cancel(): Promise<void>;
  /** Lets go of what the source holds (connections, MCP servers' processes). */
  close(): Promise<void>;
}

/**
 * A failure the command reports in one line (and, for an invalid DAG,
 * one line per problem) and exits with status 2 for: the run cannot be
 * started, or can no longer be followed. Never has a stack trace shown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunSourceError } from "./run-source.ts";
 * const error = new RunSourceError("the DAG is invalid (1 problem)", [
 *   { path: "tasks[0].tool", message: 'unknown tool "nope"' },
 * ]);
 * assert.equal(error.issues[0].path, "tasks[0].tool");
 * ```
 */
export class RunSourceError extends Error {
  /** Each problem with its path, when the failure is an invalid DAG. */
  readonly issues: readonly ValidationIssue[];

  /** A failure said by `message`, with the problems of an invalid DAG if any. */
  constructor(message: string, issues: readonly ValidationIssue[] = []) {
    super(message);
    this.name = "RunSourceError";
    this.issues = issues;
  }
}
