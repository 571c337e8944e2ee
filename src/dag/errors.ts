/**
 * Turning anything thrown (by a tool, a parser, the platform) into a
 * readable one-line message.
 *
 * @module
 */

/**
 * Describes a thrown value: an Error's message, a string as is, anything
 * else as JSON when it can be, else `String(value)`. Never throws. Every
 * place that turns something caught into a message uses it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeError } from "./errors.ts";
 * assert.equal(describeError(new Error("disk full")), "disk full");
 * assert.equal(describeError("plain"), "plain");
 * assert.equal(describeError({ code: 7, big: 1n }), '{"code":7,"big":"1n"}');
 * assert.equal(describeError(undefined), "undefined was thrown");
 * ```
 */
export function describeError(value: unknown): string {
  try {
    if (value instanceof Error) return value.message || value.name || "Error";
    if (typeof value === "string") return value;
    if (value === undefined) return "undefined was thrown";
    const json = JSON.stringify(value, (_k, v) => typeof v === "bigint" ? `${v}n` : v);
    return json ?? String(value);
  } catch {
    try {
      return String(value);
    } catch {
      return "a value that cannot be described was thrown";
    }
  }
}

/**
 * A task result (or its event data) whose output turned out not to be
 * JSON-serialisable when it was written out (a `toJSON` or getter that
 * throws, a cycle): the same entry without its output, failed with a
 * message saying why. The one wording of that failure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withUnserialisableOutput } from "./errors.ts";
 * const entry = { taskId: "a", status: "success" as const, output: 1 };
 * assert.deepEqual(withUnserialisableOutput(entry, new TypeError("cycle")), {
 *   taskId: "a",
 *   status: "error",
 *   error: "output is not JSON-serialisable: cycle",
 * });
 * ```
 */
export function withUnserialisableOutput<T extends { output?: unknown }>(
  entry: T,
  cause: unknown,
): Omit<T, "output"> & { status: "error"; error: string } {
  const { output: _, ...rest } = entry;
  return {
    ...rest,
    status: "error",
    error: `output is not JSON-serialisable: ${describeError(cause)}`,
  };
}
