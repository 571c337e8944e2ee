/**
 * Drives the run page (`GET /`) in the system's headless Chromium, one
 * scenario per process, for `browser_page_test.ts` (and, with `screenshots`,
 * for `scripts/page_screenshots.ts`):
 *
 *   deno run -A tests/integration/_page_driver.ts <scenario> '<config json>'
 *
 * It runs in its own process for the reason `_browser_driver.ts` gives
 * (playwright-core cannot load under the test's permissions). A scenario
 * acts as a person would (types, clicks) and steps the run by causality: it
 * releases a `gate:wait` task (the fixture MCP server's) only once the page
 * shows what must come before, and waits on the page's DOM, never on a
 * clock. Every `data-state` a task node takes is recorded in the page, from
 * the moment the node exists, by a `MutationObserver`.
 *
 * It prints one line, `PAGE_REPORT <json>` ({@linkcode PageReport}), and
 * exits 0 when the scenario finished, 1 otherwise (the report has `error`).
 *
 * @module
 */

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./_browser_driver.ts";

/** The scenarios. */
export type PageScenario =
  | "diamond"
  | "failing"
  | "cancel"
  | "disconnect"
  | "token"
  | "runs-list"
  | "invalid"
  | "refused"
  | "large"
  | "screenshots";

/** What a scenario is given. */
export interface PageConfig {
  /** The page's base URL (the server, or a proxy in front of it), ending in `/`. */
  base: string;
  /** The server itself, for the gates and the other client's calls. */
  api: string;
  /** Makes the gate keys of this run unique. */
  keyPrefix: string;
  /** The token the person types (scenario `token`). */
  token?: string;
  /** Where `screenshots` writes its PNGs. */
  outDir?: string;
  /** Scenario `runs-list`: the id of a run another client started, to find in the list. */
  otherRunId?: string;
}

/** What the driver saw. */
export interface PageReport {
  /** Each `[taskId, state]` a node took, in order (its first state when it appeared). */
  transitions: [string, string][];
  /** The page's EventSource requests with their `Last-Event-ID`. */
  streams: { url: string; lastEventId: string | null }[];
  /** Scenario-specific findings. */
  found: Record<string, unknown>;
  /** Console messages and uncaught errors of the page. */
  console: string[];
  pageErrors: string[];
  /** Why the scenario failed. */
  error?: string;
}

/** The prefix of the report line. */
export const PAGE_REPORT_PREFIX = "PAGE_REPORT ";

/** A bound on each wait for the page: a stuck scenario fails instead of hanging. */
const STEP_TIMEOUT_MS = 20_000;

/** Records every node's states in the page, from the node's first appearance. */
const RECORD_STATES = `
  window.__transitions = [];
  const last = new Map();
  const note = (el) => {
    const id = el.dataset.taskId, state = el.dataset.state;
    if (id === undefined || state === undefined || last.get(id) === state) return;
    last.set(id, state);
    window.__transitions.push([id, state]);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === "attributes") note(record.target);
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.matches("[data-task-id]")) note(node);
        node.querySelectorAll("[data-task-id]").forEach(note);
      }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
`;

if (import.meta.main) await main();

async function main(): Promise<void> {
  const { chromium } = await import("playwright-core");
  type Page = Awaited<ReturnType<Awaited<ReturnType<typeof chromium.launch>>["newPage"]>>;
  const scenario = Deno.args[0] as PageScenario;
  const config = JSON.parse(Deno.args[1]) as PageConfig;
  const report: PageReport = {
    transitions: [],
    streams: [],
    found: {},
    console: [],
    pageErrors: [],
  };
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS],
  });
  let ok = false;
  let page: Page | undefined;
  try {
    const open = async (scheme: "light" | "dark" = "light") => {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 860 },
        colorScheme: scheme,
      });
      const opened = await context.newPage();
      opened.setDefaultTimeout(STEP_TIMEOUT_MS);
      await opened.addInitScript(RECORD_STATES);
      opened.on("console", (m) => report.console.push(`${m.type()}: ${m.text()}`));
      opened.on("pageerror", (e) => report.pageErrors.push(String(e)));
      opened.on("request", (r) => {
        if (r.resourceType() !== "eventsource") return;
        const entry = { url: r.url(), lastEventId: null as string | null };
        report.streams.push(entry);
        r.allHeaders().then((h) => (entry.lastEventId = h["last-event-id"] ?? null), () => {});
      });
      return opened;
    };
    page = await open();
    const steps = scenarioSteps(page, config, report, open);
    await steps[scenario]();
    ok = true;
  } catch (error) {
    report.error = error instanceof Error ? error.stack ?? error.message : String(error);
  } finally {
    try {
      if (page !== undefined && !page.isClosed() && report.transitions.length === 0) {
        report.transitions = await page.evaluate("window.__transitions") as [string, string][];
      }
    } catch {
      // the page is gone; the report says why
    }
    await browser.close();
  }
  console.log(PAGE_REPORT_PREFIX + JSON.stringify(report));
  Deno.exit(ok ? 0 : 1);
}

