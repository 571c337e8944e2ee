/**
 * The server's metrics, for `GET /metrics` (Prometheus text format 0.0.4):
 * runs, tasks, retries, events, event streams and HTTP requests of this
 * process, and the process' own memory and CPU. See
 * [OPERATIONS.md](../../docs/OPERATIONS.md#metrics) for the list.
 *
 * Every label has a bounded set of values, whatever clients send: `status`
 * is one of a few words or an HTTP status code, `route` is a route's
 * template (`/runs/{id}`, never a run id) or `unmatched`, and `tool` is the
 * name of a tool the server has, for at most {@linkcode MAX_TOOL_LABELS}
 * tools (`other` beyond, and for a name it does not have).
 *
 * Counting costs a few field increments per event and per request, without
 * allocating; the text is built only when scraped. Gauges (active runs,
 * open streams, memory) are read at scrape time.
 *
 * @module
 */

import process from "node:process";
import type { SSEEvent } from "../dag/events.ts";
import {
  type Counter,
  type Family,
  type Histogram,
  MetricRegistry,
  PROMETHEUS_CONTENT_TYPE,
} from "./metrics-registry.ts";
import type { RouteMatch } from "./router.ts";

/**
 * Bucket upper bounds of `dagstream_task_duration_seconds`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TASK_DURATION_BUCKETS } from "./metrics.ts";
 * assert.equal(TASK_DURATION_BUCKETS.at(-1), 300);
 * ```
 */
export const TASK_DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
];

/**
 * Bucket upper bounds of `dagstream_http_request_duration_seconds`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REQUEST_DURATION_BUCKETS } from "./metrics.ts";
 * assert.equal(REQUEST_DURATION_BUCKETS[0], 0.001);
 * ```
 */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/**
 * Most tools labelled by name in `dagstream_task_duration_seconds`; tasks
 * of further tools count as `tool="other"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_TOOL_LABELS } from "./metrics.ts";
 * assert.equal(MAX_TOOL_LABELS, 200);
 * ```
 */
export const MAX_TOOL_LABELS = 200;

/**
 * What {@linkcode ServerMetrics} reads.
 *
 * @example
 * ```ts
 * import type { ServerMetricsOptions } from "./metrics.ts";
 * const options: ServerMetricsOptions = {
 *   tools: { has: (name) => name === "mock:echo" },
 *   activeRuns: () => 0,
 *   watchers: () => 0,
 * };
 * ```
 */
export interface ServerMetricsOptions {
  /** The server's tools: only their names become `tool` label values. */
  tools: { has(name: string): boolean };
  /** Runs executing in this process now. */
  activeRuns: () => number;
  /** Event streams open now. */
  watchers: () => number;
  /** Most tools labelled by name (default {@linkcode MAX_TOOL_LABELS}). */
  maxToolLabels?: number;
}

/** How a run ended, as `dagstream_runs_total` labels it. */
type EndStatus = "succeeded" | "failed" | "cancelled";

/**
 * The metrics of one server process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerMetrics } from "./metrics.ts";
 * const metrics = new ServerMetrics({
 *   tools: { has: (name) => name === "mock:echo" },
 *   activeRuns: () => 1,
 *   watchers: () => 0,
 * });
 * const timestamp = new Date().toISOString();
 * metrics.countEvent({
 *   type: "task_complete",
 *   data: {
 *     taskId: "a",
 *     tool: "mock:echo",
 *     status: "success",
 *     executionTimeMs: 20,
 *     attempts: 1,
 *     timestamp,
 *   },
 * });
 * metrics.runEnded("succeeded");
 * metrics.countRequest("/runs/{id}", 200, 0.002);
 * const text = metrics.render();
 * assert.match(text, /^dagstream_runs_total\{status="succeeded"\} 1$/m);
 * assert.match(text, /^dagstream_tasks_total\{status="success"\} 1$/m);
 * assert.match(text, /^dagstream_task_duration_seconds_count\{tool="mock:echo"\} 1$/m);
 * assert.match(text, /^dagstream_events_total 1$/m);
 * assert.match(text, /^dagstream_runs_active 1$/m);
 * assert.match(text, /^dagstream_http_requests_total\{route="\/runs\/\{id\}",status="200"\} 1$/m);
 * ```
 */
