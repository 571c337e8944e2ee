/**
 * OpenTelemetry spans of the server's runs: one `dagstream.run` span per
 * run and, under it, one `dagstream.task` span per attempt of a task's
 * tool call, made with `npm:@opentelemetry/api` and exported by Deno's
 * built-in OpenTelemetry (`OTEL_DENO=true deno task serve`, configured by
 * the standard `OTEL_*` variables).
 *
 * A run's span starts in the context of the request that started it, so an
 * incoming W3C `traceparent` (on `POST /execute` or `POST /runs`) is its
 * ancestor, with Deno's own server span in between. A tool is called with
 * its attempt's span active: Deno's `fetch` (the `http:request` tool) sends
 * that span's `traceparent` by itself, and the tool context carries it for
 * tools that send it on themselves (MCP calls, in `_meta`).
 *
 * With OpenTelemetry off the API's tracer is a no-op: a run costs one
 * non-recording span, and its tools are called as they are.
 *
 * @module
 */

import {
  type Context,
  context,
  type Span,
  SpanStatusCode,
  trace,
} from "npm:@opentelemetry/api@1.9.0";
import type { DAGExecutionResult, ToolExecutor } from "../dag/types.ts";
import { describeError } from "../dag/errors.ts";
import denoJson from "../../deno.json" with { type: "json" };

const tracer = trace.getTracer("dagstream", denoJson.version);

/** The spans of one run, while tracing is on. */
export interface RunTracing {
  /** `tools`, each call wrapped in a `dagstream.task` span under the run's span. */
  wrap(tools: ToolExecutor): ToolExecutor;
  /** Ends the run's span with how the run ended. */
  end(status: string, result: DAGExecutionResult | undefined, failure?: string): void;
}

/**
 * Starts run `runId`'s span in the current context, or returns undefined
 * when tracing is off.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { traceRun } from "./tracing.ts";
 * // Without OTEL_DENO=true nothing records: the run is not traced.
 * assert.equal(traceRun("r1", 3), undefined);
 * ```
 */
export function traceRun(runId: string, taskCount: number): RunTracing | undefined {
  const span = tracer.startSpan("dagstream.run", {
    attributes: { "dagstream.run.id": runId, "dagstream.run.tasks": taskCount },
  });
  if (!span.isRecording()) return undefined;
  const runContext = trace.setSpan(context.active(), span);
  return {
    wrap: (tools) => tracedTools(tools, runContext),
    end(status, result, failure) {
      span.setAttribute("dagstream.run.status", status);
      if (result !== undefined) {
        span.setAttributes({
          "dagstream.run.tasks.succeeded": result.successfulTasks,
          "dagstream.run.tasks.failed": result.failedTasks,
        });
      }
      if (status === "failed") {
        span.setStatus({ code: SpanStatusCode.ERROR, message: failure ?? "a task failed" });
      }
      span.end();
    },
  };
}

/** `tools` with each call in its own span, a child of `runContext`'s span. */
function tracedTools(tools: ToolExecutor, runContext: Context): ToolExecutor {
  return (tool, args, ctx) => {
    const span = tracer.startSpan("dagstream.task", {
      attributes: {
        "dagstream.task.id": ctx.taskId,
        "dagstream.tool": tool,
        "dagstream.task.attempt": ctx.attempt ?? 1,
      },
    }, runContext);
    const taskContext = trace.setSpan(runContext, span);
    let ended = false;
    const end = (error?: unknown) => {
      if (ended) return;
      ended = true;
      ctx.signal.removeEventListener("abort", onAbort);
      span.setAttribute("dagstream.task.status", error === undefined ? "success" : "error");
      if (error !== undefined) {
        const message = describeError(error);
        span.setAttribute("dagstream.task.error", message);
        span.setStatus({ code: SpanStatusCode.ERROR, message });
      }
      span.end();
    };
    // A timeout or a cancellation ends the attempt when the signal aborts, whatever the tool does.
    const onAbort = () => end(ctx.signal.reason);
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    const traced = { ...ctx, traceparent: traceparentOf(span) };
    let call: Promise<unknown>;
    try {
      call = context.with(taskContext, () => tools(tool, args, traced));
    } catch (error) {
      end(error);
      throw error;
    }
    return Promise.resolve(call).then((output) => {
      end();
      return output;
    }, (error) => {
      end(error);
      throw error;
    });
  };
}

/** The W3C `traceparent` header of `span`. */
function traceparentOf(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}
