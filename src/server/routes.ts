/**
 * The HTTP API's route table and handlers: `/execute`, `/runs`,
 * `/runs/<id>`, `/runs/<id>/events`, `/tools`, `/health` and `/metrics`. Requests reach
 * them having passed the checks of `request-checks.ts`.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { acceptsEventStream, negotiateResponse } from "../sse/negotiate.ts";
import { notAcceptable, problemResponse, quoteInDetail } from "../sse/problem.ts";
import type { ResolvedServerConfig } from "./config.ts";
import type { EventStreams } from "./event-streams.ts";
import { metricsResponse, type ServerMetrics } from "./metrics.ts";
import { pageRoutes } from "./page.ts";
import { readDag } from "./request-checks.ts";
import type { Route } from "./router.ts";
import type { Run } from "./run.ts";
import { parseListQuery } from "./run-listing.ts";
import type { CancelOutcome, RunEvents, RunStore } from "./run-store.ts";
import { withSerialisableOutputs } from "./serialisable.ts";
import type { Shutdown } from "./shutdown.ts";

/**
 * The version this server reports in `/health`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { VERSION } from "./routes.ts";
 * assert.match(VERSION, /^\d+\.\d+\.\d+/);
 * ```
 */
export const VERSION: string = denoJson.version;

/**
 * What the handlers work with.
 *
 * @example
 * ```ts
 * import type { RouteContext } from "./routes.ts";
 * const started: RouteContext["started"] = performance.now();
 * ```
 */
export interface RouteContext {
  /** The settings in force (tools included). */
  config: ResolvedServerConfig;
  /** The runs: this process's, or every instance's (`--store redis://…`). */
  store: RunStore;
  /** The open event streams. */
  streams: EventStreams;
  /** The app's shutdown: once it has begun, no run or stream starts. */
  shutdown: Shutdown;
  /** `performance.now()` when the app was created, for `uptimeSeconds`. */
  started: number;
  /** The metrics `GET /metrics` shows. */
  metrics: ServerMetrics;
}

/** `Accept` of `POST /execute`: the batch answer, or the stream. */
const EXECUTE_ANSWERS = ["application/json", "text/event-stream"];

/**
 * The routes of the HTTP API.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createApp } from "./app.ts";
 * const app = createApp({ log: () => {} });
 * const response = await app.handle(new Request("http://127.0.0.1/tools"));
 * assert.deepEqual((await response.json()).tools.map((t: { name: string }) => t.name), [
 *   "mock:delay",
 *   "mock:echo",
 *   "mock:fail",
 *   "mock:flaky",
 * ]);
 * await app.shutdown();
 * ```
 */
