/**
 * The run page (`GET /`) in real Chromium against the real server: each
 * scenario of `_page_driver.ts` types and clicks as a person would, steps
 * the run by releasing `gate:wait` tasks only once the page shows what must
 * come before, and reports every state each task node took. These tests
 * check that record: states only move forward, in causal order, and end
 * where the run ended.
 */

import assert from "node:assert/strict";
import { skipWithoutChromium } from "./_browser_driver.ts";
import { PAGE_REPORT_PREFIX, type PageReport, type PageScenario } from "./_page_driver.ts";
import { startGatedServer, startRun, startServer, waitForRunEnd } from "./_server.ts";
import { HAS_REDIS, startRedis, untilStoreUp } from "./_redis.ts";

const SKIP = skipWithoutChromium("browser_page_test.ts");
const DRIVER = new URL("./_page_driver.ts", import.meta.url).pathname;
const TERMINAL = new Set(["success", "error", "skipped", "cancelled"]);

/** Runs one scenario of the driver and returns its report, asserting it finished. */
async function drive(
  scenario: PageScenario,
  config: { base: string; api?: string; token?: string; otherRunId?: string },
): Promise<PageReport> {
  const tmp = await Deno.makeTempDir({ prefix: "dagstream-page-" });
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        DRIVER,
        scenario,
        JSON.stringify({ api: config.base, keyPrefix: crypto.randomUUID(), ...config }),
      ],
      env: { TMPDIR: tmp },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const line = stdout.split("\n").find((l) => l.startsWith(PAGE_REPORT_PREFIX));
    assert.ok(
      line,
      `no report from the driver:\n${stdout}\n${new TextDecoder().decode(output.stderr)}`,
    );
    const report: PageReport = JSON.parse(line.slice(PAGE_REPORT_PREFIX.length));
    assert.equal(
      output.code,
      0,
      `scenario ${scenario} failed: ${report.error}\nstates: ${
        JSON.stringify(report.transitions)
      }` +
        `\nconsole: ${report.console.join("\n")}`,
    );
    assert.deepEqual(report.pageErrors, [], "no uncaught error in the page");
    return report;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Each task's states, in the order its node took them. */
function statesByTask(report: PageReport): Map<string, string[]> {
  const states = new Map<string, string[]>();
  for (const [id, state] of report.transitions) {
    if (!states.has(id)) states.set(id, []);
    states.get(id)!.push(state);
  }
  return states;
}

/** Asserts every node moved only forward: pending, then running, then one terminal state. */
function assertForwardOnly(report: PageReport): void {
  for (const [id, states] of statesByTask(report)) {
    const rank = (s: string) => (s === "pending" ? 0 : s === "running" ? 1 : 2);
    for (let k = 1; k < states.length; k++) {
      assert.ok(
        rank(states[k]) > rank(states[k - 1]),
        `task ${id} went ${states[k - 1]} → ${states[k]} (${states.join(" → ")})`,
      );
    }
    assert.ok(states.filter((s) => TERMINAL.has(s)).length <= 1, `${id}: ${states.join(" → ")}`);
  }
}

/** Where `[id, state]` is in the page's record. */
function at(report: PageReport, id: string, state: string): number {
  const k = report.transitions.findIndex(([i, s]) => i === id && s === state);
  assert.ok(k >= 0, `task ${id} never showed ${state}: ${JSON.stringify(report.transitions)}`);
  return k;
}

