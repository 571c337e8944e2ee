/**
 * A registry of named tools: one {@linkcode ToolExecutor} for the executor,
 * plus the listing `GET /tools` serves.
 *
 * @module
 */

import type { ToolContext, ToolExecutor } from "../dag/types.ts";

/** One tool a registry can run. */
export interface ToolDefinition {
  /** What the tool does, for people choosing tools. */
  description: string;
  /** JSON Schema of the tool's arguments. */
  inputSchema: Record<string, unknown>;
  /** Runs the tool. */
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
}

/** What {@linkcode createToolRegistry} returns. */
export interface ToolRegistry {
  /** Runs a tool by name; an unknown name rejects. */
  execute: ToolExecutor;
  /** Whether a tool of that name exists. */
  has(name: string): boolean;
  /** Every tool, sorted by name. */
  list(): ToolInfo[];
}

/**
 * Builds a registry from named tool definitions.
 *
 * @example
 * ```ts
 * import { createToolRegistry } from "./registry.ts";
 * const tools = createToolRegistry({
 *   "math:add": {
 *     description: "Adds a and b",
 *     inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } },
 *     run: (args) => (args.a as number) + (args.b as number),
 *   },
 * });
 * const sum = await tools.execute("math:add", { a: 1, b: 2 }, {
 *   signal: new AbortController().signal,
 *   taskId: "t1",
 * });
 * console.log(sum); // 3
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
      try {
        return Promise.resolve(definition.run(args, ctx));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    has: (name) => tools.has(name),
    list: () => listing.map((t) => ({ ...t })),
  };
}
