/**
 * The command line of the bundled server: `deno task serve [flags]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createApp, VERSION } from "./app.ts";
import type { ServerConfig } from "./config.ts";

const HELP = `dagstream ${VERSION} — run DAGs of tool calls and stream their progress as SSE

Usage: deno task serve [flags]

Flags (each also read from the environment variable shown):
  --host HOST                 interface to bind (DAGSTREAM_HOST)            [127.0.0.1]
  --port PORT                 port; 0 picks a free one (DAGSTREAM_PORT)     [8000]
  --token TOKEN               bearer token required on every route but /health (DAGSTREAM_TOKEN)
  --cors-origin ORIGIN        allow this origin (or *) by CORS (DAGSTREAM_CORS_ORIGIN) [off]
  --max-concurrency N         tasks in flight per run (DAGSTREAM_MAX_CONCURRENCY) [unbounded]
  --task-timeout MS           per-task timeout (DAGSTREAM_TASK_TIMEOUT)     [30000]
  --scheduling MODE           eager | layered (DAGSTREAM_SCHEDULING)        [eager]
  --max-tasks N               tasks per DAG (DAGSTREAM_MAX_TASKS)           [1000]
  --max-body-bytes N          request body limit (DAGSTREAM_MAX_BODY_BYTES) [1048576]
  --max-run-log-bytes N       events kept per run (DAGSTREAM_MAX_RUN_LOG_BYTES) [a whole run: max-tasks x (payload cap + 1 KiB)]
  --max-active-runs N         runs executing at once (DAGSTREAM_MAX_ACTIVE_RUNS) [1000]
  --max-runs N                runs kept, finished ones included (DAGSTREAM_MAX_RUNS) [1000]
  --run-ttl-seconds N         how long finished runs are kept (DAGSTREAM_RUN_TTL_SECONDS) [600]
  --heartbeat-ms MS           keep-alive comment when a stream is idle (DAGSTREAM_HEARTBEAT_MS) [15000]
  --retry-ms MS               retry: announced to SSE clients (DAGSTREAM_RETRY_MS) [2000]
  --max-event-payload-bytes N cap on one event's data (DAGSTREAM_MAX_EVENT_PAYLOAD_BYTES) [65536]
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
  "max-active-runs": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "max-runs": { min: 1, max: Number.MAX_SAFE_INTEGER },
  "run-ttl-seconds": { min: 0, max: 31_536_000 },
  "heartbeat-ms": { min: 0, max: 2147483647 },
  "retry-ms": { min: 0, max: 2147483647 },
  "max-event-payload-bytes": { min: 1024, max: Number.MAX_SAFE_INTEGER },
} as const;

type NumericFlag = keyof typeof NUMERIC;

/** Thrown for a bad flag; main prints it and exits with status 2. */
class UsageError extends Error {}

/** The server settings and address given by flags and environment. */
export interface CommandLine {
  /** Interface to bind. */
  host: string;
  /** Port to bind (0: any free one). */
  port: number;
  /** Everything else. */
  config: ServerConfig;
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
  const stringFlags = ["host", "token", "cors-origin", "scheduling", ...Object.keys(NUMERIC)];
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ...Object.fromEntries(stringFlags.map((name) => [name, { type: "string" as const }])),
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
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
  return {
    host: get("host") ?? "127.0.0.1",
    port: num("port") ?? 8000,
    config: {
      token: get("token") || undefined,
      corsOrigin: get("cors-origin") || undefined,
      maxConcurrency: num("max-concurrency"),
      taskTimeout: num("task-timeout"),
      scheduling,
      maxTasks: num("max-tasks"),
      maxBodyBytes: num("max-body-bytes"),
      maxRunLogBytes: num("max-run-log-bytes"),
      maxActiveRuns: num("max-active-runs"),
      maxRuns: num("max-runs"),
      runTtlSeconds: num("run-ttl-seconds"),
      heartbeatMs: num("heartbeat-ms"),
      retryMs: num("retry-ms"),
      maxEventPayloadBytes: num("max-event-payload-bytes"),
    },
  };
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
    console.error(`dagstream: ${error.message}\nRun with --help to see the flags.`);
    Deno.exit(2);
  }
  if (commandLine.print !== undefined) {
    console.log(commandLine.print.trimEnd());
    return;
  }
  const app = createApp(commandLine.config);
  // Signal handlers go in before the server announces itself, so a signal
  // sent as soon as "Listening on" appears is always handled. (A handler
  // runs in a later turn, once `server` below is set.)
  let stopping = false;
  const stop = async (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    console.error(JSON.stringify({ time: new Date().toISOString(), msg: "shutdown", signal }));
    const deadline = setTimeout(() => Deno.exit(0), SHUTDOWN_DEADLINE_MS);
    await app.shutdown();
    await server.shutdown();
    clearTimeout(deadline);
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void stop(signal));
  }
  const server = Deno.serve({
    hostname: commandLine.host,
    port: commandLine.port,
    onListen({ hostname, port }) {
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      console.log(`Listening on http://${host}:${port}/`);
    },
  }, (request) => app.handle(request));
  await server.finished;
}

if (import.meta.main) await main();
