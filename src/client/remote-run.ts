/**
 * A run executed by a dagstream server, for `deno task run --server URL
 * <dag.json>`: submitted with `POST /runs`, followed on its event stream,
 * cancelled with `DELETE /runs/<id>`.
 *
 * A stream that breaks off, or ends before the run's `execution_complete`,
 * is opened again with `Last-Event-ID` set to the id of the last event
 * received, so no event is seen twice or missed; a `204` answer says the
 * run is over with nothing left to read. A failed attempt waits 0.25, 0.5,
 * 1, 2, then 4 s before the next; when the fifth reconnection in a row
 * fails too (no event received in between), the run is given up on.
 *
 * Events without an id are not part of the run's log and are not handed
 * on: the server's shutdown notice (the reconnection follows), and
 * `events_lost`, which says how many events gave way before this watcher
 * read them. Those are skipped, and once the run is over the tasks they
 * concerned are completed from the run's result (`GET /runs/<id>`).
 *
 * @module
 */

import { describeError } from "../dag/errors.ts";
import type { ValidationIssue } from "../dag/issues.ts";
import type { DAGExecutionResult } from "../dag/types.ts";
import { readSSEEvents } from "../sse/client.ts";
import type { ViewedTaskSpec } from "./run-state.ts";
import { type RunSource, RunSourceError } from "./run-source.ts";

/** Waits before each reconnection after a failed attempt, in ms. */
const RETRY_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 4000];

/**
 * Where and how to reach the server.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RemoteRunOptions } from "./remote-run.ts";
 * const options: RemoteRunOptions = { server: new URL("http://127.0.0.1:8000/"), token: "s3cret" };
 * assert.equal(options.retryDelaysMs, undefined);
 * ```
 */
export interface RemoteRunOptions {
  /** The server's base URL, ending in `/` (see {@linkcode serverBase}); its routes are resolved against it. */
  server: URL;
  /** Bearer token sent with every request, when the server requires one. */
  token?: string;
  /** Waits before each reconnection after a failed attempt, in ms. Default 250, 500, 1000, 2000, 4000. */
  retryDelaysMs?: readonly number[];
}

/**
 * The base URL of a server given on the command line: an `http:` or
 * `https:` URL, its path ending in `/` (a server behind a path prefix keeps
 * it), without query or fragment; undefined when `value` is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverBase } from "./remote-run.ts";
 * assert.equal(serverBase("http://127.0.0.1:8000")?.href, "http://127.0.0.1:8000/");
 * assert.equal(serverBase("https://example.com/dagstream?x=1")?.href, "https://example.com/dagstream/");
 * assert.equal(serverBase("ftp://example.com"), undefined);
 * assert.equal(serverBase("not a url"), undefined);
 * ```
 */
export function serverBase(value: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  url.search = "";
  url.hash = "";
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

/**
 * Why a `fetch` failed, in a few words: `connection refused`, `host not
 * found`, `no permission to reach …`, or the platform's message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fetchFailureReason } from "./remote-run.ts";
 * const refused = new TypeError("fetch failed", {
 *   cause: new Error("error sending request for url (http://127.0.0.1:9999/): client error (Connect): " +
 *     "tcp connect error: Connection refused (os error 111)"),
 * });
 * assert.equal(fetchFailureReason(refused), "connection refused");
 * assert.equal(
 *   fetchFailureReason(new TypeError("Fetch failed: Requests to port 1 are blocked")),
 *   "fetch does not allow port 1",
 * );
 * ```
 */
export function fetchFailureReason(error: unknown): string {
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return "no permission to reach it: run with --allow-net";
  }
  const cause = error instanceof Error && error.cause !== undefined
    ? describeError(error.cause)
    : "";
  const text = `${describeError(error)} ${cause}`;
  if (/connection refused/i.test(text)) return "connection refused";
  if (/dns error|failed to lookup|name or service not known/i.test(text)) return "host not found";
  if (/connection reset/i.test(text)) return "connection reset";
  if (/timed out/i.test(text)) return "timed out";
  const blocked = /requests to port (\d+) are blocked/i.exec(text);
  if (blocked) return `fetch does not allow port ${blocked[1]}`;
  if (/certificate|tls|ssl/i.test(text)) return `TLS failure: ${lastClause(cause || text)}`;
  return lastClause(cause || describeError(error));
}

/** The innermost part of a chained message (`a: b: c` → `c`), on one line. */
function lastClause(message: string): string {
  const line = message.split("\n")[0].trim();
  const parts = line.split(/\): |: /);
  return parts[parts.length - 1] || line;
}

