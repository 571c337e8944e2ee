/**
 * The bundled server's command line: its flags, each also read from a
 * `DAGSTREAM_*` environment variable, and the `--help` text, which is
 * written from the same table and the same defaults the server uses.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { MAX_TIMER_MS } from "../dag/defaults.ts";
import { describeError } from "../dag/errors.ts";
import {
  defaultRunLogBytes,
  describeStore,
  isInstanceId,
  isRedisUrl,
  maskCredentials,
  SERVER_DEFAULTS,
  type ServerConfig,
} from "./config.ts";
import { VERSION } from "./routes.ts";
import { isHttpAllowEntry } from "../tools/http-allowlist.ts";

/**
 * Where the server listens unless told otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LISTEN_DEFAULTS } from "./flags.ts";
 * assert.deepEqual(LISTEN_DEFAULTS, { host: "127.0.0.1", port: 8000 });
 * ```
 */
export const LISTEN_DEFAULTS = { host: "127.0.0.1", port: 8000 } as const;

/** The settings of {@linkcode ServerConfig} that are numbers. */
type NumericSetting = {
  [K in keyof ServerConfig]-?: ServerConfig[K] extends number | undefined ? K : never;
}[keyof ServerConfig];

/** A flag that sets a number of {@linkcode ServerConfig}. */
interface NumericFlag {
  /** The setting it sets. */
  setting: NumericSetting;
  /** Its value's name in the help text. */
  arg: "N" | "MS";
  /** Least value. */
  min: number;
  /** Greatest value (default `Number.MAX_SAFE_INTEGER`). */
  max?: number;
  /** What it sets, in a few words. */
  help: string;
  /** The default as the help text shows it, when it is not in `SERVER_DEFAULTS`. */
  shown?: string;
}

/** The flags that set numbers of {@linkcode ServerConfig}, in the help text's order. */
const NUMERIC_FLAGS: Readonly<Record<string, NumericFlag>> = {
  "max-concurrency": {
    setting: "maxConcurrency",
    arg: "N",
    min: 1,
    help: "tasks in flight per run",
    shown: "unbounded",
  },
  "task-timeout": {
    setting: "taskTimeout",
    arg: "MS",
    min: 1,
    max: MAX_TIMER_MS,
    help: "per-task timeout",
  },
  "max-tasks": { setting: "maxTasks", arg: "N", min: 1, max: 10_000_000, help: "tasks per DAG" },
  "max-body-bytes": { setting: "maxBodyBytes", arg: "N", min: 1, help: "request body limit" },
  "max-run-log-bytes": {
    setting: "maxRunLogBytes",
    arg: "N",
    min: 1,
    help: "events kept per run",
    shown: `a whole run: ${
      defaultRunLogBytes(SERVER_DEFAULTS.maxTasks, SERVER_DEFAULTS.maxEventPayloadBytes)
    } at the defaults`,
  },
  "max-log-bytes-total": {
    setting: "maxLogBytesTotal",
    arg: "N",
    min: 1,
    help: "bytes of all run logs together",
  },
  "max-watchers": {
    setting: "maxWatchers",
    arg: "N",
    min: 1,
    help: "open event streams, server-wide",
  },
  "max-active-runs": { setting: "maxActiveRuns", arg: "N", min: 1, help: "runs executing at once" },
  "max-runs": { setting: "maxRuns", arg: "N", min: 1, help: "runs kept, finished ones included" },
  "max-queued-runs": {
    setting: "maxQueuedRuns",
    arg: "N",
    min: 1,
    help: "runs waiting in the shared queue (Redis store)",
  },
  "run-ttl-seconds": {
    setting: "runTtlSeconds",
    arg: "N",
    min: 0,
    max: 365 * 24 * 3600,
    help: "how long finished runs are kept",
  },
  "heartbeat-ms": {
    setting: "heartbeatMs",
    arg: "MS",
    min: 0,
    max: MAX_TIMER_MS,
    help: "keep-alive comment when a stream is idle",
  },
  "retry-ms": {
    setting: "retryMs",
    arg: "MS",
    min: 0,
    max: MAX_TIMER_MS,
    help: "retry: announced to SSE clients",
  },
  "max-event-payload-bytes": {
    setting: "maxEventPayloadBytes",
    arg: "N",
    min: 1024,
    help: "cap on one event's data",
  },
  "max-run-output-bytes": {
    setting: "maxRunOutputBytes",
    arg: "N",
    min: 1,
    help: "JSON of a run's tool arguments and outputs",
  },
  "max-kept-run-bytes": {
    setting: "maxKeptRunBytes",
    arg: "N",
    min: 0,
    help: "logs, outputs and tasks kept for finished runs",
  },
  "max-http-response-bytes": {
    setting: "maxHttpResponseBytes",
    arg: "N",
    min: 1,
    help: "largest response body http:request reads",
  },
};