export class ServerMetrics {
  readonly #registry = new MetricRegistry();
  readonly #tools: ServerMetricsOptions["tools"];
  readonly #maxToolLabels: number;
  readonly #runs: Record<EndStatus, Counter>;
  readonly #tasksSuccess: Counter;
  readonly #tasksError: Counter;
  readonly #tasksSkipped: Counter;
  readonly #taskDuration: Family<Histogram>;
  /** The duration series of each tool seen (`other`'s for a tool beyond the cap). */
  readonly #toolDurations = new Map<string, Histogram>();
  /** The duration series of `tool="other"`, once needed. */
  #otherToolDuration: Histogram | undefined;
  #toolLabels = 0;
  readonly #retries: Counter;
  readonly #events: Counter;
  readonly #requests: Family<Counter>;
  /** Request counters by route, then status. */
  readonly #requestCounters = new Map<string, Map<number, Counter>>();
  readonly #requestDuration: Family<Histogram>;
  readonly #requestDurations = new Map<string, Histogram>();

  /** Creates the metrics, every count at zero. */
  constructor(options: ServerMetricsOptions) {
    this.#tools = options.tools;
    this.#maxToolLabels = options.maxToolLabels ?? MAX_TOOL_LABELS;
    const registry = this.#registry;
    const runs = registry.counter({
      name: "dagstream_runs_total",
      help: "Runs of this process that ended, by how they ended.",
      labelNames: ["status"],
    });
    this.#runs = {
      succeeded: runs.series("succeeded"),
      failed: runs.series("failed"),
      cancelled: runs.series("cancelled"),
    };
    registry.read({
      name: "dagstream_runs_active",
      help: "Runs executing in this process now.",
      type: "gauge",
      read: options.activeRuns,
    });
    const tasks = registry.counter({
      name: "dagstream_tasks_total",
      help: "Tasks that ended, by outcome (skipped: a dependency failed, the task never ran).",
      labelNames: ["status"],
    });
    this.#tasksSuccess = tasks.series("success");
    this.#tasksError = tasks.series("error");
    this.#tasksSkipped = tasks.series("skipped");
    this.#taskDuration = registry.histogram({
      name: "dagstream_task_duration_seconds",
      help: "How long tasks took (retries and their waits included), skipped tasks excluded, " +
        "by tool.",
      labelNames: ["tool"],
      buckets: TASK_DURATION_BUCKETS,
    });
    this.#retries = registry.counter({
      name: "dagstream_task_retries_total",
      help: "Retries of tasks' tool calls.",
    }).series();
    registry.read({
      name: "dagstream_sse_watchers",
      help: "Event streams open now.",
      type: "gauge",
      read: options.watchers,
    });
    this.#events = registry.counter({
      name: "dagstream_events_total",
      help: "Events the runs of this process logged, all types.",
    }).series();
    this.#requests = registry.counter({
      name: "dagstream_http_requests_total",
      help: "HTTP requests answered, by route template and status code.",
      labelNames: ["route", "status"],
    });
    this.#requestDuration = registry.histogram({
      name: "dagstream_http_request_duration_seconds",
      help: "Time until a request's answer was ready (for an event stream: until it opened), " +
        "by route template.",
      labelNames: ["route"],
      buckets: REQUEST_DURATION_BUCKETS,
    });
    addProcessMetrics(registry);
  }

  /**
   * Counts one event a run of this process logged: all count in
   * `dagstream_events_total`; `task_complete` counts the task by outcome
   * and, if it ran, its duration; `task_retry` counts a retry.
   */
  countEvent(event: SSEEvent): void {
    this.#events.inc();
    if (event.type === "task_complete") {
      const { status, error, tool, executionTimeMs } = event.data;
      if (status === "success") {
        this.#tasksSuccess.inc();
      } else if (isSkipped(error)) {
        this.#tasksSkipped.inc();
        return;
      } else {
        this.#tasksError.inc();
      }
      // A task whose tool was never called (cancelled before it started, or
      // its arguments could not be resolved) has no duration.
      if (!event.data.attempts) return;
      this.#durationOf(tool).observe(executionTimeMs / 1000);
      return;
    }
    // By name: counted the same whether or not the event union knows the type.
    const type: string = event.type;
    if (type === "task_retry") this.#retries.inc();
  }

  /** Counts a run of this process that ended (`queued` and `running` are ignored). */
  runEnded(status: string): void {
    if (status === "succeeded" || status === "failed" || status === "cancelled") {
      this.#runs[status].inc();
    }
  }

  /**
   * Counts one answered request: `route` is its route's template (see
   * {@linkcode routeLabel}), `seconds` the time until its answer was ready.
   */
  countRequest(route: string, status: number, seconds: number): void {
    let byStatus = this.#requestCounters.get(route);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.#requestCounters.set(route, byStatus);
    }
    let counter = byStatus.get(status);
    if (counter === undefined) {
      counter = this.#requests.series(route, String(status));
      byStatus.set(status, counter);
    }
    counter.inc();
    let duration = this.#requestDurations.get(route);
    if (duration === undefined) {
      duration = this.#requestDuration.series(route);
      this.#requestDurations.set(route, duration);
    }
    duration.observe(seconds);
  }

  /** The text of every metric, for a scrape. */
  render(): string {
    return this.#registry.render();
  }

  /** The duration series of `tool`: its own for a tool of the server, within the cap. */
  #durationOf(tool: string): Histogram {
    const known = this.#toolDurations.get(tool);
    if (known !== undefined) return known;
    // A name the server does not have (a tool that is gone) is not remembered.
    if (!this.#tools.has(tool)) return this.#otherDuration();
    let series: Histogram;
    if (this.#toolLabels < this.#maxToolLabels && tool !== "other") {
      series = this.#taskDuration.series(tool);
      this.#toolLabels++;
    } else {
      series = this.#otherDuration();
    }
    this.#toolDurations.set(tool, series);
    return series;
  }

  /** The duration series of `tool="other"`, created when first needed. */
  #otherDuration(): Histogram {
    return this.#otherToolDuration ??= this.#taskDuration.series("other");
  }
}

