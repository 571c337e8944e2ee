/**
 * Drives the system's headless Chromium (`/usr/bin/chromium`, never a browser
 * download) with npm:playwright-core for `browser_eventsource_test.ts` and
 * `browser_cross_site_test.ts`.
 *
 * It runs in its own process, started by those tests ({@linkcode openBrowser}) as
 * `deno run -A tests/integration/_browser_driver.ts <page url> [timeout ms] [origin]`,
 * because playwright-core cannot even be loaded under the permissions of
 * `deno task test`: its module initialisation reads the home directory, the OS
 * release and `/proc/sys/fs/binfmt_misc/WSLInterop`, and Deno grants `/proc/sys`
 * to `--allow-all` only. The test process keeps its narrow permissions and its
 * sanitizers; this process holds the browser.
 *
 * It records the page's EventSource requests; given an origin, it records
 * instead every request of the page to that origin, whatever its kind (fetch,
 * form navigation, beacon…), with its `Origin` and `Content-Type` headers and
 * its body, and the answers' bodies.
 *
 * It opens the page, waits for the promise `window.__finished` that the page's
 * script resolves with what it recorded, closes the browser, checks that no
 * Chromium process is left (each one's command line names the profile under
 * `$TMPDIR`, which the test makes fresh for each run), and prints one line:
 * `BROWSER_REPORT <json>` ({@linkcode BrowserReport}). It exits 0 when the page
 * finished, 1 otherwise (the report then has `error`).
 *
 * On SIGTERM (the test giving up) Playwright's own handler closes the browser
 * before the process exits.
 *
 * For the tests' side it exports {@linkcode skipWithoutChromium}, which tells
 * them whether to skip, and {@linkcode openBrowser}, which starts this process
 * on a page and reads its report.
 *
 * @module
 */

import assert from "node:assert/strict";

/** The browser the test drives: Debian's `chromium` package. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Chromium's flags: headless, no sandbox (root in CI), and no traffic of its own. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The prefix of the driver's report line on stdout. */
export const REPORT_PREFIX = "BROWSER_REPORT ";

/** The driver gives up on a page after this long (a bound, not an assertion). */
export const PAGE_TIMEOUT_MS = 60_000;

/** What the driver saw; `result` is what the page's script recorded. */
export interface BrowserReport {
  /** The page's own record (the value `window.__finished` resolved with). */
  result?: unknown;
  /** Every console message of the page (Chromium reports CORS failures there). */
  console: { type: string; text: string }[];
  /** Uncaught exceptions of the page's script. */
  pageErrors: string[];
  /**
   * The page's EventSource requests (or, given an origin, all its requests to
   * it, with the fields marked "given an origin"), in order, as the browser sent them.
   */
  requests: {
    method: string;
    url: string;
    lastEventId: string | null;
    /** Given an origin: Playwright's resource type (`fetch`, `document`, `ping`…). */
    resourceType?: string;
    /** Given an origin: the `Origin` header the browser sent, or null. */
    origin?: string | null;
    /** Given an origin: the `Content-Type` header the browser sent, or null. */
    contentType?: string | null;
    /** Given an origin: the request's body as text, or null. */
    postData?: string | null;
  }[];
  /** The answers to them, in order. */
  responses: {
    url: string;
    status: number;
    allowOrigin: string | null;
    /** Given an origin: the request's method and resource type. */
    method?: string;
    resourceType?: string;
    /** Given an origin: the answer's `Content-Type`, or null (none, or hidden from the page). */
    contentType?: string | null;
    /**
     * Given an origin: the answer's body, unless it is an event stream; null
     * when the browser kept none (e.g. an opaque answer it blocked).
     */
    body?: string | null;
  }[];
  /** Requests that failed in the browser's network stack (CORS, reset…), in order. */
  failures: { url: string; errorText: string }[];
  /** Chromium's version. */
  version?: string;
  /** ms from launch to a usable browser, and to closing it. */
  launchMs?: number;
  closeMs?: number;
  /** Chromium processes still alive after the browser was closed (should be none). */
  leftovers: string[];
  /** Why the driver failed, if it did. */
  error?: string;
}

