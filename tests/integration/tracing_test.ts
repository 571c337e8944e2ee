/**
 * OpenTelemetry traces of the real server, exported by Deno's built-in
 * OpenTelemetry (`OTEL_DENO=true`) as OTLP/HTTP JSON to a receiver inside
 * the test: one `dagstream.run` span per run under the caller's
 * `traceparent`, one `dagstream.task` span per attempt under it, with
 * their attributes, and the trace carried on by `http:request` and MCP
 * calls. The test waits for spans to arrive, never on a clock (each wait
 * has a deadline that fails it).
 */

import assert from "node:assert/strict";
import { postDag, startServer, startWithMcpServers } from "./_server.ts";
import { fixtureStdioEntry } from "../fixtures/mcp_fixture.ts";

/** One exported span, as OTLP/JSON has it. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  status?: { code?: number; message?: string };
  attributes?: { key: string; value: Record<string, unknown> }[];
}

/** An OTLP/HTTP receiver on 127.0.0.1 that keeps every span it gets. */
function startReceiver() {
  const spans: OtlpSpan[] = [];
  /** Settles when the next spans arrive. */
  let arrival = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = await request.text();
    if (new URL(request.url).pathname === "/v1/traces") {
      const document = JSON.parse(body);
      for (const resource of document.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) spans.push(...(scope.spans ?? []));
      }
      arrival.resolve();
      arrival = Promise.withResolvers<void>();
    }
    return Response.json({});
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    spans,
    /**
     * Resolves once `predicate` holds for the spans received, checking it as
     * they arrive; rejects if it still does not after 30 s.
     */
    async until(predicate: (spans: OtlpSpan[]) => boolean, what: string): Promise<void> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no ${what} within 30 s: ${names(spans)}`)),
          30_000,
        );
      });
      try {
        while (!predicate(spans)) await Promise.race([arrival.promise, deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

function names(spans: OtlpSpan[]): string {
  return JSON.stringify(spans.map((s) => s.name));
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  const [inner] = Object.values(value);
  return typeof inner === "string" && /^\d+$/.test(inner) && "intValue" in value
    ? Number(inner)
    : inner;
}

const OTEL_ENV = (endpoint: string) => ({
  OTEL_DENO: "true",
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  OTEL_SERVICE_NAME: "dagstream-test",
  // Export within a fraction of a second rather than seconds.
  OTEL_BSP_SCHEDULE_DELAY: "100",
});

Deno.test("traces: a run span under the caller's traceparent, one task span per attempt", async () => {
  await using receiver = startReceiver();
  // A local HTTP API the http:request task calls: it records the traceparent it gets.
  const seen: (string | null)[] = [];
  await using api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    seen.push(request.headers.get("traceparent"));
    return Response.json({ ok: true });
  });
  const apiHost = `127.0.0.1:${api.addr.port}`;
  await using server = await startServer(["--allow-http", apiHost], OTEL_ENV(receiver.url));
  const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const response = await postDag(
    server.at("/execute"),
    {
      tasks: [
        {
          id: "flaky",
          tool: "mock:flaky",
          arguments: { failures: 1 },
          retry: { attempts: 2, delayMs: 0 },
        },
        { id: "call", tool: "http:request", arguments: { url: `http://${apiHost}/x` } },
        { id: "after", tool: "mock:echo", dependsOn: ["flaky", "call"] },
      ],
    },
    "application/json",
    { traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` },
  );
  const result = await response.json();
  assert.equal(response.status, 200, JSON.stringify(result));
  const runId = response.headers.get("x-run-id");
  assert.equal(result.failedTasks, 0, JSON.stringify(result));

  await receiver.until(
    (spans) =>
      spans.some((s) => s.name === "dagstream.run") &&
      spans.filter((s) => s.name === "dagstream.task").length === 4,
    "run span and 4 task spans",
  );
  const run = receiver.spans.find((s) => s.name === "dagstream.run")!;
  assert.equal(run.traceId, callerTrace, "the caller's trace");
  assert.equal(attribute(run, "dagstream.run.id"), runId);
  assert.equal(attribute(run, "dagstream.run.tasks"), 3);
  assert.equal(attribute(run, "dagstream.run.status"), "succeeded");
  // The caller's span is an ancestor: Deno's server span may sit between.
  const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
  let parent = run.parentSpanId;
  const chain: string[] = [];
  while (parent && byId.has(parent)) {
    chain.push(byId.get(parent)!.name);
    parent = byId.get(parent)!.parentSpanId;
  }
  assert.equal(parent, "00f067aa0ba902b7", `the caller's span is the root (via ${chain})`);

  const tasks = receiver.spans.filter((s) => s.name === "dagstream.task");
  for (const task of tasks) {
    assert.equal(task.parentSpanId, run.spanId, "each attempt is a child of the run");
    assert.equal(task.traceId, callerTrace);
  }
  const flaky = tasks.filter((s) => attribute(s, "dagstream.task.id") === "flaky")
    .sort((a, b) =>
      Number(attribute(a, "dagstream.task.attempt")) -
      Number(attribute(b, "dagstream.task.attempt"))
    );
  assert.deepEqual(flaky.map((s) => attribute(s, "dagstream.task.attempt")), [1, 2]);
  assert.equal(flaky[0].status?.code, 2, "a failed attempt's span is ERROR");
  assert.equal(flaky[0].status?.message, "mock:flaky: attempt 1 of 1 fails");
  assert.equal(attribute(flaky[0], "dagstream.task.status"), "error");
  assert.equal(attribute(flaky[1], "dagstream.task.status"), "success");
  assert.equal(attribute(flaky[1], "dagstream.tool"), "mock:flaky");

  // http:request carries the task span's context, once (Deno's fetch adds it).
  const call = tasks.find((s) => attribute(s, "dagstream.task.id") === "call")!;
  assert.equal(seen.length, 1);
  const [version, traceId, parentId] = seen[0]!.split("-");
  assert.equal(version, "00");
  assert.equal(traceId, callerTrace);
  const fetchSpan = byId.get(parentId);
  // Deno's fetch span, when exported, sits between the task span and the call.
  assert.ok(
    parentId === call.spanId || fetchSpan?.parentSpanId === call.spanId,
    `the API call's parent is the task span or its fetch span (${parentId})`,
  );
  assert.doesNotMatch(seen[0]!, /,/, "a single traceparent");
});