Deno.test({
  name: "the run page in Chromium: submit, watch live, fail, cancel, reconnect, list",
  ignore: SKIP,
  async fn(t) {
    await using gated = await startGatedServer();
    const base = gated.server.url;

    await t.step(
      "the diamond: every node goes pending → running → success, in causal order",
      async () => {
        const report = await drive("diamond", { base });
        const states = statesByTask(report);
        for (const id of ["a", "b", "c", "d"]) {
          assert.deepEqual(states.get(id), ["pending", "running", "success"], id);
        }
        assert.ok(at(report, "a", "success") < at(report, "b", "running"));
        assert.ok(at(report, "a", "success") < at(report, "c", "running"));
        assert.ok(at(report, "b", "success") < at(report, "d", "running"));
        assert.ok(at(report, "c", "success") < at(report, "d", "running"));
        const found = report.found as Record<string, unknown>;
        assert.equal(found.hash, `#/runs/${found.runId}`);
        assert.deepEqual(found.progress, { now: "0", max: "1" }, "gate:wait's progress report");
        assert.equal(found.progressGone, 0, "no progress bar once the task ended");
        assert.equal(found.cancelHidden, true);
        assert.deepEqual(found.edges, ["a->b", "a->c", "b->d", "c->d"]);
        assert.equal(found.bars, 4);
        assert.match(String(found.details), /gate:wait/);
        assert.match(String(found.details), /released/);
        assert.deepEqual(found.afterReload, [["a", "success"], ["b", "success"], ["c", "success"], [
          "d",
          "success",
        ]]);
        // One stream for the live run, one for the replay after the reload.
        assert.equal(report.streams.length, 2);
      },
    );

    await t.step("a failing branch: error, and skipped downstream", async () => {
      const report = await drive("failing", { base });
      assertForwardOnly(report);
      const states = statesByTask(report);
      assert.equal(states.get("broken")!.at(-1), "error");
      assert.equal(states.get("after")!.at(-1), "skipped");
      assert.equal(states.get("later")!.at(-1), "skipped");
      assert.equal(states.get("ok")!.at(-1), "success");
      assert.match(String(report.found.details), /upstream said 500/);
    });

    await t.step("Cancel cancels: running and unstarted tasks end cancelled", async () => {
      const report = await drive("cancel", { base });
      assertForwardOnly(report);
      const states = statesByTask(report);
      assert.deepEqual(states.get("a"), ["pending", "running", "cancelled"]);
      assert.equal(states.get("b")!.at(-1), "cancelled");
      assert.equal(report.found.apiStatus, "cancelled");
      assert.equal(report.found.cancelHidden, true);
    });

    await t.step(
      "dropped connections: the page resumes after its last event and misses nothing",
      async () => {
        const report = await drive("disconnect", { base });
        const states = statesByTask(report);
        for (const id of ["a", "b", "c"]) {
          assert.deepEqual(states.get(id), ["pending", "running", "success"], id);
        }
        assert.equal(report.found.cuts, 2);
        assert.ok(report.streams.length >= 3, JSON.stringify(report.streams));
        const resumed = report.streams.slice(1).map((s) => Number(s.lastEventId));
        assert.ok(
          resumed.every((id) => id > 0),
          `each reconnection resumes: ${JSON.stringify(report.streams)}`,
        );
        assert.ok(resumed[resumed.length - 1] > resumed[0], "after events it had not seen before");
      },
    );

    await t.step("the runs list: a run any client starts appears and goes live", async () => {
      const otherRunId = await startRun(gated.server, {
        tasks: [{ id: "e", tool: "mock:echo" }],
      });
      await waitForRunEnd(gated.server, otherRunId);
      const report = await drive("runs-list", { base, otherRunId });
      assert.equal(report.found.initialStatus, "succeeded");
      assert.equal(report.found.newestFirst, true);
      assert.equal(report.found.hash, `#/runs/${report.found.runId}`);
    });

    await t.step(
      "a refused DAG: each problem shown with its path as the API gives it",
      async () => {
        const report = await drive("invalid", { base });
        const shown = report.found.shown as { path: string; text: string }[];
        const api = report.found.api as { path: string; message: string }[];
        assert.ok(api.length >= 2, JSON.stringify(api));
        assert.deepEqual(shown.map((s) => s.path), api.map((e) => e.path));
        for (const [k, error] of api.entries()) {
          assert.equal(shown[k].text, `${error.path}: ${error.message}`);
        }
        assert.equal(report.found.hash, "", "no run view for a refused DAG");
      },
    );
  },
});

Deno.test({
  name:
    "the run page with 200 tasks: opens readable, zooms to fit and back, follows the colour scheme",
  ignore: SKIP,
  async fn() {
    await using server = await startServer();
    const report = await drive("large", { base: server.url });
    const found = report.found as Record<string, number | string>;
    assert.equal(found.nodes, 200);
    assert.ok(Number(found.initialScale) >= 0.6, `opens readable: ${found.initialScale}`);
    assert.ok(
      Number(found.fitScale) < Number(found.initialScale),
      `Fit shows it whole: ${found.fitScale}`,
    );
    assert.ok(Number(found.zoomedScale) > Number(found.fitScale), "Zoom in zooms in");
    assert.ok(Number(found.keyScale) < Number(found.zoomedScale), "- zooms out");
    assert.notEqual(found.lightBackground, found.darkBackground);
  },
});

Deno.test({
  name: "the run page when its stream is refused (503): it says so, tries again, and goes on live",
  ignore: SKIP,
  async fn() {
    await using gated = await startGatedServer(["--max-watchers", "1"]);
    const report = await drive("refused", { base: gated.server.url });
    assert.match(String(report.found.notice), /Live updates paused: trying again in \d+ s/);
    assertForwardOnly(report);
    const states = statesByTask(report);
    assert.equal(states.get("a")!.at(-1), "success");
    assert.equal(states.get("b")!.at(-1), "success");
    const refused = report.streams.filter((s) => s.url.includes(`/runs/${report.found.runId}/`));
    assert.ok(refused.length >= 2, "the page opened the stream again");
  },
});

Deno.test({
  name: "the run page with --token: asks once per tab, then every call carries it",
  ignore: SKIP,
  async fn() {
    await using server = await startServer(["--token", "page-s3cret"]);
    const report = await drive("token", { base: server.url, token: "page-s3cret" });
    assert.equal(report.found.stored, "page-s3cret");
    assert.equal(report.found.dialogOpenAfterReload, 0);
    assert.equal(report.found.newTabAsks, true);
    assert.ok(report.streams.length >= 1);
    for (const stream of report.streams) {
      assert.equal(new URL(stream.url).searchParams.get("access_token"), "page-s3cret");
    }
  },
});

Deno.test({
  name: "the run page with --store redis://: a queued run taken by either instance shows live",
  ignore: SKIP || !HAS_REDIS,
  async fn() {
    await using redis = await startRedis();
    await using a = await startServer(["--store", redis.url, "--instance-id", "A"]);
    await using b = await startServer(["--store", redis.url, "--instance-id", "B"]);
    await Promise.all([untilStoreUp(a), untilStoreUp(b)]);
    const report = await drive("failing", { base: a.url });
    assertForwardOnly(report);
    const states = statesByTask(report);
    assert.deepEqual(
      ["ok", "broken", "after", "later"].map((id) => states.get(id)!.at(-1)),
      ["success", "error", "skipped", "skipped"],
    );
  },
});
