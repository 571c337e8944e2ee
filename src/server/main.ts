/**
 * The command line of the bundled server: `deno task serve [flags]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createApp, type DagstreamApp, VERSION } from "./app.ts";
import { logToStderr, SERVER_DEFAULTS, type ServerConfig } from "./config.ts";
import type { ManagedToolRegistry } from "../tools/registry.ts";
import {
  denoServeCommand,
  loadMcpConfig,
  type McpConfig,
  McpConfigError,
  type McpPermissions,
  mcpPermissions,
} from "../tools/mcp-config.ts";

const HELP = `dagstream ${VERSION} — run DAGs of tool calls and stream their progress as SSE

Usage: deno task serve [flags]

Flags (each also read from the environment variable shown):
  --host HOST                 interface to bind (DAGSTREAM_HOST)            [127.0.0.1]
  --port PORT                 port; 0 picks a free one (DAGSTREAM_PORT)     [8000]
  --token TOKEN               bearer token required on every route but /health (DAGSTREAM_TOKEN)
  --cors-origin ORIGIN        allow this origin (or *) by CORS; repeatable
                              (DAGSTREAM_CORS_ORIGIN, comma-separated) [off]
  --allowed-host NAME         a Host header name to accept besides localhost, 127.0.0.1 and
                              [::1]; repeatable (DAGSTREAM_ALLOWED_HOSTS, comma-separated) [none]
  --max-concurrency N         tasks in flight per run (DAGSTREAM_MAX_CONCURRENCY) [unbounded]
  --task-timeout MS           per-task timeout (DAGSTREAM_TASK_TIMEOUT)     [30000]
  --scheduling MODE           eager | layered (DAGSTREAM_SCHEDULING)        [eager]
  --max-tasks N               tasks per DAG (DAGSTREAM_MAX_TASKS)           [1000]
  --max-body-bytes N          request body limit (DAGSTREAM_MAX_BODY_BYTES) [1048576]
  --max-run-log-bytes N       events kept per run (DAGSTREAM_MAX_RUN_LOG_BYTES) [a whole run: 66564096 at the defaults]
  --max-log-bytes-total N     bytes of all run logs together (DAGSTREAM_MAX_LOG_BYTES_TOTAL) [536870912]
  --max-watchers N            open event streams, server-wide (DAGSTREAM_MAX_WATCHERS) [10000]
  --max-active-runs N         runs executing at once (DAGSTREAM_MAX_ACTIVE_RUNS) [1000]
  --max-runs N                runs kept, finished ones included (DAGSTREAM_MAX_RUNS) [1000]
  --run-ttl-seconds N         how long finished runs are kept (DAGSTREAM_RUN_TTL_SECONDS) [600]
  --heartbeat-ms MS           keep-alive comment when a stream is idle (DAGSTREAM_HEARTBEAT_MS) [15000]
  --retry-ms MS               retry: announced to SSE clients (DAGSTREAM_RETRY_MS) [2000]
  --max-event-payload-bytes N cap on one event's data (DAGSTREAM_MAX_EVENT_PAYLOAD_BYTES) [65536]
  --max-run-output-bytes N    JSON of a run's tool arguments and outputs (DAGSTREAM_MAX_RUN_OUTPUT_BYTES) [67108864]
  --max-kept-run-bytes N      logs and outputs kept for finished runs (DAGSTREAM_MAX_KEPT_RUN_BYTES) [268435456]
  --mcp-config FILE           MCP servers whose tools runs may call, as <server>:<tool>: an
                              { "mcpServers": … } file (DAGSTREAM_MCP_CONFIG) [none]; needs more
                              permissions: use \`deno task serve:mcp\` (see docs/OPERATIONS.md)
  -h, --help                  show this help
  --version                   show the version
`;

const NUMERIC = {
  "port": { min: 0, max: 65535 },
  "max-concurrency": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "task-timeout": { min: 1, max: 2147483647 },
  "max-tasks": { min: 1, max: 10_000_000 },
  "max-body-bytes": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "max-run-log-bytes": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "max-log-bytes-total": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "max-watchers": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "max-active-runs": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "max-runs": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "run-ttl-seconds": { min: 0, max: 31_536_000 },
  "heartbeat-ms": { min: 0, max: 2147483647 },
  "retry-ms": { min: 0, max: 2147483647 },
  "max-event-payload-bytes": { min: 1024, max: Number.MAX_SAFE_INTEGER },
  "max-run-output-bytes": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "max-kept-run-bytes": { min: 0, max: Number.MAX_SAFE_INTEGER },
} as const;

type NumericFlag = keyof typeof NUMERIC;

/** Thrown for a bad flag; main prints it (one line) and exits with status 2. */
class UsageError extends Error {
  /** Whether to point at `--help` too (an unknown or malformed flag). */
  readonly pointAtHelp: boolean;
  constructor(message: string, pointAtHelp = false) {
    super(message);
    this.pointAtHelp = pointAtHelp;
  }
}

