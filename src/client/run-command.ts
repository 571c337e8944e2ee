/**
 * `deno task run <dag.json>`: runs a DAG and shows it live in the
 * terminal, in this process (the built-in tools, and with `--mcp-config`
 * the tools of MCP servers) or on a dagstream server (`--server URL`).
 * The events are folded by `run-state.ts`, as the page at `GET /` folds
 * them, and drawn by `terminal-view.ts`; `--help` says the rest.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isHttpAllowEntry } from "../tools/http-allowlist.ts";
import { describeError } from "../dag/errors.ts";
import type { ManagedToolRegistry } from "../tools/registry.ts";
import { EventClock } from "./event-clock.ts";
import { openLocalRun } from "./local-run.ts";
import { openMcpTools } from "./mcp-tools.ts";
import { serverBase, startRemoteRun } from "./remote-run.ts";
import { applyRunEvent, createRunState, type RunState, succeeded } from "./run-state.ts";
import { type RunSource, RunSourceError } from "./run-source.ts";
import { oneLine, TerminalView } from "./terminal-view.ts";

/**
 * The exit statuses of the command.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXIT } from "./run-command.ts";
 * assert.deepEqual(Object.values(EXIT), [0, 1, 2, 130]);
 * ```
 */
export const EXIT = {
  /** The run is over and every task succeeded. */
  succeeded: 0,
  /** The run is over and some task failed, was skipped or was cancelled. */
  failed: 1,
  /** A usage error, a DAG file that cannot be read or is invalid, a server that cannot be reached or refuses the run. */
  unusable: 2,
  /** Ctrl-C (SIGINT): the run was cancelled. */
  interrupted: 130,
} as const;

/**
 * The command's `--help`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { USAGE } from "./run-command.ts";
 * assert.match(USAGE, /--server URL/);
 * ```
 */
export const USAGE = `Usage: deno task run [--server URL [--token T]] <dag.json>
       deno task run:mcp --mcp-config FILE <dag.json>

Runs the DAG of <dag.json> and shows each task live: its state, its time,
its progress, and once the run is over a summary.

  (no --server)       runs the DAG in this process, on the built-in mock:* tools
  --allow-http HOST[:PORT]
                      also offers http:request, calling that host (every port
                      without :PORT); repeatable
  --mcp-config FILE   also offers the tools of the MCP servers of FILE (the
                      "mcpServers" JSON of MCP clients); starting them takes the
                      permissions of deno task run:mcp
  --server URL        runs the DAG on the dagstream server at URL instead
  --token T           the server's bearer token (default: $DAGSTREAM_TOKEN)
  -h, --help          prints this help

On a terminal the task list is redrawn in place, in colour. On a pipe, or
with NO_COLOR set, plain lines are appended: one as each task starts, one as
it ends, one per tenth of a task's progress, then the summary.
Ctrl-C cancels the run (on a server too); a second Ctrl-C exits at once.

Exit status: 0 every task succeeded; 1 the run ended with a failed, skipped
or cancelled task; 2 usage error, DAG file unreadable or invalid, server
unreachable or refusing the run; 130 interrupted by Ctrl-C.
`;

/**
 * A command line that cannot be used; the message says why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunArgs, UsageError } from "./run-command.ts";
 * assert.throws(() => parseRunArgs(["--nope", "dag.json"], () => undefined), UsageError);
 * ```
 */
