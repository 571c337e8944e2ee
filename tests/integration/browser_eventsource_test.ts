/**
 * `GET /runs/<id>/events` read by a real browser's `EventSource`: headless
 * Chromium (Debian's `/usr/bin/chromium`, driven by npm:playwright-core in
 * `_browser_driver.ts`) loads a page that this test serves on another origin
 * than the dagstream server, so CORS is really checked by the browser.
 *
 * - a whole run: every event once, ids 1..N in order, the protocol's payloads
 *   (the same as the server's own log), dependencies before dependents, no
 *   CORS error;
 * - the connection cut mid-run (by a TCP proxy in this test, once the page
 *   has reported every event the run has emitted so far): the browser
 *   reconnects by itself with `Last-Event-ID`, gets the rest with no gap and no
 *   duplicate, live; once the run is over its next reconnect gets 204, which
 *   closes the EventSource (readyState 2) instead of reconnecting forever;
 * - `--token` with `?access_token=` (and a wrong token refused with 401);
 * - a control: without `--cors-origin` the browser blocks the same stream.
 *
 * Skipped, with a message, when `/usr/bin/chromium` does not exist
 * (`apt-get install chromium`; `.ci/run` installs it).
 */

import assert from "node:assert/strict";
import { parseSSEStream } from "../../src/sse/client.ts";
import type { DAGStructure } from "../../src/dag/types.ts";
import { type BrowserReport, openBrowser, skipWithoutChromium } from "./_browser_driver.ts";
import { type PageServer, scriptPage, servePage } from "./_page_server.ts";
import { postDag, type ServerProcess, startServer, waitForRunEnd } from "./_server.ts";

const SKIP = skipWithoutChromium("browser_eventsource_test.ts");

// deno-lint-ignore no-explicit-any
type Data = any;

// ---------------------------------------------------------------------------
// The page

/** One EventSource the page opens, and when it stops watching. */
interface Attempt {
  url: string;
  /**
   * `complete`: close on `execution_complete`; `closed`: wait until the
   * browser itself closes the EventSource (readyState 2); `first-error`: close
   * on the first transport error.
   */
  until: "complete" | "closed" | "first-error";
  /**
   * Acknowledge every event to the page's own server (`POST /observed`, body:
   * the event's `lastEventId`) once its listener has run, so that the test
   * can wait for what the page has really seen. The attempt finishes only
   * after every acknowledgement was answered.
   */
  acknowledge?: boolean;
}

/** What the page saw on one EventSource, in order. */
type LogEntry =
  | { kind: "open" }
  | { kind: "event"; type: string; lastEventId: string; data: string; origin: string }
  | { kind: "error"; readyState: number };

interface PageRecord {
  url: string;
  outcome: "execution_complete" | "closed" | "error";
  /** readyState when the page stopped watching, before it called close(). */
  readyState: number;
  log: LogEntry[];
}

/** The page's script: runs the attempts one after the other, records everything. */
const PAGE_SCRIPT = `
const TYPES = ["task_start", "task_progress", "task_complete", "execution_complete"];
function watch(attempt) {
  return new Promise((resolve) => {
    const record = { url: attempt.url, outcome: null, readyState: null, log: [] };
    const source = new EventSource(attempt.url);
    const acknowledgements = [];
    const finish = (outcome) => {
      if (record.outcome !== null) return;
      record.outcome = outcome;
      record.readyState = source.readyState;
      source.close();
      Promise.all(acknowledgements).then(() => resolve(record));
    };
    const onEvent = (e) => {
      record.log.push({
        kind: "event", type: e.type, lastEventId: e.lastEventId, data: e.data, origin: e.origin,
      });
      if (attempt.acknowledge) {
        acknowledgements.push(
          fetch("/observed", { method: "POST", body: e.lastEventId }).then((r) => r.arrayBuffer()),
        );
      }
      if (attempt.until === "complete" && e.type === "execution_complete") {
        finish("execution_complete");
      }
    };
    source.addEventListener("open", () => record.log.push({ kind: "open" }));
    source.addEventListener("message", onEvent); // an event without "event:" (none expected)
    for (const type of TYPES) source.addEventListener(type, onEvent);
    source.addEventListener("error", (e) => {
      // The run's own "error" event carries data; the transport's has none.
      if (e instanceof MessageEvent) return onEvent(e);
      record.log.push({ kind: "error", readyState: source.readyState });
      if (source.readyState === EventSource.CLOSED) finish("closed");
      else if (attempt.until === "first-error") finish("error");
    });
  });
}
window.__finished = (async () => {
  const records = [];
  for (const attempt of ATTEMPTS) records.push(await watch(attempt));
  return records;
})();
`;

