/**
 * Drives the system's headless Chromium (`/usr/bin/chromium`, never a browser
 * download) with npm:playwright-core for `browser_eventsource_test.ts`.
 *
 * It runs in its own process, started by that test as
 * `deno run -A tests/integration/_browser_driver.ts <page url> [timeout ms]`,
 * because playwright-core cannot even be loaded under the permissions of
 * `deno task test`: its module initialisation reads the home directory, the OS
 * release and `/proc/sys/fs/binfmt_misc/WSLInterop`, and Deno grants `/proc/sys`
 * to `--allow-all` only. The test process keeps its narrow permissions and its
 * sanitizers; this process holds the browser.
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
 * @module
 */

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

/** What the driver saw; `result` is what the page's script recorded. */
export interface BrowserReport {
  /** The page's own record (the value `window.__finished` resolved with). */
  result?: unknown;
  /** Every console message of the page (Chromium reports CORS failures there). */
  console: { type: string; text: string }[];
  /** Uncaught exceptions of the page's script. */
  pageErrors: string[];
  /** The page's EventSource requests, in order, as the browser sent them. */
  requests: { method: string; url: string; lastEventId: string | null }[];
  /** The answers to them, in order. */
  responses: { url: string; status: number; allowOrigin: string | null }[];
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

if (import.meta.main) await main();

async function main(): Promise<void> {
  // Loaded here, not at the top: the test imports this module's constants
  // and types under permissions that playwright-core cannot load with.
  const { chromium } = await import("playwright-core");
  const [pageUrl, timeoutArg] = Deno.args;
  const timeoutMs = Number(timeoutArg ?? 60_000);
  const report: BrowserReport = {
    console: [],
    pageErrors: [],
    requests: [],
    responses: [],
    failures: [],
    leftovers: [],
  };
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
      if (r.resourceType() !== "eventsource") return;
      const entry = { method: r.method(), url: r.url(), lastEventId: null as string | null };
      report.requests.push(entry);
      // headers() has only the provisional headers; Last-Event-ID is among the raw ones.
      pending.push(
        r.allHeaders().then((headers) => {
          entry.lastEventId = headers["last-event-id"] ?? null;
        }, () => {}),
      );
    });
    page.on("response", (r) => {
      if (r.request().resourceType() !== "eventsource") return;
      report.responses.push({
        url: r.url(),
        status: r.status(),
        allowOrigin: r.headers()["access-control-allow-origin"] ?? null,
      });
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
