/**
 * A run's budget of tool input and output, measured as JSON text.
 *
 * `$OUTPUT` references share objects instead of copying them, so a DAG of a
 * few hundred bytes can build arguments whose JSON text doubles with every
 * task (`{ "a": "$OUTPUT[t1]", "b": "$OUTPUT[t1]" }`, then the same on t2,
 * ...). Nothing is large in memory until something serialises it — the
 * output check, the event log, the JSON result, an MCP call — and then it
 * costs gigabytes and minutes. The budget measures each call's arguments
 * before the tool runs and its output after, stopping the count as soon as
 * the run's budget is spent: the work is bounded by the budget, however the
 * DAG is built. Once spent, every later call of the run fails at once.
 *
 * @module
 */

import type { ToolExecutor } from "../dag/types.ts";

const OVER = Symbol("over budget");

/**
 * About how many bytes of JSON text `value` takes, counting no further than
 * `limit`: the size, or `undefined` when it is larger than `limit`. A value
 * that cannot be serialised (a cycle, a BigInt) counts as 0: the executor
 * reports it.
 */
export function jsonSizeWithin(value: unknown, limit: number): number | undefined {
  if (limit < 0) return undefined;
  if (value === undefined || value === null || typeof value !== "object") {
    if (typeof value !== "string") return 8 <= limit ? 8 : undefined;
    return value.length + 2 <= limit ? value.length + 2 : undefined;
  }
  let size = 0;
  try {
    JSON.stringify(value, function (key, v) {
      // A member costs its key, quotes, colon and comma; an array item its comma.
      size += Array.isArray(this) ? 1 : key.length + 4;
      size += typeof v === "string" ? v.length + 2 : typeof v === "object" && v !== null ? 2 : 5;
      if (size > limit) throw OVER;
      return v;
    });
  } catch (error) {
    if (error === OVER) return undefined;
    return 0;
  }
  return size;
}

/**
 * Wraps `tools` so that the JSON of every call's arguments and output, over
 * the whole run, stays within `maxBytes`. A call whose arguments do not fit
 * fails without running; one whose output does not fit fails after. Either
 * spends the rest of the budget. Make one per run.
 */
export function withOutputBudget(tools: ToolExecutor, maxBytes: number): ToolExecutor {
  let used = 0;
  const fail = (what: string) => {
    used = maxBytes + 1;
    return new RangeError(
      `${what} too large: the run's tool arguments and outputs exceed ` +
        `${maxBytes} bytes of JSON (maxRunOutputBytes)`,
    );
  };
  return async (tool, args, ctx) => {
    const inBytes = jsonSizeWithin(args, maxBytes - used);
    if (inBytes === undefined) throw fail("arguments");
    used += inBytes;
    const output = await tools(tool, args, ctx);
    const outBytes = jsonSizeWithin(output, maxBytes - used);
    if (outBytes === undefined) throw fail("output");
    used += outBytes;
    return output;
  };
}
