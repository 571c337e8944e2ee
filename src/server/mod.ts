/**
 * The bundled HTTP server as a library (`@dagstream/dagstream/server`):
 * `createApp` builds the whole HTTP API (`POST /execute`, `/runs`, `/tools`,
 * `/health`…) as one fetch-style handler for `Deno.serve`, and the tool
 * registry turns named tool definitions into the `ToolExecutor` its runs
 * call and the listing `GET /tools` serves.
 *
 * @example Serve your own tools
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinTools, createApp, createToolRegistry } from "./mod.ts";
 *
 * const tools = createToolRegistry({
 *   ...builtinTools,
 *   "math:add": {
 *     description: "Adds a and b",
 *     inputSchema: {
 *       type: "object",
 *       properties: { a: { type: "number" }, b: { type: "number" } },
 *     },
 *     run: (args) => Number(args.a) + Number(args.b),
 *   },
 * });
 * const app = createApp({ tools, log: () => {} });
 * const response = await app.handle(
 *   new Request("http://127.0.0.1/execute", {
 *     method: "POST",
 *     headers: { "content-type": "application/json" },
 *     body: JSON.stringify({ tasks: [{ id: "sum", tool: "math:add", arguments: { a: 2, b: 3 } }] }),
 *   }),
 * );
 * assert.equal(response.status, 200);
 * assert.equal((await response.json()).results[0].output, 5);
 * await app.shutdown();
 * ```
 *
 * @module
 */

export { createApp, type DagstreamApp } from "./app.ts";
export type { ResolvedServerConfig, ServerConfig } from "./config.ts";
export type { AppRun, AppRuns } from "./run-view.ts";
export type { RunStatus } from "./run.ts";
export {
  combineToolRegistries,
  createToolRegistry,
  type ManagedToolRegistry,
  type ToolDefinition,
  type ToolInfo,
  type ToolRegistry,
  type ToolServerHealth,
} from "../tools/registry.ts";
export { builtinTools } from "../tools/builtin.ts";
export {
  type HostResolver,
  HTTP_REQUEST_INPUT_SCHEMA,
  httpRequestTool,
  type HttpRequestToolOptions,
  type HttpResponseOutput,
} from "../tools/http-request.ts";
export type { SchedulingMode, ToolContext, ToolExecutor, ToolProgress } from "../dag/types.ts";
export type { ArgumentIssue } from "../dag/validate.ts";
