/**
 * McpToolSource against a real MCP server (the fixture, built with the SDK)
 * over stdio and over Streamable HTTP on 127.0.0.1: listing, output mapping,
 * schema errors, progress, cancellation reaching the server, timeouts, a
 * server killed mid-call and its reconnection, a server that cannot start.
 */

import assert from "node:assert/strict";
import { McpToolSource } from "../../../src/tools/mcp.ts";
import type { McpConfig } from "../../../src/tools/mcp-config.ts";
import type { ToolContext, ToolProgress } from "../../../src/dag/types.ts";
import {
  fixtureStdioSpec,
  type HttpFixture,
  startHttpFixture,
} from "../../fixtures/mcp_fixture.ts";

const FAST_RECONNECT = { reconnectDelayMs: 50, maxReconnectDelayMs: 200 };

function ctx(signal = new AbortController().signal, progress?: (p: ToolProgress) => void) {
  const c: ToolContext = { signal, taskId: "t" };
  if (progress) c.progress = progress;
  return c;
}

/**
 * Waits for a server's health to change, woken by the source's log records:
 * the source logs every change of a server's status ("mcp server up",
 * "mcp server lost", "mcp server down") once the change is made.
 */
class HealthWatch {
  source: McpToolSource | undefined;
  readonly #waiters = new Set<() => void>();

