/**
 * The defaults and limits of running a DAG, each written once: the
 * executor, validation, the bundled server's settings and its `--help` text
 * all read them from here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_TASKS, DEFAULT_TASK_TIMEOUT, MAX_TIMER_MS } from "./defaults.ts";
 * assert.equal(DEFAULT_TASK_TIMEOUT, 30_000);
 * assert.equal(DEFAULT_MAX_TASKS, 1000);
 * assert.ok(DEFAULT_TASK_TIMEOUT <= MAX_TIMER_MS);
 * ```
 *
 * @module
 */

import type { SchedulingMode } from "./types.ts";

/**
 * The longest delay a timer can take, in ms (2³¹ − 1): the ceiling of every
 * timeout and wait (`taskTimeout`, `mock:delay`, heartbeats).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_TIMER_MS } from "./defaults.ts";
 * assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
 * ```
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Default milliseconds a task may run before it fails with "timed out".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_TASK_TIMEOUT } from "./defaults.ts";
 * assert.equal(DEFAULT_TASK_TIMEOUT, 30_000);
 * ```
 */
export const DEFAULT_TASK_TIMEOUT = 30_000;

/**
 * Default most tasks a DAG may have.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_TASKS } from "./defaults.ts";
 * assert.equal(DEFAULT_MAX_TASKS, 1000);
 * ```
 */
export const DEFAULT_MAX_TASKS = 1000;

/**
 * Default scheduling: start each task the moment its dependencies are done.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_SCHEDULING } from "./defaults.ts";
 * assert.equal(DEFAULT_SCHEDULING, "eager");
 * ```
 */
export const DEFAULT_SCHEDULING: SchedulingMode = "eager";

/**
 * `options` without its `undefined` fields, so that spreading it over the
 * defaults (`{ ...defaults, ...withoutUndefined(options) }`) keeps each
 * default an option leaves unset, even one written `{ field: undefined }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withoutUndefined } from "./defaults.ts";
 * const defaults = { taskTimeout: 30_000, maxTasks: 1000 };
 * const given = { taskTimeout: 5, maxTasks: undefined };
 * assert.deepEqual({ ...defaults, ...withoutUndefined(given) }, { taskTimeout: 5, maxTasks: 1000 });
 * ```
 */
export function withoutUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<
    T
  >;
}

/**
 * The retry policy's defaults: the longest first wait, its growth per
 * retry, its cap (ms), and the most attempts a task may have.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RETRY_DEFAULTS } from "./defaults.ts";
 * assert.deepEqual(RETRY_DEFAULTS, { delayMs: 500, factor: 2, maxDelayMs: 30_000, maxAttempts: 100 });
 * ```
 */
export const RETRY_DEFAULTS = {
  delayMs: 500,
  factor: 2,
  maxDelayMs: 30_000,
  maxAttempts: 100,
} as const;