export class UsageError extends Error {
  /** A usage error said by `message`. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * What the command line asks for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunArgs } from "./run-command.ts";
 * const args: RunArgs = { help: false, file: "examples/diamond.json" };
 * assert.equal(args.server, undefined);
 * ```
 */
export interface RunArgs {
  /** `--help`: print the usage and nothing else. */
  help: boolean;
  /** The DAG file. */
  file: string;
  /** `--server`: the server's base URL. */
  server?: URL;
  /** `--token`, else `DAGSTREAM_TOKEN`: with `--server` only. */
  token?: string;
  /** `--mcp-config`: in-process runs only. */
  mcpConfig?: string;
  /** `--allow-http HOST[:PORT]` (repeatable): in-process runs only; offers `http:request`. */
  allowHttp?: string[];
}

/**
 * Reads the command line (`env` reads an environment variable, undefined
 * when unset or not readable).
 *
 * @throws {UsageError} for an unknown flag, a missing value, no DAG file or
 *   more than one, a flag that does not go with the others
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunArgs } from "./run-command.ts";
 * const env = (name: string) => name === "DAGSTREAM_TOKEN" ? "s3cret" : undefined;
 * const args = parseRunArgs(["--server", "http://127.0.0.1:8000", "dag.json"], env);
 * assert.equal(args.server?.href, "http://127.0.0.1:8000/");
 * assert.equal(args.token, "s3cret"); // from the environment
 * assert.equal(parseRunArgs(["dag.json"], env).token, undefined); // only with --server
 * assert.throws(() => parseRunArgs(["--server", "ftp://x", "dag.json"], env), /--server/);
 * assert.throws(() => parseRunArgs([], env), /one DAG file/);
 * assert.equal(parseRunArgs(["--help"], env).help, true);
 * ```
 */
export function parseRunArgs(
  args: readonly string[],
  env: (name: string) => string | undefined,
): RunArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        server: { type: "string" },
        token: { type: "string" },
        "mcp-config": { type: "string" },
        "allow-http": { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(parseArgsMessage(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true, file: "" };
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "give one DAG file to run"
        : `give one DAG file to run, not ${positionals.length}`,
    );
  }
  const result: RunArgs = { help: false, file: positionals[0] };
  if (values.server !== undefined) {
    const base = serverBase(values.server);
    if (base === undefined) {
      throw new UsageError(
        `--server must be an http:// or https:// URL, got ${JSON.stringify(values.server)}`,
      );
    }
    result.server = base;
    if (values["mcp-config"] !== undefined) {
      throw new UsageError("--mcp-config is for runs in this process: a server has its own");
    }
    if (values["allow-http"] !== undefined) {
      throw new UsageError("--allow-http is for runs in this process: a server has its own");
    }
    const token = values.token ?? env("DAGSTREAM_TOKEN");
    if (token === "") throw new UsageError("--token must not be empty");
    if (token !== undefined) result.token = token;
  } else {
    if (values.token !== undefined) throw new UsageError("--token goes with --server");
    if (values["mcp-config"] !== undefined) result.mcpConfig = values["mcp-config"];
    const allowHttp = values["allow-http"]?.map((entry) => entry.trim().toLowerCase());
    if (allowHttp !== undefined) {
      const bad = allowHttp.find((entry) => !isHttpAllowEntry(entry));
      if (bad !== undefined) {
        throw new UsageError(
          `--allow-http takes HOST or HOST:PORT (e.g. api.example.com, 127.0.0.1:9000), got ${
            JSON.stringify(bad)
          }`,
        );
      }
      result.allowHttp = allowHttp;
    }
  }
  return result;
}

/** `parseArgs`'s complaint, in this command's words. */
function parseArgsMessage(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  const message = describeError(error);
  const flag = /option '([^' ]+)/i.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) return `unknown flag ${flag}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) return `${flag} needs a value`;
  return message;
}

/**
 * The exit status for a run that ended (or was interrupted) in `state`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exitStatus } from "./run-command.ts";
 * import { createRunState } from "./run-state.ts";
 * const state = createRunState({ tasks: [{ id: "a", tool: "mock:echo" }] });
 * assert.equal(exitStatus(state, false), 1); // not over: not a success
 * assert.equal(exitStatus(state, true), 130);
 * state.over = true;
 * state.byId.get("a")!.state = "success";
 * assert.equal(exitStatus(state, false), 0);
 * ```
 */
export function exitStatus(state: RunState, interrupted: boolean): number {
  if (interrupted) return EXIT.interrupted;
  return succeeded(state) ? EXIT.succeeded : EXIT.failed;
}

/** Ms between two redraws of a live view, at least. */
const MIN_REDRAW_MS = 16;
/** Ms between clock ticks of a live view (running times move on). */
const TICK_MS = 100;
/** Ms to wait, after a Ctrl-C, for the server to say the run is over. */
const SERVER_CANCEL_WAIT_MS = 5000;

