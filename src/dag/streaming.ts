/**
 * The StreamingExecutor: runs a DAG like {@linkcode ParallelExecutor} and
 * reports every task's start and end as {@linkcode SSEEvent}s the moment
 * they happen.
 *
 * @module
 */

import { ParallelExecutor } from "./executor.ts";
import type { DAGExecutionResult, DAGStructure, ExecuteOptions, TaskResult } from "./types.ts";
import { prepareDAG, type PreparedDAG } from "./validate.ts";
import { BufferedEventStream, type BufferedStreamConfig } from "./buffered-stream.ts";
import { errorEvent, type SSEEvent } from "./events.ts";
import { describeError } from "./errors.ts";

/**
 * Runs a DAG and streams its events: one `task_start` when a task really
 * starts (after it gets its concurrency slot), one `task_complete` when it
 * ends (also for skipped and cancelled tasks), and exactly one
 * `execution_complete`, last. Scheduling and results are those of
 * {@linkcode ParallelExecutor.execute}.
 *
 * @example
 * ```ts
 * import { StreamingExecutor } from "./streaming.ts";
 * import type { SSEEvent } from "./events.ts";
 *
 * const executor = new StreamingExecutor(async (_tool, args) => args);
 * const events: SSEEvent[] = [];
 * const sink = new WritableStream<SSEEvent>({ write: (e) => void events.push(e) });
 * await executor.executeWithStreaming({ tasks: [{ id: "a", tool: "echo" }] }, sink);
 * console.log(events.map((e) => e.type)); // task_start, task_complete, execution_complete
 * ```
 */
export class StreamingExecutor extends ParallelExecutor {
  /**
   * Runs `dag`, writing its events to `eventStream` through a bounded
   * {@linkcode BufferedEventStream}; the stream's writer is closed at the end
   * in every case. On a critical failure (invalid DAG, cycle, a downstream
   * that fails) an `error` event is written if the stream still takes it,
   * and the returned promise rejects.
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
    let prepared: PreparedDAG;
    try {
      prepared = prepareDAG(dag, { maxTasks: this.config.maxTasks });
    } catch (error) {
      await buffer.write(errorEvent(describeError(error), { code: "invalid_dag" }));
      await buffer.close();
      throw error;
    }
    try {
      const result = await this.runPrepared(prepared, options.signal, {
        onTaskStart: (i) => buffer.write(taskStartEvent(prepared, i)),
        onTaskComplete: (i, r) => buffer.write(taskCompleteEvent(prepared, i, r)),
      });
      await buffer.write({
        type: "execution_complete",
        data: {
          totalTasks: result.totalTasks,
          successCount: result.successfulTasks,
          errorCount: result.failedTasks,
          totalExecutionTimeMs: result.executionTimeMs,
          speedup: this.calculateSpeedup(result),
          timestamp: new Date().toISOString(),
        },
      });
      await buffer.close();
      return result;
    } catch (error) {
      await buffer.write(errorEvent(describeError(error), { code: "stream_failed" }))
        .then(() => buffer.close())
        .catch(() => buffer.abort(error));
      throw error;
    }
  }
}

function taskStartEvent(dag: PreparedDAG, i: number): SSEEvent {
  const task = dag.tasks[i];
  return {
    type: "task_start",
    data: { taskId: task.id, tool: task.tool, timestamp: new Date().toISOString() },
  };
}

function taskCompleteEvent(dag: PreparedDAG, i: number, result: TaskResult): SSEEvent {
  const task = dag.tasks[i];
  const data: Extract<SSEEvent, { type: "task_complete" }>["data"] = {
    taskId: task.id,
    tool: task.tool,
    status: result.status,
    executionTimeMs: result.executionTimeMs ?? 0,
    timestamp: new Date().toISOString(),
  };
  if (result.status === "success") data.output = result.output;
  else data.error = result.error;
  return { type: "task_complete", data };
}