Deno.test("traces: without OTEL_DENO nothing is exported", async () => {
  await using receiver = startReceiver();
  await using server = await startServer([], {
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  });
  const response = await postDag(server.at("/execute"), {
    tasks: [{ id: "a", tool: "mock:echo" }],
  }, "application/json");
  await response.body?.cancel();
  // The server stops, which flushes any exporter it had; nothing arrived.
  await server.stop();
  assert.deepEqual(receiver.spans, []);
});

Deno.test("traces: an MCP call carries its task span's traceparent in _meta", async () => {
  await using receiver = startReceiver();
  await using started = await startWithMcpServers(
    { fx: fixtureStdioEntry() },
    [],
    OTEL_ENV(receiver.url),
  );
  const response = await postDag(started.server.at("/execute"), {
    tasks: [{ id: "m", tool: "fx:meta" }],
  }, "application/json");
  const result = await response.json();
  assert.equal(result.results[0].status, "success", JSON.stringify(result));
  const meta = result.results[0].output as { traceparent?: string };
  assert.match(meta.traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  await receiver.until(
    (spans) => spans.some((s) => s.name === "dagstream.task"),
    "the task span",
  );
  const task = receiver.spans.find((s) => s.name === "dagstream.task")!;
  const [, traceId, spanId] = meta.traceparent!.split("-");
  assert.equal(traceId, task.traceId);
  assert.equal(spanId, task.spanId, "the MCP server hears of the task's own span");
});

Deno.test("traces: a run started with POST /runs is under the caller's traceparent too", async () => {
  await using receiver = startReceiver();
  await using server = await startServer([], OTEL_ENV(receiver.url));
  const callerTrace = "0af7651916cd43dd8448eb211c80319c";
  const response = await postDag(
    server.at("/runs"),
    {
      tasks: [{ id: "a", tool: "mock:echo" }],
    },
    "application/json",
    { traceparent: `00-${callerTrace}-b7ad6b7169203331-01` },
  );
  const { runId } = await response.json();
  assert.equal(response.status, 202);
  await receiver.until(
    (spans) => spans.some((s) => s.name === "dagstream.run" && s.traceId === callerTrace),
    "the run span in the caller's trace",
  );
  const run = receiver.spans.find((s) => s.name === "dagstream.run")!;
  assert.equal(attribute(run, "dagstream.run.id"), runId);
  assert.equal(attribute(run, "dagstream.run.status"), "succeeded");
});
