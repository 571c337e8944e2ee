/**
 * Helpers of the stress scripts (run by hand, never by `deno task test`):
 * starting the server process, reading its memory from `/proc`, reading
 * SSE streams with ids, checking a run's events, and printing figures.
 *
 * Every script targets 127.0.0.1 only, with bounded counts and durations.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import { SERVE_PERMISSIONS, type ServerProcess, startServer } from "../integration/_server.ts";

export type { ServerProcess };

/** The test server with the faulty `bad:*` tools. */
export const FAULT_SERVER = new URL("./fault_server.ts", import.meta.url);

/**
 * Starts the server (`main.ts`, or the fault server) on 127.0.0.1, port 0.
 * `heapMiB` caps its V8 heap (`--max-old-space-size`): a server that keeps
 * working under a tight cap holds no more than that, whatever its RSS
 * (V8 sizes its heap from the machine's memory and collects lazily).
 */
export function start(flags: string[] = [], faulty = false, heapMiB = 0): Promise<ServerProcess> {
  const permissions = heapMiB > 0
    ? [...SERVE_PERMISSIONS, `--v8-flags=--max-old-space-size=${heapMiB}`]
    : SERVE_PERMISSIONS;
  return startServer(["--host", "127.0.0.1", ...flags], {}, {
    permissions,
    ...(faulty ? { entry: FAULT_SERVER } : {}),
  });
}

/** Reads `VmRSS` (resident memory) or `VmHWM` (its peak) of a process, in MiB. */
export function memoryMiB(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Math.round(Number(match[1]) / 102.4) / 10;
}

/** Open file descriptors of a process (sockets included). */
export function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** Ids of the processes whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // pid (comm) state ppid ...: comm may hold spaces, so split after ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry.name));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Whether a process still exists. */
export function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Exits with a message when fewer than `needed` file descriptors may be open. */
export function requireOpenFiles(needed: number): void {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? "0");
  if (soft < needed) {
    console.error(
      `this script needs at least ${needed} open files (ulimit -n is ${soft}): ` +
        `run \`ulimit -n ${needed}\` in this shell first`,
    );
    Deno.exit(2);
  }
}

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `/health` until no run is active (at most `maxMs`); returns whether it got there. */
export async function waitIdle(server: ServerProcess, maxMs = 60_000): Promise<boolean> {
  const until = performance.now() + maxMs;
  while (performance.now() < until) {
    const health = await (await fetch(server.at("/health"))).json();
    if (health.activeRuns === 0) return true;
    await sleep(100);
  }
  return false;
}

/** One event as read from the wire. */
export interface WireEvent {
  id: number | undefined;
  type: string;
  data: Record<string, unknown>;
}

/** Options of {@linkcode readStream}. */
export interface ReadOptions {
  /** Called with each event; returning `"stop"` cancels the stream there. */
  onEvent?: (event: WireEvent) => void | "stop";
  /** Sleep this long after each chunk read (a slow reader). */
  pauseMs?: number;
  /** Read nothing until this resolves (a stalled reader). */
  holdUntil?: Promise<unknown>;
  /**
   * Parse only what the checks need: a task event's data is just its
   * `taskId` (the load generator, not the server, would otherwise be the
   * bottleneck with hundreds of readers of large events).
   */
  light?: boolean;
}

const TASK_ID = /^\{"taskId":"((?:[^"\\]|\\.)*)"/;

/** Reads an SSE body to its end (or until `onEvent` says stop); returns its events. */
export async function readStream(
  body: ReadableStream<Uint8Array>,
  options: ReadOptions = {},
): Promise<{ events: WireEvent[]; stopped: boolean; chars: number }> {
  const events: WireEvent[] = [];
  let stopped = false;
  let chars = 0;
  const parser = createParser({
    onEvent(message) {
      if (stopped) return;
      const type = message.event ?? "message";
      const taskEvent = type === "task_start" || type === "task_complete" ||
        type === "task_progress";
      const match = options.light && taskEvent ? TASK_ID.exec(message.data) : null;
      const event: WireEvent = {
        id: message.id === undefined ? undefined : Number(message.id),
        type,
        data: match ? { taskId: JSON.parse(`"${match[1]}"`) } : JSON.parse(message.data),
      };
      events.push(event);
      if (options.onEvent?.(event) === "stop") stopped = true;
    },
  });
  if (options.holdUntil) await options.holdUntil;
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!stopped) {
      const { value, done } = await reader.read();
      if (done) break;
      chars += value.length;
      parser.feed(value);
      if (options.pauseMs) await sleep(options.pauseMs);
    }
  } catch {
    // the server closed the connection
  } finally {
    if (stopped) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  return { events, stopped, chars };
}

/**
 * Checks a complete run's events: ids 1..n without gap or repeat, one start
 * and one complete per task, `execution_complete` last. Returns a problem,
 * or undefined when all is well.
 */
export function runProblem(events: WireEvent[], tasks: number, fromId = 1): string | undefined {
  let expected = fromId;
  const started = new Set<string>();
  const completed = new Set<string>();
  for (const event of events) {
    if (event.id === undefined) {
      return `event without id: ${event.type} ${JSON.stringify(event.data)}`;
    }
    if (event.id !== expected) return `id ${event.id} where ${expected} was due`;
    expected++;
    const taskId = event.data.taskId as string;
    if (event.type === "task_start") {
      if (started.has(taskId)) return `second task_start of ${taskId}`;
      started.add(taskId);
    } else if (event.type === "task_complete") {
      if (completed.has(taskId)) return `second task_complete of ${taskId}`;
      completed.add(taskId);
    }
  }
  const last = events.at(-1);
  if (last?.type !== "execution_complete") return `last event ${last?.type}`;
  if (fromId === 1 && (started.size !== tasks || completed.size !== tasks)) {
    return `${started.size} starts, ${completed.size} completes for ${tasks} tasks`;
  }
  return undefined;
}

/** POSTs a DAG. */
export function post(
  server: ServerProcess,
  path: string,
  dag: unknown,
  accept = "text/event-stream",
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(server.at(path), {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: accept },
    body: JSON.stringify(dag),
    signal,
  });
}

/** Reads the scripts' flags: `--name value` for each key of `defaults` (numbers). */
export function flags<T extends Record<string, number>>(defaults: T): T {
  const { values } = parseArgs({
    args: Deno.args,
    options: Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: "string" as const }])),
    strict: true,
  });
  const out = { ...defaults } as Record<string, number>;
  for (const [key, value] of Object.entries(values)) {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${key} must be a number, got ${value}`);
    out[key] = n;
  }
  return out as T;
}

/** Prints a figure line, and keeps it for the JSON summary. */
export class Report {
  readonly figures: Record<string, unknown> = {};
  readonly #t0 = performance.now();

  /** Records and prints one figure. */
  set(name: string, value: unknown): void {
    this.figures[name] = value;
    const seconds = ((performance.now() - this.#t0) / 1000).toFixed(1).padStart(6);
    console.log(
      `[${seconds}s] ${name}: ${typeof value === "string" ? value : JSON.stringify(value)}`,
    );
  }

  /** Prints every figure as one JSON line (for docs/RELIABILITY.md). */
  print(title: string): void {
    console.log(`\n${title} ${JSON.stringify(this.figures)}`);
  }
}

/** Records the server's resident memory now, with a label. */
export function sampleMemory(report: Report, server: ServerProcess, label: string): number {
  const rss = memoryMiB(server.pid);
  report.set(`rss ${label} (MiB)`, rss);
  return rss;
}
