/**
 * The server's rules for a submitted DAG (its size, known tools, each
 * tool's input schema, output references): for a request's body, for a run
 * taken from the shared queue, and for `deno task run`, which runs a DAG
 * in-process under the same rules.
 *
 * @module
 */

import { validateDAG, type ValidationResult } from "../dag/validate.ts";
import type { ManagedToolRegistry, ToolRegistry } from "../tools/registry.ts";
import { unknownToolMessages } from "./unknown-tool.ts";

/**
 * What steps 5–6 read.
 *
 * @example
 * ```ts
 * import { builtinTools } from "../tools/builtin.ts";
 * import { createToolRegistry } from "../tools/registry.ts";
 * import type { DagChecks } from "./dag-checks.ts";
 * const checks: DagChecks = {
 *   maxBodyBytes: 1024 * 1024,
 *   maxTasks: 1000,
 *   tools: createToolRegistry({ ...builtinTools }),
 * };
 * ```
 */
export interface DagChecks {
  /** Largest body, in bytes. */
  maxBodyBytes: number;
  /** Most tasks a DAG may have. */
  maxTasks: number;
  /** The tools a DAG may call (with their argument checks). */
  tools: ToolRegistry;
  /** The MCP servers' tools, to explain a tool name none of them has. */
  mcp?: ManagedToolRegistry;
}

/**
 * Validates a submitted DAG with the server's rules (size, known tools, tool
 * input schemas, references): for a request's body, and for a run that
 * waited in the shared queue before an instance took it.
 */
export function checkDag(value: unknown, checks: DagChecks): ValidationResult {
  const { tools } = checks;
  return validateDAG(value, {
    maxTasks: checks.maxTasks,
    isKnownTool: (name) => tools.has(name),
    unknownToolMessage: unknownToolMessages(tools, checks.mcp),
    checkArguments: tools.checkArguments?.bind(tools),
    rejectUnknownReferences: true,
  });
}