/**
 * Whether a task's error says it was skipped: it never ran because a
 * dependency failed (the executor's `Dependency <id> failed`).
 */
function isSkipped(error: string | undefined): boolean {
  return error !== undefined && error.startsWith("Dependency ") && error.endsWith(" failed");
}

/**
 * The process' own metrics, from what Deno tells without permissions:
 * `Deno.memoryUsage()` and `process.cpuUsage()` (no `/proc`, so no open
 * file descriptors nor virtual memory).
 */
function addProcessMetrics(registry: MetricRegistry): void {
  registry.read({
    name: "process_cpu_seconds_total",
    help: "User and system CPU time the process spent, in seconds.",
    type: "counter",
    read: () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    },
  });
  registry.read({
    name: "process_resident_memory_bytes",
    help: "Resident memory size, in bytes.",
    type: "gauge",
    read: () => Deno.memoryUsage().rss,
  });
  const startTime = Math.round(performance.timeOrigin) / 1000;
  registry.read({
    name: "process_start_time_seconds",
    help: "When the process started, in seconds since the Unix epoch.",
    type: "gauge",
    read: () => startTime,
  });
  registry.read({
    name: "deno_heap_used_bytes",
    help: "V8 heap in use, in bytes.",
    type: "gauge",
    read: () => Deno.memoryUsage().heapUsed,
  });
  registry.read({
    name: "deno_heap_total_bytes",
    help: "V8 heap reserved, in bytes.",
    type: "gauge",
    read: () => Deno.memoryUsage().heapTotal,
  });
  registry.read({
    name: "deno_external_memory_bytes",
    help: "Memory of JavaScript objects kept outside the V8 heap (buffers), in bytes.",
    type: "gauge",
    read: () => Deno.memoryUsage().external,
  });
}

/**
 * The `route` label of a request: the template of the route it took (as
 * `findRoute` found it for the router), `unmatched` when it took
 * none, or when its URL could not be read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { routeLabel } from "./metrics.ts";
 * import { findRoute, type Route } from "./router.ts";
 * const routes: Route[] = [{ pattern: /^\/runs\/([^/]+)$/, template: "/runs/{id}", methods: {} }];
 * assert.equal(routeLabel(findRoute(routes, "/runs/3f1c")), "/runs/{id}");
 * assert.equal(routeLabel(findRoute(routes, "/nope")), "unmatched");
 * assert.equal(routeLabel(undefined), "unmatched");
 * ```
 */
export function routeLabel(matched: RouteMatch | undefined): string {
  return matched === undefined ? "unmatched" : matched.route.template ?? "other";
}

/**
 * The answer to `GET /metrics`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { metricsResponse, ServerMetrics } from "./metrics.ts";
 * const metrics = new ServerMetrics({ tools: { has: () => false }, activeRuns: () => 0, watchers: () => 0 });
 * const response = metricsResponse(metrics);
 * assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
 * assert.match(await response.text(), /^# HELP dagstream_runs_total /);
 * ```
 */
export function metricsResponse(metrics: ServerMetrics): Response {
  return new Response(metrics.render(), {
    headers: { "Content-Type": PROMETHEUS_CONTENT_TYPE, "Cache-Control": "no-store" },
  });
}
