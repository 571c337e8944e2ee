/**
 * Tools that misbehave in every way a tool can: throw values that are not
 * Errors, never settle, ignore their abort signal, settle after their
 * timeout, return undefined, huge, deep, circular, BigInt or self-changing
 * outputs, report progress wildly. Shared by the fault tests and the stress
 * server (`tests/stress/fault_server.ts`); never part of the product.
 *
 * @module
 */

import type { ToolDefinition } from "../../src/tools/registry.ts";

/**
 * Work a tool left behind after its task ended (it ignored its signal):
 * the test releases it once the run is over, so late settles and throws
 * happen while everything else is already done.
 */
export class LateWork {
  #pending: (() => void)[] = [];
  #timers = new Set<ReturnType<typeof setTimeout>>();

  /** A promise settled by {@linkcode release} (or after `ms` when given, for long-lived servers). */
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms === undefined) {
        this.#pending.push(resolve);
        return;
      }
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  /** Lets every waiting tool go on, then gives their late settles a turn to happen. */
  async release(): Promise<number> {
    const pending = this.#pending;
    this.#pending = [];
    for (const resolve of pending) resolve();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await new Promise((resolve) => setTimeout(resolve, 0));
    return pending.length;
  }
}

function nested(depth: number): unknown {
  let value: unknown = "leaf";
  for (let d = 0; d < depth; d++) value = { d: value };
  return value;
}

const schema = { type: "object", additionalProperties: true };

function tool(description: string, run: ToolDefinition["run"]): ToolDefinition {
  return { description, inputSchema: schema, run };
}

/**
 * The faulty tools, by name (`bad:*`). `lateMs`, for a server process, lets
 * late work finish by itself after that long instead of waiting for
 * {@linkcode LateWork.release}.
 */
export function faultyTools(late: LateWork, lateMs?: number): Record<string, ToolDefinition> {
  let flakyCalls = 0;
  return {
    "bad:throw-null": tool("throws null", () => {
      throw null;
    }),
    "bad:throw-undefined": tool("throws undefined", () => {
      throw undefined;
    }),
    "bad:throw-number": tool("throws 42", () => {
      throw 42;
    }),
    "bad:throw-string": tool("throws a string", () => {
      throw "a plain string";
    }),
    "bad:throw-symbol": tool("throws a symbol", () => {
      throw Symbol("thrown");
    }),
    "bad:throw-object": tool("throws an object holding a BigInt", () => {
      throw { code: 7, nested: { big: 10n } };
    }),
    "bad:throw-proxy": tool("throws a proxy whose every trap throws", () => {
      const trap = () => {
        throw new Error("trap");
      };
      throw new Proxy({}, { get: trap, getPrototypeOf: trap, ownKeys: trap, has: trap });
    }),
    "bad:throw-bad-error": tool("throws an Error whose message getter throws", () => {
      const error = new Error("x");
      Object.defineProperty(error, "message", {
        get() {
          throw new Error("message getter");
        },
      });
      throw error;
    }),
    "bad:reject": tool("rejects with a frozen object", () => Promise.reject(Object.freeze({}))),
    "bad:never": tool("never settles and ignores its signal", () => new Promise(() => {})),
    "bad:never-thenable": tool("returns a thenable that never calls back", () => ({
      then() {},
    })),
    "bad:thenable-throws": tool("returns a thenable whose then throws", () => ({
      then() {
        throw new Error("then threw");
      },
    })),
    "bad:undefined": tool("returns undefined", () => undefined),
    "bad:function": tool("returns a function", () => () => 1),
    "bad:symbol": tool("returns a symbol", () => Symbol("out")),
    "bad:bigint": tool("returns a BigInt", () => 2n ** 70n),
    "bad:nested-bigint": tool("returns a BigInt deep inside", () => ({ a: [1, { b: 3n }] })),
    "bad:circular": tool("returns a circular object", () => {
      const a: Record<string, unknown> = { name: "a" };
      a.self = { back: a };
      return a;
    }),
    "bad:huge": tool("returns a string of `bytes` (default 2 MB)", (args) => {
      const bytes = typeof args.bytes === "number" ? Math.min(args.bytes, 50_000_000) : 2_000_000;
      return "x".repeat(bytes);
    }),
    "bad:wide": tool("returns an object of 50,000 keys", () => {
      const out: Record<string, number> = {};
      for (let i = 0; i < 50_000; i++) out[`k${i}`] = i;
      return out;
    }),
    "bad:deep": tool("returns an object nested 100,000 levels", () => nested(100_000)),
    "bad:flaky-json": tool("an output whose toJSON throws after its first calls", (args) => {
      const after = typeof args.after === "number" ? args.after : 1;
      let calls = 0;
      return {
        toJSON() {
          flakyCalls++;
          if (calls++ >= after) throw new Error(`toJSON failed on call ${calls}`);
          return { ok: true };
        },
      };
    }),
    "bad:getter-throws": tool("an output with a getter that throws", () => ({
      fine: 1,
      get broken(): number {
        throw new Error("getter");
      },
    })),
    "bad:ignore-abort": tool("ignores its signal, resolves once released", async () => {
      await late.wait(lateMs);
      return { late: true };
    }),
    "bad:throw-after-timeout": tool("ignores its signal, throws once released", async () => {
      await late.wait(lateMs);
      throw new Error("threw after its task ended");
    }),
    "bad:progress-spam": tool("reports progress wildly, also after it ends", async (_args, ctx) => {
      const report = ctx.progress;
      const bad = [NaN, Infinity, -1, 1e308, 0.5];
      for (let i = 0; i < 2000; i++) {
        report?.({
          progress: bad[i % bad.length],
          total: i % 3 ? 100 : NaN,
          message: "m".repeat(i),
        });
      }
      // deno-lint-ignore no-explicit-any
      report?.(null as any);
      late.wait(lateMs).then(() => report?.({ progress: 1, message: "after the end" }));
      await Promise.resolve();
      return { reported: 2000 };
    }),
    "bad:flaky-calls": tool("how many times flaky toJSON ran (a sanity probe)", () => flakyCalls),
  };
}

/** Names of the faulty tools whose task may run until the timeout. */
export const SLOW_FAULTS: readonly string[] = [
  "bad:never",
  "bad:never-thenable",
  "bad:ignore-abort",
  "bad:throw-after-timeout",
];
