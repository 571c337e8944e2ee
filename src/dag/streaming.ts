/**
 * The StreamingExecutor: runs a DAG like {@linkcode ParallelExecutor} and
 * reports every task's start and end as {@linkcode SSEEvent}s the moment
 * they happen. Its events go into one sink
 * ({@linkcode StreamingExecutor.executeWithEventSink}): the bundled server
 * and `handleSSERequest` append them to the run's event log there;
 * {@linkcode StreamingExecutor.executeWithStreaming} adapts that sink to a
 * `WritableStream` through a {@linkcode BufferedEventStream}.
 *
 * @module
 */

import { ParallelExecutor, prepareFor, runPrepared } from "./executor.ts";
import type {
  DAGExecutionResult,
  DAGStructure,
  ExecuteOptions,
  TaskResult,
  ToolProgress,
} from "./types.ts";
import type { PreparedDAG } from "./validate.ts";
import { BufferedEventStream, type BufferedStreamConfig } from "./buffered-stream.ts";
import { errorEvent, type SSEEvent, type TaskProgressEvent } from "./events.ts";
import { describeError } from "./errors.ts";
import { isoNow } from "./iso-now.ts";

/**
 * Runs a DAG and streams its events: one `task_start` when a task really
 * starts (after it gets its concurrency slot), one `task_complete` when it
 * ends (also for skipped and cancelled tasks), `task_progress` in between
 * when a tool reports progress through `ctx.progress`, and exactly one
 * `execution_complete`, last. Scheduling and results are those of
 * {@linkcode ParallelExecutor.execute}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StreamingExecutor } from "./streaming.ts";
 * import type { SSEEvent } from "./events.ts";
 *
 * const executor = new StreamingExecutor(async (_tool, args) => args);
 * const events: SSEEvent[] = [];
 * const sink = new WritableStream<SSEEvent>({ write: (e) => void events.push(e) });
 * await executor.executeWithStreaming({ tasks: [{ id: "a", tool: "echo" }] }, sink);
 * assert.deepEqual(events.map((e) => e.type), ["task_start", "task_complete", "execution_complete"]);
 * ```
 */
export class StreamingExecutor extends ParallelExecutor {
  /**
   * Runs `dag`, writing its events to `eventStream` (the reference design's
   * API): {@linkcode StreamingExecutor.executeWithEventSink} with a bounded
   * {@linkcode BufferedEventStream} as its sink, configured by
   * `bufferConfig` (`maxBufferSize`, `onFlush`, `onBackpressure`); the
   * stream's writer is closed at the end in every case. On a critical
   * failure (invalid DAG, cycle, a downstream that fails) an `error` event
   * is written if the stream still takes it, and the returned promise
   * rejects.
   *
   * @throws {DAGValidationError} for invalid input, after its `error` event
   */
  async executeWithStreaming(
    dag: DAGStructure,
    eventStream: WritableStream<SSEEvent>,
    bufferConfig?: BufferedStreamConfig,
    options: ExecuteOptions = {},
  ): Promise<DAGExecutionResult> {
    const writer = eventStream.getWriter();
    let buffer: BufferedEventStream;
    try {
      buffer = new BufferedEventStream(writer, bufferConfig);
    } catch (error) {
      await writer.abort(error).catch(() => {});
      throw error;
    }
    // The run stops when options.signal aborts, and also at once when the
    // downstream errors (its writer's `closed` rejects), rather than when
    // the next event is written: tools that are running would otherwise go
    // on until they end or time out. (One controller and a listener cost
    // less than `AbortSignal.any`, which matters for small, frequent runs.)
    const stop = new AbortController();
    const outer = options.signal;
    const onOuterAbort = () => stop.abort(outer!.reason);
    if (outer?.aborted) stop.abort(outer.reason);
    else outer?.addEventListener("abort", onOuterAbort, { once: true });
    writer.closed.catch((error) => stop.abort(error));
    let result: DAGExecutionResult;
    try {
      // While the buffer has room the run goes on without a promise per event.
      result = await this.executeWithEventSink(
        dag,
        (event) => buffer.tryWrite(event) ? undefined : buffer.write(event),
        { signal: stop.signal },
      );
    } catch (error) {
      await buffer.close().catch(() => buffer.abort(error));
      throw error;
    } finally {
      outer?.removeEventListener("abort", onOuterAbort);
    }
    await buffer.close();
    return result;
  }