/**
 * Submits the DAG file's text `body` with `POST /runs` and returns the
 * run, to follow and cancel. `document` is the same text, parsed: its
 * tasks are those the view lists.
 *
 * @throws {RunSourceError} when the server cannot be reached (`cannot
 *   reach <url> (connection refused)`), or refuses the run: its problem's
 *   `detail`, and for an invalid DAG each problem with its path
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startRemoteRun } from "./remote-run.ts";
 * import { RunSourceError } from "./run-source.ts";
 * // A port nothing listens on: the listener is closed before the request.
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close();
 * const server = new URL(`http://127.0.0.1:${port}/`);
 * await assert.rejects(
 *   startRemoteRun('{"tasks":[]}', { tasks: [] }, { server }),
 *   (error) => error instanceof RunSourceError && error.message === `cannot reach ${server.href} (connection refused)`,
 * );
 * ```
 */
export async function startRemoteRun(
  body: string,
  document: unknown,
  options: RemoteRunOptions,
): Promise<RemoteRun> {
  const base = options.server;
  let response: Response;
  try {
    response = await fetch(new URL("runs", base), {
      method: "POST",
      headers: {
        ...authorization(options.token),
        "Content-Type": "application/json",
        Accept: "application/json",
      },
      body,
    });
  } catch (error) {
    throw new RunSourceError(`cannot reach ${base.href} (${fetchFailureReason(error)})`);
  }
  if (response.status !== 202) {
    const problem = await readProblem(response);
    const hint = response.status === 401 ? " (give --token, or set DAGSTREAM_TOKEN)" : "";
    throw new RunSourceError(
      `the server refused the run (${response.status}): ${problem.detail}${hint}`,
      problem.errors,
    );
  }
  let answer: { runId?: unknown; eventsUrl?: unknown };
  try {
    answer = await response.json();
  } catch {
    answer = {};
  }
  if (typeof answer.runId !== "string" || typeof answer.eventsUrl !== "string") {
    throw new RunSourceError(`the server's answer to POST /runs has no runId or eventsUrl`);
  }
  return new RemoteRun(answer.runId, answer.eventsUrl, viewedTasks(document), options);
}

/**
 * A run on a server, as {@linkcode startRemoteRun} started it: a
 * {@linkcode RunSource} whose events come from the run's event stream.
 */
export class RemoteRun implements RunSource {
  /** The run's id on the server. */
  readonly runId: string;
  /** The run's tasks, as submitted. */
  readonly tasks: readonly ViewedTaskSpec[];
  readonly #base: URL;
  readonly #eventsUrl: URL;
  /** `/runs/<id>`: the run's view, and what a cancel deletes. */
  readonly #runUrl: URL;
  readonly #token: string | undefined;
  readonly #delays: readonly number[];
  /** Aborted by close(): requests and waits end. */
  readonly #stop = new AbortController();
  /** The id of the last event of the run's log received. */
  #lastEventId = 0;

  /**
   * The run `runId` whose events are at `eventsUrl` (a path of the server,
   * resolved against its base URL).
   */
  constructor(
    runId: string,
    eventsUrl: string,
    tasks: readonly ViewedTaskSpec[],
    options: RemoteRunOptions,
  ) {
    this.runId = runId;
    this.tasks = tasks;
    this.#base = options.server;
    this.#eventsUrl = this.#route(eventsUrl);
    this.#runUrl = this.#route(`/runs/${encodeURIComponent(runId)}`);
    this.#token = options.token;
    this.#delays = options.retryDelaysMs ?? RETRY_DELAYS_MS;
  }

  /** The id of the last event received, the `Last-Event-ID` of the next reconnection. */
  get lastEventId(): number {
    return this.#lastEventId;
  }