/** The flag `--port`: not a setting of the app, but of where it listens. */
const PORT: Pick<NumericFlag, "min" | "max"> = { min: 0, max: 65535 };

/** The variable of `--allowed-host` (plural: it lists names). */
const ALLOWED_HOSTS_ENV = "DAGSTREAM_ALLOWED_HOSTS";

/** The environment variable a flag is read from when it is not given. */
function envName(flag: string): string {
  return `DAGSTREAM_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * One entry of the help text: the flag and its value's name, what it does
 * (a line break in `help` continues it under itself), its environment
 * variable and its default.
 */
function helpLine(
  flag: string,
  arg: string,
  help: string,
  shown?: string,
  env = envName(flag),
): string {
  const text = help.replaceAll("\n", `\n${" ".repeat(30)}`);
  return `  ${`--${flag} ${arg}`.padEnd(27)} ${text} (${env})${
    shown === undefined ? "" : ` [${shown}]`
  }`;
}

/** The numeric defaults `SERVER_DEFAULTS` gives, by setting. */
const NUMERIC_DEFAULTS: Partial<Record<NumericSetting, number>> = SERVER_DEFAULTS;

/**
 * The `--help` text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HELP } from "./flags.ts";
 * assert.match(HELP, /--task-timeout MS +per-task timeout \(DAGSTREAM_TASK_TIMEOUT\) \[30000\]/);
 * assert.match(HELP, /--port PORT .*\[8000\]/);
 * ```
 */
export const HELP: string = [
  `dagstream ${VERSION} — run DAGs of tool calls and stream their progress as SSE`,
  "",
  "Usage: deno task serve [flags]",
  "",
  "Flags (each also read from the environment variable shown):",
  helpLine("host", "HOST", "interface to bind", LISTEN_DEFAULTS.host),
  helpLine("port", "PORT", "port; 0 picks a free one", String(LISTEN_DEFAULTS.port)),
  helpLine("token", "TOKEN", "bearer token required on every route but /health and the page"),
  helpLine(
    "cors-origin",
    "ORIGIN",
    "allow this origin (or *) by CORS; repeatable",
    "off",
    `${envName("cors-origin")}, comma-separated`,
  ),
  helpLine(
    "allowed-host",
    "NAME",
    "a Host header name to accept besides localhost, 127.0.0.1 and [::1];\nrepeatable",
    "none",
    `${ALLOWED_HOSTS_ENV}, comma-separated`,
  ),
  helpLine(
    "store",
    "URL",
    "memory, or a redis:// URL to share runs between instances",
    "memory",
  ),
  helpLine(
    "instance-id",
    "ID",
    "this instance's id, in /health and on its runs (letters, digits, . _ -)",
    "random",
  ),
  helpLine("scheduling", "MODE", "eager | layered", SERVER_DEFAULTS.scheduling),
  ...Object.entries(NUMERIC_FLAGS).map(([name, flag]) =>
    helpLine(name, flag.arg, flag.help, flag.shown ?? String(NUMERIC_DEFAULTS[flag.setting]))
  ),
  helpLine(
    "allow-http",
    "HOST[:PORT]",
    "let the http:request tool call HOST (every port, or only PORT); repeatable.\n" +
      "Hosts as written in URLs: localhost and 127.0.0.1 are different hosts",
    "off",
    `${envName("allow-http")}, comma-separated`,
  ),
  helpLine(
    "mcp-config",
    "FILE",
    'MCP servers whose tools runs may call, as <server>:<tool>: an { "mcpServers": … } file;\n' +
      "needs more permissions: use `deno task serve:mcp` (see docs/OPERATIONS.md)",
    "none",
  ),
  "  -h, --help                  show this help",
  "  --version                   show the version",
  "",
].join("\n");

/**
 * Thrown for a bad flag; main prints it (one line) and exits with status 2.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCommandLine, UsageError } from "./flags.ts";
 * assert.throws(() => parseCommandLine(["--port", "x"], () => undefined), UsageError);
 * ```
 */
export class UsageError extends Error {
  /** Whether to point at `--help` too (an unknown or malformed flag). */
  readonly pointAtHelp: boolean;
  /** Creates the error; `pointAtHelp` when `--help` would help. */
  constructor(message: string, pointAtHelp = false) {
    super(message);
    this.name = "UsageError";
    this.pointAtHelp = pointAtHelp;
  }
}

/**
 * The server settings and address given by flags and environment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CommandLine, parseCommandLine } from "./flags.ts";
 * const commandLine: CommandLine = parseCommandLine(["--port", "0"], () => undefined);
 * assert.equal(commandLine.port, 0);
 * ```
 */
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
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCommandLine } from "./flags.ts";
 * const env = (name: string) => ({ DAGSTREAM_MAX_TASKS: "50" } as Record<string, string>)[name];
 * const { host, port, config } = parseCommandLine(["--task-timeout", "5000"], env);
 * assert.deepEqual([host, port], ["127.0.0.1", 8000]);
 * assert.equal(config.taskTimeout, 5000);
 * assert.equal(config.maxTasks, 50);
 * assert.equal(config.loopbackOnly, true);
 * ```
 */
export function parseCommandLine(
  args: string[],
  env: (name: string) => string | undefined,
): CommandLine {
  const stringFlags = [
    "host",
    "port",
    "token",
    "store",
    "instance-id",
    "scheduling",
    "mcp-config",
  ];
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ...Object.fromEntries(
          [...stringFlags, ...Object.keys(NUMERIC_FLAGS)]
            .map((name) => [name, { type: "string" as const }]),
        ),
        "allowed-host": { type: "string", multiple: true },
        "cors-origin": { type: "string", multiple: true },
        "allow-http": { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(describeError(error), true);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values.help) return { host: "", port: 0, config: {}, print: HELP };
  if (values.version) return { host: "", port: 0, config: {}, print: `dagstream ${VERSION}\n` };
  const get = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === "string" ? value : env(envName(name));
  };
  const num = (
    name: string,
    { min, max = Number.MAX_SAFE_INTEGER }: Pick<NumericFlag, "min" | "max">,
  ) => {
    const raw = get(name);
    if (raw === undefined || raw === "") return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  };
  const scheduling = get("scheduling");
  if (scheduling !== undefined && scheduling !== "eager" && scheduling !== "layered") {
    throw new UsageError(`--scheduling must be "eager" or "layered", got "${scheduling}"`);
  }
  const host = get("host") ?? LISTEN_DEFAULTS.host;
  const config: ServerConfig = {
    token: checkedToken(get("token")),
    instanceId: checkedInstanceId(get("instance-id")),
    store: checkedStore(get("store")),
    corsOrigin: listFlag(
      "cors-origin",
      values["cors-origin"],
      env(envName("cors-origin")),
      (origin) => origin,
      (origin) => origin === "*" || /^https?:\/\/[^/?#\s]+$/i.test(origin),
      "* or an origin like https://app.example (scheme, host, optional port)",
    ),
    allowedHosts: listFlag(
      "allowed-host",
      values["allowed-host"],
      env(ALLOWED_HOSTS_ENV),
      (name) => name.toLowerCase(),
      (name) => /^(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])$/.test(name),
      "a host name without port or scheme (e.g. example.com)",
    ),
    allowHttp: listFlag(
      "allow-http",
      values["allow-http"],
      env(envName("allow-http")),
      (entry) => entry.toLowerCase(),
      isHttpAllowEntry,
      "HOST or HOST:PORT: a host name, an IPv4 address or an IPv6 address in brackets, " +
        "without scheme, path or wildcard (e.g. api.example.com, 127.0.0.1:9000, [::1]:8080)",
    ),
    loopbackOnly: isLoopback(host),
    scheduling,
  };
  for (const [name, flag] of Object.entries(NUMERIC_FLAGS)) config[flag.setting] = num(name, flag);
  return {
    host,
    port: num("port", PORT) ?? LISTEN_DEFAULTS.port,
    mcpConfig: get("mcp-config") || undefined,
    config,
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

/**
 * A repeatable flag's values, else its environment variable's
 * comma-separated ones: trimmed, `tidy`-ed, blanks dropped, each one
 * checked; undefined when there are none.
 */
function listFlag(
  name: string,
  flags: unknown,
  env: string | undefined,
  tidy: (value: string) => string,
  valid: (value: string) => boolean,
  expected: string,
): string[] | undefined {
  const list = Array.isArray(flags) && flags.length > 0 ? flags : env?.split(",") ?? [];
  const values = list.map((value) => tidy(String(value).trim())).filter((value) => value !== "");
  const wrong = values.find((value) => !valid(value));
  if (wrong !== undefined) {
    throw new UsageError(`--${name} must be ${expected}, got "${wrong.slice(0, 100)}"`);
  }
  return values.length > 0 ? values : undefined;
}

/**
 * Whether binding `host` listens on loopback addresses only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLoopback } from "./flags.ts";
 * assert.equal(isLoopback("127.0.0.1"), true);
 * assert.equal(isLoopback("[::1]"), true);
 * assert.equal(isLoopback("0.0.0.0"), false);
 * ```
 */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return name === "localhost" || name === "::1" || /^127(?:\.\d{1,3}){3}$/.test(name);
}