  /** The source's `log` option. */
  readonly log = (_record: Record<string, unknown>): void => {
    for (const wake of [...this.#waiters]) wake();
  };

  /** Resolves once `server` has `status` (at once if it has it already). */
  async until(server: string, status: "up" | "down"): Promise<void> {
    while (this.source!.health()[server]?.status !== status) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }
}

async function withSource<T>(
  config: McpConfig,
  body: (source: McpToolSource, health: HealthWatch) => Promise<T>,
  options = {},
): Promise<T> {
  const health = new HealthWatch();
  const source = await McpToolSource.connect(config, {
    ...FAST_RECONNECT,
    ...options,
    log: health.log,
  });
  health.source = source;
  try {
    return await body(source, health);
  } finally {
    await source.close();
  }
}

/** The common checks, for one transport. */
async function commonChecks(t: Deno.TestContext, source: McpToolSource, server: string) {
  const run = (tool: string, args: Record<string, unknown> = {}, c = ctx()) =>
    source.execute(`${server}:${tool}`, args, c);

  await t.step("tools are listed as <server>:<tool> with descriptions and schemas", () => {
    const tools = source.list();
    const add = tools.find((x) => x.name === `${server}:add`);
    assert.ok(add, JSON.stringify(tools.map((x) => x.name)));
    assert.match(add.description, /Adds a and b/);
    assert.equal((add.inputSchema as { type?: string }).type, "object");
    assert.deepEqual(Object.keys((add.inputSchema as { properties: object }).properties), [
      "a",
      "b",
    ]);
    assert.ok(add.outputSchema, "the output schema is listed");
    assert.ok(source.has(`${server}:wait`));
    assert.ok(!source.has(`${server}:nope`));
    assert.match(source.explainUnknown(`${server}:nope`)!, /has no tool "nope"/);
    assert.deepEqual(source.health()[server].status, "up");
  });

  await t.step("output mapping: structured, JSON text, plain text, several items", async () => {
    assert.deepEqual(await run("add", { a: 2, b: 3 }), { sum: 5 });
    assert.deepEqual(await run("json"), { ok: true, items: [1, 2, 3] });
    assert.equal(await run("text", { text: "hello, world" }), "hello, world");
    assert.equal(await run("text", { text: "42" }), 42);
    assert.deepEqual(await run("multi"), [
      { type: "text", text: "first" },
      { type: "text", text: "second" },
    ]);
  });

  await t.step("isError fails with the tool's text; a thrown error too", async () => {
    await assert.rejects(run("fail", { message: "disk on fire" }), { message: "disk on fire" });
    await assert.rejects(run("throws", { message: "boom" }), /boom/);
  });

  await t.step("arguments that break the input schema fail with the schema's message", async () => {
    await assert.rejects(
      run("add", { a: "two" }),
      (e: Error) => {
        assert.match(e.message, new RegExp(`invalid arguments for "${server}:add"`));
        assert.match(e.message, /arguments\.a must be number \(got a string\)/);
        assert.match(e.message, /arguments\.b is required/);
        return true;
      },
    );
    // The same check before the run: references stand for values not known yet.
    assert.deepEqual(source.checkArguments(`${server}:add`, { a: "two" }), [
      { path: ["b"], message: "is required" },
      { path: ["a"], message: "must be number (got a string)" },
    ]);
    assert.deepEqual(source.checkArguments(`${server}:add`, { a: "$OUTPUT[x].n", b: 1 }), []);
    assert.deepEqual(source.checkArguments(`${server}:nope`, { a: "two" }), []);
  });

  await t.step("progress notifications reach ctx.progress, in order", async () => {
    const seen: ToolProgress[] = [];
    const key = `p-${crypto.randomUUID()}`;
    let allSeen!: () => void;
    const three = new Promise<void>((r) => allSeen = r);
    const call = run(
      "progress",
      { steps: 3, key },
      ctx(undefined, (p) => {
        if (seen.push(p) === 3) allSeen();
      }),
    );
    await three;
    await run("release", { key });
    assert.deepEqual(await call, { steps: 3 });
    assert.deepEqual(seen, [
      { progress: 1, total: 3, message: "step 1" },
      { progress: 2, total: 3, message: "step 2" },
      { progress: 3, total: 3, message: "step 3" },
    ]);
  });

  await t.step("a released wait returns; cancellation reaches the server", async () => {
    const key = `k-${crypto.randomUUID()}`;
    // Released by another call: causality across calls on one connection.
    let waiting!: () => void;
    const started = new Promise<void>((r) => waiting = r);
    const first = run("wait", { key }, ctx(undefined, () => waiting()));
    await started;
    assert.deepEqual(await run("release", { key }), { released: 1 });
    assert.deepEqual(await first, { key, released: true });

    const key2 = `c-${crypto.randomUUID()}`;
    const controller = new AbortController();
    let blocked!: () => void;
    const isBlocked = new Promise<void>((r) => blocked = r);
    const call = run("wait", { key: key2 }, ctx(controller.signal, () => blocked()));
    await isBlocked;
    controller.abort(new Error("run cancelled"));
    await assert.rejects(call);
    // Returns only once the server saw the cancellation of that wait.
    assert.deepEqual(await run("cancelled", { key: key2 }), { key: key2, cancelled: 1 });
  });
}

Deno.test("mcp over stdio: tools, outputs, errors, schema, progress, cancellation", async (t) => {
  await withSource({ servers: { fx: fixtureStdioSpec() }, warnings: [] }, async (source) => {
    assert.equal(typeof source.pid("fx"), "number");
    await commonChecks(t, source, "fx");
  });
});

Deno.test("mcp over Streamable HTTP: tools, outputs, errors, schema, progress, cancellation", async (t) => {
  await using fixture = await startHttpFixture();
  await withSource(
    { servers: { web: { transport: "http", url: fixture.url, headers: {} } }, warnings: [] },
    async (source) => {
      assert.equal(source.health().web.transport, "http");
      await commonChecks(t, source, "web");
    },
  );
});

Deno.test("mcp: the call timeout reaches a tool that never answers", async () => {
  await withSource(
    { servers: { fx: fixtureStdioSpec() }, warnings: [] },
    async (source) => {
      await assert.rejects(
        source.execute("fx:hang", {}, ctx()),
        /"fx:hang" timed out after 300 ms/,
      );
      // The connection is still good after a timed-out call.
      assert.deepEqual(await source.execute("fx:add", { a: 1, b: 1 }, ctx()), { sum: 2 });
    },
    { callTimeoutMs: 300 },
  );
});

Deno.test("mcp over stdio: a server killed mid-call fails the call, then is reconnected", async () => {
  await withSource(
    { servers: { fx: fixtureStdioSpec() }, warnings: [] },
    async (source, health) => {
      const { pid } = await source.execute("fx:pid", {}, ctx()) as { pid: number };
      assert.equal(source.pid("fx"), pid);
      let killed!: () => void;
      const wasKilled = new Promise<void>((r) => killed = r);
      const call = source.execute(
        "fx:wait",
        { key: "never" },
        ctx(undefined, () => {
          Deno.kill(pid, "SIGKILL");
          killed();
        }),
      );
      await wasKilled;
      await assert.rejects(call, (e: Error) => {
        assert.match(e.message, /MCP server "fx" disconnected while "fx:wait" was running/);
        assert.match(e.message, /the server process exited/);
        assert.match(e.message, /being reconnected/);
        return true;
      });
      await health.until("fx", "up");
      const again = await source.execute("fx:pid", {}, ctx()) as { pid: number };
      assert.notEqual(again.pid, pid, "a new process");
      assert.deepEqual(await source.execute("fx:add", { a: 4, b: 5 }, ctx()), { sum: 9 });
    },
  );
});

Deno.test("mcp over HTTP: a server killed mid-call fails the call, then is reconnected", async () => {
  let fixture: HttpFixture | undefined = await startHttpFixture();
  try {
    const url = fixture.url;
    await withSource(
      { servers: { web: { transport: "http", url, headers: {} } }, warnings: [] },
      async (source, health) => {
        let killed!: () => void;
        const wasKilled = new Promise<void>((r) => killed = r);
        const call = source.execute(
          "web:wait",
          { key: "never" },
          ctx(undefined, () => {
            fixture!.stop().then(killed);
          }),
        );
        await wasKilled;
        await assert.rejects(call, /MCP server "web" (disconnected|is unreachable)/);
        await health.until("web", "down");
        // "the server stopped answering (…)", or a failed reconnection's error since.
        assert.ok((source.health().web.error ?? "").length > 0);
        await assert.rejects(source.execute("web:add", { a: 1, b: 2 }, ctx()), /is down/);
        // The server comes back on the same address: a later call works again.
        fixture = await startHttpFixture(new URL(url).port ? Number(new URL(url).port) : 0);
        await health.until("web", "up");
        assert.deepEqual(await source.execute("web:add", { a: 1, b: 2 }, ctx()), { sum: 3 });
      },
    );
  } finally {
    await fixture?.stop();
  }
});

Deno.test("mcp: a server that cannot start is down with its error; the others work", async () => {
  await withSource(
    {
      servers: {
        fx: fixtureStdioSpec(),
        missing: {
          transport: "stdio",
          command: "/nonexistent/dagstream-no-such-server",
          args: [],
          env: {},
        },
        crashes: {
          transport: "stdio",
          command: Deno.execPath(),
          args: ["eval", "console.error('cannot open database'); Deno.exit(3)"],
          env: {},
        },
        nothere: { transport: "http", url: "http://127.0.0.1:1/mcp", headers: {} },
      },
      warnings: [],
    },
    async (source) => {
      const health = source.health();
      assert.equal(health.fx.status, "up");
      assert.equal(health.missing.status, "down");
      assert.match(health.missing.error!, /ENOENT|not found|No such file/i);
      assert.equal(health.crashes.status, "down");
      assert.match(health.crashes.error!, /cannot open database/);
      assert.equal(health.nothere.status, "down");
      assert.equal(health.nothere.tools, 0);
      assert.ok(!source.has("missing:anything"));
      assert.match(
        source.explainUnknown("missing:anything")!,
        /MCP server "missing" is down \(.+\), so its tools are not known/,
      );
      assert.equal(source.explainUnknown("other:tool"), undefined);
      await assert.rejects(source.execute("missing:x", {}, ctx()), /is down/);
      assert.deepEqual(await source.execute("fx:add", { a: 1, b: 2 }, ctx()), { sum: 3 });
    },
  );
});
