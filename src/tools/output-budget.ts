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
 * It also bounds nesting: V8 serialises deep values by recursion, so an
 * output nested 100,000 levels may pass one `JSON.stringify` and overflow
 * the stack in the next, called from a deeper frame (the JSON answer of the
 * run). Arguments and outputs nested deeper than {@linkcode MAX_JSON_DEPTH}
 * levels fail their call instead.
 *
 * @module
 */

import type { ToolExecutor } from "../dag/types.ts";

/** Most levels of nested objects and arrays in a tool's arguments or output. */
export const MAX_JSON_DEPTH = 1000;

const OVER = Symbol("over budget");
const DEEP = Symbol("too deep");

/** Sizes of a value, as {@linkcode measureJson} estimates them. */
export interface JsonSize {
  /** About how many bytes its JSON text takes. */
  json: number;
  /**
   * About how many bytes it takes in memory: objects cost more there than
   * in JSON (a 50,000-key object is about 4 times its JSON's size).
   */
  memory: number;
}

/**
 * Sizes `value` as JSON, counting no further than `limit` bytes of JSON:
 * the sizes; `"over"` when the JSON is larger than `limit`; `"deep"` when it
 * is nested deeper than {@linkcode MAX_JSON_DEPTH}. A value that cannot be
 * serialised (a cycle, a BigInt, a throwing `toJSON`) counts as 0: the
 * executor reports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_JSON_DEPTH, measureJson } from "./output-budget.ts";
 * const size = measureJson({ a: [1, "xy"] }, 1000);
 * assert.ok(size !== "over" && size !== "deep" && size.json > 0);
 * assert.equal(measureJson("x".repeat(200), 100), "over"); // stops counting at the limit
 * let deep: unknown = "leaf";
 * for (let d = 0; d <= MAX_JSON_DEPTH; d++) deep = [deep];
 * assert.equal(measureJson(deep, Infinity), "deep");
 * ```
 */
export function measureJson(value: unknown, limit: number): JsonSize | "over" | "deep" {
  if (limit < 0) return "over";
  if (value === undefined || value === null || typeof value !== "object") {
    const json = typeof value === "string" ? value.length + 2 : 8;
    return json <= limit ? { json, memory: json + 16 } : "over";
  }
  const count = new JsonCount(limit);
  try {
    count.member("", value, 0);
  } catch (error) {
    if (error === OVER) return "over";
    if (error === DEEP) return "deep";
    return { json: 0, memory: 0 };
  }
  return { json: count.json, memory: count.memory };
}

const CYCLE = Symbol("cycle");

/**
 * One count of {@linkcode measureJson}: a walk over what `JSON.stringify`
 * would write (own enumerable keys, `toJSON` results, boxed primitives
 * unwrapped), in plain JavaScript: a replacer function would cost a call
 * from the engine into JavaScript for every value.
 */
class JsonCount {
  json = 0;
  memory = 0;
  readonly #limit: number;
  /** The objects on the path to the value being counted, outermost first. */
  readonly #path: object[] = [];
  /** Those of them at depth {@linkcode SHALLOW} and below. */
  readonly #deepAncestors = new Set<object>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Counts a member (`key` in an object; an index in an array) and its value. */
  member(key: string, value: unknown, inArray: number): void {
    // A member costs its key, quotes, colon and comma; an array item its comma.
    if (inArray === 1) {
      this.json += 1;
      this.memory += 8;
    } else {
      this.json += key.length + 4;
      this.memory += key.length + 48;
    }
    this.#value(key, value);
    if (this.json > this.#limit) throw OVER;
  }

  #value(key: string, v: unknown): void {
    if (typeof v === "object" && v !== null) {
      const toJSON = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") v = toJSON.call(v, key);
      else if (v instanceof String || v instanceof Number || v instanceof Boolean) v = v.valueOf();
    }
    if (typeof v === "string") {
      this.json += v.length + 2;
      this.memory += v.length + 16;
      return;
    }
    if (typeof v === "bigint") throw CYCLE; // not serialisable either: counts as 0
    if (typeof v !== "object" || v === null) {
      this.json += 5;
      return;
    }
    this.json += 2;
    this.memory += 64;
    const path = this.#path;
    const depth = path.length;
    if (depth >= MAX_JSON_DEPTH) throw DEEP;
    // A cycle: the value is one of its own ancestors. Near the top, where
    // nearly all values are, the path is scanned; deeper ones are in a set.
    for (let d = 0; d < depth && d < SHALLOW; d++) if (path[d] === v) throw CYCLE;
    if (depth > SHALLOW && this.#deepAncestors.has(v)) throw CYCLE;
    path.push(v);
    if (depth >= SHALLOW) this.#deepAncestors.add(v);
    if (this.json > this.#limit) throw OVER;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) this.member(String(i), v[i], 1);
    } else {
      const keys = Object.keys(v);
      for (let k = 0; k < keys.length; k++) {
        this.member(keys[k], (v as Record<string, unknown>)[keys[k]], 0);
      }
    }
    path.pop();
    if (depth >= SHALLOW) this.#deepAncestors.delete(v);
  }
}

/** Ancestors scanned one by one; those deeper are looked up in a set. */
const SHALLOW = 16;

/** What {@linkcode withOutputBudget} returns. */
export interface OutputBudget {
  /** The wrapped tools. */
  tools: ToolExecutor;
  /** About how many bytes of memory the outputs counted so far take. */
  readonly outputMemoryBytes: number;
}

/**
 * Wraps `tools` so that the JSON of every call's arguments and output, over
 * the whole run, stays within `maxBytes`. A call whose arguments do not fit
 * fails without running; one whose output does not fit fails after. Either
 * spends the rest of the budget. Make one per run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withOutputBudget } from "./output-budget.ts";
 * const budget = withOutputBudget(async (_tool, args) => ({ copy: args.s }), 100);
 * const ctx = { signal: new AbortController().signal, taskId: "t1" };
 * assert.deepEqual(await budget.tools("echo", { s: "ok" }, ctx), { copy: "ok" });
 * // These arguments would take the run past 100 bytes: the call fails unrun...
 * await assert.rejects(budget.tools("echo", { s: "x".repeat(100) }, ctx), /too large/);
 * // ...and the budget is spent: every later call of the run fails too.
 * await assert.rejects(budget.tools("echo", { s: "" }, ctx), /too large/);
 * ```
 */
export function withOutputBudget(tools: ToolExecutor, maxBytes: number): OutputBudget {
  let used = 0;
  let outputMemoryBytes = 0;
  const check = (what: string, size: JsonSize | "over" | "deep"): JsonSize => {
    if (size === "deep") {
      throw new RangeError(`${what} nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    if (size === "over") {
      used = maxBytes + 1;
      throw new RangeError(
        `${what} too large: the run's tool arguments and outputs exceed ` +
          `${maxBytes} bytes of JSON (maxRunOutputBytes)`,
      );
    }
    used += size.json;
    return size;
  };
  return {
    // then() rather than async/await: no extra promise and resumption per call.
    tools: (tool, args, ctx) => {
      try {
        check("arguments", measureJson(args, maxBytes - used));
      } catch (error) {
        return Promise.reject(error);
      }
      const counted = (output: unknown) => {
        outputMemoryBytes += check("output", measureJson(output, maxBytes - used)).memory;
        return output;
      };
      let call: unknown;
      try {
        call = tools(tool, args, ctx);
      } catch (error) {
        return Promise.reject(error);
      }
      return Promise.resolve(call).then(counted);
    },
    get outputMemoryBytes() {
      return outputMemoryBytes;
    },
  };
}
