/**
 * dagstream runs a workflow of tool calls described as a DAG — every
 * independent branch in parallel, each task the moment its dependencies are
 * done — and streams each task's start and result as Server-Sent Events.
 *
 * @example
 * ```ts
 * import { ParallelExecutor } from "./mod.ts";
 *
 * const executor = new ParallelExecutor(async (tool, args) => ({ tool, args }));
 * const result = await executor.execute({
 *   tasks: [
 *     { id: "a", tool: "echo", arguments: { text: "hi" } },
 *     { id: "b", tool: "echo", arguments: { previous: "$OUTPUT[a].args.text" } },
 *   ],
 * });
 * console.log(result.results.map((r) => r.status)); // ["success", "success"]
 * ```
 *
 * @module
 */

export type {
  DAGExecutionResult,
  DAGStructure,
  ExecuteOptions,
  ExecutionStats,
  ExecutorConfig,
  SchedulingMode,
  Task,
  TaskError,
  TaskResult,
  ToolContext,
  ToolExecutor,
  ToolProgress,
} from "./src/dag/types.ts";
export {
  DEFAULT_TASK_TIMEOUT,
  ParallelExecutor,
  type ResolvedExecutorConfig,
} from "./src/dag/executor.ts";
export {
  type ArgumentIssue,
  dagJsonSchema,
  DAGValidationError,
  DEFAULT_MAX_TASKS,
  prepareDAG,
  type PreparedDAG,
  validateDAG,
  type ValidateOptions,
  type ValidationIssue,
  type ValidationResult,
} from "./src/dag/validate.ts";
export {
  type LocatedReference,
  locateOutputReferences,
  MAX_ARGUMENT_DEPTH,
  type OutputReference,
  parseOutputReference,
  resolveArguments,
  UnresolvedReferenceError,
} from "./src/dag/arguments.ts";
export type { TaskGraph } from "./src/dag/graph.ts";
export type { RunHooks } from "./src/dag/scheduler.ts";
export { isPreparedDAG } from "./src/dag/validate.ts";
export type {
  ErrorEvent,
  ExecutionCompleteEvent,
  SSEEvent,
  SSEEventType,
  TaskCompleteEvent,
  TaskProgressEvent,
  TaskStartEvent,
} from "./src/dag/events.ts";
export { errorEvent, SSE_EVENT_TYPES } from "./src/dag/events.ts";
export {
  BufferedEventStream,
  type BufferedStreamConfig,
  DEFAULT_MAX_BUFFER_SIZE,
} from "./src/dag/buffered-stream.ts";
export { StreamingExecutor } from "./src/dag/streaming.ts";
export {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  DEFAULT_RETRY_MS,
  encodeSSEEvent,
  eventDataJson,
  formatSSEFrame,
  SSE_HEADERS,
  SSEBody,
  type SSEBodyOptions,
  type SSEFields,
  utf8Length,
} from "./src/sse/sse.ts";
export {
  handleSSERequest,
  handleWorkflowRequest,
  type SSEHandlerConfig,
} from "./src/sse/handlers.ts";
export { negotiateResponse, type ResponseKind } from "./src/sse/negotiate.ts";
export {
  type Problem,
  PROBLEM_TYPE_BASE,
  PROBLEM_TYPES,
  type ProblemOptions,
  problemResponse,
  type ProblemType,
  type ProblemTypeSlug,
  problemTypeUri,
} from "./src/sse/problem.ts";
export { parseSSEStream, readSSEEvents, type ReceivedSSEEvent } from "./src/sse/client.ts";
export { createApp, type DagstreamApp, VERSION } from "./src/server/app.ts";
export {
  logToStderr,
  type ResolvedServerConfig,
  SERVER_DEFAULTS,
  type ServerConfig,
} from "./src/server/config.ts";
export {
  type Run,
  type RunRefusal,
  RunRegistry,
  type RunSettings,
  type RunStatus,
} from "./src/server/runs.ts";
export { LogBudget, type LogChunk, type LogRead, RunLog } from "./src/sse/run-log.ts";
export {
  combineToolRegistries,
  createToolRegistry,
  type ManagedToolRegistry,
  type ToolDefinition,
  type ToolInfo,
  type ToolRegistry,
  type ToolServerHealth,
} from "./src/tools/registry.ts";
export { builtinTools, DEFAULT_DELAY_MS, sleep } from "./src/tools/builtin.ts";
export {
  compileInputSchema,
  describeArgumentIssues,
  type InputSchemaCheck,
  MAX_ARGUMENT_ISSUES,
} from "./src/tools/schema.ts";