  /** See {@linkcode RunSource.follow} and the module documentation. */
  async follow(onEvent: (type: string, data: unknown) => void): Promise<void> {
    let failures = 0;
    let lost = false;
    while (true) {
      let reason: string;
      let response: Response | undefined;
      try {
        response = await fetch(this.#eventsUrl, {
          headers: {
            ...authorization(this.#token),
            Accept: "text/event-stream",
            "Last-Event-ID": String(this.#lastEventId),
          },
          signal: this.#stop.signal,
        });
      } catch (error) {
        this.#throwIfStopped();
        reason = `cannot reach ${this.#base.href} (${fetchFailureReason(error)})`;
      }
      if (response?.status === 204) {
        await response.body?.cancel();
        break;
      }
      if (response?.status === 200 && response.body !== null) {
        let over = false;
        try {
          for await (const event of readSSEEvents(response.body)) {
            failures = 0;
            if (event.id === undefined) {
              // Not part of the run's log: a shutdown notice, or events that gave way.
              const data = event.data as { code?: unknown; missedEvents?: unknown };
              if (event.type === "error" && data.code === "events_lost") {
                lost = true;
                if (typeof data.missedEvents === "number") this.#lastEventId += data.missedEvents;
              }
              continue;
            }
            const id = Number(event.id);
            if (Number.isSafeInteger(id)) this.#lastEventId = id;
            onEvent(event.type, event.data);
            if (event.type === "execution_complete") {
              over = true;
              break; // leaving the loop cancels the body
            }
          }
          reason = "the event stream ended before the run did";
        } catch (error) {
          this.#throwIfStopped();
          reason = `the event stream broke off (${fetchFailureReason(error)})`;
        }
        if (over) break;
      } else if (response !== undefined) {
        const problem = await readProblem(response);
        const refused =
          `the server refused the run's events (${response.status}): ${problem.detail}`;
        // 4xx will not change by asking again (a 404: the run is gone).
        if (response.status >= 400 && response.status < 500) throw new RunSourceError(refused);
        reason = refused;
      }
      if (failures >= this.#delays.length) {
        throw new RunSourceError(`${reason!}; gave up after ${failures + 1} attempts`);
      }
      await this.#wait(this.#delays[failures++]);
    }
    if (lost) await this.#completeFromResult(onEvent);
  }

  /** Sends `DELETE /runs/<id>`; a run already over, or a server gone, is no failure. */
  async cancel(): Promise<void> {
    try {
      const response = await fetch(this.#runUrl, {
        method: "DELETE",
        headers: { ...authorization(this.#token), Accept: "application/json" },
        signal: this.#stop.signal,
      });
      await response.body?.cancel();
    } catch {
      // The run's stream says what became of it.
    }
  }

  /** Stops following: a pending request or wait ends, and `follow` rejects. */
  close(): Promise<void> {
    this.#stop.abort();
    return Promise.resolve();
  }

  /** A server path (`/runs/…`) resolved against the base URL, prefix included. */
  #route(path: string): URL {
    return new URL(path.replace(/^\/+/, ""), this.#base);
  }

  #throwIfStopped(): void {
    if (this.#stop.signal.aborted) throw new RunSourceError("stopped following the run");
  }

  #wait(ms: number): Promise<void> {
    const signal = this.#stop.signal;
    return new Promise((resolve, reject) => {
      const stopped = () => {
        clearTimeout(timer);
        reject(new RunSourceError("stopped following the run"));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", stopped);
        resolve();
      }, ms);
      if (signal.aborted) stopped();
      else signal.addEventListener("abort", stopped, { once: true });
    });
  }

  /**
   * Hands on a `task_complete` for each task of the run's result, then its
   * `execution_complete`: those that gave way end as the result says (the
   * others were received already, and the view ignores them). Best effort:
   * the view keeps what it has when the result cannot be had.
   */
  async #completeFromResult(onEvent: (type: string, data: unknown) => void): Promise<void> {
    let view: { result?: Partial<DAGExecutionResult> };
    try {
      const response = await fetch(this.#runUrl, {
        headers: { ...authorization(this.#token), Accept: "application/json" },
        signal: this.#stop.signal,
      });
      view = response.ok ? await response.json() : (await response.body?.cancel(), {});
    } catch {
      return;
    }
    const result = view.result;
    if (!Array.isArray(result?.results)) return;
    for (const task of result.results) {
      if (typeof task === "object" && task !== null) onEvent("task_complete", task);
    }
    onEvent("execution_complete", {
      totalTasks: result.totalTasks,
      successCount: result.successfulTasks,
      errorCount: result.failedTasks,
      totalExecutionTimeMs: result.executionTimeMs,
    });
  }
}

/** The `Authorization` header for `token`, if there is one. */
function authorization(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/** The tasks of a DAG document that the server accepted, as the view lists them. */
function viewedTasks(document: unknown): ViewedTaskSpec[] {
  const tasks = (document as { tasks?: unknown } | null)?.tasks;
  if (!Array.isArray(tasks)) return [];
  return tasks.filter((task): task is ViewedTaskSpec =>
    typeof task === "object" && task !== null && typeof task.id === "string" &&
    typeof task.tool === "string"
  );
}

/** An error answer's `detail` and `errors` (a problem), or its status and text otherwise. */
async function readProblem(
  response: Response,
): Promise<{ detail: string; errors: ValidationIssue[] }> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // the body broke off: the status says enough
  }
  try {
    const problem = JSON.parse(text);
    if (typeof problem?.detail === "string") {
      const errors = Array.isArray(problem.errors)
        ? problem.errors.filter((e: unknown): e is ValidationIssue =>
          typeof (e as ValidationIssue)?.path === "string" &&
          typeof (e as ValidationIssue)?.message === "string"
        )
        : [];
      return { detail: problem.detail, errors };
    }
  } catch {
    // not JSON: the text itself, below
  }
  const line = text.trim().split("\n")[0].slice(0, 200);
  return { detail: line || response.statusText || `status ${response.status}`, errors: [] };
}