/** The server settings and address given by flags and environment. */
export interface CommandLine {
  /** Interface to bind. */
  host: string;
  /** Port to bind (0: any free one). */
  port: number;
  /** Everything else. */
  config: ServerConfig;
  /** `--mcp-config`: path of an `mcpServers` configuration file. */
  mcpConfig?: string;
  /** `--help` or `--version` was given: print this and exit. */
  print?: string;
}

/**
 * Reads flags, falling back to `DAGSTREAM_*` environment variables.
 *
 * @throws {UsageError} for an unknown flag or a value out of range
 */
export function parseCommandLine(
  args: string[],
  env: (name: string) => string | undefined,
): CommandLine {
  const stringFlags = [
    "host",
    "token",
    "scheduling",
    "mcp-config",
    ...Object.keys(NUMERIC),
  ];
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ...Object.fromEntries(stringFlags.map((name) => [name, { type: "string" as const }])),
        "allowed-host": { type: "string", multiple: true },
        "cors-origin": { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), true);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values.help) return { host: "", port: 0, config: {}, print: HELP };
  if (values.version) return { host: "", port: 0, config: {}, print: `dagstream ${VERSION}\n` };
  const get = (name: string): string | undefined => {
    const value = values[name];
    if (typeof value === "string") return value;
    return env(`DAGSTREAM_${name.toUpperCase().replaceAll("-", "_")}`);
  };
  const num = (name: NumericFlag): number | undefined => {
    const raw = get(name);
    if (raw === undefined || raw === "") return undefined;
    const value = Number(raw);
    const { min, max } = NUMERIC[name];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  };
  const scheduling = get("scheduling");
  if (scheduling !== undefined && scheduling !== "eager" && scheduling !== "layered") {
    throw new UsageError(`--scheduling must be "eager" or "layered", got "${scheduling}"`);
  }
  const host = get("host") ?? "127.0.0.1";
  return {
    host,
    port: num("port") ?? 8000,
    mcpConfig: get("mcp-config") || undefined,
    config: {
      token: checkedToken(get("token")),
      corsOrigin: corsOrigins(values["cors-origin"], env("DAGSTREAM_CORS_ORIGIN")),
      allowedHosts: allowedHosts(values["allowed-host"], env("DAGSTREAM_ALLOWED_HOSTS")),
      loopbackOnly: isLoopback(host),
      maxConcurrency: num("max-concurrency"),
      taskTimeout: num("task-timeout"),
      scheduling,
      maxTasks: num("max-tasks"),
      maxBodyBytes: num("max-body-bytes"),
      maxRunLogBytes: num("max-run-log-bytes"),
      maxLogBytesTotal: num("max-log-bytes-total"),
      maxWatchers: num("max-watchers"),
      maxActiveRuns: num("max-active-runs"),
      maxRuns: num("max-runs"),
      runTtlSeconds: num("run-ttl-seconds"),
      heartbeatMs: num("heartbeat-ms"),
      retryMs: num("retry-ms"),
      maxEventPayloadBytes: num("max-event-payload-bytes"),
      maxRunOutputBytes: num("max-run-output-bytes"),
      maxKeptRunBytes: num("max-kept-run-bytes"),
    },
  };
}

/** RFC 6750's `b64token`: the characters a bearer token can be sent with. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The token to require, or undefined for none. An empty or blank one (from
 * the flag or the environment) is refused: it must not silently mean "no
 * authentication". So is one a client could never send in an
 * `Authorization: Bearer` header. The message never contains the value.
 */
