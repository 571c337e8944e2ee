/**
 * Child processes of the benchmarks: servers started with `Deno.execPath()`
 * and awaited on their `Listening on http://HOST:PORT/` line, other
 * processes, and their stopping (SIGTERM, then SIGKILL after a grace
 * period), also when the benchmark itself gets SIGINT or SIGTERM. Plus what
 * `/proc` says about a process: resident memory, CPU time, open-file limit.
 *
 * @module
 */

/** The project's root directory: every child runs there. */
export const ROOT: URL = new URL("../", import.meta.url);

/** A server process that has printed its `Listening on` line. */
export interface ServerProcess {
  /** Label used in reports and errors. */
  name: string;
  /** The process. */
  child: Deno.ChildProcess;
  /** Its base URL, ending in `/` (e.g. `http://127.0.0.1:41234/`). */
  url: string;
  /** Its port. */
  port: number;
  /** Its process id. */
  pid: number;
}

/** How to start a child. */
export interface SpawnOptions {
  /** Write V8 CPU profiles of the child into this directory (`--cpu-prof`). */
  profileDir?: string;
  /** Bytes written to the child's stdin, which is then closed; by default stdin is `null`. */
  input?: Uint8Array;
  /** Keep stdin open and piped (the caller writes to `child.stdin`). */
  pipeStdin?: boolean;
  /** Where the child's stderr goes (default: inherited). */
  stderr?: "inherit" | "null" | "piped";
  /** The program to run, `args` being its arguments (default: this `deno`). */
  command?: string;
  /** Most ms to wait for the `Listening on` line (default 30,000). */
  readyTimeoutMs?: number;
}

/** `deno run` arguments with `--cpu-prof` added when `profileDir` is given. */
function withProfile(args: readonly string[], profileDir?: string): string[] {
  if (profileDir === undefined) return [...args];
  if (args[0] !== "run") throw new Error("profiling needs a `deno run` command");
  return ["run", "--cpu-prof", `--cpu-prof-dir=${profileDir}`, ...args.slice(1)];
}

/**
 * Children started by one benchmark. `stopAll()` stops them all; SIGINT or
 * SIGTERM sent to the benchmark stops them too, then ends the benchmark.
 */
export class ProcessGroup {
  #children = new Map<Deno.ChildProcess, string>();
  #listening = false;
  #onSignal = () => {
    for (const child of this.#children.keys()) kill(child, "SIGTERM");
    Deno.exit(130);
  };

  /** Starts `deno <args>` (or `options.command`) in {@linkcode ROOT}, with stdout piped. */
  spawn(name: string, args: readonly string[], options: SpawnOptions = {}): Deno.ChildProcess {
    const child = new Deno.Command(options.command ?? Deno.execPath(), {
      args: withProfile(args, options.profileDir),
      cwd: ROOT,
      stdin: options.input !== undefined || options.pipeStdin ? "piped" : "null",
      stdout: "piped",
      stderr: options.stderr ?? "inherit",
    }).spawn();
    this.#children.set(child, name);
    if (!this.#listening) {
      this.#listening = true;
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        Deno.addSignalListener(signal, this.#onSignal);
      }
    }
    if (options.input !== undefined) {
      const writer = child.stdin.getWriter();
      writer.write(options.input).then(() => writer.close()).catch(() => {});
    }
    return child;
  }

