/**
 * Checking a task's arguments against its tool's input schema (JSON Schema),
 * with one validator, `ajv`, for every tool: built-in, from
 * `createToolRegistry`, and from MCP servers. (ajv is the validator the MCP
 * SDK uses too, so servers' schemas mean here what they mean to their
 * authors' tooling; a hand-written subset would not.)
 *
 * - Each schema is compiled once, on first use, and the check is cached for
 *   that schema object (treat a tool's `inputSchema` as read-only).
 * - A schema ajv cannot compile (unknown `$ref`, invalid pattern, …) is not
 *   checked at all: {@linkcode compileInputSchema} gives `undefined`.
 * - The dialect follows `$schema`: draft 2020-12 and 2019-09 when a schema
 *   says so, draft-07 otherwise (as the MCP SDK does); `format` is checked
 *   with `ajv-formats`.
 * - Before a run, arguments hold `$OUTPUT` references whose values are not
 *   known yet: {@linkcode InputSchemaCheck.checkSubmitted} reports only what
 *   no referenced value can change.
 *
 * @module
 */

import { Ajv, type ErrorObject, type Options, type ValidateFunction } from "npm:ajv@8.20.0";
import { Ajv2019 } from "npm:ajv@8.20.0/dist/2019.js";
import { Ajv2020 } from "npm:ajv@8.20.0/dist/2020.js";
import formats from "npm:ajv-formats@3.0.1";
import { locateOutputReferences } from "../dag/arguments.ts";
import type { ArgumentIssue } from "../dag/validate.ts";
import { formatPath } from "../dag/issues.ts";

/** Most problems reported for one task's arguments; the rest are counted in one more issue. */
export const MAX_ARGUMENT_ISSUES = 20;

/** The compiled check of one input schema, from {@linkcode compileInputSchema}. */
export interface InputSchemaCheck {
  /**
   * Every problem of arguments as a tool receives them (references already
   * replaced by outputs); empty when they conform.
   */
  check(args: Record<string, unknown>): ArgumentIssue[];
  /**
   * The problems of arguments as submitted, before the run. A `$OUTPUT`
   * reference stands for a value not known yet, so no problem located at a
   * reference (or inside it) is reported, nor one that depends on the values
   * below it (`anyOf`, `oneOf`, `not`, `if`, `enum`, `const`, `contains`,
   * `uniqueItems`, `unevaluated*` of an object or array that holds a
   * reference, and the problems found inside it). A required property whose
   * value is a reference is present. What is left out here is checked at run
   * time by {@linkcode InputSchemaCheck.check}.
   */
  checkSubmitted(args: Record<string, unknown>): ArgumentIssue[];
}

/**
 * Compiles a tool's input schema, once per schema object (later calls with
 * the same object return the same check). Gives `undefined` for a schema
 * that cannot be checked: not a JSON object, or one ajv cannot compile.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compileInputSchema, describeArgumentIssues } from "./schema.ts";
 * const schema = {
 *   type: "object",
 *   properties: { ms: { type: "integer", minimum: 0 } },
 *   required: ["ms"],
 * };
 * const check = compileInputSchema(schema)!;
 * assert.equal(compileInputSchema(schema), check); // compiled once
 * assert.deepEqual(check.check({ ms: -1 }), [{ path: ["ms"], message: "must be >= 0" }]);
 * assert.deepEqual(check.checkSubmitted({ ms: "$OUTPUT[a].n" }), []); // known at run time
 * assert.equal(
 *   describeArgumentIssues("mock:delay", check.check({})),
 *   'invalid arguments for "mock:delay": arguments.ms is required',
 * );
 * assert.equal(compileInputSchema({ $ref: "#/nowhere" }), undefined);
 * ```
 */
export function compileInputSchema(schema: unknown): InputSchemaCheck | undefined {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return undefined;
  const cached = compiled.get(schema);
  if (cached !== undefined) return cached ?? undefined;
  const validate = compile(schema as Record<string, unknown>);
  const check = validate === undefined ? null : checkOf(validate);
  compiled.set(schema, check);
  return check ?? undefined;
}

/**
 * Why `args` break `schema`, as the message a failed call of `tool` carries,
 * or undefined when they conform (or the schema is missing or cannot be
 * compiled). What every registry checks before it calls a tool.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argumentsError } from "./schema.ts";
 * const schema = { type: "object", properties: { ms: { type: "integer" } } };
 * assert.equal(argumentsError("t", schema, { ms: 5 }), undefined);
 * assert.match(argumentsError("t", schema, { ms: "x" })!, /^invalid arguments for "t": arguments\.ms /);
 * ```
 */
