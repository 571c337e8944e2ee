/**
 * HTTP handlers of the reference design: `handleSSERequest` streams a run as
 * Server-Sent Events; `handleWorkflowRequest` negotiates between that and a
 * batch JSON answer (the graceful degradation for clients without SSE).
 *
 * A streamed run takes the same path as the bundled server's: the executor
 * appends each event to the run's {@linkcode RunLog}, and a
 * {@linkcode LogReader} turns the log into the response body. The reader is
 * the log's only one, so frames give way once the client has taken them,
 * and it holds the run back while `maxBufferSize` events wait for the client.
 *
 * @module
 */

import type { DAGStructure, SchedulingMode, ToolExecutor } from "../dag/types.ts";
import { ParallelExecutor } from "../dag/executor.ts";
import { StreamingExecutor } from "../dag/streaming.ts";
import { type PreparedDAG, validateDAG } from "../dag/validate.ts";
import { DEFAULT_MAX_BUFFER_SIZE } from "../dag/buffered-stream.ts";
import {
  DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  DEFAULT_RETRY_MS,
  FRAME_OVERHEAD_BYTES,
  SSE_HEADERS,
} from "./frame.ts";
import { type LoggedRun, LogReader } from "./log-stream.ts";
import { RunLog } from "./run-log.ts";
import { negotiateResponse } from "./negotiate.ts";
import { invalidDag, notAcceptable } from "./problem.ts";

/**
 * Settings of the SSE and workflow handlers (reference fields first, extras after).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { handleSSERequest, type SSEHandlerConfig } from "./handlers.ts";
 * const config: SSEHandlerConfig = { maxBufferSize: 100, heartbeatMs: 0, retryMs: 500 };
 * const response = await handleSSERequest(
 *   new Request("http://localhost/"),
 *   { tasks: [{ id: "a", tool: "echo" }] },
 *   async (_tool, args) => args,
 *   config,
 * );
 * assert.ok((await response.text()).startsWith("retry: 500\n\n"));
 * ```
 */
export interface SSEHandlerConfig {
  /**
   * Bound of the events between executor and client: the run holds back
   * while this many events wait for the client to read them (or more than
   * 1 MiB of them), until it has read them all. Default 1000.
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

/** Bytes of events not yet read by the client beyond which the run holds back too. */
const HOLD_BYTES = 1 << 20;

/**
 * Streams the run of `dag` as Server-Sent Events. The DAG is validated
 * first: an invalid one gets a 422 problem answer, never a stream. A client
 * that goes away (the body is cancelled) aborts the run.
 *
 * @throws {RangeError} (as a rejection) when `maxBufferSize` is not a whole number >= 1
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { handleSSERequest } from "./handlers.ts";
 * import { parseSSEStream } from "./client.ts";
 *
 * const tools = async (_tool: string, args: Record<string, unknown>) => args;
 * const dag = { tasks: [{ id: "a", tool: "echo" }, { id: "b", tool: "echo", dependsOn: ["a"] }] };
 * const response = await handleSSERequest(new Request("http://localhost/"), dag, tools);
 * assert.equal(response.headers.get("content-type"), "text/event-stream");
 * const events = await parseSSEStream(response.body!);
 * assert.deepEqual(events.map((e) => `${e.id} ${e.type}`), [
 *   "1 task_start",
 *   "2 task_complete",
 *   "3 task_start",
 *   "4 task_complete",
 *   "5 execution_complete",
 * ]);
 *
 * const cycle = { tasks: [{ id: "x", tool: "echo", dependsOn: ["x"] }] };
 * const invalid = await handleSSERequest(new Request("http://localhost/"), cycle, tools);
 * assert.equal(invalid.status, 422);
 * await invalid.body?.cancel();
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
 * import assert from "node:assert/strict";
 * import { handleWorkflowRequest } from "./handlers.ts";
 * const tools = async (_tool: string, args: Record<string, unknown>) => args;
 * const dag = { tasks: [{ id: "a", tool: "echo", arguments: { n: 1 } }] };
 * const request = new Request("http://localhost/execute", { method: "POST" });
 * const response = await handleWorkflowRequest(request, dag, tools);
 * assert.equal(response.headers.get("content-type"), "application/json");
 * assert.deepEqual((await response.json()).results[0].output, { n: 1 });
 *
 * const sse = new Request("http://localhost/execute", { headers: { accept: "text/event-stream" } });
 * const stream = await handleWorkflowRequest(sse, dag, tools);
 * assert.equal(stream.headers.get("content-type"), "text/event-stream");
 * await stream.body?.cancel();
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
  const maxPayload = config.maxEventPayloadBytes ?? DEFAULT_MAX_EVENT_PAYLOAD_BYTES;
  const log = new RunLog(soleReaderLogBytes(prepared.tasks.length, maxPayload), maxPayload);
  const cancel = new AbortController();
  const run: LoggedRun = { log, cancel: (reason) => cancel.abort(new Error(reason)) };
  // The body's cancellation tells the reader the client left; request.signal
  // is not used here, as Deno fires it on successful responses too (legacy abort).
  const reader = new LogReader(run, {
    retryMs: config.retryMs ?? DEFAULT_RETRY_MS,
    heartbeatMs: config.heartbeatMs,
    cancelRunOnLeave: true,
    soleReader: true,
    holdRun: { events: maxHeld, bytes: HOLD_BYTES },
  });
  const signal = combineSignals(config.signal, cancel.signal);
  const end = () => log.end();
  // On failure the executor has offered its error event to the sink: it is in the log.
  executor.executeWithEventSink(prepared, (event) => {
    log.append(event);
    return reader.holdBack();
  }, { signal }).then(end, end);
  return new Response(reader.body.readable, { headers: SSE_HEADERS });
}

/**
 * The byte bound of a log whose only reader holds the run back: the frames
 * the client has not taken are at most {@linkcode HOLD_BYTES}, plus one
 * event from each task and the run's last ones, appended while the run was
 * holding back. So the client never misses an event; and as taken frames
 * give way at once, the log holds only those not taken.
 */
function soleReaderLogBytes(taskCount: number, maxPayloadBytes: number): number {
  return HOLD_BYTES + (2 * taskCount + 4) * (maxPayloadBytes + FRAME_OVERHEAD_BYTES);
}

/** One signal aborted by whichever of the given signals aborts first. */
function combineSignals(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}