  /**
   * Starts a server and waits for its `Listening on http://…/` line (the
   * readiness signal of the dagstream server and of every bench server).
   * Its stdout is drained afterwards so that it never blocks on a full pipe.
   */
  async startServer(
    name: string,
    args: readonly string[],
    options: SpawnOptions = {},
  ): Promise<ServerProcess> {
    const child = this.spawn(name, args, options);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const timeoutMs = options.readyTimeoutMs ?? 30_000;
    const timer = setTimeout(
      () => reader.cancel(new Error(`${name}: no "Listening on" line in ${timeoutMs} ms`)),
      timeoutMs,
    );
    let text = "";
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) {
          // stdout closed: the child has ended, or is about to.
          let wait: ReturnType<typeof setTimeout> | undefined;
          const status = await Promise.race([
            child.status,
            new Promise<undefined>((resolve) => wait = setTimeout(resolve, 2000, undefined)),
          ]);
          clearTimeout(wait);
          throw new Error(
            `${name} ended before listening (exit code ${status?.code ?? "unknown"}); ` +
              `stdout: ${JSON.stringify(text.slice(0, 500))}; ` +
              `command: deno ${withProfile(args, options.profileDir).join(" ")}`,
          );
        }
        text += value;
        const match = /Listening on (http:\/\/[^\s/]+)\/?/.exec(text);
        if (match) {
          const url = `${match[1]}/`;
          (async () => {
            while (!(await reader.read()).done) { /* discard */ }
          })().catch(() => {});
          return { name, child, url, port: Number(new URL(url).port), pid: child.pid };
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops one child: SIGTERM, SIGKILL after `graceMs`; resolves with its exit code. */
  async stop(child: Deno.ChildProcess, graceMs = 10_000): Promise<number | null> {
    if (!this.#children.has(child)) return (await child.status).code;
    kill(child, "SIGTERM");
    const timer = setTimeout(() => kill(child, "SIGKILL"), graceMs);
    try {
      const status = await child.status;
      return status.signal === null ? status.code : null;
    } finally {
      clearTimeout(timer);
      this.#children.delete(child);
      if (this.#children.size === 0) this.#unlisten();
    }
  }

  /** Stops every child still running; exit codes by name (null: ended by a signal). */
  async stopAll(): Promise<Record<string, number | null>> {
    const entries = [...this.#children];
    const codes = await Promise.all(entries.map(([child]) => this.stop(child)));
    this.#unlisten();
    return Object.fromEntries(entries.map(([, name], i) => [name, codes[i]]));
  }

  #unlisten() {
    if (!this.#listening) return;
    this.#listening = false;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.removeSignalListener(signal, this.#onSignal);
    }
  }
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal) {
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
}

/**
 * The flags of `deno task serve`: what its command in deno.json puts
 * between `run` and `src/server/main.ts` (permissions included), so that
 * a benchmark's server runs as users run it.
 */
function serveFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const words = String(config.tasks?.serve ?? "").trim().split(/\s+/);
  const run = words.indexOf("run");
  const main = words.indexOf("src/server/main.ts");
  if (words[0] !== "deno" || run !== 1 || main < run) {
    throw new Error(`cannot read the serve task of deno.json: ${JSON.stringify(words)}`);
  }
  return words.slice(run + 1, main);
}

/**
 * `deno run` arguments of the bundled dagstream server, as `deno task
 * serve` starts it, on a free port, with `flags` added.
 */
export function dagstreamServerArgs(flags: readonly string[] = []): string[] {
  return ["run", ...serveFlags(), "src/server/main.ts", "--port", "0", ...flags];
}

/** Resident set size of a process (`VmRSS` of `/proc/<pid>/status`), in KiB. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}

/**
 * Waits until a process's RSS stops moving: samples every `everyMs` until
 * `stable` consecutive samples lie within `toleranceKiB` of each other, or
 * `maxMs` have passed. Returns the last sample and how long it took.
 */
export async function settledRssKiB(
  pid: number,
  { everyMs = 200, stable = 3, toleranceKiB = 512, maxMs = 8000 } = {},
): Promise<{ kib: number; ms: number; settled: boolean }> {
  const t0 = performance.now();
  const recent: number[] = [rssKiB(pid)];
  while (performance.now() - t0 < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, everyMs));
    recent.push(rssKiB(pid));
    if (recent.length > stable) recent.shift();
    if (
      recent.length === stable && Math.max(...recent) - Math.min(...recent) <= toleranceKiB
    ) {
      return { kib: recent[recent.length - 1], ms: performance.now() - t0, settled: true };
    }
  }
  return { kib: recent[recent.length - 1], ms: performance.now() - t0, settled: false };
}

/** CPU time (user + system, all threads) a process has used, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // After the command name (in parentheses): utime and stime are the 14th
  // and 15th fields of the line, in clock ticks (100 per second on Linux).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** This process's open-file limit (`Max open files` of `/proc/self/limits`). */
export function openFileLimit(): number {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const match = /Max open files\s+(\S+)/.exec(limits);
  return match === null || match[1] === "unlimited" ? Infinity : Number(match[1]);
}
