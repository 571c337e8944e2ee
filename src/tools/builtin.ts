/**
 * The built-in mock tools, enough to demo and test with no setup:
 * `mock:delay {ms}`, `mock:echo {...}` and `mock:fail {message}`.
 *
 * @module
 */

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
 * import { builtinTools } from "./builtin.ts";
 * import { createToolRegistry } from "./registry.ts";
 * const registry = createToolRegistry({ ...builtinTools });
 * console.log(registry.list().map((t) => t.name)); // mock:delay, mock:echo, mock:fail
 * ```
 */
export const builtinTools: Readonly<Record<string, ToolDefinition>> = {
  "mock:delay": {
    description:
      `Waits \`ms\` milliseconds (default ${DEFAULT_DELAY_MS}), then returns { waitedMs }. ` +
      "Stops at once when the task is cancelled or times out.",
    inputSchema: {
      type: "object",
      properties: { ms: { type: "number", minimum: 0, maximum: 2147483647 } },
    },
    async run(args, ctx) {
      const ms = args.ms ?? DEFAULT_DELAY_MS;
      if (typeof ms !== "number" || !(ms >= 0) || ms > 2147483647) {
        throw new TypeError("mock:delay: ms must be a number of milliseconds from 0 to 2147483647");
      }
      await sleep(ms, ctx.signal);
      return { waitedMs: ms };
    },
  },
  "mock:echo": {
    description: "Returns its arguments unchanged.",
    inputSchema: { type: "object", additionalProperties: true },
    run: (args) => args,
  },
  "mock:fail": {
    description: 'Fails with `message` (default "mock:fail").',
    inputSchema: { type: "object", properties: { message: { type: "string" } } },
    run(args) {
      const message = typeof args.message === "string" ? args.message : "mock:fail";
      throw new Error(message);
    },
  },
};