export function argumentsError(
  tool: string,
  schema: unknown,
  args: Record<string, unknown>,
): string | undefined {
  const issues = compileInputSchema(schema)?.check(args);
  return issues === undefined || issues.length === 0
    ? undefined
    : describeArgumentIssues(tool, issues);
}

/**
 * The problems of `args` against `schema` that are known before the run
 * (values holding `$OUTPUT` references are not judged); none when the
 * schema is missing or cannot be compiled. What every registry reports at
 * submission.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { submittedArgumentIssues } from "./schema.ts";
 * const schema = { type: "object", properties: { ms: { type: "integer" } } };
 * assert.deepEqual(submittedArgumentIssues(schema, { ms: "$OUTPUT[a]" }), []);
 * assert.equal(submittedArgumentIssues(schema, { ms: "x" }).length, 1);
 * ```
 */
export function submittedArgumentIssues(
  schema: unknown,
  args: Record<string, unknown>,
): ArgumentIssue[] {
  return compileInputSchema(schema)?.checkSubmitted(args) ?? [];
}

/**
 * The message a task fails with when its arguments break the schema: the
 * problems, each after its path, joined with `; `.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeArgumentIssues } from "./schema.ts";
 * assert.equal(
 *   describeArgumentIssues("mock:delay", [{ path: ["ms"], message: "must be >= 0" }]),
 *   'invalid arguments for "mock:delay": arguments.ms must be >= 0',
 * );
 * ```
 */
export function describeArgumentIssues(tool: string, issues: readonly ArgumentIssue[]): string {
  const text = issues.map((issue) =>
    issue.path.length === 0 && issue.message.startsWith("…")
      ? issue.message
      : `${formatPath(["arguments", ...issue.path])} ${issue.message}`
  ).join("; ");
  return `invalid arguments for "${tool}": ${text}`;
}

const compiled = new WeakMap<object, InputSchemaCheck | null>();

const OPTIONS: Options = {
  strict: false, // tools' schemas carry keywords of their own (titles, examples, …)
  allErrors: true, // every problem at once
  validateSchema: false,
  validateFormats: true,
  logger: false,
};

type Dialect = "draft-07" | "2019-09" | "2020-12";

/** After this many compilations an instance is replaced, so schemas it kept can be collected. */
const COMPILES_PER_INSTANCE = 1000;

const instances = new Map<Dialect, { ajv: Ajv; compiles: number }>();

function instanceFor(dialect: Dialect): { ajv: Ajv; compiles: number } {
  let entry = instances.get(dialect);
  if (entry === undefined || entry.compiles >= COMPILES_PER_INSTANCE) {
    const ajv = dialect === "2020-12"
      ? new Ajv2020(OPTIONS)
      : dialect === "2019-09"
      ? new Ajv2019(OPTIONS)
      : new Ajv(OPTIONS);
    (formats as unknown as (ajv: Ajv) => Ajv)(ajv);
    entry = { ajv, compiles: 0 };
    instances.set(dialect, entry);
  }
  return entry;
}

function dialectOf(schema: Record<string, unknown>): Dialect {
  const declared = typeof schema.$schema === "string" ? schema.$schema : "";
  if (declared.includes("2020-12")) return "2020-12";
  if (declared.includes("2019-09")) return "2019-09";
  return "draft-07";
}

function compile(schema: Record<string, unknown>): ValidateFunction | undefined {
  const entry = instanceFor(dialectOf(schema));
  entry.compiles++;
  try {
    return entry.ajv.compile(schema);
  } catch {
    return undefined; // not checked: the tool (or its server) sees the arguments as they are
  } finally {
    // The compiled function stands alone; the instance need not keep the
    // schema (nor its `$id`, which another tool's schema may reuse).
    try {
      entry.ajv.removeSchema(schema);
    } catch {
      // never added
    }
  }
}

function checkOf(validate: ValidateFunction): InputSchemaCheck {
  // Arguments built from tools' outputs may hold what no schema foresaw
  // (getters that throw, cycles): a check that throws checks nothing.
  const guarded = (
    args: Record<string, unknown>,
    keep: (errors: ErrorObject[]) => ErrorObject[],
  ): ArgumentIssue[] => {
    try {
      if (validate(args)) return [];
      return toIssues(keep(validate.errors ?? []), args);
    } catch {
      return [];
    }
  };
  return {
    check: (args) => guarded(args, (errors) => errors),
    checkSubmitted: (args) => guarded(args, (errors) => withoutReferenceErrors(errors, args)),
  };
}

