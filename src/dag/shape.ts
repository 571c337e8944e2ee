/**
 * The shape of DAG input: which fields a task has and what type each is.
 * The rules are written once, as zod schemas (they also give the published
 * JSON Schema and the wording of every problem); a hand-written single pass
 * that applies exactly the same rules accepts well-formed input without
 * zod, which is then asked only to explain input that fails. Accepted DAGs,
 * the common case, skip zod's copy of every task (about a quarter of the
 * time of validating 10,000 tasks).
 *
 * @module
 */

import { z } from "npm:zod@4.6.7";
import { MAX_TIMER_MS, RETRY_DEFAULTS } from "./defaults.ts";
import { type ValidationIssue, zodIssues } from "./issues.ts";

const nonEmpty = z.string().min(1, "must not be empty");
const atLeastZero = z.number({ error: "must be a number >= 0" }).min(0, "must be >= 0");

/** A task's retry policy as zod checks it. */
export const retrySchema = z.strictObject({
  attempts: z.number({
    error: (issue) =>
      issue.input === undefined
        ? `required: the most attempts, the first included (1 to ${RETRY_DEFAULTS.maxAttempts})`
        : `must be a whole number from 1 to ${RETRY_DEFAULTS.maxAttempts}`,
  }).int("must be a whole number")
    .min(1, "must be >= 1 (the first try counts)")
    .max(RETRY_DEFAULTS.maxAttempts, `must be <= ${RETRY_DEFAULTS.maxAttempts}`),
  delayMs: atLeastZero.optional(),
  factor: atLeastZero.optional(),
  maxDelayMs: atLeastZero.optional(),
});

/** One task as zod checks it. */
export const taskSchema = z.strictObject({
  id: nonEmpty,
  tool: nonEmpty,
  arguments: z.record(z.string(), z.unknown()).optional(),
  dependsOn: z.array(nonEmpty).optional(),
  depends_on: z.array(nonEmpty).optional(),
  timeout: z.number({ error: "must be a number of ms" }).min(1, "must be >= 1 (ms)").max(
    MAX_TIMER_MS,
    `must be <= ${MAX_TIMER_MS}`,
  )
    .optional(),
  retry: retrySchema.optional(),
});

/** The whole DAG as zod checks it (other top-level fields are ignored). */
export const dagSchema = z.object({ tasks: z.array(taskSchema) });

/** A task whose fields have the right types (`depends_on` not yet merged). */
export type ShapedTask = z.infer<typeof taskSchema>;

/** What {@linkcode readTaskShapes} found. */
export interface TaskShapes {
  /** One entry per input task: its fields in a fresh object, or undefined when malformed. */
  tasks: (ShapedTask | undefined)[];
  /** Every shape problem, with its path (empty when the input is well-formed). */
  issues: ValidationIssue[];
}

const TASK_FIELDS = new Set([
  "id",
  "tool",
  "arguments",
  "dependsOn",
  "depends_on",
  "timeout",
  "retry",
]);
const RETRY_FIELDS = new Set(["attempts", "delayMs", "factor", "maxDelayMs"]);

/**
 * Checks the shape of `input` (an object with a `tasks` array of task
 * objects) and copies each task's fields into a fresh object; `arguments`
 * stays the input's own object. Without `tasks` in the answer, `input` is
 * not even an object with a `tasks` array, or zod ran out of stack listing
 * its problems: `issues` says which.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readTaskShapes } from "./shape.ts";
 * const read = readTaskShapes({ tasks: [{ id: "a", tool: "t" }, { id: "", tool: 1 }] });
 * assert.ok("tasks" in read);
 * assert.deepEqual(read.tasks, [{ id: "a", tool: "t" }, undefined]);
 * assert.deepEqual(read.issues.map((i) => i.path), ["tasks[1].id", "tasks[1].tool"]);
 * assert.ok(!("tasks" in readTaskShapes({ tasks: "none" })));
 * ```
 */
export function readTaskShapes(input: unknown): TaskShapes | { issues: ValidationIssue[] } {
  const raw = (input as { tasks?: unknown } | null)?.tasks;
  if (isObject(input) && Array.isArray(raw)) {
    const tasks = readWellFormed(raw);
    if (tasks !== undefined) return { tasks, issues: [] };
  }
  // Something is wrong: zod says what, with its paths and wording.
  const parsed = parseWithin(dagSchema, input);
  if (parsed === undefined) return { issues: tooManyProblems(raw) };
  if (parsed.success) return { tasks: parsed.data.tasks, issues: [] };
  const issues = zodIssues(parsed.error);
  if (!Array.isArray(raw)) return { issues };
  // Every problem at once: the other rules still apply to the well-formed
  // tasks, so each task is read on its own.
  const tasks = new Array<ShapedTask | undefined>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const one = readWellFormed([raw[i]]);
    if (one !== undefined) tasks[i] = one[0];
    else {
      const r = taskSchema.safeParse(raw[i]);
      tasks[i] = r.success ? r.data : undefined;
    }
  }
  return { tasks, issues };
}

