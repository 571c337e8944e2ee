/**
 * Validation of untrusted DAG input: structure (zod), then the rules zod
 * cannot express (unique ids, known dependencies, argument depth, known
 * tools, no cycles). Every problem is reported with its path, all at once.
 *
 * @module
 */

import { z } from "npm:zod@4.6.7";
import type { Task } from "./types.ts";
import { locateOutputReferences, MAX_ARGUMENT_DEPTH, scanArguments } from "./arguments.ts";
import { buildGraph, findCycle, type TaskGraph, topologicalLayers } from "./graph.ts";
import { DEFAULT_MAX_TASKS } from "./defaults.ts";
import { formatPath, type ValidationIssue } from "./issues.ts";
import { dagSchema, readTaskShapes, type ShapedTask } from "./shape.ts";

export type { ValidationIssue } from "./issues.ts";

/** Thrown for invalid DAG input; `issues` lists every problem found. */
export class DAGValidationError extends Error {
  /** Every problem found, each with its path. */
  readonly issues: ValidationIssue[];
  /** Creates the error from its issues; the message lists them all. */
  constructor(issues: ValidationIssue[]) {
    super(`Invalid DAG: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
    this.name = "DAGValidationError";
    this.issues = issues;
  }
}

/**
 * A problem in one task's arguments, located inside them, e.g.
 * `{ path: ["ms"], message: "must be >= 0" }`; {@linkcode validateDAG}
 * reports it at `tasks[i].arguments.ms`.
 */
export interface ArgumentIssue {
  /** Keys and array indices from the arguments object down to the problem (empty: the object itself). */
  path: readonly (string | number)[];
  /** What is wrong there. */
  message: string;
}

/** Options of {@linkcode validateDAG}. */
export interface ValidateOptions {
  /** Most tasks allowed. Default {@linkcode DEFAULT_MAX_TASKS}. */
  maxTasks?: number;
  /** When given, a task naming a tool for which this returns false is an error. */
  isKnownTool?: (tool: string) => boolean;
  /**
   * The message for a tool `isKnownTool` refused, e.g. which server lacks
   * it. Default, and when this returns undefined: `unknown tool "<name>"`.
   */
  unknownToolMessage?: (tool: string) => string | undefined;
  /**
   * When true, an `$OUTPUT[x]` reference (in any argument, at any depth) to
   * a task `x` that is not in the DAG is an error at the argument's path,
   * e.g. `tasks[2].arguments.input`. Default false: such a reference fails
   * only its task, at run time, with "undefined task output" (a reference to
   * a task that exists but lacks the property always fails at run time).
   */
  rejectUnknownReferences?: boolean;
  /**
   * When given, the arguments of each task whose tool is known (an absent
   * `arguments` as `{}`) are checked with it, e.g. against the tool's input
   * schema; each problem is reported at `tasks[i].arguments` plus its path.
   * `$OUTPUT` references stand for values not known before the run: the
   * checker should not hold them against the arguments. Not called for
   * arguments nested deeper than {@linkcode MAX_ARGUMENT_DEPTH}.
   */
  checkArguments?: (
    tool: string,
    args: Record<string, unknown>,
  ) => readonly ArgumentIssue[] | undefined;
}

/** A DAG that passed validation, with its graph and layers worked out. */
export interface PreparedDAG {
  /** The tasks, normalised (`depends_on` read as `dependsOn`). */
  tasks: Task[];
  /** Task id → index in `tasks`. */
  indexOf: ReadonlyMap<string, number>;
  /** Dependencies by index, including those implied by `$OUTPUT` references. */
  graph: TaskGraph;
  /** Topological layers of task indices. */
  layers: number[][];
}

/** The result of {@linkcode validateDAG}. */
export type ValidationResult =
  | { ok: true; dag: PreparedDAG }
  | { ok: false; issues: ValidationIssue[] };

/**
 * JSON Schema (draft 2020-12) of the DAG input format.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dagJsonSchema } from "./validate.ts";
 * assert.equal(dagJsonSchema.$schema, "https://json-schema.org/draft/2020-12/schema");
 * assert.deepEqual(dagJsonSchema.required, ["tasks"]);
 * ```
 */
export const dagJsonSchema: Record<string, unknown> = z.toJSONSchema(dagSchema, {
  target: "draft-2020-12",
}) as Record<string, unknown>;

/**
 * Validates untrusted input as a DAG and prepares it for execution.
 * Never throws for bad input: the problems come back in `issues`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateDAG } from "./validate.ts";
 * const result = validateDAG({ tasks: [{ id: "a", tool: "mock:echo", dependsOn: ["b"] }] });
 * assert.deepEqual(!result.ok && result.issues, [
 *   { path: "tasks[0].dependsOn[0]", message: 'unknown task "b"' },
 * ]);
 * ```
 *
 * @example Checks a server makes at submission
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateDAG } from "./validate.ts";
 * const result = validateDAG({
 *   tasks: [
 *     { id: "a", tool: "wait", arguments: { ms: -1 } },
 *     { id: "b", tool: "wait", arguments: { ms: "$OUTPUT[nope].n" } },
 *   ],
 * }, {
 *   rejectUnknownReferences: true,
 *   checkArguments: (_tool, args) =>
 *     typeof args.ms === "number" && args.ms < 0 ? [{ path: ["ms"], message: "must be >= 0" }] : [],
 * });
 * assert.deepEqual(!result.ok && result.issues, [
 *   { path: "tasks[0].arguments.ms", message: "must be >= 0" },
 *   { path: "tasks[1].arguments.ms", message: 'unknown task "nope" in reference "$OUTPUT[nope].n"' },
 * ]);
 * ```
 */
export function validateDAG(input: unknown, options: ValidateOptions = {}): ValidationResult {
  const maxTasks = options.maxTasks ?? DEFAULT_MAX_TASKS;
  const raw = (input as { tasks?: unknown } | null)?.tasks;
  if (Array.isArray(raw) && raw.length > maxTasks) {
    return fail([{
      path: "tasks",
      message: `too many tasks: ${raw.length} (at most ${maxTasks})`,
    }]);
  }
  const shapes = readTaskShapes(input);
  const issues = shapes.issues;
  if (!("tasks" in shapes)) return fail(issues);
  const entries = shapes.tasks;

  const tasks: Task[] = new Array(entries.length);
  const fields: string[] = new Array(entries.length);
  const index = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    let id: unknown;
    if (entry !== undefined) {
      fields[i] = entry.depends_on !== undefined && entry.dependsOn === undefined
        ? "depends_on"
        : "dependsOn";
      const task = normaliseTask(entry, i, issues);
      // zod copies a record key by key, and a `"__proto__"` key (an own
      // property in parsed JSON) would become the copy's prototype: keep the
      // input's own object, which was found to be a plain record.
      const own = (raw as { arguments?: unknown }[])[i]?.arguments;
      if (task.arguments !== undefined && typeof own === "object" && own !== null) {
        task.arguments = own as Record<string, unknown>;
      }
      tasks[i] = task;
      id = task.id;
    } else id = (raw as { id?: unknown }[])[i]?.id;
    if (typeof id !== "string" || id === "") continue;
    const first = index.get(id);
    if (first === undefined) index.set(id, i);
    else {
      issues.push({
        path: `tasks[${i}].id`,
        message: `duplicate id "${id}" (first used by tasks[${first}])`,
      });
    }
  }

  const deps: number[][] = new Array(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i];
    if (task === undefined) continue;
    const own: number[] = [];
    let checkable = true;
    const list = task.dependsOn;
    if (list !== undefined) {
      const field = fields[i];
      for (let j = 0; j < list.length; j++) {
        const d = index.get(list[j]);
        if (d === undefined) {
          issues.push({ path: `tasks[${i}].${field}[${j}]`, message: `unknown task "${list[j]}"` });
        } else own.push(d);
      }
    }
    if (task.arguments !== undefined) {
      const scan = scanArguments(task.arguments);
      if (scan.tooDeep) {
        issues.push({
          path: `tasks[${i}].arguments`,
          message: `nested deeper than ${MAX_ARGUMENT_DEPTH} levels`,
        });
      }
      let unknownReference = false;
      for (const ref of scan.references) {
        const d = index.get(ref);
        if (d !== undefined) own.push(d);
        else unknownReference = true;
      }
      if (unknownReference && options.rejectUnknownReferences) {
        for (const found of locateOutputReferences(task.arguments)) {
          if (index.has(found.reference.taskId)) continue;
          issues.push({
            path: formatPath(["tasks", i, "arguments", ...found.path]),
            message: `unknown task "${found.reference.taskId}" in reference "${found.text}"`,
          });
        }
      }
      checkable = !scan.tooDeep;
    }
    deps[i] = own;
    checkToolAndArguments(task, i, checkable, options, issues);
  }
  if (issues.length > 0) return fail(issues);

  const graph = buildGraph(deps);
  const layers = topologicalLayers(graph);
  if (layers === null) {
    const cycle = findCycle(graph) ?? [];
    const names = cycle.map((i) => tasks[i].id);
    return fail([{
      path: `tasks[${cycle[0]}].${fields[cycle[0]]}`,
      message: `Circular dependency detected: ${names.join(" -> ")}`,
    }]);
  }
  const dag: PreparedDAG = { tasks, indexOf: index, graph, layers };
  prepared.add(dag);
  return { ok: true, dag };
}

/**
 * Validates and prepares a DAG, throwing on invalid input. The result is
 * itself a `DAGStructure`: executors run it without validating it again
 * (treat it as read-only).
 *
 * @throws {DAGValidationError} listing every problem
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DAGValidationError, prepareDAG } from "./validate.ts";
 * const options = { isKnownTool: (name: string) => name.startsWith("mock:") };
 * const dag = prepareDAG({ tasks: [{ id: "a", tool: "mock:echo" }] }, options);
 * assert.deepEqual(dag.layers, [[0]]);
 * assert.throws(() => prepareDAG({ tasks: [{ id: "a", tool: "rm" }] }, options), DAGValidationError);
 * ```
 */
export function prepareDAG(input: unknown, options: ValidateOptions = {}): PreparedDAG {
  if (isPreparedDAG(input)) return input;
  const result = validateDAG(input, options);
  if (!result.ok) throw new DAGValidationError(result.issues);
  return result.dag;
}

const prepared = new WeakSet<object>();

/** Whether `value` came out of {@linkcode validateDAG} or {@linkcode prepareDAG}. */
export function isPreparedDAG(value: unknown): value is PreparedDAG {
  return typeof value === "object" && value !== null && prepared.has(value);
}

/** The known-tool rule, then (for a known tool) the arguments rule. */
function checkToolAndArguments(
  task: Task,
  i: number,
  checkable: boolean,
  options: ValidateOptions,
  issues: ValidationIssue[],
): void {
  if (options.isKnownTool && !options.isKnownTool(task.tool)) {
    issues.push({
      path: `tasks[${i}].tool`,
      message: options.unknownToolMessage?.(task.tool) ?? `unknown tool "${task.tool}"`,
    });
    return;
  }
  if (!checkable) return;
  const found = options.checkArguments?.(task.tool, task.arguments ?? {});
  if (found === undefined) return;
  for (const issue of found) {
    issues.push({
      path: formatPath(["tasks", i, "arguments", ...issue.path]),
      message: issue.message,
    });
  }
}

function fail(issues: ValidationIssue[]): ValidationResult {
  return { ok: false, issues };
}

/** Reads `depends_on` as `dependsOn`, in place (zod's output is a fresh object). */
function normaliseTask(t: ShapedTask, i: number, issues: ValidationIssue[]): Task {
  if (t.depends_on !== undefined) {
    if (t.dependsOn !== undefined) {
      issues.push({
        path: `tasks[${i}].depends_on`,
        message: "give either dependsOn or depends_on, not both",
      });
    } else t.dependsOn = t.depends_on;
    delete t.depends_on;
  }
  return t;
}