export function createRoutes(context: RouteContext): Route[] {
  const { config, store, streams, shutdown, started, metrics } = context;

  /** A problem answer for a shared store that cannot be reached. */
  const storeDown = () => unavailable("the run store (Redis) cannot be reached");

  /** `POST /runs`: the run starts here, or (shared store) waits in the queue for any instance. */
  async function submit(request: Request): Promise<{ id: string; status: string } | Response> {
    if (shutdown.begun) return unavailable("the server is shutting down");
    if (!store.up) return storeDown();
    const dag = await readDag(request, config);
    if (dag instanceof Response) return dag;
    if (shutdown.begun) return unavailable("the server is shutting down");
    let accepted: Awaited<ReturnType<RunStore["submit"]>>;
    try {
      accepted = await store.submit(dag);
    } catch {
      return storeDown();
    }
    if (accepted === "full") {
      return unavailable(
        `the queue holds ${config.maxQueuedRuns} runs (--max-queued-runs): try again later`,
      );
    }
    return accepted ?? refused();
  }

  /** 503 for a run this process's limits refuse. */
  function refused(): Response {
    return unavailable(
      store.refusal() === "maxLogBytesTotal"
        ? "the active runs' event logs fill the server's memory budget for events " +
          `(--max-log-bytes-total ${config.maxLogBytesTotal} bytes)`
        : `too many active runs (at most ${config.maxActiveRuns})`,
    );
  }

  /**
   * Reads and validates the body and starts a run, or says why not. Before
   * the run starts, `mayStart` may still refuse (checked once the body is
   * in, with nothing awaited between the check and the start).
   */
  async function startRun(
    request: Request,
    mayStart: () => Response | undefined = () => undefined,
  ): Promise<Run | Response> {
    if (shutdown.begun) return unavailable("the server is shutting down");
    if (!store.up) return storeDown();
    const dag = await readDag(request, config);
    if (dag instanceof Response) return dag;
    // Shutdown may have begun while the body arrived: it has cancelled the
    // runs it knew of and will not wait for one started now.
    if (shutdown.begun) return unavailable("the server is shutting down");
    return mayStart() ?? store.startHere(dag) ?? refused();
  }

  function tooManyStreams(): Response {
    return unavailable(
      `too many open event streams (at most ${config.maxWatchers}, --max-watchers)`,
    );
  }

  return [
    ...pageRoutes(VERSION),
    {
      pattern: /^\/execute$/,
      template: "/execute",
      methods: {
        POST: async (request) => {
          const kind = negotiateResponse(request.headers);
          if (kind === null) return notAcceptable(EXECUTE_ANSWERS);
          if (kind === "sse") {
            // No run without its stream: room is checked before the body is
            // read (no work for a request that must be refused) and again
            // once it is in, right before the run starts and its stream
            // opens. A body that trickles in holds no stream's place.
            if (!streams.hasRoom()) return tooManyStreams();
            const run = await startRun(
              request,
              () => streams.hasRoom() ? undefined : tooManyStreams(),
            );
            return run instanceof Response ? run : streams.open(run, 0, true);
          }
          const run = await startRun(request);
          if (run instanceof Response) return run;
          const onLeave = () => run.cancel("client disconnected");
          request.signal.addEventListener("abort", onLeave, { once: true });
          await run.done;
          request.signal.removeEventListener("abort", onLeave);
          return json(run.result ?? run.toJSON(false), 200, { "X-Run-Id": run.id });
        },
      },
    },
    {
      pattern: /^\/runs$/,
      template: "/runs",
      methods: {
        GET: async (_request, url) => {
          const query = parseListQuery(url);
          if (query instanceof Response) return query;
          try {
            return json(await store.list(query));
          } catch {
            return storeDown();
          }
        },
        POST: async (request) => {
          const run = await submit(request);
          if (run instanceof Response) return run;
          const location = `/runs/${run.id}`;
          return json(
            {
              runId: run.id,
              status: run.status,
              eventsUrl: `${location}/events`,
              resultUrl: location,
            },
            202,
            { Location: location, "X-Run-Id": run.id },
          );
        },
      },
    },
    {
      pattern: /^\/runs\/([^/]+)$/,
      template: "/runs/{id}",
      methods: {
        GET: async (_request, _url, [id]) => {
          try {
            const view = await store.view(id);
            return view ? json(view) : unknownRun(id);
          } catch {
            return storeDown();
          }
        },
        DELETE: async (_request, _url, [id]) => {
          let done: CancelOutcome;
          try {
            done = await store.cancel(id);
          } catch {
            return storeDown();
          }
          if (done.outcome === "unknown") return unknownRun(id);
          if (done.outcome === "over") {
            return problemResponse(409, `run ${id} is already over (${done.status})`, {
              runId: id,
              runStatus: done.status,
            });
          }
          return json({ runId: id, status: done.status }, 202);
        },
      },
    },
    {
      pattern: /^\/runs\/([^/]+)\/events$/,
      template: "/runs/{id}/events",
      methods: {
        GET: async (request, url, [id]) => {
          if (!acceptsEventStream(request.headers)) {
            // Known runs only: an unknown one is 404 whatever the Accept.
            if (!(await store.view(id).catch(() => undefined))) return unknownRun(id);
            return notAcceptable(["text/event-stream"]);
          }
          let found: RunEvents | undefined;
          try {
            found = await store.events(id);
          } catch {
            return storeDown();
          }
          if (found === undefined) return unknownRun(id);
          const { run, over, lastSeq, lastSeqKnown, watcher } = found;
          const raw = request.headers.get("last-event-id") ?? url.searchParams.get("lastEventId");
          const trimmed = raw?.trim();
          if (raw !== null && !/^\d{1,15}$/.test(trimmed!)) {
            return problemResponse(
              400,
              `Last-Event-ID must be a whole number, got ${quoteInDetail(raw)}`,
            );
          }
          const after = trimmed === undefined ? 0 : Number(trimmed);
          if (after > lastSeq && lastSeqKnown) {
            return problemResponse(
              400,
              `Last-Event-ID ${after} is past the run's last event (${lastSeq}): ` +
                `no client can have seen it`,
            );
          }
          if (shutdown.begun) return unavailable("the server is shutting down");
          // A run that is over with nothing left to replay: 204 tells an
          // EventSource to stop reconnecting (WHATWG), instead of looping.
          if (over && after >= lastSeq) return new Response(null, { status: 204 });
          if (!streams.hasRoom()) return tooManyStreams();
          // A copy of another instance's run lives while someone watches it.
          watcher?.open();
          return streams.open(run, after, false, watcher?.close);
        },
      },
    },
    {
      pattern: /^\/tools$/,
      template: "/tools",
      methods: { GET: () => json({ tools: config.tools.list() }) },
    },
    {
      pattern: /^\/health$/,
      template: "/health",
      methods: {
        GET: () => {
          // A store that cannot be reached makes the instance unfit for new runs: 503.
          const storeUp = store.up;
          return json({
            status: storeUp ? "ok" : "unavailable",
            version: VERSION,
            instance: config.instanceId,
            uptimeSeconds: Math.floor((performance.now() - started) / 1000),
            activeRuns: store.activeCount,
            store: store.kind === "memory"
              ? { kind: "memory" }
              : { kind: "redis", status: storeUp ? "up" : "down" },
            ...(config.mcp === undefined ? {} : { mcpServers: config.mcp.health() }),
          }, storeUp ? 200 : 503);
        },
      },
    },
    {
      pattern: /^\/metrics$/,
      template: "/metrics",
      methods: { GET: () => metricsResponse(metrics) },
    },
  ];
}

/** A JSON answer; outputs that cannot be serialised are replaced by their error. */
function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  let text: string;
  try {
    text = JSON.stringify(body);
  } catch {
    text = JSON.stringify(withSerialisableOutputs(body));
  }
  return new Response(text, {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function unknownRun(id: string): Response {
  return problemResponse(404, `no run with id ${quoteInDetail(id)} (unknown or expired)`);
}

/** 503 with `Retry-After`: the server is at a limit or shutting down. */
function unavailable(detail: string): Response {
  return problemResponse(503, detail, { headers: { "Retry-After": "1" } });
}
