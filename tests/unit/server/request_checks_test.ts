/**
 * The order of the request checks: a request that fails every check gets
 * the answer of the first one (Host, Origin, token, route and method, body
 * type, body size, JSON, validation); made right one step at a time, it
 * gets the next answer each time, and finally starts a run.
 */

import assert from "node:assert/strict";
import { createApp } from "../../../src/server/app.ts";

Deno.test("request checks: Host → Origin → token → route → method → body → validation", async () => {
  const app = createApp({ token: "s3cret", maxBodyBytes: 64, log: () => {} });
  try {
    const base = {
      url: "http://127.0.0.1:8000/nowhere",
      method: "PUT",
      headers: {
        host: "rebind.example",
        origin: "https://evil.example",
        "content-type": "text/plain",
      } as Record<string, string>,
      body: "x".repeat(100),
    };
    const steps: [string, (r: typeof base) => void][] = [
      ["forbidden-host", (r) => void (r.headers.host = "127.0.0.1:8000")],
      ["forbidden-origin", (r) => void (r.headers.origin = "http://127.0.0.1:8000")],
      ["unauthorized", (r) => void (r.headers.authorization = "Bearer s3cret")],
      ["not-found", (r) => void (r.url = "http://127.0.0.1:8000/runs")],
      ["method-not-allowed", (r) => void (r.method = "POST")],
      ["unsupported-media-type", (r) => void (r.headers["content-type"] = "application/json")],
      ["content-too-large", (r) => void (r.body = "{ not json")],
      ["bad-request", (r) => void (r.body = JSON.stringify({ tasks: [{ id: "a", tool: "x" }] }))],
      ["unprocessable-content", (r) => void (r.body = '{"tasks":[{"id":"a","tool":"mock:echo"}]}')],
    ];
    const request = structuredClone(base);
    for (const [expected, fix] of steps) {
      const response = await app.handle(new Request(request.url, request));
      const problem = await response.json();
      assert.equal(problem.type, `https://dagstream.dev/problems/${expected}`);
      assert.equal(app.runs.list().length, 0, `no run before ${expected} is fixed`);
      fix(request);
    }
    const started = await app.handle(new Request(request.url, request));
    assert.equal(started.status, 202);
    await started.body?.cancel();
    assert.equal(app.runs.list().length, 1);
  } finally {
    await app.shutdown();
  }
});
