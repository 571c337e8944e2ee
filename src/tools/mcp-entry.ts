/**
 * Tools from MCP servers (`@dagstream/dagstream/mcp`): `McpToolSource`
 * connects to the servers of an `mcpServers` configuration (stdio or
 * Streamable HTTP) and offers every tool of every server as `<server>:<tool>`,
 * as a tool registry an executor or the bundled server can run. Loading this
 * entry point loads the MCP SDK, which the other entry points never do.
 *
 * The SDK's dependencies read a few environment variables when loaded: run
 * with `--allow-env` for them, or `--ignore-env`.
 *
 * @example Read a configuration and the permissions it needs
 * ```ts
 * import assert from "node:assert/strict";
 * import { mcpPermissions, parseMcpConfig } from "./mcp-entry.ts";
 *
 * const config = parseMcpConfig({
 *   mcpServers: {
 *     everything: { command: "npx", args: ["-y", "@modelcontextprotocol/server-everything"] },
 *     remote: { url: "https://mcp.example.com/mcp" },
 *   },
 * }, "mcp.json");
 * assert.deepEqual(Object.keys(config.servers), ["everything", "remote"]);
 * const permissions = mcpPermissions(config, "mcp.json");
 * assert.deepEqual(permissions.run, ["npx"]);
 * assert.deepEqual(permissions.net, ["mcp.example.com"]);
 * ```
 *
 * @example Run a DAG with MCP tools
 * ```ts ignore
 * import { ParallelExecutor } from "../../mod.ts";
 * import { loadMcpConfig, McpToolSource } from "./mcp-entry.ts";
 *
 * const mcp = await McpToolSource.connect(await loadMcpConfig("examples/mcp.json"));
 * try {
 *   const result = await new ParallelExecutor(mcp.execute).execute({
 *     tasks: [{ id: "sum", tool: "everything:get-sum", arguments: { a: 2, b: 3 } }],
 *   });
 *   console.log(result.results[0].output); // "The sum of 2 and 3 is 5."
 * } finally {
 *   await mcp.close(); // ends the servers' processes
 * }
 * ```
 *
 * @module
 */

export { McpToolSource, type McpToolSourceOptions } from "./mcp.ts";
export {
  loadMcpConfig,
  type McpConfig,
  McpConfigError,
  type McpConfigIssue,
  type McpHttpServerSpec,
  type McpPermissions,
  mcpPermissions,
  type McpServerSpec,
  type McpStdioServerSpec,
  parseMcpConfig,
} from "./mcp-config.ts";
export type { ManagedToolRegistry, ToolInfo, ToolRegistry, ToolServerHealth } from "./registry.ts";
export type { ToolContext, ToolExecutor, ToolProgress } from "../dag/types.ts";
export type { ArgumentIssue, ValidationIssue } from "../dag/validate.ts";