/** A report of nothing yet. */
function emptyReport(): BrowserReport {
  return { console: [], pageErrors: [], requests: [], responses: [], failures: [], leftovers: [] };
}

/**
 * Whether the browser tests must be skipped here: true, after a warning that
 * names `testFile`, when {@linkcode CHROMIUM_PATH} does not exist or is not a
 * file.
 */
export function skipWithoutChromium(testFile: string): boolean {
  const missing = (() => {
    try {
      return Deno.statSync(CHROMIUM_PATH).isFile ? undefined : `${CHROMIUM_PATH} is not a file`;
    } catch {
      return `${CHROMIUM_PATH} does not exist`;
    }
  })();
  if (missing === undefined) return false;
  console.warn(
    `${testFile}: SKIPPED, ${missing} ` +
      "(install it with `apt-get install chromium`; .ci/run does)",
  );
  return true;
}

/** One run of the driver, as the test sees it. */
export interface BrowserRun<Records> {
  /** The driver's exit code (0: the page finished). */
  code: number;
  report: BrowserReport;
  /** What the page's script recorded: `report.result`, with the test's type. */
  records: Records;
  /** The driver's stderr. */
  stderr: string;
}

/** The driver running on a page. */
export interface Browser<Records> extends AsyncDisposable {
  /** Resolves once the driver exited (never rejects). */
  readonly finished: Promise<BrowserRun<Records>>;
  /** `finished`, asserting that the page finished and nothing was left running. */
  result(): Promise<BrowserRun<Records>>;
}

/**
 * Starts the driver on `pageUrl` (recording, given `recordOrigin`, the page's
 * requests to that origin), with a fresh `$TMPDIR` (Playwright's profile and
 * artifacts go there). The driver always exits: it gives up on the page
 * after {@linkcode PAGE_TIMEOUT_MS}. Disposing kills it if it still runs (its
 * SIGTERM handler closes Chromium), waits for it, and removes that directory.
 */
export function openBrowser<Records>(
  pageUrl: string,
  recordOrigin?: string,
): Browser<Records> {
  const tmp = Deno.makeTempDirSync({ prefix: "dagstream-browser-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL(import.meta.url).pathname,
      pageUrl,
      String(PAGE_TIMEOUT_MS),
      ...(recordOrigin === undefined ? [] : [recordOrigin]),
    ],
    env: { TMPDIR: tmp },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const finished = child.output().then((output): BrowserRun<Records> => {
    exited = true;
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    const line = stdout.split("\n").find((l) => l.startsWith(REPORT_PREFIX));
    const report: BrowserReport = line === undefined
      ? { ...emptyReport(), error: `no report; stdout: ${stdout}` }
      : JSON.parse(line.slice(REPORT_PREFIX.length));
    return { code: output.code, report, records: report.result as Records, stderr };
  });
  return {
    finished,
    async result() {
      const run = await finished;
      assert.equal(
        run.code,
        0,
        `the browser driver failed: ${run.report.error}\nstderr: ${run.stderr}`,
      );
      assert.deepEqual(run.report.pageErrors, [], "no uncaught error in the page");
      assert.deepEqual(run.report.leftovers, [], "no Chromium process outlives the browser");
      assert.deepEqual([...Deno.readDirSync(tmp)], [], "Playwright removed its profile");
      return run;
    },
    async [Symbol.asyncDispose]() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch {
          // exited meanwhile
        }
      }
      await finished;
      Deno.removeSync(tmp, { recursive: true });
    },
  };
}

if (import.meta.main) await main();