/** Keywords whose outcome for an object or array depends on the values inside it. */
const VALUE_KEYWORDS = new Set([
  "anyOf",
  "oneOf",
  "not",
  "if",
  "enum",
  "const",
  "contains",
  "uniqueItems",
  "unevaluatedProperties",
  "unevaluatedItems",
]);

/** Drops the errors a reference's value could remove (see `checkSubmitted`). */
function withoutReferenceErrors(
  errors: ErrorObject[],
  args: Record<string, unknown>,
): ErrorObject[] {
  const references = new Set<string>();
  const holdsReference = new Set<string>(); // pointers at or above a reference
  for (const found of locateOutputReferences(args)) {
    let pointer = "";
    holdsReference.add(pointer);
    for (const key of found.path) {
      pointer += `/${escapePointer(String(key))}`;
      holdsReference.add(pointer);
    }
    references.add(pointer);
  }
  if (references.size === 0) return errors;
  const unknowable = new Set<string>();
  for (const error of errors) {
    if (VALUE_KEYWORDS.has(error.keyword) && holdsReference.has(error.instancePath)) {
      unknowable.add(error.instancePath);
    }
  }
  return errors.filter((error) =>
    !atOrBelow(error.instancePath, references) && !atOrBelow(error.instancePath, unknowable)
  );
}

/** Whether `pointer` or one of its ancestors is in `set`. */
function atOrBelow(pointer: string, set: ReadonlySet<string>): boolean {
  if (set.size === 0) return false;
  let at = pointer;
  for (;;) {
    if (set.has(at)) return true;
    if (at === "") return false;
    at = at.slice(0, at.lastIndexOf("/"));
  }
}

function escapePointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function toIssues(errors: ErrorObject[], args: Record<string, unknown>): ArgumentIssue[] {
  const out: ArgumentIssue[] = [];
  const seen = new Set<string>();
  let more = 0;
  for (const error of errors) {
    const issue = toIssue(error, args);
    const key = `${JSON.stringify(issue.path)} ${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (out.length < MAX_ARGUMENT_ISSUES) out.push(issue);
    else more++;
  }
  if (more > 0) {
    out.push({ path: [], message: `… and ${more} more problem${more === 1 ? "" : "s"}` });
  }
  return out;
}

/** An ajv error in plain words, located at the property it is about. */
function toIssue(error: ErrorObject, args: Record<string, unknown>): ArgumentIssue {
  const { path, value } = follow(error.instancePath, args);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return { path: [...path, String(params.missingProperty)], message: "is required" };
    case "dependentRequired":
    case "dependencies":
      if (typeof params.missingProperty === "string") {
        return {
          path: [...path, params.missingProperty],
          message: `is required when ${JSON.stringify(params.property)} is given`,
        };
      }
      break;
    case "additionalProperties":
      return { path: [...path, String(params.additionalProperty)], message: NOT_ALLOWED };
    case "unevaluatedProperties":
      return { path: [...path, String(params.unevaluatedProperty)], message: NOT_ALLOWED };
    case "type": {
      const types = Array.isArray(params.type) ? params.type : String(params.type).split(",");
      return { path, message: `must be ${types.join(" or ")} (got ${describeValue(value)})` };
    }
    case "enum":
      return {
        path,
        message: `must be one of ${
          clip((params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", "))
        }`,
      };
    case "const":
      return { path, message: `must be ${clip(JSON.stringify(params.allowedValue))}` };
  }
  return { path, message: error.message ?? `does not satisfy "${error.keyword}"` };
}

/** The keys and indices of a JSON pointer into `root`, and the value there. */
function follow(pointer: string, root: unknown): { path: (string | number)[]; value: unknown } {
  const path: (string | number)[] = [];
  let value = root;
  if (pointer === "") return { path, value };
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(value) && /^(0|[1-9]\d*)$/.test(key)) {
      path.push(Number(key));
      value = value[Number(key)];
    } else {
      path.push(key);
      value = typeof value === "object" && value !== null && Object.hasOwn(value, key)
        ? (value as Record<string, unknown>)[key]
        : undefined;
    }
  }
  return { path, value };
}

const NOT_ALLOWED = "is not allowed (unknown property)";

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return "a string";
  if (typeof value === "object" && value !== null) return "an object";
  return String(value); // a number, boolean or null
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
