/**
 * Problems found in untrusted input, each with the path of the place it is
 * at: the shape validation answers with, and how paths and zod's issues
 * are written (DAG validation, tool arguments, the MCP configuration file).
 *
 * @module
 */

/**
 * One problem found in input, e.g.
 * `{ path: "tasks[2].dependsOn[0]", message: "unknown task \"x\"" }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ValidationIssue } from "./issues.ts";
 * const issue: ValidationIssue = { path: "tasks[0].tool", message: "must not be empty" };
 * assert.equal(`${issue.path}: ${issue.message}`, "tasks[0].tool: must not be empty");
 * ```
 */
export interface ValidationIssue {
  /** Where the problem is, as `tasks[2].dependsOn[0]`; `(root)` for the document itself. */
  path: string;
  /** What is wrong there. */
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * Formats a path of keys and indices as `tasks[2].dependsOn[0]`, after
 * `prefix` when one is given. A key that is not an identifier is quoted,
 * `tasks[0]["a.b"]`, so every path names one place (an unknown field `""`
 * or `"x.y"` included). An empty path with no prefix is `(root)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPath } from "./issues.ts";
 * assert.equal(formatPath(["tasks", 2, "dependsOn", 0]), "tasks[2].dependsOn[0]");
 * assert.equal(formatPath(["tasks", 0, "a.b"]), 'tasks[0]["a.b"]');
 * assert.equal(formatPath(["args", 1], "mcpServers.fs"), "mcpServers.fs.args[1]");
 * assert.equal(formatPath([]), "(root)");
 * ```
 */
export function formatPath(path: readonly PropertyKey[], prefix = ""): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && !IDENTIFIER.test(key)) out += `[${JSON.stringify(key)}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

/**
 * What {@linkcode zodIssues} reads of a failed zod parse's error
 * (`z.ZodError`): each issue's code, path and message, and the keys of an
 * `unrecognized_keys` issue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ZodErrorLike, zodIssues } from "./issues.ts";
 * const error: ZodErrorLike = { issues: [{ code: "custom", path: ["a", 0], message: "bad" }] };
 * assert.deepEqual(zodIssues(error), [{ path: "a[0]", message: "bad" }]);
 * ```
 */
export interface ZodErrorLike {
  /** The problems zod found. */
  readonly issues: readonly {
    readonly code: string;
    readonly path: readonly PropertyKey[];
    readonly message: string;
    readonly keys?: readonly string[];
  }[];
}

/**
 * The issues of a failed zod parse, each at its path (after `prefix`); an
 * unknown field of a strict object is one issue per field, at the field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "npm:zod@4.6.7";
 * import { zodIssues } from "./issues.ts";
 * const schema = z.strictObject({ args: z.array(z.string({ error: "must be a string" })) });
 * const parsed = schema.safeParse({ args: ["ok", 3], extra: 1 });
 * assert.ok(!parsed.success);
 * assert.deepEqual(zodIssues(parsed.error, "server"), [
 *   { path: "server.args[1]", message: "must be a string" },
 *   { path: "server.extra", message: "unknown field" },
 * ]);
 * ```
 */
export function zodIssues(error: ZodErrorLike, prefix = ""): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys" && issue.keys !== undefined) {
      for (const key of issue.keys) {
        out.push({ path: formatPath([...issue.path, key], prefix), message: "unknown field" });
      }
    } else {
      out.push({ path: formatPath(issue.path, prefix), message: issue.message });
    }
  }
  return out;
}
