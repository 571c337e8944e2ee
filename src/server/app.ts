/**
 * The bundled server's HTTP API: routes, authentication, CORS, limits, the
 * runs they start, and graceful shutdown. `createApp` gives a fetch-style
 * handler to serve with `Deno.serve`; `main.ts` wires it to the command line.
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import denoJson from "../../deno.json" with { type: "json" };
import { validateDAG } from "../dag/validate.ts";
import { combineToolRegistries, createToolRegistry, type ToolRegistry } from "../tools/registry.ts";
import { builtinTools } from "../tools/builtin.ts";
import {
  defaultRunLogBytes,
  logToStderr,
  type ResolvedServerConfig,
  SERVER_DEFAULTS,
  type ServerConfig,
} from "./config.ts";
import { invalidDag, notAcceptable, problemResponse } from "../sse/problem.ts";
import { readJsonBody } from "./json-body.ts";
import { acceptsEventStream, negotiateResponse } from "../sse/negotiate.ts";
import { type Run, RunRegistry, withSerialisableOutputs } from "./runs.ts";
import { outOfLogErrorFrame, runEventStream } from "../sse/log-stream.ts";
import { SSE_HEADERS, type SSEBody } from "../sse/sse.ts";
import { unknownToolMessages } from "./unknown-tool.ts";
import {
  allowOriginHeader,
  type CrossSiteSettings,
  hostAllowed,
  originAllowed,
} from "./cross-site.ts";

/** The version this server reports in `/health`. */
export const VERSION: string = denoJson.version;

/** A running dagstream HTTP application. */
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
  readonly runs: RunRegistry;
  /** The tools runs may call. */
  readonly tools: ToolRegistry;
  /** The settings in force. */
  readonly config: ResolvedServerConfig;
}

type Handler = (request: Request, url: URL, params: string[]) => Promise<Response> | Response;

interface Route {
  pattern: RegExp;
  methods: Record<string, Handler>;
}

/**
 * Creates the application.
 *
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * const app = createApp({ token: "secret" });
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0 }, (request) => app.handle(request));
 * await app.shutdown();
 * await server.shutdown();
 * ```
 */
