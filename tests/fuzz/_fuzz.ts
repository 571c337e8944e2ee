/**
 * Shared settings of the fuzz suites: seeded, reproducible fast-check runs
 * with a short profile for CI and a long one by hand.
 *
 * - `DAGSTREAM_FUZZ_RUNS=N` runs every property about N times (scaled by
 *   the property's weight) instead of its short default.
 * - `DAGSTREAM_FUZZ_SEED=S` replays another seed (default {@linkcode DEFAULT_SEED}).
 *
 * A failure reports the seed and fast-check's replay path; every property
 * logs how many inputs it tried.
 *
 * @module
 */

import fc from "fast-check";

/** The seed used when `DAGSTREAM_FUZZ_SEED` is unset. */
export const DEFAULT_SEED = 20261125;

function envNumber(name: string): number | undefined {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be a whole number, got ${raw}`);
  return value;
}

/** The seed of this run. */
export const SEED: number = envNumber("DAGSTREAM_FUZZ_SEED") ?? DEFAULT_SEED;
const LONG_RUNS = envNumber("DAGSTREAM_FUZZ_RUNS");

/** `"short"` (CI) or `"long"` (`DAGSTREAM_FUZZ_RUNS` set). */
export const PROFILE: "short" | "long" = LONG_RUNS === undefined ? "short" : "long";

/**
 * Runs for a property: `short` in CI, `DAGSTREAM_FUZZ_RUNS × weight` (at
 * least `short`) in the long profile.
 */
export function runsFor(short: number, weight = 1): number {
  return LONG_RUNS === undefined ? short : Math.max(short, Math.ceil(LONG_RUNS * weight));
}

/** Inputs tried so far by each property of this file, for the closing summary. */
const tried = new Map<string, number>();

/**
 * Checks `property` with the fixed seed; throws fast-check's report (seed,
 * path, counterexample) on failure. Returns the number of inputs tried.
 */
export async function fuzz<Ts>(
  name: string,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  numRuns: number,
): Promise<number> {
  // Each property gets its own seed derived from the run's seed, so adding a
  // property does not change what the others generate.
  const seed = (SEED ^ hash(name)) | 0;
  const details = await fc.check(property as fc.IAsyncProperty<Ts>, {
    seed,
    numRuns,
    endOnFailure: false,
  });
  if (details.failed) {
    const report = fc.defaultReportMessage(details) ?? "property failed";
    const cause = details.errorInstance;
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `fuzz "${name}" failed (DAGSTREAM_FUZZ_SEED=${SEED}, property seed ${seed})\n` +
        `${report}\nError: ${why}`,
      { cause },
    );
  }
  tried.set(name, (tried.get(name) ?? 0) + details.numRuns);
  return details.numRuns;
}

/** Records inputs tried outside fast-check (exhaustive loops). */
export function count(name: string, inputs: number): void {
  tried.set(name, (tried.get(name) ?? 0) + inputs);
}

/** Prints how many inputs each property tried, and their total. */
export function printSummary(suite: string): void {
  let total = 0;
  const lines: string[] = [];
  for (const [name, n] of tried) {
    total += n;
    lines.push(`  ${String(n).padStart(8)}  ${name}`);
  }
  console.log(
    `fuzz ${suite} (${PROFILE} profile, seed ${SEED}): ${total} inputs\n${lines.join("\n")}`,
  );
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The paths of a DAG a mutation can target, with the issue path it must produce. */
export type DagPath =
  | { kind: "root" }
  | { kind: "tasks" }
  | { kind: "task"; i: number }
  | { kind: "field"; i: number; field: "id" | "tool" | "arguments" | "dependsOn" }
  | { kind: "dep"; i: number; j: number };

/** A plain, valid DAG as JSON-ready data: tasks `t0..tn-1`, each depending on earlier ones. */
export interface PlainTask {
  id: string;
  tool: string;
  arguments?: Record<string, unknown>;
  dependsOn?: string[];
}

/** Generates a valid acyclic DAG of `mock:echo` tasks (1 to `maxTasks` tasks). */
export function validDag(maxTasks = 12): fc.Arbitrary<{ tasks: PlainTask[] }> {
  return fc.integer({ min: 1, max: maxTasks }).chain((n) =>
    fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        fc.record({
          deps: fc.subarray(Array.from({ length: i }, (_, k) => k), { maxLength: Math.min(3, i) }),
          args: fc.option(
            fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), {
              maxKeys: 3,
            }),
            { nil: undefined },
          ),
        })),
    ).map((specs) => ({
      tasks: specs.map(({ deps, args }, i) => {
        const task: PlainTask = { id: `t${i}`, tool: "mock:echo" };
        if (args !== undefined) task.arguments = args as Record<string, unknown>;
        if (deps.length > 0) task.dependsOn = deps.map((d) => `t${d}`);
        return task;
      }),
    }))
  );
}

/** A JSON value that is not of the given kind (for wrong-typed mutations). */
export function wrongTyped(
  expected: "object" | "array" | "string" | "record",
): fc.Arbitrary<unknown> {
  const scalars = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  switch (expected) {
    case "string":
      return fc.oneof(scalars, fc.array(fc.string(), { maxLength: 2 }), fc.constant({}));
    case "array":
      return fc.oneof(scalars, fc.string(), fc.constant({ 0: "t0" }));
    case "object":
    case "record":
      return fc.oneof(scalars, fc.string(), fc.array(fc.integer(), { maxLength: 3 }));
  }
}

/** `tasks[2].dependsOn[0]`-style path of a {@linkcode DagPath}. */
export function pathText(path: DagPath): string {
  switch (path.kind) {
    case "root":
      return "(root)";
    case "tasks":
      return "tasks";
    case "task":
      return `tasks[${path.i}]`;
    case "field":
      return `tasks[${path.i}].${path.field}`;
    case "dep":
      return `tasks[${path.i}].dependsOn[${path.j}]`;
  }
}

/** Every mutable path of `dag`. */
export function pathsOf(dag: { tasks: PlainTask[] }): DagPath[] {
  const out: DagPath[] = [{ kind: "root" }, { kind: "tasks" }];
  dag.tasks.forEach((task, i) => {
    out.push({ kind: "task", i });
    for (const field of ["id", "tool", "arguments", "dependsOn"] as const) {
      out.push({ kind: "field", i, field });
    }
    task.dependsOn?.forEach((_, j) => out.push({ kind: "dep", i, j }));
  });
  return out;
}

/** What a wrong-typed value at `path` must be wrong against. */
export function expectedKind(path: DagPath): "object" | "array" | "string" | "record" {
  switch (path.kind) {
    case "root":
    case "task":
      return "object";
    case "tasks":
      return "array";
    case "dep":
      return "string";
    case "field":
      return path.field === "arguments"
        ? "record"
        : path.field === "dependsOn"
        ? "array"
        : "string";
  }
}

/** A deep copy of `dag` with `value` placed at `path`. */
export function withValueAt(dag: { tasks: PlainTask[] }, path: DagPath, value: unknown): unknown {
  const copy = structuredClone(dag) as { tasks: unknown[] } & Record<string, unknown>;
  switch (path.kind) {
    case "root":
      return value;
    case "tasks":
      copy.tasks = value as unknown[];
      return copy;
    case "task":
      copy.tasks[path.i] = value;
      return copy;
    case "field":
      (copy.tasks[path.i] as Record<string, unknown>)[path.field] = value;
      return copy;
    case "dep":
      ((copy.tasks[path.i] as PlainTask).dependsOn as unknown[])[path.j] = value;
      return copy;
  }
}
