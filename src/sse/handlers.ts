/**
 * HTTP handlers of the reference design: `handleSSERequest` streams a run as
 * Server-Sent Events; `handleWorkflowRequest` negotiates between that and a
 * batch JSON answer (the graceful degradation for clients without SSE).
 *
 * @module
 */

import type { DAGStructure, SchedulingMode, ToolExecutor } from "../dag/types.ts";
import { ParallelExecutor } from "../dag/executor.ts";
import { StreamingExecutor } from "../dag/streaming.ts";
import { type PreparedDAG, validateDAG } from "../dag/validate.ts";
import type { SSEEvent } from "../dag/events.ts";
import { DEFAULT_MAX_BUFFER_SIZE } from "../dag/buffered-stream.ts";
import { DEFAULT_RETRY_MS, encodeSSEEvent, SSE_HEADERS, SSEBody } from "./sse.ts";
import { negotiateResponse } from "./negotiate.ts";
import { invalidDag, notAcceptable } from "./problem.ts";

/** Settings of the SSE and workflow handlers (reference fields first, extras after). */
export interface SSEHandlerConfig {
  /**
   * Bound of the event buffer between executor and client: the run holds
   * back while this many events wait for the client to read them. Default 1000.
   */
  maxBufferSize?: number;
  /** Milliseconds per task. Default 30000. */
  taskTimeout?: number;
  /** Most tasks in flight. Default unbounded. */
  maxConcurrency?: number;
  /** Log task starts and ends. */
  verbose?: boolean;
  /** `"eager"` (default) or `"layered"`. */
  scheduling?: SchedulingMode;
  /** Idle ms before a `: keep-alive` comment. Default 15000; 0 disables. */
  heartbeatMs?: number;
  /** Cap on a `task_complete` event's data in bytes. Default 65536. */
  maxEventPayloadBytes?: number;
  /** Cancels the run (in addition to the client going away). */
  signal?: AbortSignal;
  /** Most tasks a DAG may have. Default 1000. */
  maxTasks?: number;
  /** `retry:` announced at the start of the stream, in ms. Default 2000. */
  retryMs?: number;
}

/** Text queued for a slow client beyond which the event sink waits for it to read. */
const SLOW_CLIENT_BYTES = 1 << 20;

/**
 * Streams the run of `dag` as Server-Sent Events. The DAG is validated
 * first: an invalid one gets a 422 problem answer, never a stream. A client
 * that goes away (the body is cancelled) aborts the run.
 *
 * @example
 * ```ts
 * import { handleSSERequest } from "./handlers.ts";
 * const tools = async (_tool: string, args: Record<string, unknown>) => args;
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0 }, async (request) => {
 *   const dag = await request.json();
 *   return handleSSERequest(request, dag, tools, { maxBufferSize: 100 });
 * });
 * await server.shutdown();
 * ```
 */
export function handleSSERequest(
  // Part of the reference signature; the stream needs nothing from it.
  // deno-lint-ignore no-unused-vars
  request: Request,
  dag: DAGStructure,
  toolExecutor: ToolExecutor,
  config: SSEHandlerConfig = {},
): Promise<Response> {
  const prepared = prepareOrProblem(dag, config);
  if (prepared instanceof Response) return Promise.resolve(prepared);
  try {
    return Promise.resolve(streamRun(prepared, toolExecutor, config));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Answers a workflow request: SSE when the client prefers
 * `text/event-stream` (q-values honoured), otherwise the batch JSON
 * `DAGExecutionResult` once the run is over; 406 when it accepts neither,
 * 422 for an invalid DAG.
 *
 * @example
 * ```ts
 * import { handleWorkflowRequest } from "./handlers.ts";
 * const tools = async (_tool: string, args: Record<string, unknown>) => args;
 * const request = new Request("http://localhost/execute", { method: "POST" });
 * const response = await handleWorkflowRequest(request, { tasks: [{ id: "a", tool: "echo" }] }, tools);
 * console.log(response.headers.get("content-type")); // application/json
 * ```
 */
export async function handleWorkflowRequest(
  request: Request,
  dag: DAGStructure,
  toolExecutor: ToolExecutor,
  config: SSEHandlerConfig = {},
): Promise<Response> {
  const kind = negotiateResponse(request.headers);
  if (kind === null) {
    return notAcceptable(["application/json", "text/event-stream"]);
  }
  if (kind === "sse") return handleSSERequest(request, dag, toolExecutor, config);
  const prepared = prepareOrProblem(dag, config);
  if (prepared instanceof Response) return prepared;
  const executor = new ParallelExecutor(toolExecutor, executorConfig(config));
  const signal = combineSignals(request.signal, config.signal);
  const result = await executor.execute(prepared, { signal });
  return new Response(JSON.stringify(result), {
    headers: { "Content-Type": "application/json" },
  });
}

function prepareOrProblem(dag: DAGStructure, config: SSEHandlerConfig): PreparedDAG | Response {
  const checked = validateDAG(dag, { maxTasks: config.maxTasks });
  if (checked.ok) return checked.dag;
  return invalidDag(checked.issues);
}

function executorConfig(config: SSEHandlerConfig) {
  return {
    taskTimeout: config.taskTimeout,
    maxConcurrency: config.maxConcurrency,
    scheduling: config.scheduling,
    verbose: config.verbose,
    maxTasks: config.maxTasks,
  };
}

function streamRun(
  prepared: PreparedDAG,
  toolExecutor: ToolExecutor,
  config: SSEHandlerConfig,
): Response {
  const maxHeld = config.maxBufferSize ?? DEFAULT_MAX_BUFFER_SIZE;
  if (!Number.isInteger(maxHeld) || maxHeld < 1) {
    throw new RangeError(`maxBufferSize must be a whole number >= 1, got ${maxHeld}`);
  }
  const executor = new StreamingExecutor(toolExecutor, executorConfig(config));
  const cancel = new AbortController();
  // The body's cancellation tells us the client left; request.signal is not
  // used here, as Deno fires it on successful responses too (legacy abort).
  const signal = combineSignals(config.signal, cancel.signal);
  const body = new SSEBody({
    retryMs: config.retryMs ?? DEFAULT_RETRY_MS,
    heartbeatMs: config.heartbeatMs,
    onCancel: () => cancel.abort(new Error("client disconnected")),
  });
  let seq = 0;
  const maxPayload = config.maxEventPayloadBytes;
  // Each event is encoded straight into the body, which hands the client
  // everything queued in one chunk per read. The body itself is the buffer
  // between executor and client: the run holds back only while the client
  // has not taken `maxBufferSize` events (or SLOW_CLIENT_BYTES of text).
  const sink = (event: SSEEvent): Promise<void> | undefined => {
    body.push(encodeSSEEvent(event, ++seq, maxPayload), 1);
    if (body.bufferedEvents >= maxHeld || body.bufferedBytes > SLOW_CLIENT_BYTES) {
      return body.drained(0);
    }
  };
  executor.executeWithEventSink(prepared, sink, { signal }).then(
    () => body.close(),
    // The error event has been pushed to the body, when it still took one.
    () => body.close(),
  );
  return new Response(body.readable, { headers: SSE_HEADERS });
}

/** One signal aborted by whichever of the given signals aborts first. */
function combineSignals(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