function checkedToken(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.trim() === "") {
    throw new UsageError(
      "--token (or DAGSTREAM_TOKEN) is empty: give a real token, or leave it unset for no authentication",
    );
  }
  if (!B64TOKEN.test(raw)) {
    throw new UsageError(
      "--token (or DAGSTREAM_TOKEN) has characters a bearer token cannot carry: " +
        "use only letters, digits and - . _ ~ + / (with = at the end)",
    );
  }
  return raw;
}

/** `--allowed-host` values (repeatable), else the comma-separated environment variable. */
function allowedHosts(flags: unknown, env: string | undefined): string[] | undefined {
  const list = Array.isArray(flags) && flags.length > 0 ? flags : env?.split(",") ?? [];
  const names = list.map((name) => String(name).trim().toLowerCase()).filter((name) => name !== "");
  for (const name of names) {
    if (!/^(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])$/.test(name)) {
      throw new UsageError(
        `--allowed-host must be a host name without port or scheme (e.g. example.com), got "${
          name.slice(0, 100)
        }"`,
      );
    }
  }
  return names.length > 0 ? names : undefined;
}

/** `--cors-origin` values (repeatable), else the comma-separated environment variable. */
function corsOrigins(flags: unknown, env: string | undefined): string[] | undefined {
  const list = Array.isArray(flags) && flags.length > 0 ? flags : env?.split(",") ?? [];
  const origins = list.map((origin) => String(origin).trim()).filter((origin) => origin !== "");
  for (const origin of origins) {
    if (origin !== "*" && !/^https?:\/\/[^/?#\s]+$/i.test(origin)) {
      throw new UsageError(
        `--cors-origin must be * or an origin like https://app.example (scheme, host, optional port), got "${
          origin.slice(0, 100)
        }"`,
      );
    }
  }
  return origins.length > 0 ? origins : undefined;
}

/** Whether binding `host` listens on loopback addresses only. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return name === "localhost" || name === "::1" || /^127(?:\.\d{1,3}){3}$/.test(name);
}

/**
 * `args` with the value of `--token` replaced by `***`, for anything printed
 * (a command line to copy, a log line).
 */
export function redactSecrets(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--token" && i + 1 < args.length) {
      out.push(arg, "***");
      i++;
    } else if (arg.startsWith("--token=")) {
      out.push("--token=***");
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Most ms a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 5000;

async function main(): Promise<void> {
  let commandLine: CommandLine;
  try {
    commandLine = parseCommandLine(Deno.args, (name) => {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined; // no permission to read this variable: treat as unset
      }
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(
      `dagstream: ${error.message}${
        error.pointAtHelp ? " (run with --help to see the flags)" : ""
      }`,
    );
    Deno.exit(2);
  }
  if (commandLine.print !== undefined) {
    console.log(commandLine.print.trimEnd());
    return;
  }
  // Signal handlers go in before anything starts (MCP servers included), so
  // a signal sent at any time is handled, and before the server announces
  // itself, so one sent as soon as "Listening on" appears is too.
  // What stop() must stop, as it comes to exist.
  const running: { mcp?: ManagedToolRegistry; app?: DagstreamApp; server?: Deno.HttpServer } = {};
  let stopping = false;
  const stop = async (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    console.error(JSON.stringify({ time: new Date().toISOString(), msg: "shutdown", signal }));
    const began = performance.now();
    const deadline = setTimeout(() => {
      logToStderr({ msg: "shutdown deadline passed", deadlineMs: SHUTDOWN_DEADLINE_MS });
      Deno.exit(0);
    }, SHUTDOWN_DEADLINE_MS);
    if (running.app !== undefined) await running.app.shutdown();
    else await running.mcp?.close(); // stopped while MCP servers were starting
    await running.server?.shutdown();
    clearTimeout(deadline);
    logToStderr({
      msg: "shutdown complete",
      durationMs: Math.round((performance.now() - began) * 10) / 10,
    });
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void stop(signal));
  }
  if (commandLine.mcpConfig !== undefined) {
    await startMcp(commandLine.mcpConfig, commandLine.config.taskTimeout, (source) => {
      running.mcp = source; // from now on, stop() closes it
    });
    if (stopping) return; // a signal came while the servers started: stop() closed them
  }
  const app = running.app = createApp({ ...commandLine.config, mcp: running.mcp });
  let server: Deno.HttpServer;
  try {
    server = running.server = Deno.serve({
      hostname: commandLine.host,
      port: commandLine.port,
      onListen({ hostname, port }) {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        console.log(`Listening on http://${host}:${port}/`);
      },
    }, (request) => app.handle(request));
  } catch (error) {
    await app.shutdown();
    if (error instanceof Deno.errors.AddrInUse) {
      console.error(`error: port ${commandLine.port} is already in use (try --port 0)`);
    } else if (error instanceof Deno.errors.AddrNotAvailable) {
      console.error(`error: cannot listen on ${commandLine.host}: no such local address`);
    } else if (
      error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
    ) {
      console.error(`error: no permission to listen on ${commandLine.host}:${commandLine.port}`);
    } else {
      console.error(
        `error: cannot listen on ${commandLine.host}:${commandLine.port}: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    Deno.exit(2);
  }
  await server.finished;
}

/**
 * Reads the MCP configuration, checks that the process may do what it asks
 * (exits with status 2 and the exact flags otherwise), and connects to
 * every server. A server that cannot start is logged and left `down` (and
 * retried); the others serve their tools.
 */
async function startMcp(
  path: string,
  taskTimeout: number | undefined,
  created: (source: ManagedToolRegistry) => void,
): Promise<void> {
  const fail = (message: string): never => {
    console.error(`dagstream: ${message}`);
    Deno.exit(2);
  };
  let config: McpConfig;
  try {
    config = await loadMcpConfig(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return fail(
        `--mcp-config needs permission to read ${path} (and to run its servers): ` +
          `start with \`deno task serve:mcp --mcp-config ${path}\`, or see docs/OPERATIONS.md`,
      );
    }
    if (error instanceof McpConfigError) return fail(error.message);
    throw error;
  }
  const permissions = mcpPermissions(config, path);
  const narrow = denoServeCommand(permissions, redactSecrets(Deno.args));
  const missing = missingPermissions(permissions);
  if (missing.length > 0) {
    return fail(
      `the MCP servers of ${path} need more permissions (${missing.join(", ")}). ` +
        `The narrowest command that runs them:\n  ${narrow}\n` +
        `or, with broad permissions: deno task serve:mcp --mcp-config ${path}`,
    );
  }
  for (const warning of config.warnings) logToStderr({ msg: "mcp config", warning });
  logToStderr({ msg: "mcp permissions", narrowest: narrow });
  // Loaded only now: the SDK is not part of a server without MCP servers.
  const { McpToolSource } = await import("../tools/mcp.ts");
  const source = new McpToolSource(config, {
    callTimeoutMs: taskTimeout ?? SERVER_DEFAULTS.taskTimeout,
    log: logToStderr,
  });
  created(source);
  await source.start();
  const health = source.health();
  const names = Object.keys(health);
  logToStderr({
    msg: "mcp servers",
    up: names.filter((n) => health[n].status === "up"),
    down: names.filter((n) => health[n].status === "down"),
  });
}

/** The permissions of `needed` this process lacks, as flags. */
function missingPermissions(needed: McpPermissions): string[] {
  const missing: string[] = [];
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  for (const path of needed.read) {
    if (!granted({ name: "read", path })) missing.push(`--allow-read=${path}`);
  }
  for (const command of needed.run) {
    if (!granted({ name: "run", command })) missing.push(`--allow-run=${command}`);
  }
  for (const variable of needed.env) {
    if (!granted({ name: "env", variable })) missing.push(`--allow-env=${variable}`);
  }
  for (const host of needed.net) {
    if (!granted({ name: "net", host })) missing.push(`--allow-net=${host}`);
  }
  try {
    // The SDK's dependencies read a few variables (OSTYPE…) when loaded:
    // they need --ignore-env (read as unset) or --allow-env.
    Deno.env.get("OSTYPE");
  } catch {
    missing.push("--ignore-env");
  }
  return missing;
}

if (import.meta.main) await main();
