/**
 * A hostile web page, in a real browser, cannot drive or read a dagstream
 * server started with default flags. Headless Chromium (Debian's
 * `/usr/bin/chromium`, driven by npm:playwright-core in `_browser_driver.ts`)
 * loads a page that this test serves on 127.0.0.1 with another port, so on
 * another origin than the server, and the page tries, one attempt after the
 * other, every way it has to start or read a run:
 *
 * - `sendBeacon` with a `text/plain` DAG, to `/runs` and `/execute`;
 * - `fetch` in `no-cors` mode, POST to `/runs` and `/execute`, with each body
 *   type a browser sends cross-origin without a CORS preflight
 *   (`application/x-www-form-urlencoded`, `multipart/form-data` as a
 *   `FormData` or as a bare header, `text/plain`, a string body without a
 *   type), and with `Content-Type: application/json`, which `no-cors` drops;
 * - an HTML form auto-submitted into a hidden iframe, with each enctype
 *   (`text/plain` with a field crafted so that the body is a JSON DAG,
 *   urlencoded, multipart);
 * - `fetch` with `Content-Type: application/json`, which needs a CORS preflight;
 * - reading a run the test started itself, whose id the page is given:
 *   `EventSource` on its events, CORS `fetch` of `/runs/<id>` and `/runs`,
 *   and a `no-cors` `fetch` of `/runs/<id>`.
 *
 * Every attempt settles before the page reports (each promise awaited, the
 * iframe's load, the EventSource's error, the beacon's entry in the server's
 * log). Then the test proves that none worked: `GET /runs` (from Deno, no
 * `Origin`) lists only the test's own run; the server's log has every request
 * of the page, in order, each answered 403 (the forms' answers, which the
 * browser shows to the driver, are `forbidden-origin` problems) except the
 * `no-cors` GET, which carries no `Origin` and whose answer the page cannot
 * read; the preflights were refused, so the JSON POSTs never left the
 * browser; the browser's network log has the same statuses and the CORS
 * failures; the EventSource got no event and the CORS reads rejected.
 *
 * The control: the same page against a server started with
 * `--cors-origin <the page's origin>`. There the JSON POSTs start runs and the
 * reads get the test's run, so the page can tell success from failure; and
 * the bodies a browser sends without a preflight still start nothing: each
 * is answered 415, so the 403s above were the `Origin` check.
 *
 * Skipped, with a message, when `/usr/bin/chromium` does not exist
 * (`apt-get install chromium`; `.ci/run` installs it).
 */

import assert from "node:assert/strict";
import { openBrowser, skipWithoutChromium } from "./_browser_driver.ts";
import { type PageServer, scriptPage, servePage } from "./_page_server.ts";
import { echoDag, jsonHeaders, type ServerProcess, startServer } from "./_server.ts";

/** How long the page gives one attempt, and the test the server's log (bounds only). */
const ATTEMPT_TIMEOUT_MS = 20_000;

const SKIP = skipWithoutChromium("browser_cross_site_test.ts");

// ---------------------------------------------------------------------------
// The attempts

/** One thing the page tries; `name` is also in the URL's query (`?attempt=`). */
type Attempt =
  | { name: string; kind: "beacon"; url: string; body: string; type: string }
  | {
    name: string;
    kind: "fetch";
    url: string;
    mode: "cors" | "no-cors";
    method: "GET" | "POST";
    headers?: Record<string, string>;
    body?: string;
    /** A multipart body: `FormData` with these fields. */
    formData?: [string, string][];
  }
  | { name: string; kind: "form"; url: string; enctype: string; fields: [string, string][] }
  | { name: string; kind: "eventsource"; url: string }
  /** Wait until the server has logged this many of the page's requests (the beacons'). */
  | { name: string; kind: "server-log"; entries: number };

