/**
 * The built-in mock tools, enough to demo and test with no setup:
 * `mock:delay {ms}`, `mock:echo {...}` and `mock:fail {message}`.
 *
 * @module
 */

import { MAX_TIMER_MS } from "../dag/defaults.ts";
import type { ToolDefinition } from "./registry.ts";

/** Default wait of `mock:delay`, in ms. */
export const DEFAULT_DELAY_MS = 100;

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The mock tools, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinTools } from "./builtin.ts";
 * import { createToolRegistry } from "./registry.ts";
 * const registry = createToolRegistry({ ...builtinTools });
 * assert.deepEqual(registry.list().map((t) => t.name), [
 *   "mock:delay",
 *   "mock:echo",
 *   "mock:fail",
 *   "mock:flaky",
 * ]);
 * const ctx = { signal: new AbortController().signal, taskId: "t1" };
 * assert.deepEqual(await registry.execute("mock:echo", { a: 1 }, ctx), { a: 1 });
 * assert.deepEqual(await registry.execute("mock:delay", { ms: 0 }, ctx), { waitedMs: 0 });
 * await assert.rejects(registry.execute("mock:fail", { message: "no" }, ctx), { message: "no" });
 * ```
 */
export const builtinTools: Readonly<Record<string, ToolDefinition>> = {
  "mock:delay": {
    description:
      `Waits \`ms\` milliseconds (default ${DEFAULT_DELAY_MS}), then returns { waitedMs }. ` +
      "Stops at once when the task is cancelled or times out.",
    inputSchema: {
      type: "object",
      properties: {
        ms: {
          type: "integer",
          minimum: 0,
          maximum: MAX_TIMER_MS,
          description: `milliseconds to wait (default ${DEFAULT_DELAY_MS})`,
        },
      },
      additionalProperties: false,
    },
    async run(args, ctx) {
      const ms = args.ms ?? DEFAULT_DELAY_MS;
      // The registry checks the schema; this guards direct calls of `run`.
      if (!Number.isInteger(ms) || (ms as number) < 0 || (ms as number) > MAX_TIMER_MS) {
        throw new TypeError(
          `mock:delay: ms must be a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`,
        );
      }
      await sleep(ms as number, ctx.signal);
      return { waitedMs: ms };
    },
  },
  "mock:echo": {
    description: "Returns its arguments unchanged.",
    inputSchema: { type: "object" },
    run: (args) => args,
  },
  "mock:fail": {
    description: 'Fails with `message` (default "mock:fail").',
    inputSchema: {
      type: "object",
      properties: {
        message: { type: "string", description: 'the error message (default "mock:fail")' },
      },
      additionalProperties: false,
    },
    run(args) {
      const message = typeof args.message === "string" ? args.message : "mock:fail";
      throw new Error(message);
    },
  },
  "mock:flaky": {
    description: "Fails the first `failures` attempts of its task (with `message`, default " +
      '"mock:flaky: attempt <n> of <failures> fails"), then returns { attempts }: ' +
      "a task with a retry policy of more than `failures` attempts succeeds.",
    inputSchema: {
      type: "object",
      properties: {
        failures: {
          type: "integer",
          minimum: 0,
          maximum: 100,
          description: "how many attempts fail before one succeeds",
        },
        message: { type: "string", description: "the error message of a failed attempt" },
      },
      required: ["failures"],
      additionalProperties: false,
    },
    run(args, ctx) {
      const failures = Number(args.failures);
      const attempt = ctx.attempt ?? 1;
      if (attempt <= failures) {
        throw new Error(
          typeof args.message === "string"
            ? args.message
            : `mock:flaky: attempt ${attempt} of ${failures} fails`,
        );
      }
      return { attempts: attempt };
    },
  },
};
