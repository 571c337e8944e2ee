/**
 * The HTTP API's route table and handlers: `/execute`, `/runs`,
 * `/runs/<id>`, `/runs/<id>/events`, `/tools` and `/health`. Requests reach
 * them having passed the checks of `request-checks.ts`.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { acceptsEventStream, negotiateResponse } from "../sse/negotiate.ts";
import { notAcceptable, problemResponse, quoteInDetail } from "../sse/problem.ts";
import type { ResolvedServerConfig } from "./config.ts";
import type { EventStreams } from "./event-streams.ts";
import { readDag } from "./request-checks.ts";
import type { Route } from "./router.ts";
import type { Run, RunView } from "./run.ts";
import type { RunRegistry } from "./run-registry.ts";
import { withSerialisableOutputs } from "./serialisable.ts";
import type { Shutdown } from "./shutdown.ts";
import type { FollowedRun, RedisRunStore } from "./redis-store.ts";
import type { LoggedRun } from "../sse/log-stream.ts";

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
  /** The runs executing here, and those kept since. */
  runs: RunRegistry;
  /** The runs of every instance, when they are shared (`--store redis://…`). */
  store?: RedisRunStore;
  /** The open event streams. */
  streams: EventStreams;
  /** The app's shutdown: once it has begun, no run or stream starts. */
  shutdown: Shutdown;
  /** `performance.now()` when the app was created, for `uptimeSeconds`. */
  started: number;
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
 * ]);
 * await app.shutdown();
 * ```
 */
export function createRoutes(context: RouteContext): Route[] {
  const { config, runs, store, streams, shutdown, started } = context;

  /** A problem answer for a shared store that cannot be reached. */
  const storeDown = () => unavailable("the run store (Redis) cannot be reached");

  /**
   * With a shared store, `POST /runs` puts the run on the shared queue: any
   * instance with a free slot takes it. 503 only when the queue is full or
   * Redis cannot be reached.
   */
  async function enqueue(request: Request): Promise<{ id: string; status: "queued" } | Response> {
    if (shutdown.begun) return unavailable("the server is shutting down");
    if (!store!.up) return storeDown();
    const dag = await readDag(request, config);
    if (dag instanceof Response) return dag;
    let queued: { runId: string } | "full";
    try {
      queued = await store!.enqueue(dag.tasks);
    } catch {
      return storeDown();
    }
    if (queued === "full") {
      return unavailable(
        `the queue holds ${config.maxQueuedRuns} runs (--max-queued-runs): try again later`,
      );
    }
    return { id: queued.runId, status: "queued" };
  }

  /** DELETE of a run this instance does not have: its owner cancels it, if it runs. */
  async function cancelElsewhere(id: string): Promise<Response> {
    let outcome: "cancelled" | "over" | "unknown";
    try {
      outcome = await store!.cancel(id);
    } catch {
      return storeDown();
    }
    if (outcome === "unknown") return unknownRun(id);
    if (outcome === "over") {
      const view = await store!.view(id, false).catch(() => undefined);
      const status = view?.status ?? "over";
      return problemResponse(409, `run ${id} is already over (${status})`, {
        runId: id,
        runStatus: status,
      });
    }
    return json({ runId: id, status: "cancelled" }, 202);
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
    if (store !== undefined && !store.up) return storeDown();
    const dag = await readDag(request, config);
    if (dag instanceof Response) return dag;
    // Shutdown may have begun while the body arrived: it has cancelled the
    // runs it knew of and will not wait for one started now.
    if (shutdown.begun) return unavailable("the server is shutting down");
    const run = mayStart() ?? runs.start(dag) ?? unavailable(
      runs.refusal() === "maxLogBytesTotal"
        ? "the active runs' event logs fill the server's memory budget for events " +
          `(--max-log-bytes-total ${config.maxLogBytesTotal} bytes)`
        : `too many active runs (at most ${config.maxActiveRuns})`,
    );
    return run;
  }

  function tooManyStreams(): Response {
    return unavailable(
      `too many open event streams (at most ${config.maxWatchers}, --max-watchers)`,
    );
  }

  return [
    {
      pattern: /^\/execute$/,
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
      methods: {
        GET: async () => {
          if (store === undefined) return json({ runs: runs.list().map(summary) });
          try {
            return json({ runs: await store.list() });
          } catch {
            return storeDown();
          }
        },
        POST: async (request) => {
          const run = store === undefined ? await startRun(request) : await enqueue(request);
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
      methods: {
        GET: async (_request, _url, [id]) => {
          const run = runs.get(id);
          if (run !== undefined) return json(run.toJSON());
          if (store === undefined) return unknownRun(id);
          try {
            const view = await store.view(id);
            return view ? json(view) : unknownRun(id);
          } catch {
            return storeDown();
          }
        },
        DELETE: async (_request, _url, [id]) => {
          const run = runs.get(id);
          if (!run && store !== undefined) return await cancelElsewhere(id);
          if (!run) return unknownRun(id);
          if (!run.cancel("cancelled by DELETE")) {
            return problemResponse(409, `run ${id} is already over (${run.status})`, {
              runId: id,
              runStatus: run.status,
            });
          }
          return json({ runId: run.id, status: run.status }, 202);
        },
      },
    },
    {
      pattern: /^\/runs\/([^/]+)\/events$/,
      methods: {
        GET: async (request, url, [id]) => {
          let run: (LoggedRun & { id: string; active: boolean }) | undefined = runs.get(id);
          let lastSeq = run?.log.lastSeq ?? 0;
          let over = run !== undefined && !run.active;
          // A run running on another instance may be ahead of what Redis showed here.
          let lastSeqKnown = true;
          let remote: FollowedRun | undefined;
          if (!run && store !== undefined) {
            if (!acceptsEventStream(request.headers)) return notAcceptable(["text/event-stream"]);
            let followed: { run: FollowedRun; over: boolean; lastSeq: number } | undefined;
            try {
              followed = await store.follow(id, runs.logBudget);
            } catch {
              return storeDown();
            }
            run = remote = followed?.run;
            lastSeq = followed?.lastSeq ?? 0;
            over = followed?.over ?? false;
            lastSeqKnown = over;
          }
          if (!run) return unknownRun(id);
          if (!acceptsEventStream(request.headers)) return notAcceptable(["text/event-stream"]);
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
          if (remote !== undefined) {
            // The copy here lives while someone watches it.
            const watched = remote;
            watched.watch();
            return streams.open(watched, after, false, () => watched.unwatch());
          }
          return streams.open(run, after, false);
        },
      },
    },
    {
      pattern: /^\/tools$/,
      methods: { GET: () => json({ tools: config.tools.list() }) },
    },
    {
      pattern: /^\/health$/,
      methods: {
        GET: () => {
          // A store that cannot be reached makes the instance unfit for new runs: 503.
          const storeUp = store === undefined || store.up;
          return json({
            status: storeUp ? "ok" : "unavailable",
            version: VERSION,
            instance: config.instanceId,
            uptimeSeconds: Math.floor((performance.now() - started) / 1000),
            activeRuns: runs.activeCount,
            store: store === undefined
              ? { kind: "memory" }
              : { kind: "redis", status: storeUp ? "up" : "down" },
            ...(config.mcp === undefined ? {} : { mcpServers: config.mcp.health() }),
          }, storeUp ? 200 : 503);
        },
      },
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

function summary(run: Run): RunView {
  const { runId, status, instance, createdAt, startedAt, finishedAt } = run.toJSON(false);
  return { runId, status, instance, createdAt, startedAt, finishedAt };
}
