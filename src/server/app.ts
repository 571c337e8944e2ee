/**
 * The bundled server's HTTP application: `createApp` wires the settings,
 * the runs, the open event streams, the request checks and the routes into
 * a fetch-style handler to serve with `Deno.serve`; `main.ts` wires it to
 * the command line.
 *
 * @module
 */

import { describeError } from "../dag/errors.ts";
import { problemResponse } from "../sse/problem.ts";
import type { ToolRegistry } from "../tools/registry.ts";
import { type ResolvedServerConfig, resolveServerConfig, type ServerConfig } from "./config.ts";
import { addCorsHeaders } from "./cors.ts";
import { EventStreams } from "./event-streams.ts";
import { roundMs } from "./log.ts";
import { routeLabel, ServerMetrics } from "./metrics.ts";
import { checkDag } from "./dag-checks.ts";
import { answerChecked, type RequestChecks } from "./request-checks.ts";
import { findRoute } from "./router.ts";
import { createRoutes } from "./routes.ts";
import type { AppRuns } from "./run-view.ts";
import { RunRegistry } from "./run-registry.ts";
import { RedisRunStore } from "./redis-store.ts";
import { memoryRunStore, sharedRunStore } from "./run-store.ts";
import { Shutdown } from "./shutdown.ts";

/**
 * A running dagstream HTTP application.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createApp, type DagstreamApp } from "./app.ts";
 * const app: DagstreamApp = createApp({ log: () => {} });
 * assert.equal(app.runs.activeCount, 0);
 * await app.shutdown();
 * ```
 */
export interface DagstreamApp {
  /** Answers one request (give it to `Deno.serve`). */
  handle(request: Request): Promise<Response>;
  /**
   * Stops taking work: open streams get an `error` event and close, active
   * runs are cancelled, then MCP servers are closed (their processes end);
   * resolves once all that is over.
   */
  shutdown(): Promise<void>;
  /** The runs of this app. */
  readonly runs: AppRuns;
  /** The tools runs may call. */
  readonly tools: ToolRegistry;
  /** The settings in force. */
  readonly config: ResolvedServerConfig;
}

/**
 * Creates the application.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createApp } from "./app.ts";
 * const app = createApp({ token: "secret", log: () => {} });
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen: () => {} },
 *   (request) => app.handle(request),
 * );
 * const base = `http://127.0.0.1:${server.addr.port}`;
 * const refused = await fetch(`${base}/tools`);
 * assert.equal(refused.status, 401);
 * await refused.body?.cancel();
 * const run = await fetch(`${base}/execute`, {
 *   method: "POST",
 *   headers: { authorization: "Bearer secret", "content-type": "application/json" },
 *   body: JSON.stringify({ tasks: [{ id: "a", tool: "mock:echo", arguments: { x: 1 } }] }),
 * });
 * assert.deepEqual((await run.json()).results[0].output, { x: 1 });
 * await app.shutdown();
 * await server.shutdown();
 * ```
 */
