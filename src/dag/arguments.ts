/**
 * `$OUTPUT[id]` references in task arguments: finding them (they imply
 * dependencies) and replacing them with the outputs of finished tasks.
 *
 * A string value that is exactly `$OUTPUT[id]` becomes task `id`'s output;
 * `$OUTPUT[id].a.b` becomes `output.a.b` (a numeric segment indexes an array).
 * References are recognised at any depth of objects and arrays; a string that
 * merely contains `$OUTPUT[` somewhere is left alone.
 *
 * @module
 */

/** Most levels of nested objects and arrays allowed in a task's arguments. */
export const MAX_ARGUMENT_DEPTH = 64;

const REFERENCE = /^\$OUTPUT\[([^\]]+)\]((?:\.[^.]+)*)$/;

/** A parsed `$OUTPUT[...]` reference. */
export interface OutputReference {
  /** The task whose output is referenced. */
  taskId: string;
  /** Property names to follow into the output (empty for the whole output). */
  path: string[];
}

/** Parses a string as an output reference, or returns `null` when it is not one. */
export function parseOutputReference(value: string): OutputReference | null {
  if (!value.startsWith("$OUTPUT[")) return null;
  const match = REFERENCE.exec(value);
  if (match === null) return null;
  return { taskId: match[1], path: match[2] === "" ? [] : match[2].slice(1).split(".") };
}

/** What a scan of a task's arguments found. */
export interface ArgumentScan {
  /** Ids of the tasks referenced, without duplicates, in order of appearance. */
  references: string[];
  /** `true` when the nesting goes deeper than {@linkcode MAX_ARGUMENT_DEPTH}. */
  tooDeep: boolean;
}

/**
 * Walks arguments once, collecting referenced task ids and checking depth.
 * The arguments object itself is level 1.
 */
export function scanArguments(args: Record<string, unknown> | undefined): ArgumentScan {
  const references: string[] = [];
  if (args === undefined) return { references, tooDeep: false };
  const tooDeep = !visitReferences(args, (reference) => void references.push(reference.taskId));
  return { references: [...new Set(references)], tooDeep };
}

/**
 * Calls `visit` for every output reference in `args`, in document order,
 * with the keys and indices leading to it (one array, changed as the walk
 * goes on: copy it to keep it). Returns false, having stopped, when the
 * nesting goes deeper than {@linkcode MAX_ARGUMENT_DEPTH}.
 */
function visitReferences(
  args: Record<string, unknown>,
  visit: (reference: OutputReference, text: string, path: (string | number)[]) => void,
): boolean {
  const path: (string | number)[] = [];
  const walk = (value: unknown, depth: number): boolean => {
    if (typeof value === "string") {
      const reference = parseOutputReference(value);
      if (reference !== null) visit(reference, value, path);
      return true;
    }
    if (typeof value !== "object" || value === null) return true;
    if (depth > MAX_ARGUMENT_DEPTH) return false;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        const ok = walk(value[i], depth + 1);
        path.pop();
        if (!ok) return false;
      }
      return true;
    }
    for (const key of Object.keys(value)) {
      path.push(key);
      const ok = walk((value as Record<string, unknown>)[key], depth + 1);
      path.pop();
      if (!ok) return false;
    }
    return true;
  };
  return walk(args, 1);
}

/** Where a reference sits in a task's arguments, as {@linkcode locateOutputReferences} finds it. */
export interface LocatedReference {
  /** Keys and array indices from the arguments object down to the reference string. */
  path: (string | number)[];
  /** The reference's text, e.g. `$OUTPUT[a].x`. */
  text: string;
  /** The parsed reference. */
  reference: OutputReference;
}

/**
 * Every output reference in `args`, with where it is, in document order
 * (the search stops at the first level deeper than
 * {@linkcode MAX_ARGUMENT_DEPTH}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { locateOutputReferences } from "./arguments.ts";
 * const found = locateOutputReferences({ list: [1, "$OUTPUT[a].x"] });
 * assert.deepEqual(found.map((r) => [r.path, r.reference.taskId]), [[["list", 1], "a"]]);
 * ```
 */
export function locateOutputReferences(args: Record<string, unknown>): LocatedReference[] {
  const found: LocatedReference[] = [];
  visitReferences(
    args,
    (reference, text, path) => void found.push({ path: [...path], text, reference }),
  );
  return found;
}

/** Thrown when a reference cannot be resolved; the message says "undefined task output". */
export class UnresolvedReferenceError extends Error {
  /** Creates the error for the reference text that failed. */
  constructor(reference: string) {
    super(`undefined task output: ${reference}`);
    this.name = "UnresolvedReferenceError";
  }
}

/**
 * Returns a copy of `args` with every output reference replaced. `lookup`
 * gives a finished task's output, or `undefined` when there is none.
 *
 * @throws {UnresolvedReferenceError} when a reference leads to `undefined`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveArguments, UnresolvedReferenceError } from "./arguments.ts";
 * const outputs = new Map<string, unknown>([["t1", { user: { name: "Ada" } }]]);
 * const args = resolveArguments(
 *   { greet: "$OUTPUT[t1].user.name", all: ["$OUTPUT[t1]"], text: "not $OUTPUT[t1]" },
 *   (id) => outputs.get(id),
 * );
 * assert.deepEqual(args, {
 *   greet: "Ada",
 *   all: [{ user: { name: "Ada" } }],
 *   text: "not $OUTPUT[t1]", // only a whole string value is a reference
 * });
 * assert.throws(
 *   () => resolveArguments({ x: "$OUTPUT[t1].user.age" }, (id) => outputs.get(id)),
 *   UnresolvedReferenceError,
 * );
 * ```
 */
export function resolveArguments(
  args: Record<string, unknown>,
  lookup: (taskId: string) => unknown,
): Record<string, unknown> {
  return resolveValue(args, lookup) as Record<string, unknown>;
}

function resolveValue(value: unknown, lookup: (taskId: string) => unknown): unknown {
  if (typeof value === "string") {
    const ref = parseOutputReference(value);
    return ref === null ? value : follow(ref, value, lookup);
  }
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => resolveValue(item, lookup));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const resolved = resolveValue((value as Record<string, unknown>)[key], lookup);
    // Assigning "__proto__" would set the copy's prototype: keep it an own key.
    if (key === "__proto__") {
      Object.defineProperty(out, key, {
        value: resolved,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else out[key] = resolved;
  }
  return out;
}

function follow(ref: OutputReference, text: string, lookup: (taskId: string) => unknown): unknown {
  let current = lookup(ref.taskId);
  for (const key of ref.path) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, key)) {
      current = undefined;
      break;
    }
    current = (current as Record<string, unknown>)[key];
  }
  if (current === undefined) throw new UnresolvedReferenceError(text);
  return current;
}