export function createApp(options: ServerConfig = {}): DagstreamApp {
  const base: ResolvedServerConfig = {
    ...SERVER_DEFAULTS,
    tools: createToolRegistry({ ...builtinTools }),
    log: logToStderr,
    ...withoutUndefined(options),
  };
  const mcp = base.mcp;
  const config: ResolvedServerConfig = mcp === undefined
    ? base
    : { ...base, tools: combineToolRegistries(base.tools, mcp) };
  const { tools, log } = config;
  const crossSite: CrossSiteSettings = {
    allowedHosts: config.allowedHosts,
    loopbackOnly: config.loopbackOnly,
    corsOrigins: config.corsOrigin === undefined
      ? []
      : typeof config.corsOrigin === "string"
      ? [config.corsOrigin]
      : [...config.corsOrigin],
  };
  const started = performance.now();
  const openStreams = new Set<SSEBody>();
  let shuttingDown = false;

  const runs = new RunRegistry(tools.execute, {
    executor: {
      maxConcurrency: config.maxConcurrency,
      taskTimeout: config.taskTimeout,
      scheduling: config.scheduling,
      maxTasks: config.maxTasks,
    },
    maxRunLogBytes: options.maxRunLogBytes ??
      defaultRunLogBytes(config.maxTasks, config.maxEventPayloadBytes),
    maxEventPayloadBytes: config.maxEventPayloadBytes,
    maxRunOutputBytes: config.maxRunOutputBytes,
    maxKeptRunBytes: config.maxKeptRunBytes,
    maxLogBytesTotal: config.maxLogBytesTotal,
    maxActiveRuns: config.maxActiveRuns,
    maxRuns: config.maxRuns,
    runTtlSeconds: config.runTtlSeconds,
  }, (run) => {
    log({
      msg: "run",
      runId: run.id,
      status: run.status,
      tasks: run.taskCount,
      failedTasks: run.result?.failedTasks,
      durationMs: round(run.result?.executionTimeMs),
      error: run.failure,
    });
  });

  /** Validates the body and starts a run, or says why not. */
  async function startRun(request: Request): Promise<Run | Response> {
    if (shuttingDown) return unavailable("the server is shutting down");
    const body = await readJsonBody(request, config.maxBodyBytes);
    if (body instanceof Response) return body;
    const checked = validateDAG(body.value, {
      maxTasks: config.maxTasks,
      isKnownTool: tools.has,
      unknownToolMessage: unknownToolMessages(tools, mcp),
      checkArguments: tools.checkArguments?.bind(tools),
      rejectUnknownReferences: true,
    });
    if (!checked.ok) {
      return invalidDag(checked.issues);
    }
    const run = runs.start(checked.dag);
    if (run !== null) return run;
    return unavailable(
      runs.refusal() === "maxLogBytesTotal"
        ? "the active runs' event logs fill the server's memory budget for events " +
          `(--max-log-bytes-total ${config.maxLogBytesTotal} bytes)`
        : `too many active runs (at most ${config.maxActiveRuns})`,
    );
  }

  /** Event streams being set up (`POST /execute` reading and validating its body). */
  let reservedStreams = 0;

  /** Whether one more event stream may open (`maxWatchers`, server-wide). */
  function streamRoom(): boolean {
    return openStreams.size + reservedStreams < config.maxWatchers;
  }

  function tooManyStreams(): Response {
    return unavailable(
      `too many open event streams (at most ${config.maxWatchers}, --max-watchers)`,
    );
  }

  function stream(run: Run, after: number, cancelRunOnLeave: boolean): Response {
    const body = runEventStream(run, {
      after,
      cancelRunOnLeave,
      retryMs: config.retryMs,
      heartbeatMs: config.heartbeatMs,
      resultUrl: `/runs/${run.id}`,
    });
    openStreams.add(body);
    body.finished.then(() => openStreams.delete(body));
    return new Response(body.readable, { headers: { ...SSE_HEADERS, "X-Run-Id": run.id } });
  }

  const routes: Route[] = [
    {
      pattern: /^\/execute$/,
      methods: {
        POST: async (request) => {
          const kind = negotiateResponse(request.headers);
          if (kind === null) {
            return notAcceptable(["application/json", "text/event-stream"]);
          }
          // The stream's place is taken before the run starts: no run without its stream.
          const reserved = kind === "sse";
          if (reserved && !streamRoom()) return tooManyStreams();
          if (reserved) reservedStreams++;
          let run: Run | Response;
          try {
            run = await startRun(request);
          } finally {
            if (reserved) reservedStreams--;
          }
          if (run instanceof Response) return run;
          if (kind === "sse") return stream(run, 0, true);
          const onLeave = () => run.cancel("client disconnected");
          request.signal.addEventListener("abort", onLeave, { once: true });
          await run.done;
          request.signal.removeEventListener("abort", onLeave);
          return json(run.result ?? run.toJSON(), 200, { "X-Run-Id": run.id });
        },
      },
    },
    {
      pattern: /^\/runs$/,
      methods: {
        GET: () => json({ runs: runs.list().map(summary) }),
        POST: async (request) => {
          const run = await startRun(request);
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
        GET: (_request, _url, [id]) => {
          const run = runs.get(id);
          return run ? json(run.toJSON()) : unknownRun(id);
        },
        DELETE: (_request, _url, [id]) => {
          const run = runs.get(id);
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
        GET: (request, url, [id]) => {
          const run = runs.get(id);
          if (!run) return unknownRun(id);
          if (!acceptsEventStream(request.headers)) {
            return notAcceptable(["text/event-stream"]);
          }
          const raw = request.headers.get("last-event-id") ?? url.searchParams.get("lastEventId");
          if (raw !== null && !/^\d{1,15}$/.test(raw.trim())) {
            return problemResponse(400, `Last-Event-ID must be a whole number, got ${quote(raw)}`);
          }
          if (raw !== null && Number(raw.trim()) > run.log.lastSeq) {
            return problemResponse(
              400,
              `Last-Event-ID ${raw.trim()} is past the run's last event (${run.log.lastSeq}): ` +
                `no client can have seen it`,
            );
          }
          if (shuttingDown) return unavailable("the server is shutting down");
          const after = raw === null ? 0 : Number(raw.trim());
          // A run that is over with nothing left to replay: 204 tells an
          // EventSource to stop reconnecting (WHATWG), instead of looping.
          if (!run.active && after >= run.log.lastSeq) return new Response(null, { status: 204 });
          if (!streamRoom()) return tooManyStreams();
          return stream(run, after, false);
        },
      },
    },
    {
      pattern: /^\/tools$/,
      methods: { GET: () => json({ tools: tools.list() }) },
    },
    {
      pattern: /^\/health$/,
      methods: {
        GET: () =>
          json({
            status: "ok",
            version: VERSION,
            uptimeSeconds: Math.floor((performance.now() - started) / 1000),
            activeRuns: runs.activeCount,
            ...(mcp === undefined ? {} : { mcpServers: mcp.health() }),
          }),
      },
    },
  ];

  function authorised(request: Request, url: URL): boolean {
    if (config.token === undefined || url.pathname === "/health") return true;
    const header = request.headers.get("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    let given = match?.[1];
    if (
      given === undefined && (request.method === "GET" || request.method === "HEAD") &&
      url.pathname.endsWith("/events")
    ) {
      given = url.searchParams.get("access_token") ?? undefined;
    }
    return given !== undefined && sameSecret(given, config.token);
  }

  /**
   * Answers a request, checking in this order before any work is done:
   * Host → Origin → token → route and method (then each handler checks the
   * body's type and size, then validates it).
   */
  async function route(request: Request): Promise<Response> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return problemResponse(400, "the request URL is malformed");
    }
    const host = request.headers.get("host");
    if (!hostAllowed(host, crossSite)) {
      return problemResponse(
        403,
        `the Host header ${quote(host ?? "")} is not allowed: this server answers requests for ` +
          `localhost, 127.0.0.1 and [::1]${
            crossSite.allowedHosts.length > 0 ? ` and ${crossSite.allowedHosts.join(", ")}` : ""
          } (start it with --allowed-host NAME to add a name)`,
        { type: "forbidden-host" },
      );
    }
    const origin = request.headers.get("origin");
    if (!originAllowed(origin, host, crossSite, request.headers.get("sec-fetch-site"))) {
      return problemResponse(
        403,
        `requests from ${
          origin === null ? "another site's page" : `origin ${quote(origin)}`
        } are not allowed ` +
          `(start the server with --cors-origin ORIGIN to allow a web app's origin)`,
        { type: "forbidden-origin" },
      );
    }
    // A CORS preflight carries no credentials: it is answered without them.
    const preflight = request.method === "OPTIONS" && origin !== null &&
      request.headers.has("access-control-request-method");
    if (!preflight && !authorised(request, url)) {
      return problemResponse(401, "a valid bearer token is required", {
        headers: { "WWW-Authenticate": 'Bearer realm="dagstream"' },
      });
    }
    const found = routes.find((r) => r.pattern.test(url.pathname));
    if (!found) return problemResponse(404, `no route ${quote(url.pathname)}`);
    const allowed = Object.keys(found.methods);
    if (allowed.includes("GET")) allowed.push("HEAD");
    allowed.push("OPTIONS");
    if (request.method === "OPTIONS") {
      const headers: Record<string, string> = { Allow: allowed.join(", ") };
      if (preflight && crossSite.corsOrigins.length > 0) {
        headers["Access-Control-Allow-Methods"] = allowed.join(", ");
        headers["Access-Control-Allow-Headers"] =
          "Authorization, Content-Type, Accept, Last-Event-ID";
        headers["Access-Control-Max-Age"] = "600";
      }
      return new Response(null, { status: 204, headers });
    }
    const method = request.method === "HEAD" ? "GET" : request.method;
    // Own methods only: "toString" or "constructor" must not find Object's.
    const handler = Object.hasOwn(found.methods, method) ? found.methods[method] : undefined;
    if (!handler) {
      return problemResponse(405, `${quote(request.method)} is not allowed on ${url.pathname}`, {
        headers: { Allow: allowed.join(", ") },
      });
    }
    let params: string[];
    try {
      params = found.pattern.exec(url.pathname)!.slice(1).map(decodeURIComponent);
    } catch {
      return problemResponse(400, `the request path ${quote(url.pathname)} is malformed`);
    }
    const response = await handler(request, url, params);
    if (request.method !== "HEAD") return response;
    // HEAD: the GET answer's status and headers, no body. A JSON answer is
    // measured so Content-Length is the GET's; a stream opened for it ends at once.
    const headers = new Headers(response.headers);
    if (response.body !== null && !headers.get("content-type")?.startsWith("text/event-stream")) {
      headers.set("Content-Length", String((await response.arrayBuffer()).byteLength));
    } else {
      await response.body?.cancel();
    }
    return new Response(null, { status: response.status, headers });
  }

  async function handle(request: Request): Promise<Response> {
    const t0 = performance.now();
    let response: Response;
    try {
      response = await route(request);
    } catch (error) {
      log({ msg: "internal error", error: error instanceof Error ? error.message : String(error) });
      response = problemResponse(500, "internal error");
    }
    const allowOrigin = allowOriginHeader(request.headers.get("origin"), crossSite.corsOrigins);
    if (allowOrigin !== undefined) {
      response.headers.set("Access-Control-Allow-Origin", allowOrigin);
      response.headers.set("Access-Control-Expose-Headers", "X-Run-Id, Location, Retry-After");
    }
    if (crossSite.corsOrigins.length > 0 && allowOrigin !== "*") {
      response.headers.append("Vary", "Origin");
    }
    log({
      msg: "request",
      method: request.method,
      path: safePath(request.url),
      status: response.status,
      durationMs: round(performance.now() - t0),
      runId: response.headers.get("x-run-id") ?? undefined,
    });
    return response;
  }

  let stopped: Promise<void> | undefined;
  function shutdown(): Promise<void> {
    stopped ??= (async () => {
      shuttingDown = true;
      for (const body of openStreams) {
        body.push(outOfLogErrorFrame("the server is shutting down", { code: "shutdown" }));
        body.close();
      }
      runs.cancelAll("server shutting down");
      await runs.idle();
      // The runs are over: nothing calls the MCP servers any more.
      await mcp?.close();
    })();
    return stopped;
  }

  return { handle, shutdown, runs, tools, config };
}

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
  return problemResponse(404, `no run with id ${quote(id)} (unknown or expired)`);
}

/** `value` as a JSON string for a message, cut to its first 100 characters. */
function quote(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

function unavailable(detail: string): Response {
  return problemResponse(503, detail, { headers: { "Retry-After": "1" } });
}

function summary(run: Run) {
  return { runId: run.id, status: run.status, createdAt: run.createdAt };
}

function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  if (a.byteLength !== b.byteLength) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}

function safePath(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return "?";
  }
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 10) / 10;
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