/**
 * `args` with the value of `--token` replaced by `***`, and the credentials of
 * a `--store` URL too, for anything printed (a command line to copy, a log
 * line).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactSecrets } from "./flags.ts";
 * assert.deepEqual(redactSecrets(["--token", "s3cret", "--token=s3cret", "--port", "0"]), [
 *   "--token",
 *   "***",
 *   "--token=***",
 *   "--port",
 *   "0",
 * ]);
 * assert.deepEqual(redactSecrets(["--store", "redis://app:s3cret@cache:6379"]), [
 *   "--store",
 *   "redis://***@cache:6379",
 * ]);
 * ```
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
    } else if (arg === "--store" && i + 1 < args.length) {
      out.push(arg, maskCredentials(args[++i]));
    } else if (arg.startsWith("--store=")) {
      out.push(`--store=${maskCredentials(arg.slice("--store=".length))}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** `--instance-id`, checked; undefined (a random id) when not given. */
function checkedInstanceId(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!isInstanceId(raw)) {
    throw new UsageError(
      `--instance-id must be 1-64 letters, digits, ".", "_" or "-" (starting with a letter or ` +
        `digit), got ${JSON.stringify(raw.slice(0, 100))}`,
    );
  }
  return raw;
}

/** `--store`, checked: `memory` or a Redis URL (shown without its password when refused). */
function checkedStore(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (raw !== "memory" && !isRedisUrl(raw)) {
    throw new UsageError(
      `--store must be "memory" or a redis:// URL (redis://[user:pass@]host:port[/db]), ` +
        `got ${describeStore(raw)}`,
    );
  }
  return raw;
}