async function main(): Promise<void> {
  // Loaded here, not at the top: the test imports this module's constants,
  // types and functions under permissions that playwright-core cannot load with.
  const { chromium } = await import("playwright-core");
  const [pageUrl, timeoutArg, recordOrigin] = Deno.args;
  const recorded = (r: { url(): string; resourceType(): string }): boolean =>
    recordOrigin === undefined
      ? r.resourceType() === "eventsource"
      : new URL(r.url()).origin === recordOrigin;
  const timeoutMs = Number(timeoutArg ?? PAGE_TIMEOUT_MS);
  const report = emptyReport();
  const pending: Promise<void>[] = [];
  let ok = false;
  const t0 = performance.now();
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
    timeout: timeoutMs,
  });
  try {
    report.version = browser.version();
    report.launchMs = Math.round(performance.now() - t0);
    const page = await browser.newPage();
    page.on("console", (m) => report.console.push({ type: m.type(), text: m.text() }));
    page.on("pageerror", (e) => report.pageErrors.push(String(e)));
    page.on("request", (r) => {
      if (!recorded(r)) return;
      const entry: BrowserReport["requests"][number] = {
        method: r.method(),
        url: r.url(),
        lastEventId: null,
      };
      if (recordOrigin !== undefined) {
        entry.resourceType = r.resourceType();
        entry.postData = r.postData();
      }
      report.requests.push(entry);
      // headers() has only the provisional headers; Last-Event-ID is among the raw ones.
      pending.push(
        r.allHeaders().then((headers) => {
          entry.lastEventId = headers["last-event-id"] ?? null;
          if (recordOrigin !== undefined) {
            entry.origin = headers["origin"] ?? null;
            entry.contentType = headers["content-type"] ?? null;
          }
        }, () => {}),
      );
    });
    page.on("response", (r) => {
      if (!recorded(r.request())) return;
      const entry: BrowserReport["responses"][number] = {
        url: r.url(),
        status: r.status(),
        allowOrigin: r.headers()["access-control-allow-origin"] ?? null,
      };
      if (recordOrigin !== undefined) {
        entry.method = r.request().method();
        entry.resourceType = r.request().resourceType();
        entry.contentType = r.headers()["content-type"] ?? null;
        if (!entry.contentType?.startsWith("text/event-stream")) {
          pending.push(
            r.text().then((body) => {
              entry.body = body;
            }, () => {
              entry.body = null;
            }),
          );
        }
      }
      report.responses.push(entry);
    });
    page.on("requestfailed", (r) => {
      report.failures.push({ url: r.url(), errorText: r.failure()?.errorText ?? "" });
    });
    await page.goto(pageUrl);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      report.result = await Promise.race([
        page.evaluate("window.__finished"),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the page did not finish within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    await Promise.all(pending);
    ok = true;
  } catch (error) {
    report.error = error instanceof Error ? error.stack ?? error.message : String(error);
  } finally {
    const closing = performance.now();
    await browser.close();
    report.closeMs = Math.round(performance.now() - closing);
    report.leftovers = await chromiumLeftovers();
  }
  console.log(REPORT_PREFIX + JSON.stringify(report));
  Deno.exit(ok ? 0 : 1);
}

/**
 * The command lines of processes that still name this run's `$TMPDIR` (where
 * Playwright put the browser's profile), polled a little while: a renderer
 * may take a moment to follow the browser process out.
 */
async function chromiumLeftovers(): Promise<string[]> {
  const tmp = Deno.env.get("TMPDIR");
  if (tmp === undefined || tmp === "" || tmp === "/tmp") return [];
  let alive: string[] = [];
  for (let attempt = 0; attempt < 50; attempt++) {
    alive = [];
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
      let cmdline: string;
      try {
        cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      } catch {
        continue; // gone meanwhile
      }
      if (cmdline.includes(tmp)) alive.push(`${entry.name}: ${cmdline.slice(0, 200)}`);
    }
    if (alive.length === 0) return [];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return alive;
}