  /**
   * Runs `dag` and hands each of its events, in order, to `sink`: the same
   * events as {@linkcode StreamingExecutor.executeWithStreaming}, with no
   * stream or buffer in between. While a promise returned by `sink` is
   * pending the run holds back (no task starts or completes past that
   * event), so `sink` sets the backpressure; returning nothing lets the run
   * go on at once. On a critical failure (invalid DAG, a `sink` that throws
   * or rejects) an `error` event is offered to `sink` and the returned
   * promise rejects.
   *
   * @throws {DAGValidationError} for invalid input, after its `error` event
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { StreamingExecutor } from "./streaming.ts";
   *
   * const executor = new StreamingExecutor(async (_tool, args) => args);
   * const types: string[] = [];
   * await executor.executeWithEventSink(
   *   { tasks: [{ id: "a", tool: "echo" }] },
   *   (event) => void types.push(event.type),
   * );
   * assert.deepEqual(types, ["task_start", "task_complete", "execution_complete"]);
   * ```
   */
  async executeWithEventSink(
    dag: DAGStructure,
    sink: (event: SSEEvent) => Promise<void> | void,
    options: ExecuteOptions = {},
  ): Promise<DAGExecutionResult> {
    let prepared: PreparedDAG;
    try {
      prepared = prepareFor(this, dag);
    } catch (error) {
      await offer(sink, errorEvent(describeError(error), { code: "invalid_dag" }));
      throw error;
    }
    // Progress is informational: while the consumer has not taken the last
    // progress event, further reports are dropped rather than queued, so a
    // chatty tool can never hold memory or the run back.
    let progressPending = false;
    const progressTaken = () => {
      progressPending = false;
    };
    try {
      const result = await runPrepared(this, prepared, options.signal, {
        onTaskStart: (i) => sink(taskStartEvent(prepared, i)),
        onTaskComplete: (i, r) => sink(taskCompleteEvent(prepared, i, r)),
        onTaskRetry: (i, retry) => {
          const task = prepared.tasks[i];
          return sink({
            type: "task_retry",
            data: { taskId: task.id, tool: task.tool, ...retry, timestamp: isoNow() },
          });
        },
        onTaskProgress: (i, update) => {
          if (progressPending) return;
          try {
            const pending = sink(taskProgressEvent(prepared, i, update));
            if (pending) {
              progressPending = true;
              pending.then(progressTaken, progressTaken);
            }
          } catch {
            // A failing sink fails the run at its next start or complete event.
          }
        },
      });
      await sink({
        type: "execution_complete",
        data: {
          totalTasks: result.totalTasks,
          successCount: result.successfulTasks,
          errorCount: result.failedTasks,
          totalExecutionTimeMs: result.executionTimeMs,
          speedup: this.calculateSpeedup(result),
          timestamp: isoNow(),
        },
      });
      return result;
    } catch (error) {
      await offer(sink, errorEvent(describeError(error), { code: "stream_failed" }));
      throw error;
    }
  }
}

/** Hands a last event to `sink`, ignoring a sink that no longer takes it. */
async function offer(sink: (event: SSEEvent) => Promise<void> | void, event: SSEEvent) {
  try {
    await sink(event);
  } catch {
    // The sink failed: the caller reports the original error.
  }
}

function taskStartEvent(dag: PreparedDAG, i: number): SSEEvent {
  const task = dag.tasks[i];
  return {
    type: "task_start",
    data: { taskId: task.id, tool: task.tool, timestamp: isoNow() },
  };
}

/** Longest progress `message` carried by a `task_progress` event, in UTF-16 units. */
const MAX_PROGRESS_MESSAGE = 1024;

function taskProgressEvent(dag: PreparedDAG, i: number, update: ToolProgress): SSEEvent {
  const task = dag.tasks[i];
  const data: TaskProgressEvent["data"] = {
    taskId: task.id,
    tool: task.tool,
    progress: update.progress,
    timestamp: isoNow(),
  };
  if (update.total !== undefined) data.total = update.total;
  if (update.message !== undefined) {
    data.message = update.message.length > MAX_PROGRESS_MESSAGE
      ? `${update.message.slice(0, MAX_PROGRESS_MESSAGE)}…`
      : update.message;
  }
  return { type: "task_progress", data };
}

function taskCompleteEvent(dag: PreparedDAG, i: number, result: TaskResult): SSEEvent {
  const task = dag.tasks[i];
  const data: Extract<SSEEvent, { type: "task_complete" }>["data"] = {
    taskId: task.id,
    tool: task.tool,
    status: result.status,
    executionTimeMs: result.executionTimeMs ?? 0,
    timestamp: isoNow(),
  };
  if (result.status === "success") data.output = result.output;
  else data.error = result.error;
  if (result.attempts !== undefined) data.attempts = result.attempts;
  return { type: "task_complete", data };
}
