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