// deno-lint-ignore no-explicit-any
type AnyPage = any;

/** What the scenarios read of an element inside the page (no DOM types here). */
type DomElement = { getAttribute(name: string): string | null; textContent: string | null };

/** The scenarios' steps. */
function scenarioSteps(
  page: AnyPage,
  config: PageConfig,
  report: PageReport,
  open: (scheme?: "light" | "dark") => Promise<AnyPage>,
): Record<PageScenario, () => Promise<void>> {
  const key = (name: string) => `${config.keyPrefix}-${name}`;
  const release = async (name: string) => {
    const response = await fetch(new URL("/execute", config.api), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({
        tasks: [{ id: "r", tool: "gate:release", arguments: { key: key(name) } }],
      }),
    });
    const result = await response.json();
    if (result.results?.[0]?.status !== "success") throw new Error(`release ${name} failed`);
  };
  const node = (id: string) => page.locator(`[data-task-id="${id}"]`);
  const untilState = (id: string, state: string) =>
    page.locator(`[data-task-id="${id}"][data-state="${state}"]`).waitFor();
  const stateOf = (id: string) => node(id).getAttribute("data-state");
  const expectState = async (id: string, state: string) => {
    const now = await stateOf(id);
    if (now !== state) throw new Error(`task ${id} is ${now}, expected ${state}`);
  };
  const untilRunStatus = (status: string) =>
    page.locator(`#run-status[data-status="${status}"]`).waitFor();
  const submit = async (dag: unknown) => {
    await page.getByLabel("DAG", { exact: true }).fill(JSON.stringify(dag, null, 2));
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.locator("#run:not([hidden]) [data-task-id]").first().waitFor();
    return decodeURIComponent(new URL(page.url()).hash.replace(/^#\/runs\//, ""));
  };
  const gate = (id: string, dependsOn: string[] = []) => ({
    id,
    tool: "gate:wait",
    arguments: { key: key(id) },
    dependsOn,
  });
  const diamond = { tasks: [gate("a"), gate("b", ["a"]), gate("c", ["a"]), gate("d", ["b", "c"])] };

  return {
    async diamond() {
      await page.goto(config.base);
      const runId = await submit(diamond);
      report.found.runId = runId;
      report.found.hash = new URL(page.url()).hash;
      await untilState("a", "running");
      for (const id of ["b", "c", "d"]) await expectState(id, "pending");
      // gate:wait reports progress once it blocks: a progress bar in its node.
      const bar = node("a").locator('[role="progressbar"]');
      await bar.waitFor();
      report.found.progress = {
        now: await bar.getAttribute("aria-valuenow"),
        max: await bar.getAttribute("aria-valuemax"),
      };
      await release("a");
      await untilState("a", "success");
      await untilState("b", "running");
      await untilState("c", "running");
      await expectState("d", "pending");
      report.found.progressGone = await node("a").locator('[role="progressbar"]').count();
      await release("b");
      await untilState("b", "success");
      await expectState("d", "pending");
      await release("c");
      await untilState("d", "running");
      await release("d");
      await untilState("d", "success");
      await untilRunStatus("succeeded");
      report.found.cancelHidden = await page.locator("#cancel").isHidden();
      report.found.edges = await page.locator("[data-edge]").evaluateAll((els: DomElement[]) =>
        els.map((e) => e.getAttribute("data-edge")).sort()
      );
      report.found.bars = await page.locator("[data-timeline-task-id]:not([hidden])").count();
      await node("d").click();
      const details = page.getByRole("region", { name: "Task details" });
      await details.getByText("gate:wait").waitFor();
      report.found.details = await details.innerText();
      // Reloading the shared URL replays the finished run (and starts a new record).
      report.transitions = await page.evaluate("window.__transitions");
      await page.reload();
      await untilRunStatus("succeeded");
      report.found.afterReload = await page.locator("[data-task-id]").evaluateAll((
        els: DomElement[],
      ) => els.map((e) => [e.getAttribute("data-task-id"), e.getAttribute("data-state")]));
    },

    async failing() {
      await page.goto(config.base);
      await submit({
        tasks: [
          { id: "ok", tool: "mock:echo", arguments: { x: 1 } },
          { id: "broken", tool: "mock:fail", arguments: { message: "upstream said 500" } },
          { id: "after", tool: "mock:echo", dependsOn: ["broken"] },
          { id: "later", tool: "mock:echo", dependsOn: ["after"] },
        ],
      });
      await untilRunStatus("failed");
      for (
        const [id, state] of [["ok", "success"], ["broken", "error"], ["after", "skipped"], [
          "later",
          "skipped",
        ]]
      ) {
        await untilState(id, state);
      }
      await node("broken").click();
      const details = page.getByRole("region", { name: "Task details" });
      await details.getByText("upstream said 500").first().waitFor();
      report.found.details = await details.innerText();
    },

    async cancel() {
      await page.goto(config.base);
      const runId = await submit({
        tasks: [gate("a"), gate("b", ["a"]), { ...gate("c"), dependsOn: [] }],
      });
      report.found.runId = runId;
      await untilState("a", "running");
      await untilState("c", "running");
      await page.getByRole("button", { name: "Cancel" }).click();
      await untilRunStatus("cancelled");
      for (const id of ["a", "b", "c"]) await untilState(id, "cancelled");
      report.found.cancelHidden = await page.locator("#cancel").isHidden();
      const view = await (await fetch(new URL(`/runs/${runId}`, config.api))).json();
      report.found.apiStatus = view.status;
    },

    async disconnect() {
      // The page talks to the server through a proxy that can close every connection at once.
      await using proxy = startProxy(new URL(config.api));
      await page.goto(proxy.url);
      await submit({ tasks: [gate("a"), gate("b", ["a"]), gate("c", ["b"])] });
      await untilState("a", "running");
      await proxy.cut();
      // While the page is disconnected, a ends and b starts: the page must not miss them.
      await release("a");
      await untilState("b", "running");
      await proxy.cut();
      await release("b");
      await untilState("c", "running");
      await release("c");
      await untilState("c", "success");
      await untilRunStatus("succeeded");
      report.found.cuts = proxy.cuts;
    },

    async token() {
      await page.goto(config.base);
      // The page's first API call gets 401: the page asks for the token, once.
      const field = page.getByLabel("Token", { exact: true });
      await field.waitFor();
      await field.fill(`${config.token}-wrong`);
      await page.getByRole("button", { name: "Use token" }).click();
      await page.locator("#token-problem", { hasText: "refused" }).waitFor();
      await field.fill(config.token!);
      await page.getByRole("button", { name: "Use token" }).click();
      await page.locator("#token-dialog").waitFor({ state: "hidden" });
      const runId = await submit({ tasks: [{ id: "a", tool: "mock:echo", arguments: { x: 1 } }] });
      await untilState("a", "success");
      await untilRunStatus("succeeded");
      report.found.stored = await page.evaluate("sessionStorage.getItem('dagstream.token')");
      // A reload in the same tab does not ask again.
      await page.reload();
      await untilRunStatus("succeeded");
      report.found.dialogOpenAfterReload = await page.locator("#token-dialog[open]").count();
      report.found.runId = runId;
      // A new tab (a new browsing context) asks again.
      const other = await open();
      await other.goto(config.base);
      await other.getByLabel("Token", { exact: true }).waitFor();
      report.found.newTabAsks = true;
    },

    async "runs-list"() {
      await page.goto(config.base);
      const item = page.locator(`[data-run-id="${config.otherRunId}"]`);
      await item.waitFor();
      report.found.initialStatus = await item.getAttribute("data-status");
      // Another client starts a run: it shows up without a reload.
      const response = await fetch(new URL("/runs", config.api), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tasks: [gate("x")] }),
      });
      const { runId } = await response.json();
      const fresh = page.locator(`[data-run-id="${runId}"][data-status="running"]`);
      await fresh.waitFor();
      report.found.newestFirst =
        await page.locator("[data-run-id]").first().getAttribute("data-run-id") ===
          runId;
      await release("x");
      await page.locator(`[data-run-id="${runId}"][data-status="succeeded"]`).waitFor();
      // Opening it from the list shows its run view.
      await page.locator(`[data-run-id="${runId}"] a`).click();
      await untilState("x", "success");
      report.found.hash = new URL(page.url()).hash;
      report.found.runId = runId;
    },

    async invalid() {
      await page.goto(config.base);
      const dag = {
        tasks: [
          { id: "a", tool: "mock:echo", dependsOn: ["ghost"] },
          { id: "a", tool: "no:such-tool" },
        ],
      };
      await page.getByLabel("DAG", { exact: true }).fill(JSON.stringify(dag));
      await page.getByRole("button", { name: "Run", exact: true }).click();
      const items = page.locator("#dag-problems li");
      await items.first().waitFor();
      report.found.shown = await items.evaluateAll((els: DomElement[]) =>
        els.map((e) => ({ path: e.getAttribute("data-path"), text: e.textContent }))
      );
      const response = await fetch(new URL("/runs", config.api), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(dag),
      });
      report.found.api = (await response.json()).errors;
      report.found.hash = new URL(page.url()).hash;
    },

    async refused() {
      // The server takes one event stream at a time (--max-watchers 1): the test holds it.
      const started = await fetch(new URL("/runs", config.api), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          tasks: [gate("a"), { id: "b", tool: "mock:echo", dependsOn: ["a"] }],
        }),
      });
      const { runId } = await started.json();
      const held = await fetch(new URL(`/runs/${runId}/events`, config.api), {
        headers: { accept: "text/event-stream" },
      });
      if (held.status !== 200) throw new Error(`the held stream got ${held.status}`);
      const reader = held.body!.getReader();
      await reader.read();
      await page.goto(`${config.base}#/runs/${runId}`);
      // Refused (503): the page says so and tries again, rather than freezing.
      await page.locator("#notice", { hasText: "Live updates paused" }).waitFor();
      report.found.notice = await page.locator("#notice").innerText();
      await reader.cancel();
      await release("a");
      await untilState("a", "success");
      await untilState("b", "success");
      await untilRunStatus("succeeded");
      report.found.runId = runId;
    },

    async large() {
      // 200 tasks in 10 stages: too large to read whole, so the view opens zoomed in.
      const tasks = [];
      for (let stage = 0; stage < 10; stage++) {
        for (let k = 0; k < 20; k++) {
          tasks.push({
            id: `s${stage}_${k}`,
            tool: "mock:echo",
            dependsOn: stage === 0 ? [] : [`s${stage - 1}_${k}`],
          });
        }
      }
      await page.goto(config.base);
      await submit({ tasks });
      await untilRunStatus("succeeded");
      const scale = () =>
        page.locator("#canvas").evaluate((el: { style: { transform: string } }) =>
          Number(/scale\(([\d.]+)\)/.exec(el.style.transform)?.[1])
        );
      report.found.initialScale = await scale();
      await page.getByRole("button", { name: "Fit" }).click();
      report.found.fitScale = await scale();
      await page.getByRole("button", { name: "Zoom in" }).click();
      report.found.zoomedScale = await scale();
      // Keyboard: with the graph focused, "-" zooms out.
      await page.locator("#graph").focus();
      await page.keyboard.press("-");
      report.found.keyScale = await scale();
      report.found.nodes = await page.locator("[data-task-id]").count();
      // Both colour schemes: the page follows prefers-color-scheme.
      const background = (p: AnyPage) =>
        p.evaluate("getComputedStyle(document.body).backgroundColor");
      report.found.lightBackground = await background(page);
      const dark = await open("dark");
      await dark.goto(config.base);
      report.found.darkBackground = await background(dark);
    },

    async screenshots() {
      for (const scheme of ["light", "dark"] as const) {
        const shot = await open(scheme);
        await shot.goto(config.base);
        await shot.getByLabel("Example").selectOption("diamond.json");
        await shot.getByRole("button", { name: "Run", exact: true }).click();
        await shot.locator('#run-status[data-status="succeeded"]').waitFor();
        await shot.locator('[data-task-id="join"]').click();
        await shot.screenshot({ path: `${config.outDir}/run-page-${scheme}.png` });
      }
      for (const [name, dag] of Object.entries(JSON.parse(Deno.env.get("EXTRA_DAGS") ?? "{}"))) {
        const shot = await open("light");
        await shot.goto(config.base);
        await shot.getByLabel("DAG", { exact: true }).fill(JSON.stringify(dag));
        await shot.getByRole("button", { name: "Run", exact: true }).click();
        await shot.locator(
          '#run-status[data-status="succeeded"], #run-status[data-status="failed"]',
        )
          .waitFor({ timeout: 60_000 });
        await shot.screenshot({ path: `${config.outDir}/${name}.png` });
      }
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target`: `cut()` closes every
 * connection through it, as a network drop or a restarted load balancer
 * would; new connections go through again.
 */
function startProxy(target: URL): {
  url: string;
  cuts: number;
  cut(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();
  const pipe = (from: Deno.Conn, to: Deno.Conn) =>
    from.readable.pipeTo(to.writable).catch(() => {}).finally(() => {
      for (const conn of [from, to]) {
        if (open.delete(conn)) {
          try {
            conn.close();
          } catch {
            // closed already
          }
        }
      }
    });
  const accepting = (async () => {
    for await (const client of listener) {
      open.add(client);
      try {
        const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
        open.add(server);
        const both = Promise.all([pipe(client, server), pipe(server, client)]).then(() => {});
        pipes.add(both);
        both.finally(() => pipes.delete(both));
      } catch {
        open.delete(client);
        client.close();
      }
    }
  })();
  const closeAll = () => {
    for (const conn of [...open]) {
      open.delete(conn);
      try {
        conn.close();
      } catch {
        // closed already
      }
    }
  };
  const proxy = {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    cuts: 0,
    async cut() {
      proxy.cuts++;
      closeAll();
      await Promise.all([...pipes]);
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      closeAll();
      await accepting.catch(() => {});
      await Promise.all([...pipes]);
    },
  };
  return proxy;
}