/** What the page recorded for one attempt. */
interface Outcome {
  name: string;
  /** `fetch`: the response, unless the promise rejected. */
  response?: { type: string; status: number; runId: string | null; body: string };
  /** `fetch`: the rejection. */
  error?: string;
  /** `beacon`: whether the browser queued it. */
  queued?: boolean;
  /** `form`: the iframe loaded a document of another origin (the server's answer). */
  loaded?: boolean;
  /** `eventsource`: open, each event's type, and error(readyState), in order. */
  log?: string[];
  /** The attempt's failsafe fired (never expected). */
  timedOut?: boolean;
}

/** A DAG that would start a run, were it accepted. */
const DAG = JSON.stringify(echoDag(1, { from: "hostile page" }));

/**
 * A `text/plain` form sends `name=value\r\n`: with this field, that is the
 * JSON of a one-task DAG (`…"pad":"="…`), the classic way to post JSON
 * cross-site without script.
 */
const JSON_FORM_FIELD: [string, string] = [
  '{"tasks":[{"id":"form","tool":"mock:echo","arguments":{"pad":"',
  '"}}]}',
];

/** The attempts of the page, in order, against `server` and the test's run `runId`. */
function attempts(server: string, runId: string): Attempt[] {
  const url = (path: string, name: string) => `${server}${path}?attempt=${name}`;
  const list: Attempt[] = [
    // First, so that the first two requests of the page in the server's log are theirs.
    ...["runs", "execute"].map((route): Attempt => ({
      name: `beacon-${route}`,
      kind: "beacon",
      url: url(`/${route}`, `beacon-${route}`),
      body: DAG,
      type: "text/plain",
    })),
    { name: "beacons-reached-the-server", kind: "server-log", entries: 2 },
  ];
  const simple: { variant: string; headers?: Record<string, string>; formData?: boolean }[] = [
    { variant: "urlencoded", headers: { "Content-Type": "application/x-www-form-urlencoded" } },
    { variant: "multipart-formdata", formData: true },
    { variant: "multipart-header", headers: { "Content-Type": "multipart/form-data" } },
    { variant: "text-plain", headers: { "Content-Type": "text/plain" } },
    { variant: "string-body" },
    // no-cors drops a Content-Type that is not CORS-safelisted: text/plain is sent.
    { variant: "json-header-dropped", headers: { "Content-Type": "application/json" } },
  ];
  for (const route of ["runs", "execute"]) {
    for (const { variant, headers, formData } of simple) {
      const name = `no-cors-${variant}-${route}`;
      list.push({
        name,
        kind: "fetch",
        url: url(`/${route}`, name),
        mode: "no-cors",
        method: "POST",
        headers,
        ...(formData ? { formData: [["dag", DAG]] } : { body: DAG }),
      });
    }
  }
  for (const route of ["runs", "execute"]) {
    for (
      const [enctype, fields] of [
        ["text/plain", [JSON_FORM_FIELD]],
        ["application/x-www-form-urlencoded", [["dag", DAG]]],
        ["multipart/form-data", [["dag", DAG]]],
      ] as [string, [string, string][]][]
    ) {
      const name = `form-${enctype.split("/")[1]}-${route}`;
      list.push({ name, kind: "form", url: url(`/${route}`, name), enctype, fields });
    }
  }
  for (const route of ["execute", "runs"]) {
    const name = `cors-json-${route}`;
    list.push({
      name,
      kind: "fetch",
      url: url(`/${route}`, name),
      mode: "cors",
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: DAG,
    });
  }
  list.push(
    { name: "eventsource", kind: "eventsource", url: url(`/runs/${runId}/events`, "eventsource") },
    {
      name: "cors-get-run",
      kind: "fetch",
      url: url(`/runs/${runId}`, "cors-get-run"),
      mode: "cors",
      method: "GET",
    },
    {
      name: "cors-get-runs",
      kind: "fetch",
      url: url("/runs", "cors-get-runs"),
      mode: "cors",
      method: "GET",
    },
    {
      name: "no-cors-get-run",
      kind: "fetch",
      url: url(`/runs/${runId}`, "no-cors-get-run"),
      mode: "no-cors",
      method: "GET",
    },
  );
  return list;
}