/**
 * The fast pass: fresh copies of the tasks when every one of them passes
 * {@linkcode taskSchema}, else undefined. It must accept exactly what the
 * schema accepts; `tests/unit/dag/shape_test.ts` checks the two agree.
 */
function readWellFormed(raw: readonly unknown[]): ShapedTask[] | undefined {
  const out = new Array<ShapedTask>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i] as Record<string, unknown>;
    if (!isObject(t)) return undefined;
    for (const key in t) if (!TASK_FIELDS.has(key)) return undefined;
    const { id, tool } = t;
    if (typeof id !== "string" || id === "" || typeof tool !== "string" || tool === "") {
      return undefined;
    }
    const task: ShapedTask = { id, tool };
    const args = t.arguments;
    if (args !== undefined) {
      if (!isRecord(args)) return undefined;
      task.arguments = args;
    }
    const dependsOn = t.dependsOn;
    if (dependsOn !== undefined) {
      const list = copyNames(dependsOn);
      if (list === undefined) return undefined;
      task.dependsOn = list;
    }
    const dependsOnSnake = t.depends_on;
    if (dependsOnSnake !== undefined) {
      const list = copyNames(dependsOnSnake);
      if (list === undefined) return undefined;
      task.depends_on = list;
    }
    const timeout = t.timeout;
    if (timeout !== undefined) {
      if (typeof timeout !== "number" || !(timeout >= 1 && timeout <= MAX_TIMER_MS)) {
        return undefined;
      }
      task.timeout = timeout;
    }
    if (t.retry !== undefined) {
      const retry = copyRetry(t.retry);
      if (retry === undefined) return undefined;
      task.retry = retry;
    }
    out[i] = task;
  }
  return out;
}

/** A copy of a well-formed retry policy, or undefined. */
function copyRetry(value: unknown): ShapedTask["retry"] {
  if (!isObject(value)) return undefined;
  for (const key in value) if (!RETRY_FIELDS.has(key)) return undefined;
  const { attempts, delayMs, factor, maxDelayMs } = value;
  if (
    typeof attempts !== "number" || !Number.isInteger(attempts) || attempts < 1 ||
    attempts > RETRY_DEFAULTS.maxAttempts
  ) return undefined;
  const retry: NonNullable<ShapedTask["retry"]> = { attempts };
  for (const [key, n] of [["delayMs", delayMs], ["factor", factor], ["maxDelayMs", maxDelayMs]]) {
    if (n === undefined) continue;
    if (typeof n !== "number" || !(n >= 0) || !Number.isFinite(n)) return undefined;
    retry[key as "delayMs"] = n;
  }
  return retry;
}

/** A copy of an array of non-empty strings, or undefined. */
function copyNames(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const n = value.length;
  const out = new Array<string>(n);
  for (let j = 0; j < n; j++) {
    const name = value[j];
    if (typeof name !== "string" || name === "") return undefined;
    out[j] = name;
  }
  return out;
}

/** zod's object test: an object, not null, not an array. */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * zod's `z.record(z.string(), z.unknown())`: a plain object (by zod's own
 * test of its constructor) with no enumerable symbol key.
 */
function isRecord(value: unknown): value is Record<string, unknown> {
  if (!isObject(value)) return false;
  const ctor = value.constructor;
  if (ctor !== undefined && typeof ctor === "function") {
    const proto = ctor.prototype;
    if (!isObject(proto) || !Object.hasOwn(proto, "isPrototypeOf")) return false;
  }
  const symbols = Object.getOwnPropertySymbols(value);
  for (let k = 0; k < symbols.length; k++) {
    if (Object.prototype.propertyIsEnumerable.call(value, symbols[k])) return false;
  }
  return true;
}

/**
 * `schema.safeParse(value)`, or undefined when zod ran out of stack: it
 * gathers nested issues with `push(...issues)`, so some 100,000 bad entries
 * in one list (a `dependsOn` of numbers fits in a 1 MiB body) throw a
 * RangeError instead of answering.
 */
function parseWithin<T extends z.ZodType>(
  schema: T,
  value: unknown,
): ReturnType<T["safeParse"]> | undefined {
  try {
    return schema.safeParse(value) as ReturnType<T["safeParse"]>;
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

/** The issue of input with too many problems to list: it names the first malformed task. */
function tooManyProblems(raw: unknown): ValidationIssue[] {
  const message =
    "too many problems to list (a list of that many malformed entries): fix them first";
  if (Array.isArray(raw)) {
    for (let i = 0; i < raw.length; i++) {
      const parsed = parseWithin(taskSchema, raw[i]);
      if (parsed === undefined || !parsed.success) return [{ path: `tasks[${i}]`, message }];
    }
  }
  return [{ path: "tasks", message }];
}