/** Writes text to a stream whole; a reader that went away (a closed pipe) is ignored from then on. */
class Output {
  readonly #stream: { writeSync(bytes: Uint8Array): number };
  readonly #encoder = new TextEncoder();
  #gone = false;

  constructor(stream: { writeSync(bytes: Uint8Array): number }) {
    this.#stream = stream;
  }

  write(text: string): void {
    if (text === "" || this.#gone) return;
    let bytes = this.#encoder.encode(text);
    try {
      while (bytes.length > 0) bytes = bytes.subarray(this.#stream.writeSync(bytes));
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      this.#gone = true;
    }
  }
}

const stdout = new Output(Deno.stdout);
const stderr = new Output(Deno.stderr);

/** An environment variable, or undefined when unset or not readable. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The terminal's size, with 80×24 for a terminal that does not say (a pseudo-terminal may not). */
function terminalSize(): { columns: number; rows: number } {
  try {
    const { columns, rows } = Deno.consoleSize();
    return { columns: columns > 0 ? columns : 80, rows: rows > 0 ? rows : 24 };
  } catch {
    return { columns: 80, rows: 24 };
  }
}

/** Writes `error: …` and, for an invalid DAG or MCP configuration, each problem on its own line. */
function reportFailure(message: string, issues: readonly { path: string; message: string }[]) {
  stderr.write(`error: ${oneLine(message)}\n`);
  for (const issue of issues) stderr.write(`  ${oneLine(issue.path)}: ${oneLine(issue.message)}\n`);
}

/** What the command says of an MCP client's log record: problems only. */
function mcpNote(record: Record<string, unknown>): string | undefined {
  const server = JSON.stringify(String(record.server));
  const error = oneLine(String(record.error ?? ""));
  if (record.msg === "mcp server down") return `mcp: server ${server} is down: ${error}`;
  if (record.msg === "mcp server lost") return `mcp: server ${server} was lost: ${error}`;
  return undefined;
}

/** Runs the command; resolves with its exit status. */
async function main(args: readonly string[]): Promise<number> {
  let options: RunArgs;
  try {
    options = parseRunArgs(args, readEnv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    stderr.write(`error: ${error.message} (run with --help to see the flags)\n`);
    return EXIT.unusable;
  }
  if (options.help) {
    stdout.write(USAGE);
    return EXIT.succeeded;
  }
  const { file } = options;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ? "no permission to read it (run with --allow-read)"
      : describeError(error);
    reportFailure(`cannot read ${file}: ${reason}`, []);
    return EXIT.unusable;
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    reportFailure(`${file} is not valid JSON: ${describeError(error)}`, []);
    return EXIT.unusable;
  }

  const noColor = readEnv("NO_COLOR");
  const live = Deno.stdout.isTerminal() && (noColor === undefined || noColor === "");
  // While a live block is on screen, notes on a terminal's stderr would
  // break it: they wait until it is final.
  const deferNotes = live && Deno.stderr.isTerminal();
  let viewing = false;
  const deferred: string[] = [];
  const note = (line: string) => {
    if (viewing && deferNotes) deferred.push(line);
    else stderr.write(`${line}\n`);
  };

  let interrupts = 0;
  let onInterrupt = () => {};
  const sigint = () => {
    if (++interrupts > 1) Deno.exit(EXIT.interrupted); // a second Ctrl-C does not wait
    onInterrupt();
  };
  Deno.addSignalListener("SIGINT", sigint);
  try {
    const source = await openSource(options, text, document, note, (stop) => {
      onInterrupt = stop;
    });
    if (typeof source === "number") return interrupts > 0 ? EXIT.interrupted : source;
    if (interrupts > 0) {
      await source.cancel();
      await source.close();
      return EXIT.interrupted;
    }
    viewing = true;
    try {
      return await watch(source, live, options.server !== undefined, (stop) => {
        onInterrupt = stop;
      });
    } finally {
      viewing = false;
      for (const line of deferred) stderr.write(`${line}\n`);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", sigint);
  }
}

/**
 * Starts the run: on the server, or in this process (with the MCP servers'
 * tools). Resolves with an exit status instead when it cannot start (the
 * failure is written). `onInterrupt` receives what a Ctrl-C does meanwhile.
 */
async function openSource(
  options: RunArgs,
  text: string,
  document: unknown,
  note: (line: string) => void,
  onInterrupt: (stop: () => void) => void,
): Promise<RunSource | number> {
  let mcp: ManagedToolRegistry | undefined;
  try {
    if (options.server !== undefined) {
      // A run the server creates while a Ctrl-C comes is cancelled once its id is known.
      return await startRemoteRun(text, document, {
        server: options.server,
        token: options.token,
      });
    }
    if (options.mcpConfig !== undefined) {
      onInterrupt(() => void mcp?.close());
      mcp = await openMcpTools(options.mcpConfig, {
        log: (record) => {
          const line = mcpNote(record);
          if (line !== undefined) note(line);
        },
        created: (tools) => {
          mcp = tools;
        },
      });
    }
    return openLocalRun(document, { mcp, allowHttp: options.allowHttp });
  } catch (error) {
    await mcp?.close();
    if (!(error instanceof RunSourceError)) throw error;
    const local = options.server === undefined && error.message.startsWith("the DAG is invalid");
    reportFailure(local ? `${options.file}: ${error.message}` : error.message, error.issues);
    return EXIT.unusable;
  }
}

/**
 * Follows the run to its end, drawing it; resolves with the exit status.
 * `onInterrupt` receives what a Ctrl-C does from now on.
 */
async function watch(
  source: RunSource,
  live: boolean,
  remote: boolean,
  onInterrupt: (stop: () => void) => void,
): Promise<number> {
  const state = createRunState({ tasks: source.tasks });
  const clock = new EventClock();
  const now = () => clock.now(Date.now());
  const size = live ? terminalSize() : { columns: Infinity, rows: Infinity };
  const view = new TerminalView(state, { live, color: live, ...size });

  let interrupted = false;
  let giveUp: ReturnType<typeof setTimeout> | undefined;
  onInterrupt(() => {
    interrupted = true;
    void source.cancel();
    // A server that does not end the run soon is not waited for.
    if (remote) giveUp = setTimeout(() => void source.close(), SERVER_CANCEL_WAIT_MS);
  });

  let lastDraw = -Infinity;
  let drawTimer: ReturnType<typeof setTimeout> | undefined;
  const draw = () => {
    drawTimer = undefined;
    lastDraw = performance.now();
    const { columns, rows } = terminalSize();
    view.resize(columns, rows);
    stdout.write(view.tick(now()));
  };
  // Events can come faster than a terminal redraws: at most one frame per MIN_REDRAW_MS.
  const requestDraw = () => {
    if (drawTimer !== undefined) return;
    const wait = lastDraw + MIN_REDRAW_MS - performance.now();
    if (wait <= 0) draw();
    else drawTimer = setTimeout(draw, wait);
  };
  // Plain output ticks too: start lines held back by the view come out.
  const ticker = setInterval(live ? draw : () => stdout.write(view.tick(now())), TICK_MS);
  if (live) draw();

  let failure: RunSourceError | undefined;
  try {
    await source.follow((type, data) => {
      clock.observe((data as { timestamp?: unknown } | null)?.timestamp, Date.now());
      const change = applyRunEvent(state, type, data);
      if (live) {
        if (change !== undefined) requestDraw();
      } else stdout.write(view.changed(change, now()));
    });
  } catch (error) {
    if (!(error instanceof RunSourceError)) throw error;
    failure = error;
  } finally {
    clearInterval(ticker);
    clearTimeout(drawTimer);
    clearTimeout(giveUp);
    if (live) view.resize(terminalSize().columns, terminalSize().rows);
    stdout.write(view.finish(now(), interrupted));
    await source.close();
  }
  if (failure !== undefined && !interrupted) {
    reportFailure(failure.message, failure.issues);
    return EXIT.unusable;
  }
  return exitStatus(state, interrupted);
}

if (import.meta.main) {
  // Whatever goes wrong is said in one line, never with a stack trace.
  const fatal = (error: unknown) => {
    stderr.write(`error: ${oneLine(describeError(error))}\n`);
    Deno.exit(EXIT.unusable);
  };
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    fatal(event.reason);
  });
  let status: number;
  try {
    status = await main(Deno.args);
  } catch (error) {
    fatal(error);
  }
  Deno.exit(status!);
}