// ---------------------------------------------------------------------------
// The page

/** The page's script: runs the attempts one after the other, records each outcome. */
const PAGE_SCRIPT = `
const EVENT_TYPES = ["task_start", "task_progress", "task_complete", "execution_complete"];

async function runFetch(a) {
  const init = { mode: a.mode, method: a.method, headers: a.headers ?? {} };
  if (a.formData) {
    init.body = new FormData();
    for (const [k, v] of a.formData) init.body.append(k, v);
  } else if (a.body !== undefined) {
    init.body = a.body;
  }
  try {
    const response = await fetch(a.url, init);
    const body = await response.text();
    return {
      response: {
        type: response.type, status: response.status,
        runId: response.headers.get("x-run-id"), body,
      },
    };
  } catch (error) {
    return { error: String(error) };
  }
}

function runForm(a) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = "frame-" + a.name;
    frame.style.display = "none";
    document.body.append(frame);
    const form = document.createElement("form");
    form.method = "post";
    form.action = a.url;
    form.enctype = a.enctype;
    form.target = frame.name;
    for (const [name, value] of a.fields) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    frame.addEventListener("load", function onLoad() {
      // A late load of the initial about:blank is same-origin: not the answer yet.
      let foreign;
      try {
        foreign = frame.contentDocument === null;
      } catch {
        foreign = true;
      }
      if (!foreign) return;
      frame.removeEventListener("load", onLoad);
      resolve({ loaded: true });
    });
    form.submit();
  });
}

function runEventSource(a) {
  return new Promise((resolve) => {
    const log = [];
    const source = new EventSource(a.url);
    source.addEventListener("open", () => log.push("open"));
    const onEvent = (e) => log.push(e.type);
    source.addEventListener("message", onEvent);
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
    source.addEventListener("error", (e) => {
      if (e instanceof MessageEvent) return onEvent(e); // the run's own "error" event
      log.push("error(" + source.readyState + ")");
      source.close();
      resolve({ log });
    });
  });
}

async function runAttempt(a) {
  switch (a.kind) {
    case "beacon":
      return { queued: navigator.sendBeacon(a.url, new Blob([a.body], { type: a.type })) };
    case "server-log": {
      const response = await fetch("/server-log?entries=" + a.entries);
      return { response: { type: response.type, status: response.status, runId: null, body: await response.text() } };
    }
    case "fetch":
      return runFetch(a);
    case "form":
      return runForm(a);
    case "eventsource":
      return runEventSource(a);
  }
}

window.__finished = (async () => {
  const outcomes = [];
  for (const a of ATTEMPTS) {
    let timer;
    const failsafe = new Promise((resolve) => {
      timer = setTimeout(() => resolve({ timedOut: true }), ATTEMPT_TIMEOUT_MS);
    });
    const outcome = await Promise.race([runAttempt(a), failsafe]);
    clearTimeout(timer);
    outcomes.push({ name: a.name, ...outcome });
  }
  return outcomes;
})();
`;

function pageHtml(list: Attempt[]): string {
  return scriptPage("a foreign page", { ATTEMPTS: list, ATTEMPT_TIMEOUT_MS }, PAGE_SCRIPT);
}

/** The page's server (another origin than dagstream's), with `/server-log`. */
interface LoggedPage extends PageServer {
  /**
   * Answers the page's `GET /server-log?entries=N` once this resolves: set
   * by the test once the dagstream server exists.
   */
  untilLogged: (entries: number) => Promise<void>;
}

/**
 * Serves the page on an origin of its own ({@linkcode servePage}), and
 * `/server-log`, same-origin for the page.
 */
function servePageWithServerLog(): LoggedPage {
  const page: LoggedPage = Object.assign(
    servePage(async (_request, { pathname, searchParams }) => {
      if (pathname !== "/server-log") return undefined;
      try {
        await page.untilLogged(Number(searchParams.get("entries")));
        return new Response("logged");
      } catch (error) {
        return new Response(String(error), { status: 504 });
      }
    }),
    { untilLogged: (): Promise<void> => Promise.reject(new Error("no server yet")) },
  );
  return page;
}

