/**
 * The bundled server's process, `deno task serve [flags]`: reads the
 * command line (`flags.ts`), starts the MCP servers it names, serves the
 * app, and on SIGINT or SIGTERM shuts it down and exits.
 *
 * @module
 */

import { describeError } from "../dag/errors.ts";
import { createApp, type DagstreamApp } from "./app.ts";
import { type CommandLine, parseCommandLine, redactSecrets, UsageError } from "./flags.ts";
import { flushLog, logToStderr, roundMs } from "./log.ts";
import type { ManagedToolRegistry } from "../tools/registry.ts";
import {
  denoServeCommand,
  loadMcpConfig,
  type McpConfig,
  McpConfigError,
  type McpPermissions,
  mcpPermissions,
} from "../tools/mcp-config.ts";

/** Most ms a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 5000;

/** Environment variables the Redis client reads. */
const REDIS_CLIENT_ENV = ["REDIS_DEBUG_MAINTENANCE", "REDIS_EMIT_DIAGNOSTICS"];

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
    exit(2);
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
    logToStderr({ msg: "shutdown", signal });
    const began = performance.now();
    const deadline = setTimeout(() => {
      logToStderr({ msg: "shutdown deadline passed", deadlineMs: SHUTDOWN_DEADLINE_MS });
      exit(0);
    }, SHUTDOWN_DEADLINE_MS);
    if (running.app !== undefined) await running.app.shutdown();
    else await running.mcp?.close(); // stopped while MCP servers were starting
    await running.server?.shutdown();
    clearTimeout(deadline);
    logToStderr({ msg: "shutdown complete", durationMs: roundMs(performance.now() - began) });
    exit(0);
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
  const store = commandLine.config.store;
  if (store !== undefined && store !== "memory") {
    // The Redis client reads these two; without them it could not connect.
    const missing = REDIS_CLIENT_ENV.filter((variable) =>
      Deno.permissions.querySync({ name: "env", variable }).state !== "granted"
    );
    if (missing.length > 0) {
      console.error(
        `dagstream: --store redis:// needs --allow-env for ${missing.join(", ")} ` +
          `(deno task serve grants them)`,
      );
      exit(2);
    }
  }
  const app = running.app = createApp({ ...commandLine.config, mcp: running.mcp });
  if (app.config.allowHttp.length > 0) {
    // The hosts only: what calls send (headers, bodies) is never logged.
    logToStderr({
      msg: "http:request enabled",
      allowHttp: app.config.allowHttp,
      maxResponseBytes: app.config.maxHttpResponseBytes,
    });
  }
  let server: Deno.HttpServer;
  try {
    server = running.server = Deno.serve({
      hostname: commandLine.host,
      port: commandLine.port,
      onListen({ hostname, port }) {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        flushLog(); // what happened while starting is on stderr before this line
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
        `error: cannot listen on ${commandLine.host}:${commandLine.port}: ${describeError(error)}`,
      );
    }
    exit(2);
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
    exit(2);
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
    callTimeoutMs: taskTimeout,
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

/** Exits once the log is written: `Deno.exit` skips the "unload" event. */
function exit(code: number): never {
  flushLog();
  Deno.exit(code);
}