function pageHtml(attempts: Attempt[]): string {
  return scriptPage("dagstream EventSource", { ATTEMPTS: attempts }, PAGE_SCRIPT);
}

/** The page's server, with the page's acknowledgements. */
interface ObservedPage extends PageServer {
  /** The `lastEventId`s the page acknowledged (`Attempt.acknowledge`), as they arrived. */
  readonly observed: readonly string[];
  /** Resolves once the page has acknowledged the event with this `lastEventId`. */
  untilObserved(lastEventId: string): Promise<void>;
}

/**
 * Serves the page on an origin of its own ({@linkcode servePage}), and takes
 * its acknowledgements (`POST /observed`), same-origin, so no CORS.
 */
function servePageWithObserved(): ObservedPage {
  const observed: string[] = [];
  const waiters = new Set<() => void>();
  const page = servePage(async (request, { pathname }) => {
    if (pathname !== "/observed" || request.method !== "POST") return undefined;
    observed.push(await request.text());
    for (const waiter of [...waiters]) waiter();
    return new Response(null, { status: 204 });
  });
  return Object.assign(page, {
    observed,
    untilObserved(lastEventId: string) {
      if (observed.includes(lastEventId)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const check = () => {
          if (!observed.includes(lastEventId)) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
  });
}

// ---------------------------------------------------------------------------
// A TCP proxy that can cut the browser's connection

/** One HTTP request head as it went through the proxy. */
interface ProxiedRequest {
  tunnel: number;
  method: string;
  path: string;
  headers: Map<string, string>;
}

/** One TCP connection through the proxy. */
interface Tunnel {
  readonly index: number;
  /** Browser → server bytes, as text. */
  request: string;
  /** Server → browser bytes, as text. */
  response: string;
  /** Closes both sides at once. */
  cut(): void;
}

/**
 * Forwards 127.0.0.1:<port> to the dagstream server byte for byte, and keeps
 * what went through: request heads, response status lines, the SSE text.
 */
class CuttingProxy implements AsyncDisposable {
  readonly tunnels: Tunnel[] = [];
  readonly requests: ProxiedRequest[] = [];
  readonly statuses: { tunnel: number; status: number }[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #upstreamPort: number;
  readonly #pumps: Promise<void>[] = [];
  readonly #accepting: Promise<void>;
  readonly #waiters = new Set<() => void>();
  #closed = false;

  constructor(upstream: string) {
    this.#upstreamPort = Number(new URL(upstream).port);
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  /** Resolves true once `predicate` holds (checked after every chunk), false if closed first. */
  until(predicate: () => boolean): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (this.#closed) {
          this.#waiters.delete(check);
          resolve(false);
        } else if (predicate()) {
          this.#waiters.delete(check);
          resolve(true);
        }
      };
      this.#waiters.add(check);
    });
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) this.#pumps.push(this.#tunnel(client));
    } catch {
      // the listener was closed
    }
  }

  async #tunnel(client: Deno.TcpConn): Promise<void> {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#upstreamPort });
    } catch {
      client.close();
      return;
    }
    let closed = false;
    const cut = () => {
      if (closed) return;
      closed = true;
      for (const conn of [client, upstream]) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
    };
    const tunnel: Tunnel = { index: this.tunnels.length, request: "", response: "", cut };
    this.tunnels.push(tunnel);
    if (this.#closed) cut();
    let requestParsed = 0;
    let statusParsed = 0;
    const pump = async (from: Deno.TcpConn, to: Deno.TcpConn, side: "request" | "response") => {
      const decoder = new TextDecoder();
      const buffer = new Uint8Array(64 * 1024);
      try {
        while (true) {
          const n = await from.read(buffer);
          if (n === null) break;
          for (let at = 0; at < n;) at += await to.write(buffer.subarray(at, n));
          tunnel[side] += decoder.decode(buffer.subarray(0, n), { stream: true });
          if (side === "request") {
            let end: number;
            while ((end = tunnel.request.indexOf("\r\n\r\n", requestParsed)) >= 0) {
              this.requests.push(parseHead(tunnel.index, tunnel.request.slice(requestParsed, end)));
              requestParsed = end + 4; // GET and OPTIONS requests have no body
            }
          } else {
            const statusLine = /HTTP\/1\.1 (\d{3}) /g;
            statusLine.lastIndex = statusParsed;
            for (let m; (m = statusLine.exec(tunnel.response)) !== null;) {
              this.statuses.push({ tunnel: tunnel.index, status: Number(m[1]) });
              statusParsed = statusLine.lastIndex;
            }
          }
          for (const waiter of [...this.#waiters]) waiter();
        }
        await to.closeWrite();
      } catch {
        // cut, or reset by the other side
      }
    };
    await Promise.all([pump(client, upstream, "request"), pump(upstream, client, "response")]);
    cut();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    this.#listener.close();
    await this.#accepting;
    for (const tunnel of this.tunnels) tunnel.cut();
    await Promise.all(this.#pumps);
    for (const waiter of [...this.#waiters]) waiter();
  }
}

function parseHead(tunnel: number, head: string): ProxiedRequest {
  const [requestLine, ...lines] = head.split("\r\n");
  const [method, path] = requestLine.split(" ");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { tunnel, method, path, headers };
}

/** Ids of the complete SSE events in `text` (chunked-encoding framing around them is fine). */
function completeEventIds(text: string): number[] {
  return [...text.matchAll(/(?<=^|\n)id: (\d+)\nevent: [a-z_]+\ndata: [^\n]*\n\n/g)].map((m) =>
    Number(m[1])
  );
}

// ---------------------------------------------------------------------------
// Runs and assertions

async function startRun(
  server: ServerProcess,
  dag: DAGStructure,
  headers: Record<string, string> = {},
): Promise<string> {
  const response = await postDag(server.at("/runs"), dag, undefined, headers);
  assert.equal(response.status, 202);
  return (await response.json()).runId;
}

/** The events of a page record (the MessageEvents, in order). */
function eventsOf(record: PageRecord) {
  return record.log.flatMap((entry) =>
    entry.kind === "event" ? [{ ...entry, id: Number(entry.lastEventId), data: parse(entry) }] : []
  );
}

function parse(entry: { data: string; type: string }): Data {
  try {
    return JSON.parse(entry.data);
  } catch {
    assert.fail(`${entry.type} data is not JSON: ${entry.data}`);
  }
}

/** The log with events reduced to their ids: `open`, `1`, `2`, …, `error(0)`. */
function shape(record: PageRecord): string[] {
  return record.log.map((entry) =>
    entry.kind === "event"
      ? entry.lastEventId
      : entry.kind === "error"
      ? `error(${entry.readyState})`
      : "open"
  );
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * Checks the browser's events against the protocol: ids 1..N once each in
 * order; one task_start and one task_complete per task, start first; every
 * dependency's task_complete before its dependents' task_start; the fields of
 * each event; execution_complete last; and, byte for byte, the events the
 * server itself replays from its log.
 */
async function assertProtocolEvents(
  server: ServerProcess,
  runId: string,
  dag: DAGStructure,
  events: ReturnType<typeof eventsOf>,
  expected: {
    outputs: Record<string, unknown>;
    errors: Record<string, RegExp>;
    /** The origin the page's EventSource connected to (default: the server's). */
    origin?: string;
    /** Headers for the server's replay (the token). */
    headers?: Record<string, string>;
  },
): Promise<void> {
  const n = dag.tasks.length * 2 + 1;
  assert.deepEqual(events.map((e) => e.lastEventId), range(1, n), "ids 1..N, each once, in order");
  const position = (type: string, taskId: string) => {
    const at = events.findIndex((e) => e.type === type && e.data.taskId === taskId);
    assert.ok(at >= 0, `${type} of ${taskId}`);
    assert.equal(
      events.filter((e) => e.type === type && e.data.taskId === taskId).length,
      1,
      `one ${type} of ${taskId}`,
    );
    return at;
  };
  for (const task of dag.tasks) {
    const start = events[position("task_start", task.id)];
    const complete = events[position("task_complete", task.id)];
    assert.ok(events.indexOf(start) < events.indexOf(complete), `${task.id} starts first`);
    for (const dependency of task.dependsOn ?? []) {
      assert.ok(
        position("task_complete", dependency) < position("task_start", task.id),
        `${dependency} completes before ${task.id} starts`,
      );
    }
    assert.deepEqual(Object.keys(start.data).sort(), ["taskId", "timestamp", "tool"]);
    assert.equal(start.data.tool, task.tool);
    assert.match(start.data.timestamp, ISO);
    assert.equal(complete.data.tool, task.tool);
    assert.match(complete.data.timestamp, ISO);
    assert.equal(typeof complete.data.executionTimeMs, "number");
    if (task.id in expected.errors) {
      assert.equal(complete.data.status, "error", `${task.id} failed`);
      assert.match(complete.data.error, expected.errors[task.id]);
      assert.ok(!("output" in complete.data));
    } else {
      assert.equal(complete.data.status, "success", `${task.id} succeeded`);
      assert.deepEqual(complete.data.output, expected.outputs[task.id], `${task.id}'s output`);
    }
  }
  const end = events.at(-1)!;
  assert.equal(end.type, "execution_complete");
  assert.equal(events.filter((e) => e.type === "execution_complete").length, 1);
  const failed = Object.keys(expected.errors).length;
  assert.equal(end.data.totalTasks, dag.tasks.length);
  assert.equal(end.data.successCount, dag.tasks.length - failed);
  assert.equal(end.data.errorCount, failed);
  assert.equal(typeof end.data.totalExecutionTimeMs, "number");
  assert.equal(typeof end.data.speedup, "number");
  assert.match(end.data.timestamp, ISO);
  for (const event of events) {
    assert.equal(
      event.origin,
      expected.origin ?? new URL(server.url).origin,
      "MessageEvent.origin is the stream's",
    );
  }

  // The server's own log, read by Deno: the browser saw exactly that.
  const replay = await fetch(server.at(`/runs/${runId}/events`), {
    headers: { Accept: "text/event-stream", ...expected.headers },
  });
  assert.equal(replay.status, 200);
  const logged = await parseSSEStream(replay.body!);
  assert.deepEqual(
    events.map((e) => ({ id: e.lastEventId, type: e.type, data: e.data })),
    logged.map((e) => ({ id: e.id, type: e.type, data: e.data })),
  );
}

/** No console message or failed request of the page speaks of CORS. */
function assertNoCorsError(report: BrowserReport): void {
  const cors = report.console.filter((m) => /CORS|Access-Control|cross-origin/i.test(m.text));
  assert.deepEqual(cors, [], "no CORS error in the page's console");
}

/**
 * The page's requests failed only by its own `close()` (`net::ERR_ABORTED`:
 * on execution_complete it may close before the server has ended the
 * stream), never otherwise; a CORS failure is `net::ERR_FAILED`.
 */
function assertOnlyAborted(report: BrowserReport): void {
  assert.deepEqual(report.failures.filter((f) => f.errorText !== "net::ERR_ABORTED"), []);
}

/** The statuses the server logged for `GET /runs/<id>/events`, in order. */
function eventsStatuses(server: ServerProcess, runId: string): number[] {
  return server.stderr().split("\n").filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line)
  ).filter((entry) =>
    entry.msg === "request" && entry.method === "GET" && entry.path === `/runs/${runId}/events`
  ).map((entry) => entry.status);
}

// ---------------------------------------------------------------------------
// The tests

/** a → b, c alone, (b, c) → d; outputs flow through $OUTPUT references. */
const DIAMOND: DAGStructure = {
  tasks: [
    { id: "a", tool: "mock:delay", arguments: { ms: 20 } },
    { id: "b", tool: "mock:echo", arguments: { fromA: "$OUTPUT[a].waitedMs" }, dependsOn: ["a"] },
    { id: "c", tool: "mock:echo", arguments: { text: 'héllo ✓ "quoted"\nsecond line' } },
    {
      id: "d",
      tool: "mock:echo",
      arguments: { b: "$OUTPUT[b].fromA", c: "$OUTPUT[c].text" },
      dependsOn: ["b", "c"],
    },
  ],
};
const DIAMOND_OUTPUTS = {
  a: { waitedMs: 20 },
  b: { fromA: 20 },
  c: { text: 'héllo ✓ "quoted"\nsecond line' },
  d: { b: 20, c: 'héllo ✓ "quoted"\nsecond line' },
};

const browserTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `browser EventSource: ${name}`, ignore: SKIP, fn });

browserTest(
  "a whole run, cross-origin: every event once, in order, as the protocol says",
  async () => {
    await using page = servePageWithObserved();
    await using server = await startServer(["--cors-origin", page.origin]);
    const runId = await startRun(server, DIAMOND);
    const eventsUrl = server.at(`/runs/${runId}/events`);
    page.html = pageHtml([{ url: eventsUrl, until: "complete" }]);

    await using browser = openBrowser<PageRecord[]>(page.url);
    const { report, records } = await browser.result();
    assert.equal(records.length, 1);
    const [record] = records;
    assert.equal(record.outcome, "execution_complete");
    assert.deepEqual(shape(record), ["open", ...range(1, 9)], "one stream, no error, no reconnect");
    await assertProtocolEvents(server, runId, DIAMOND, eventsOf(record), {
      outputs: DIAMOND_OUTPUTS,
      errors: {},
    });
    assertNoCorsError(report);
    assertOnlyAborted(report);
    assert.deepEqual(report.requests, [{ method: "GET", url: eventsUrl, lastEventId: null }]);
    assert.deepEqual(report.responses, [{ url: eventsUrl, status: 200, allowOrigin: page.origin }]);
    assert.equal((await waitForRunEnd(server, runId)).status, "succeeded");
  },
);

/**
 * a → hold (60 s) → d, a → c → d. The run emits events 1..5 (a's start and
 * complete, hold's and c's starts, c's complete) and then nothing more: hold
 * keeps it going until the test cancels it, which it does only after the
 * browser's own reconnect has been answered, so 6..9 arrive live on the new
 * stream.
 */
const HELD: DAGStructure = {
  tasks: [
    { id: "a", tool: "mock:echo", arguments: { n: 1 } },
    { id: "hold", tool: "mock:delay", arguments: { ms: 60_000 }, dependsOn: ["a"] },
    { id: "c", tool: "mock:echo", arguments: { fromA: "$OUTPUT[a].n" }, dependsOn: ["a"] },
    { id: "d", tool: "mock:echo", arguments: {}, dependsOn: ["hold", "c"] },
  ],
};
/** How many events HELD emits before hold is released. */
const HELD_BEFORE_RELEASE = 5;

browserTest(
  "connection lost mid-run: the browser reconnects with Last-Event-ID, no gap, no duplicate; 204 at the end closes it",
  async () => {
    await using page = servePageWithObserved();
    await using server = await startServer([
      "--cors-origin",
      page.origin,
      "--retry-ms",
      "50",
      "--task-timeout",
      "600000",
    ]);
    const runId = await startRun(server, HELD);
    const path = `/runs/${runId}/events`;
    await using proxy = new CuttingProxy(server.url);
    const eventsUrl = `${proxy.origin}${path}`; // a third origin: still cross-origin
    page.html = pageHtml([{ url: eventsUrl, until: "closed", acknowledge: true }]);

    await using browser = openBrowser<PageRecord[]>(page.url);
    const driverDone = browser.finished.then(() => false);
    // Cut only once the page's listener has run for the last event the run
    // can emit before hold is released. Cutting as soon as the proxy had
    // passed the bytes on is not enough: the browser may handle the broken
    // connection before it has delivered the bytes that preceded it, and
    // then drops them (the page sees open, error and a reconnect without
    // Last-Event-ID). Events arrive in order, so 1..cutAfter were all seen.
    const cutAfter = HELD_BEFORE_RELEASE;
    const seen = await Promise.race([
      page.untilObserved(String(cutAfter)).then(() => true),
      driverDone,
    ]);
    assert.ok(seen, `the page did not see event ${cutAfter}: ${JSON.stringify(page.observed)}`);
    const first = proxy.tunnels[proxy.requests[0].tunnel];
    assert.deepEqual(
      completeEventIds(first.response),
      range(1, cutAfter).map(Number),
      "the server sent 1..cutAfter on the first stream, and nothing after them",
    );
    first.cut();
    // The browser reconnected by itself and the server opened a second stream.
    const reconnected = await Promise.race([
      proxy.until(() => proxy.statuses.filter((s) => s.status === 200).length >= 2),
      driverDone,
    ]);
    assert.ok(reconnected, `the browser did not reconnect: ${JSON.stringify(proxy.tunnels)}`);
    // Only now can the run end: 202 proves it was still running all along.
    const cancel = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
    assert.equal(cancel.status, 202, "the run was still running after the reconnect");
    await cancel.body?.cancel();

    const { report, records } = await browser.result();
    const [record] = records;
    assert.equal(record.outcome, "closed", "the 204 closed the EventSource");
    assert.equal(record.readyState, 2);
    assert.deepEqual(shape(record), [
      "open",
      ...range(1, cutAfter),
      "error(0)", // cut: CONNECTING, the browser will reconnect
      "open",
      ...range(cutAfter + 1, 9),
      "error(0)", // the server ended the finished run's stream: reconnect again
      "error(2)", // ...which got 204: CLOSED, no more reconnects
    ]);
    await assertProtocolEvents(server, runId, HELD, eventsOf(record), {
      outputs: { a: { n: 1 }, c: { fromA: 1 } },
      errors: { hold: /^aborted: cancelled by DELETE/, d: /^aborted: cancelled by DELETE/ },
      origin: proxy.origin,
    });

    // On the wire (the proxy) and in the browser's network log: three GETs,
    // the reconnects with Last-Event-ID, answered 200, 200, 204.
    const gets = proxy.requests.filter((r) => r.method === "GET");
    assert.deepEqual(gets.map((r) => [r.path, r.headers.get("last-event-id") ?? null]), [
      [path, null],
      [path, String(cutAfter)],
      [path, "9"],
    ]);
    for (const get of gets) assert.equal(get.headers.get("origin"), page.origin);
    // The cut is the one failed request, and not a CORS failure (net::ERR_FAILED).
    assert.deepEqual(report.failures.map((f) => f.url), [eventsUrl]);
    assert.notEqual(report.failures[0].errorText, "net::ERR_FAILED");
    assert.deepEqual(report.requests.map((r) => r.lastEventId), [null, String(cutAfter), "9"]);
    assert.deepEqual(report.responses.map((r) => [r.status, r.allowOrigin]), [
      [200, page.origin],
      [200, page.origin],
      [204, page.origin],
    ]);
    // The server's log agrees (a fourth GET is this test's own replay, above;
    // log lines are written in batches, so the test waits for its line).
    await server.untilStderr(() => eventsStatuses(server, runId).length >= 4);
    assert.deepEqual(eventsStatuses(server, runId), [200, 200, 204, 200]);
    assertNoCorsError(report);
    assert.equal((await waitForRunEnd(server, runId)).status, "cancelled");
  },
);

browserTest(
  "--token: ?access_token= opens the stream; a wrong token gets 401, no retry",
  async () => {
    const token = "s3cret-browser-token";
    await using page = servePageWithObserved();
    await using server = await startServer(["--cors-origin", page.origin, "--token", token]);
    const auth = { Authorization: `Bearer ${token}` };
    const runId = await startRun(server, DIAMOND, auth);
    const eventsUrl = server.at(`/runs/${runId}/events`);
    const wrongUrl = `${eventsUrl}?access_token=wrong`;
    const rightUrl = `${eventsUrl}?access_token=${token}`;
    page.html = pageHtml([
      { url: wrongUrl, until: "first-error" },
      { url: rightUrl, until: "complete" },
    ]);

    await using browser = openBrowser<PageRecord[]>(page.url);
    const { report, records } = await browser.result();
    const [wrong, right] = records;
    assert.deepEqual(shape(wrong), ["error(2)"], "401 fails the EventSource: CLOSED, no reconnect");
    assert.equal(right.outcome, "execution_complete");
    assert.deepEqual(shape(right), ["open", ...range(1, 9)]);
    await assertProtocolEvents(server, runId, DIAMOND, eventsOf(right), {
      outputs: DIAMOND_OUTPUTS,
      errors: {},
      headers: auth,
    });
    assert.deepEqual(report.responses, [
      { url: wrongUrl, status: 401, allowOrigin: page.origin },
      { url: rightUrl, status: 200, allowOrigin: page.origin },
    ]);
    assertNoCorsError(report);
    assertOnlyAborted(report);
    // Both requests are in the log (written in batches) before it is searched.
    await server.untilStderr((log) =>
      log.includes('"status":401') && log.includes('"status":200,') && log.includes("/events")
    );
    assert.ok(!server.stderr().includes(token), "the token stays out of the server's log");
  },
);

browserTest("control: without --cors-origin the browser blocks the very same stream", async () => {
  await using page = servePageWithObserved();
  await using server = await startServer();
  const runId = await startRun(server, DIAMOND);
  await waitForRunEnd(server, runId);
  // waitForRunEnd follows the run's stream itself: count only the page's requests.
  const before = eventsStatuses(server, runId).length;
  const eventsUrl = server.at(`/runs/${runId}/events`);
  page.html = pageHtml([{ url: eventsUrl, until: "first-error" }]);

  await using browser = openBrowser<PageRecord[]>(page.url);
  const { report, records } = await browser.result();
  const [record] = records;
  // A CORS failure is a network error: the EventSource fails at once (CLOSED), no event, no open.
  assert.deepEqual(shape(record), ["error(2)"]);
  assert.deepEqual(report.failures, [{ url: eventsUrl, errorText: "net::ERR_FAILED" }]);
  assert.ok(
    report.console.some((m) =>
      m.text.includes(`from origin '${page.origin}' has been blocked by CORS policy`)
    ),
    `Chromium reports the CORS error: ${JSON.stringify(report.console)}`,
  );
  // The server refuses a foreign Origin itself (403 forbidden-origin, no
  // Access-Control-Allow-Origin), so the page cannot even read why.
  assert.deepEqual(eventsStatuses(server, runId).slice(before), [403]);
});