// ---------------------------------------------------------------------------
// The server's log

/** One `request` line of the server's log. */
interface Logged {
  method: string;
  path: string;
  status: number;
}

/** The server's `request` log lines so far (complete lines only), in order. */
function requestLog(server: ServerProcess): Logged[] {
  return server.stderr().split("\n").slice(0, -1).filter((line) => line.startsWith("{")).map((
    line,
  ) => JSON.parse(line)).filter((entry) => entry.msg === "request").map((
    { method, path, status },
  ) => ({
    method,
    path,
    status,
  }));
}

/**
 * Resolves once the server has logged a request line for which `predicate`
 * holds (the log arrives through a pipe, a little after the answer: checked
 * each time the server writes to stderr), or
 * rejects after {@linkcode ATTEMPT_TIMEOUT_MS}.
 */
async function untilLog(server: ServerProcess, predicate: (log: Logged[]) => boolean) {
  const logged = server.untilStderr(() => predicate(requestLog(server)));
  logged.catch(() => {}); // awaited below; may settle after the deadline
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the server's log: ${JSON.stringify(requestLog(server))}`)),
      ATTEMPT_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([logged, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const isHealth = (entry: Logged) => entry.method === "GET" && entry.path === "/health";

/**
 * A `GET /health` from the test, once logged: a mark in the server's log.
 * The page never asks for `/health`, so what lies between two marks is the page's.
 */
async function markLog(server: ServerProcess): Promise<void> {
  const before = requestLog(server).filter(isHealth).length;
  const response = await fetch(server.at("/health"));
  assert.equal(response.status, 200);
  await response.body?.cancel();
  await untilLog(server, (log) => log.filter(isHealth).length > before);
}

/** The requests logged between the first two marks. */
function pageRequests(server: ServerProcess): Logged[] {
  const log = requestLog(server);
  const first = log.findIndex(isHealth);
  const second = log.findIndex((entry, i) => i > first && isHealth(entry));
  return log.slice(first + 1, second < 0 ? undefined : second);
}

// ---------------------------------------------------------------------------
// The test

const browserTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `browser cross-site: ${name}`, ignore: SKIP, fn });

/** What the page does, against `flags`; returns everything the test needs to judge it. */
async function hostilePage(flags: (pageOrigin: string) => string[]) {
  await using page = servePageWithServerLog();
  await using server = await startServer(flags(page.origin));
  const serverOrigin = new URL(server.url).origin;
  assert.notEqual(serverOrigin, page.origin, "the page is on another origin");
  // The test's own run: POST /execute answers once it is over.
  const own = await fetch(server.at("/execute"), {
    method: "POST",
    headers: jsonHeaders(),
    body: JSON.stringify(echoDag(2)),
  });
  assert.equal(own.status, 200);
  const ownRunId = own.headers.get("x-run-id")!;
  await own.body?.cancel();
  await markLog(server);
  page.untilLogged = (entries) => untilLog(server, () => pageRequests(server).length >= entries);
  const list = attempts(serverOrigin, ownRunId);
  page.html = pageHtml(list);

  await using browser = openBrowser<Outcome[]>(page.url, serverOrigin);
  const { report, records: outcomes } = await browser.result();
  await markLog(server);
  const logged = pageRequests(server);
  const listed = await fetch(server.at("/runs"));
  assert.equal(listed.status, 200);
  const runIds: string[] = (await listed.json()).runs.map((r: { runId: string }) => r.runId);
  return { report, outcomes, page, server, serverOrigin, ownRunId, list, logged, runIds };
}

/**
 * What one attempt should come to: the server's log lines for it, in order,
 * and the status the browser's network log shows, or `blocked` when the
 * browser refused the answer (a CORS failure: no response, `net::ERR_FAILED`).
 */
function expected(
  attempt: Attempt,
  allowed: boolean,
): { log: Logged[]; browser?: number | "blocked" } {
  if (attempt.kind === "server-log") return { log: [] };
  const path = new URL(attempt.url).pathname;
  const refused = allowed ? 415 : 403;
  switch (attempt.kind) {
    case "beacon":
    case "form":
      return { log: [{ method: "POST", path, status: refused }], browser: refused };
    case "eventsource":
      return {
        log: [{ method: "GET", path, status: allowed ? 200 : 403 }],
        browser: allowed ? 200 : "blocked",
      };
    case "fetch":
      if (attempt.mode === "no-cors") {
        // A no-cors GET carries no Origin, but Sec-Fetch-Site: cross-site
        // tells the server a page sent it: refused whatever --cors-origin says.
        const status = attempt.method === "GET" ? 403 : refused;
        return { log: [{ method: attempt.method, path, status }], browser: status };
      }
      if (attempt.method === "GET") {
        return {
          log: [{ method: "GET", path, status: allowed ? 200 : 403 }],
          browser: allowed ? 200 : "blocked",
        };
      }
      if (!allowed) return { log: [{ method: "OPTIONS", path, status: 403 }], browser: "blocked" };
      {
        const status = path === "/execute" ? 200 : 202;
        return {
          log: [{ method: "OPTIONS", path, status: 204 }, { method: "POST", path, status }],
          browser: status,
        };
      }
  }
}

/** The `attempt` query parameter of a URL the page asked for. */
const attemptOf = (url: string) => new URL(url).searchParams.get("attempt");

const byName = <T extends { name: string }>(items: T[], name: string): T => {
  const found = items.find((item) => item.name === name);
  assert.ok(found !== undefined, `no ${name}`);
  return found;
};

/**
 * The checks common to both servers: every attempt settled (none timed out)
 * and in order; the server logged exactly the expected requests of the page
 * (the two beacons in either order: they leave together), and the browser's
 * network log agrees; the bodies the browser sent were the intended ones.
 */
function assertCommon(run: Awaited<ReturnType<typeof hostilePage>>, allowed: boolean): void {
  const { outcomes, report, list, logged, page } = run;
  assert.deepEqual(outcomes.map((o) => o.name), list.map((a) => a.name), "every attempt settled");
  assert.deepEqual(outcomes.filter((o) => o.timedOut), [], "no attempt hit its failsafe");
  assert.equal(
    byName(outcomes, "beacons-reached-the-server").response?.status,
    200,
    "both beacons reached the server before the page went on",
  );

  const expectations = list.map((a) => ({ name: a.name, ...expected(a, allowed) }));
  const wanted = expectations.flatMap((e) => e.log);
  const sorted = (entries: Logged[]) => entries.map((e) => JSON.stringify(e)).sort();
  assert.deepEqual(sorted(logged.slice(0, 2)), sorted(wanted.slice(0, 2)), "the beacons");
  assert.deepEqual(logged.slice(2), wanted.slice(2), "the server saw these requests of the page");

  // The browser's network log: the status of each answer it let through; none for the blocked.
  const seen = new Map(report.responses.map((r) => [attemptOf(r.url), r.status]));
  assert.equal(seen.size, report.responses.length, "one answer per attempt");
  const answered = expectations.filter((e) => typeof e.browser === "number");
  assert.deepEqual(
    Object.fromEntries(seen),
    Object.fromEntries(answered.map((e) => [e.name, e.browser])),
    "the answers the browser received",
  );
  const blocked = expectations.filter((e) => e.browser === "blocked").map((e) => e.name);
  assert.deepEqual(
    report.failures.filter((f) => f.errorText === "net::ERR_FAILED").map((f) => attemptOf(f.url)),
    blocked,
    "the answers the browser refused (CORS)",
  );
  // The others' failures, if any, are the browser discarding opaque answers it
  // will not give the page (net::ERR_ABORTED), never a network error.
  for (const failure of report.failures) {
    assert.ok(/^net::ERR_(FAILED|ABORTED)$/.test(failure.errorText), JSON.stringify(failure));
  }

  // What the browser sent: each body type as intended, the crafted form a JSON DAG.
  const sent = new Map(report.requests.map((r) => [attemptOf(r.url), r]));
  const types: Record<string, RegExp> = {
    "beacon": /^text\/plain$/,
    "no-cors-urlencoded": /^application\/x-www-form-urlencoded$/,
    "no-cors-multipart-formdata": /^multipart\/form-data; boundary=\S+$/,
    "no-cors-multipart-header": /^multipart\/form-data$/,
    "no-cors-text-plain": /^text\/plain$/,
    "no-cors-string-body": /^text\/plain;charset=UTF-8$/,
    "no-cors-json-header-dropped": /^text\/plain;charset=UTF-8$/,
    "form-plain": /^text\/plain$/,
    "form-x-www-form-urlencoded": /^application\/x-www-form-urlencoded$/,
    "form-form-data": /^multipart\/form-data; boundary=\S+$/,
  };
  for (const attempt of list) {
    if (attempt.kind === "server-log") continue;
    const request = sent.get(attempt.name);
    assert.ok(request !== undefined, `the browser sent ${attempt.name}`);
    const prefix = Object.keys(types).find((p) => attempt.name.startsWith(`${p}-`));
    if (prefix !== undefined) {
      assert.match(request.contentType ?? "", types[prefix], `${attempt.name}'s Content-Type`);
    }
    if (attempt.kind === "form") {
      // Chromium labels a cross-origin POST navigation with the page's Origin.
      assert.equal(request.origin, page.origin, `${attempt.name}'s Origin`);
    }
    if (attempt.name.startsWith("form-plain-")) {
      assert.deepEqual(
        JSON.parse(request.postData!),
        { tasks: [{ id: "form", tool: "mock:echo", arguments: { pad: "=" } }] },
        "a text/plain form can post a JSON DAG",
      );
    }
    // (Playwright does not show a beacon's Blob body.)
    if (attempt.name.startsWith("no-cors-text-plain-")) {
      assert.equal(request.postData, DAG, `${attempt.name} sent the DAG`);
    }
  }
  // The forms' answers, which the page cannot read but the browser can: problems.
  for (const response of report.responses.filter((r) => r.resourceType === "document")) {
    assert.equal(response.contentType, "application/problem+json");
    assert.equal(
      JSON.parse(response.body!).type,
      `https://dagstream.dev/problems/${allowed ? "unsupported-media-type" : "forbidden-origin"}`,
    );
  }

  // Every no-cors attempt got an opaque answer: no status, no header, no body.
  for (const attempt of list) {
    if (attempt.kind !== "fetch" || attempt.mode !== "no-cors") continue;
    assert.deepEqual(
      byName(outcomes, attempt.name).response,
      { type: "opaque", status: 0, runId: null, body: "" },
      attempt.name,
    );
  }
  for (const attempt of list.filter((a) => a.kind === "beacon")) {
    assert.equal(byName(outcomes, attempt.name).queued, true, `${attempt.name} was queued`);
  }
  for (const attempt of list.filter((a) => a.kind === "form")) {
    assert.equal(byName(outcomes, attempt.name).loaded, true, `${attempt.name}'s answer loaded`);
  }
}

/** The CORS-mode attempts of the page. */
const CORS_ATTEMPTS = ["cors-json-execute", "cors-json-runs", "cors-get-run", "cors-get-runs"];

browserTest(
  "default flags: no request of a foreign page starts a run or reads one",
  async () => {
    const run = await hostilePage(() => []);
    const { outcomes, report, page, runIds, ownRunId } = run;
    assertCommon(run, false);

    // Nothing started: the server knows the test's own run only.
    assert.deepEqual(runIds, [ownRunId], "GET /runs lists the test's own run only");
    assert.ok(
      run.logged.every((e) => e.status === 403),
      "every request of the page was refused, the no-cors GET (no Origin) too",
    );
    assert.ok(
      !run.logged.some((e) => e.method === "POST" && e.status !== 403),
      "no POST of the page got past the Origin check",
    );

    // Nothing read: the CORS attempts rejected, the EventSource failed at once.
    for (const name of CORS_ATTEMPTS) {
      const outcome = byName(outcomes, name);
      assert.equal(outcome.response, undefined, `${name} got no response`);
      assert.match(outcome.error ?? "", /^TypeError: Failed to fetch/, name);
    }
    assert.deepEqual(
      byName(outcomes, "eventsource").log,
      ["error(2)"],
      "the EventSource failed: CLOSED at once, no open, no event",
    );
    // Chromium says why: the preflights (the JSON POSTs) and the reads were refused.
    const cors = report.console.map((m) => m.text).filter((t) => t.includes("CORS policy"));
    for (const name of ["cors-json-execute", "cors-json-runs"]) {
      const url = byName(run.list, name) as { url: string };
      assert.ok(
        cors.some((t) =>
          t.startsWith(`Access to fetch at '${url.url}' from origin '${page.origin}'`) &&
          t.includes("Response to preflight request doesn't pass access control check")
        ),
        `${name}: the preflight failed: ${JSON.stringify(cors)}`,
      );
    }
    for (const name of ["eventsource", "cors-get-run", "cors-get-runs"]) {
      const url = byName(run.list, name) as { url: string };
      assert.ok(
        cors.some((t) =>
          new RegExp(`^Access to \\w+ at '${url.url.replace(/[.?]/g, "\\$&")}'`).test(t)
        ),
        `${name}: blocked by CORS: ${JSON.stringify(cors)}`,
      );
    }
    assert.equal(cors.length, 5, "no other CORS failure");
    assert.ok(
      report.responses.every((r) => r.allowOrigin === null),
      "the server never answered with Access-Control-Allow-Origin",
    );
  },
);

browserTest(
  "control, --cors-origin <the page's origin>: the JSON POSTs and the reads work, no-preflight bodies still get 415",
  async () => {
    const run = await hostilePage((origin) => ["--cors-origin", origin]);
    const { outcomes, report, page, runIds, ownRunId } = run;
    assertCommon(run, true);

    // The page can start runs with JSON, and reads their ids.
    const execute = byName(outcomes, "cors-json-execute").response;
    const runs = byName(outcomes, "cors-json-runs").response;
    assert.equal(execute?.status, 200, JSON.stringify(execute));
    assert.equal(runs?.status, 202, JSON.stringify(runs));
    assert.equal(JSON.parse(execute.body).results[0].output.from, "hostile page");
    assert.equal(JSON.parse(runs.body).runId, runs.runId);
    assert.deepEqual(
      [...runIds].sort(),
      [ownRunId, execute.runId, runs.runId].sort(),
      "GET /runs: the test's run and the two the page started with JSON, no other",
    );

    // The page can read the test's run.
    const events = byName(outcomes, "eventsource").log!;
    assert.equal(events[0], "open");
    assert.equal(events.at(-1), "error(0)", "the stream of the finished run ended");
    assert.deepEqual(
      events.slice(1, -1).sort(),
      ["execution_complete", "task_complete", "task_complete", "task_start", "task_start"],
      "every event of the test's run",
    );
    assert.equal(events.at(-2), "execution_complete");
    const one = byName(outcomes, "cors-get-run").response;
    assert.equal(one?.status, 200);
    assert.equal(JSON.parse(one.body).runId, ownRunId);
    const all = byName(outcomes, "cors-get-runs").response;
    assert.equal(all?.status, 200);
    assert.ok(JSON.parse(all.body).runs.some((r: { runId: string }) => r.runId === ownRunId));

    assert.deepEqual(
      report.console.filter((m) => m.text.includes("CORS policy")),
      [],
      "no CORS failure",
    );
    for (const response of report.responses) {
      if (response.resourceType === "fetch" && response.contentType === null) continue; // opaque
      if (response.resourceType === "ping") continue; // opaque
      assert.equal(response.allowOrigin, page.origin, response.url);
    }
  },
);