export function createApp(options: ServerConfig = {}): DagstreamApp {
  const config = resolveServerConfig(options);
  const { tools, log } = config;
  const redis = config.store === "memory" ? undefined : RedisRunStore.open(config.store, {
    instance: config.instanceId,
    runTtlSeconds: config.runTtlSeconds,
    maxRunLogBytes: config.maxRunLogBytes,
    maxRuns: config.maxRuns,
    maxQueuedRuns: config.maxQueuedRuns,
    maxLogBytesTotal: config.maxLogBytesTotal,
    log,
  });
  // Gauges are read at scrape time, once `runs` and `streams` exist.
  const metrics = new ServerMetrics({
    tools,
    activeRuns: () => runs.activeCount,
    watchers: () => streams.openCount,
  });
  const runs = new RunRegistry(tools.execute, {
    instance: config.instanceId,
    onEvent: (event) => metrics.countEvent(event),
    store: redis,
    executor: {
      maxConcurrency: config.maxConcurrency,
      taskTimeout: config.taskTimeout,
      scheduling: config.scheduling,
      maxTasks: config.maxTasks,
    },
    maxRunLogBytes: config.maxRunLogBytes,
    maxEventPayloadBytes: config.maxEventPayloadBytes,
    maxRunOutputBytes: config.maxRunOutputBytes,
    maxKeptRunBytes: config.maxKeptRunBytes,
    maxLogBytesTotal: config.maxLogBytesTotal,
    maxActiveRuns: config.maxActiveRuns,
    maxRuns: config.maxRuns,
    runTtlSeconds: config.runTtlSeconds,
  }, (run) => {
    metrics.runEnded(run.status);
    log({
      msg: "run",
      runId: run.id,
      status: run.status,
      tasks: run.taskCount,
      failedTasks: run.result?.failedTasks,
      durationMs: roundMs(run.result?.executionTimeMs),
      error: run.failure,
    });
  });
  const streams = new EventStreams(config);
  const shutdown = new Shutdown({ streams, runs, mcp: config.mcp, store: redis });
  // A DELETE on another instance, for a run executing here.
  redis?.onCancel((id) => {
    const run = runs.get(id);
    run?.cancel("cancelled by DELETE");
    return run !== undefined;
  });
  // A run of this instance that another one ended as lost (this one was away
  // from Redis too long) stops here too; after such an outage, every run here
  // fails, since its copy misses what happened meanwhile.
  const storeUnavailable = (run: { fail(reason: string, code: string): boolean } | undefined) =>
    run?.fail(
      "the run store (Redis) could not be reached for too long: this run's events are not all there",
      "store_unavailable",
    );
  redis?.onLost((id) => storeUnavailable(runs.get(id)));
  redis?.onOutage(() => {
    for (const run of runs.list()) storeUnavailable(run);
  });
  // Runs of the shared queue, taken while a slot is free here.
  redis?.consume(
    () => !shutdown.begun && runs.refusal() === undefined,
    (runId, dag, createdAt) => {
      // Taken as the shutdown began: back to the queue, for another instance.
      if (shutdown.begun) return "busy";
      const checked = checkDag(dag, config);
      if (!checked.ok) {
        const issues = checked.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
        return { error: `instance ${config.instanceId} cannot run this DAG: ${issues}` };
      }
      return runs.start(checked.dag, { id: runId, createdAt }) ? "started" : "busy";
    },
  );
  const checks: RequestChecks = {
    crossSite: {
      allowedHosts: config.allowedHosts,
      loopbackOnly: config.loopbackOnly,
      corsOrigins: [config.corsOrigin ?? []].flat(),
    },
    token: config.token,
    routes: createRoutes({
      config,
      store: redis === undefined ? memoryRunStore(runs) : sharedRunStore(runs, redis),
      streams,
      shutdown,
      started: performance.now(),
      metrics,
    }),
  };

  async function handle(request: Request): Promise<Response> {
    const t0 = performance.now();
    let url: URL | undefined;
    try {
      url = new URL(request.url);
    } catch {
      // answered below
    }
    // Found once: for the answer, and for the metrics' route label.
    const matched = url === undefined ? undefined : findRoute(checks.routes, url.pathname);
    let response: Response;
    try {
      response = url === undefined
        ? problemResponse(400, "the request URL is malformed")
        : await answerChecked(request, url, checks, matched);
    } catch (error) {
      log({ msg: "internal error", error: describeError(error) });
      response = problemResponse(500, "internal error");
    }
    addCorsHeaders(response, request.headers.get("origin"), checks.crossSite.corsOrigins);
    const durationMs = performance.now() - t0;
    metrics.countRequest(
      routeLabel(matched),
      response.status,
      durationMs / 1000,
    );
    log({
      msg: "request",
      method: request.method,
      path: url?.pathname ?? "?",
      status: response.status,
      durationMs: roundMs(durationMs),
      runId: response.headers.get("x-run-id") ?? undefined,
    });
    return response;
  }

  return { handle, shutdown: () => shutdown.run(), runs, tools, config };
}
