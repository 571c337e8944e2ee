/**
 * Settings of the bundled server, with their defaults.
 *
 * @module
 */

import type { SchedulingMode } from "../dag/types.ts";
import type { ManagedToolRegistry, ToolRegistry } from "../tools/registry.ts";

/** Settings of {@linkcode createApp}; every field has a default. */
export interface ServerConfig {
  /** Bearer token every route but `/health` requires; none when unset. */
  token?: string;
  /**
   * Origin or origins allowed by CORS (`*` for any); CORS is off when unset.
   * Requests whose `Origin` is neither the server's own nor one of these are
   * refused with 403 (`Origin: null` always is).
   */
  corsOrigin?: string | readonly string[];
  /**
   * Host names the `Host` header may name besides the loopback ones, e.g. the
   * public name behind a reverse proxy. On a loopback bind (`loopbackOnly`),
   * `localhost`, `127.0.0.1` and `[::1]` are always allowed and any other name
   * is refused (DNS rebinding); elsewhere the check applies only when this
   * list is not empty.
   */
  allowedHosts?: string[];
  /**
   * Whether the server listens on a loopback address only (then the `Host`
   * check is on even without `allowedHosts`). Default true: `createApp`
   * cannot see the bind address, and the safe answer is the default.
   */
  loopbackOnly?: boolean;
  /** Most tasks in flight per run. Default unbounded. */
  maxConcurrency?: number;
  /** Milliseconds per task. Default 30000. */
  taskTimeout?: number;
  /** `"eager"` (default) or `"layered"`. */
  scheduling?: SchedulingMode;
  /** Most tasks per DAG. Default 1000. */
  maxTasks?: number;
  /** Largest request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Bytes of events each run's log keeps. Default: enough for a whole run at
   * the other limits (`maxTasks` × (`maxEventPayloadBytes` + 1 KiB) + 4 KiB), and at
   * least 16 MiB — 66,564,096 bytes (63.5 MiB) at the default limits.
   */
  maxRunLogBytes?: number;
  /**
   * Most bytes all run logs may hold together, active and kept runs alike.
   * Finished runs give way first (oldest out); when active runs alone reach
   * it, a new run is refused with 503. Default 512 MiB.
   */
  maxLogBytesTotal?: number;
  /** Most open event streams (watchers) at once, server-wide; 503 beyond. Default 10,000. */
  maxWatchers?: number;
  /** Most runs executing at once. Default 1000. */
  maxActiveRuns?: number;
  /** Most runs kept, finished ones included. Default 1000. */
  maxRuns?: number;
  /** Seconds a finished run is kept. Default 600. */
  runTtlSeconds?: number;
  /** Idle ms before a keep-alive comment on a stream. Default 15000. */
  heartbeatMs?: number;
  /** `retry:` announced to SSE clients, in ms. Default 2000. */
  retryMs?: number;
  /** Cap on a `task_complete` event's data, in bytes. Default 65536. */
  maxEventPayloadBytes?: number;
  /**
   * Most bytes of JSON a run's tool arguments and outputs may total; past
   * it, tool calls of that run fail ("too large"). Bounds what `$OUTPUT`
   * references can blow up to. Default 64 MiB.
   */
  maxRunOutputBytes?: number;
  /**
   * Most bytes finished runs keep for late readers, their event logs and
   * outputs together; past it the oldest finished runs are forgotten
   * (`GET /runs/<id>` answers 404), whatever `maxRuns` and `runTtlSeconds`
   * allow. Default 256 MiB.
   */
  maxKeptRunBytes?: number;
  /** The tools runs may call. Default: the built-in mock tools. */
  tools?: ToolRegistry;
  /**
   * Tools served by other processes (MCP servers, see `src/tools/mcp.ts`),
   * offered in addition to `tools`. `/health` reports each server's state
   * under `mcpServers`, and `shutdown()` closes them (their child processes
   * end). None when unset.
   */
  mcp?: ManagedToolRegistry;
  /** Where structured log records go. Default: one JSON line each on stderr. */
  log?: (record: Record<string, unknown>) => void;
}

/** A {@linkcode ServerConfig} with every default filled in. */
export type ResolvedServerConfig =
  & Required<Omit<ServerConfig, "token" | "corsOrigin" | "maxConcurrency" | "mcp">>
  & Pick<ServerConfig, "token" | "corsOrigin" | "maxConcurrency" | "mcp">;

/** The defaults of {@linkcode ServerConfig}. */
export const SERVER_DEFAULTS = {
  taskTimeout: 30_000,
  scheduling: "eager" as SchedulingMode,
  maxTasks: 1000,
  maxBodyBytes: 1024 * 1024,
  maxRunLogBytes: 16 * 1024 * 1024,
  maxLogBytesTotal: 512 * 1024 * 1024,
  maxWatchers: 10_000,
  maxActiveRuns: 1000,
  maxRuns: 1000,
  runTtlSeconds: 600,
  heartbeatMs: 15_000,
  retryMs: 2000,
  maxEventPayloadBytes: 64 * 1024,
  maxRunOutputBytes: 64 * 1024 * 1024,
  maxKeptRunBytes: 256 * 1024 * 1024,
  allowedHosts: [] as string[],
  loopbackOnly: true,
} as const;

/**
 * The default run log size: a whole run of `maxTasks` tasks whose events
 * all reach the payload cap fits, and never less than 16 MiB.
 */
export function defaultRunLogBytes(maxTasks: number, maxEventPayloadBytes: number): number {
  return Math.max(SERVER_DEFAULTS.maxRunLogBytes, maxTasks * (maxEventPayloadBytes + 1024) + 4096);
}

const encoder = new TextEncoder();

/**
 * Writes a log record as one JSON line on stderr (synchronously, so lines
 * keep their order and none is lost on exit; about half the cost of
 * `console.error`).
 */
export function logToStderr(record: Record<string, unknown>): void {
  const line = JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n";
  try {
    Deno.stderr.writeSync(encoder.encode(line));
  } catch {
    // stderr closed: logging must never break a request
  }
}
