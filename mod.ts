/**
 * dagstream runs a workflow of tool calls described as a DAG — every
 * independent branch in parallel, each task the moment its dependencies are
 * done — and streams each task's start and result as Server-Sent Events.
 *
 * This entry point is the library: the executors, the DAG types, validation,
 * the event types, the two HTTP handlers and the client-side readers. The
 * bundled server and the tool registry are in `./server`
 * (`src/server/mod.ts`), SSE framing, negotiation and problem responses for
 * any `Deno.serve` app in `./sse` (`src/sse/mod.ts`), and tools from MCP
 * servers in `./mcp` (`src/tools/mcp-entry.ts`).
 *
 * @example Run a DAG
 * ```ts
 * import assert from "node:assert/strict";
 * import { ParallelExecutor } from "./mod.ts";
 *
 * const executor = new ParallelExecutor(async (tool, args) => ({ tool, args }));
 * const result = await executor.execute({
 *   tasks: [
 *     { id: "a", tool: "echo", arguments: { text: "hi" } },
 *     { id: "b", tool: "echo", arguments: { previous: "$OUTPUT[a].args.text" } },
 *   ],
 * });
 * assert.deepEqual(result.results.map((r) => r.status), ["success", "success"]);
 * assert.deepEqual(result.results[1].output, { tool: "echo", args: { previous: "hi" } });
 * ```
 *
 * @example Stream its events
 * ```ts
 * import assert from "node:assert/strict";
 * import { type SSEEvent, StreamingExecutor } from "./mod.ts";
 *
 * const events: SSEEvent[] = [];
 * await new StreamingExecutor(async (_tool, args) => args).executeWithStreaming(
 *   { tasks: [{ id: "a", tool: "echo" }, { id: "b", tool: "echo", dependsOn: ["a"] }] },
 *   new WritableStream({ write: (event) => void events.push(event) }),
 * );
 * assert.deepEqual(events.map((e) => e.type), [
 *   "task_start",
 *   "task_complete",
 *   "task_start",
 *   "task_complete",
 *   "execution_complete",
 * ]);
 * ```
 *
 * @example Validate untrusted input
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateDAG } from "./mod.ts";
 *
 * const checked = validateDAG({ tasks: [{ id: "a", tool: "x", dependsOn: ["nope"] }] });
 * assert.equal(checked.ok, false);
 * if (!checked.ok) assert.equal(checked.issues[0].path, "tasks[0].dependsOn[0]");
 * ```
 *
 * @module
 */

import type { SSEEvent } from "./src/dag/events.ts";
import * as client from "./src/sse/client.ts";

export type {
  DAGExecutionResult,
  DAGStructure,
  ExecuteOptions,
  ExecutionStats,
  ExecutorConfig,
  RetryPolicy,
  SchedulingMode,
  Task,
  TaskError,
  TaskResult,
  ToolContext,
  ToolExecutor,
  ToolProgress,
} from "./src/dag/types.ts";
export { ParallelExecutor } from "./src/dag/executor.ts";
export { StreamingExecutor } from "./src/dag/streaming.ts";
export { BufferedEventStream, type BufferedStreamConfig } from "./src/dag/buffered-stream.ts";
export type {
  ExecutionCompleteEvent,
  RunErrorEvent,
  SSEEvent,
  TaskCompleteEvent,
  TaskProgressEvent,
  TaskRetryEvent,
  TaskStartEvent,
} from "./src/dag/events.ts";
export {
  type ArgumentIssue,
  dagJsonSchema,
  DAGValidationError,
  prepareDAG,
  type PreparedDAG,
  validateDAG,
  type ValidateOptions,
  type ValidationIssue,
  type ValidationResult,
} from "./src/dag/validate.ts";
export type { TaskGraph } from "./src/dag/graph.ts";
export {
  handleSSERequest,
  handleWorkflowRequest,
  type SSEHandlerConfig,
} from "./src/sse/handlers.ts";

/**
 * Yields each event of a dagstream SSE response body the moment it
 * arrives, with its `id:` when it had one. Comments (keep-alives) are
 * skipped and each `data` is parsed as JSON (with `npm:eventsource-parser`);
 * leaving the loop early cancels the body. The same reader as `./sse`'s
 * `readSSEEvents`, typed with the library's events; `./sse` types the
 * fields only the wire adds (`truncated`, `outputBytes`, `missedEvents`…).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSSEEvents } from "./mod.ts";
 *
 * const body = new Response(
 *   "retry: 2000\n\n: keep-alive\n\n" +
 *     'id: 1\nevent: task_start\ndata: {"taskId":"a","tool":"echo","timestamp":"t"}\n\n',
 * ).body!;
 * const seen = [];
 * for await (const event of readSSEEvents(body)) seen.push([event.id, event.type]);
 * assert.deepEqual(seen, [["1", "task_start"]]);
 * ```
 */
export function readSSEEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<SSEEvent & { id?: string }, void, undefined> {
  return client.readSSEEvents(body);
}

/**
 * Reads a whole dagstream SSE response body and resolves with its events,
 * in order, once the stream ends (the reference design's client helper).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSSEStream } from "./mod.ts";
 *
 * const body = new Response(
 *   'id: 1\nevent: error\ndata: {"error":"x","timestamp":"t"}\n\n',
 * ).body!;
 * assert.deepEqual(await parseSSEStream(body), [
 *   { id: "1", type: "error", data: { error: "x", timestamp: "t" } },
 * ]);
 * ```
 */
export function parseSSEStream(
  body: ReadableStream<Uint8Array>,
): Promise<(SSEEvent & { id?: string })[]> {
  return client.parseSSEStream(body);
}
