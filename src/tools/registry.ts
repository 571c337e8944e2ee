/**
 * A registry of named tools: one {@linkcode ToolExecutor} for the executor,
 * plus the listing `GET /tools` serves.
 *
 * @module
 */

import type { ToolContext, ToolExecutor } from "../dag/types.ts";
import type { ArgumentIssue } from "../dag/validate.ts";
import { argumentsError, submittedArgumentIssues } from "./schema.ts";

/** One tool a registry can run. */
export interface ToolDefinition {
  /** What the tool does, for people choosing tools. */
  description: string;
  /**
   * JSON Schema of the tool's arguments, enforced: a DAG whose literal
   * arguments break it is refused, and arguments that break it once
   * references are replaced fail the task without calling `run` (see
   * `compileInputSchema`; a schema that cannot be compiled is not enforced).
   * Compiled once: do not change it afterwards.
   */
  inputSchema: Record<string, unknown>;
  /** Runs the tool (with arguments that conform to `inputSchema`). */
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<unknown> | unknown;
}

/** A tool as `GET /tools` lists it. */
export interface ToolInfo {
  /** Name used in a task's `tool` field. */
  name: string;
  /** What the tool does. */
  description: string;
  /** JSON Schema of its arguments. */
  inputSchema: Record<string, unknown>;
  /** JSON Schema of its structured output, when the tool declares one. */
  outputSchema?: Record<string, unknown>;
}

/** What {@linkcode createToolRegistry} returns. */
export interface ToolRegistry {
  /** Runs a tool by name; an unknown name rejects. */
  execute: ToolExecutor;
  /** Whether a tool of that name exists. */
  has(name: string): boolean;
  /** Every tool, sorted by name. */
  list(): ToolInfo[];
  /**
   * Why a name is not a tool of this registry, when it can say more than
   * "unknown tool" (e.g. `MCP server "fs" has no tool "x"`); undefined when
   * the name is none of its business.
   */
  explainUnknown?(name: string): string | undefined;
  /**
   * The problems of a task's arguments as submitted, before the run, against
   * the tool's input schema: `$OUTPUT` references stand for values not known
   * yet and are not held against them. Empty when there are none, or when
   * this registry cannot say (unknown tool, schema that cannot be compiled).
   * Give it to `validateDAG` as `checkArguments`.
   */
  checkArguments?(name: string, args: Record<string, unknown>): ArgumentIssue[];
}

/** How one server behind a {@linkcode ManagedToolRegistry} is doing, as `/health` shows it. */
export interface ToolServerHealth {
  /** `"up"`: connected, its tools can be called; `"down"`: not connected (being retried). */
  status: "up" | "down";
  /** How the server is reached: `"stdio"` (a child process) or `"http"` (Streamable HTTP). */
  transport: "stdio" | "http";
  /** Number of tools it offers (the last list known, while down). */
  tools: number;
  /** Why it is down (or the last failure), when it is. */
  error?: string;
  /** Failed connection attempts since it was last up. */
  reconnectAttempts?: number;
}

/**
 * A registry whose tools live in servers of their own (MCP servers): it can
 * say how each server is doing, and must be closed to stop them.
 */
export interface ManagedToolRegistry extends ToolRegistry {
  /** Each server's state, by server name. */
  health(): Record<string, ToolServerHealth>;
  /** Disconnects every server and stops the processes it started. */
  close(): Promise<void>;
}

/**
 * Builds a registry from named tool definitions. `execute` checks the
 * arguments against the tool's `inputSchema` before running it (a mismatch
 * rejects with `invalid arguments for "<tool>": arguments.x …`), and
 * `checkArguments` checks a task's arguments before the run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createToolRegistry } from "./registry.ts";
 * const tools = createToolRegistry({
 *   "math:add": {
 *     description: "Adds a and b",
 *     inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } },
 *     run: (args) => (args.a as number) + (args.b as number),
 *   },
 * });
 * const ctx = { signal: new AbortController().signal, taskId: "t1" };
 * assert.equal(await tools.execute("math:add", { a: 1, b: 2 }, ctx), 3);
 * // Arguments are checked against the tool's input schema first.
 * await assert.rejects(
 *   tools.execute("math:add", { a: "1" }, ctx),
 *   /invalid arguments for "math:add": arguments.a must be number/,
 * );
 * assert.deepEqual(tools.list().map((t) => t.name), ["math:add"]);
 * ```
 */
export function createToolRegistry(definitions: Record<string, ToolDefinition>): ToolRegistry {
  const tools = new Map(Object.entries(definitions));
  const listing: ToolInfo[] = [...tools.entries()]
    .map(([name, d]) => ({ name, description: d.description, inputSchema: d.inputSchema }))
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return {
    execute(tool, args, ctx) {
      const definition = tools.get(tool);
      if (definition === undefined) return Promise.reject(new Error(`unknown tool "${tool}"`));
      const invalid = argumentsError(tool, definition.inputSchema, args);
      if (invalid !== undefined) return Promise.reject(new Error(invalid));
      try {
        return Promise.resolve(definition.run(args, ctx));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    has: (name) => tools.has(name),
    list: () => listing.map((t) => ({ ...t })),
    checkArguments(name, args) {
      const definition = tools.get(name);
      if (definition === undefined) return [];
      return submittedArgumentIssues(definition.inputSchema, args);
    },
  };
}

/**
 * Merges registries into one: a name is looked up in each registry in turn
 * and the first that has it runs it. The listing is every registry's
 * tools, sorted by name (a name listed by several appears once, from the
 * first). The merged registry follows changes of the registries it merges.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { combineToolRegistries, createToolRegistry } from "./registry.ts";
 * import { builtinTools } from "./builtin.ts";
 * const extra = createToolRegistry({
 *   "math:double": {
 *     description: "Doubles x",
 *     inputSchema: { type: "object", properties: { x: { type: "number" } } },
 *     run: (args) => 2 * Number(args.x),
 *   },
 * });
 * const tools = combineToolRegistries(createToolRegistry({ ...builtinTools }), extra);
 * assert.ok(tools.has("mock:echo") && tools.has("math:double"));
 * assert.ok(!tools.has("math:triple"));
 * const ctx = { signal: new AbortController().signal, taskId: "t1" };
 * assert.equal(await tools.execute("math:double", { x: 21 }, ctx), 42);
 * assert.deepEqual(
 *   tools.list().map((t) => t.name),
 *   ["math:double", "mock:delay", "mock:echo", "mock:fail", "mock:flaky"],
 * );
 * ```
 */
export function combineToolRegistries(...registries: ToolRegistry[]): ToolRegistry {
  const owner = (name: string) => registries.find((r) => r.has(name));
  return {
    execute(tool, args, ctx) {
      const registry = owner(tool);
      if (registry === undefined) {
        return Promise.reject(new Error(explain(registries, tool) ?? `unknown tool "${tool}"`));
      }
      return registry.execute(tool, args, ctx);
    },
    has: (name) => owner(name) !== undefined,
    list() {
      const seen = new Map<string, ToolInfo>();
      for (const registry of registries) {
        for (const tool of registry.list()) if (!seen.has(tool.name)) seen.set(tool.name, tool);
      }
      return [...seen.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    },
    explainUnknown: (name) => explain(registries, name),
    checkArguments: (name, args) => owner(name)?.checkArguments?.(name, args) ?? [],
  };
}

function explain(registries: ToolRegistry[], name: string): string | undefined {
  for (const registry of registries) {
    const message = registry.explainUnknown?.(name);
    if (message !== undefined) return message;
  }
  return undefined;
}
