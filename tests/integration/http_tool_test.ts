/**
 * `http:request` in the real server process (`--allow-http`), calling HTTP
 * servers of the test on 127.0.0.1: JSON and text answers, bodies, query
 * strings, statuses, the response size cap, redirects, timeouts and
 * cancellation (proved by the test server seeing its request abort), the
 * allowlist, and the server without `--allow-http`.
 */

import assert from "node:assert/strict";
import {
  assertProblem,
  postDag,
  runMain,
  type ServerProcess,
  startRun,
  startServer,
  waitForRunEnd,
} from "./_server.ts";

interface TaskOutcome {
  status: "success" | "error";
  output?: { status: number; headers: Record<string, string>; body: unknown };
  error?: string;
}

/** Runs one `http:request` task with `POST /execute` and returns its result. */
async function call(server: ServerProcess, args: Record<string, unknown>): Promise<TaskOutcome> {
  const response = await postDag(server.at("/execute"), {
    tasks: [{ id: "call", tool: "http:request", arguments: args }],
  }, "application/json");
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text).results[0];
}

/** What the test's API server saw of one request. */
interface Seen {
  method: string;
  path: string;
  host: string | null;
  contentType: string | null;
  authorization: string | null;
  body: string;
}

/**
 * The test's API: `/json`, `/text`, `/echo` (what it got, as JSON),
 * `/status/<n>`, `/endless` (a body that never ends), `/redirect?to=URL`,
 * `/hold` (answers only when its request is aborted; `held` and `released`
 * tell when it starts and when its signal aborts).
 */
function startApi() {
  const seen: Seen[] = [];
  let endlessCancelled = Promise.withResolvers<void>();
  let held = Promise.withResolvers<void>();
  let released = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const body = await request.text();
      seen.push({
        method: request.method,
        path: url.pathname + url.search,
        host: request.headers.get("host"),
        contentType: request.headers.get("content-type"),
        authorization: request.headers.get("authorization"),
        body,
      });
      const [, route, arg] = url.pathname.split("/");
      switch (route) {
        case "json":
          return Response.json({ hello: "world" }, { headers: { "x-api": "1" } });
        case "text":
          return new Response("plain words", { headers: { "content-type": "text/plain" } });
        case "echo":
          return Response.json(seen.at(-1));
        case "status":
          return new Response(`status ${arg} ${"x".repeat(300)}`, { status: Number(arg) });
        case "big":
          return new Response(new Uint8Array(200_000), {
            headers: { "content-type": "application/octet-stream" },
          });
        case "not-json":
          return new Response("{oops", { headers: { "content-type": "application/json" } });
        case "endless": {
          const chunk = new Uint8Array(16 * 1024).fill(97);
          return new Response(
            new ReadableStream({
              pull: (controller) => controller.enqueue(chunk),
              cancel: () => endlessCancelled.resolve(),
            }),
            { headers: { "content-type": "text/plain" } },
          );
        }
        case "redirect":
          return new Response(null, {
            status: Number(url.searchParams.get("status") ?? 302),
            headers: { location: url.searchParams.get("to")! },
          });
        case "hold": {
          held.resolve();
          const { promise, resolve } = Promise.withResolvers<Response>();
          request.signal.addEventListener("abort", () => {
            released.resolve();
            resolve(new Response("too late"));
          }, { once: true });
          return await promise;
        }
      }
      return new Response("no such route", { status: 404 });
    },
  );
  return {
    port: server.addr.port,
    base: `http://127.0.0.1:${server.addr.port}`,
    seen,
    get endlessCancelled() {
      return endlessCancelled.promise;
    },
    get held() {
      return held.promise;
    },
    get released() {
      return released.promise;
    },
    reset() {
      seen.length = 0;
      endlessCancelled = Promise.withResolvers<void>();
      held = Promise.withResolvers<void>();
      released = Promise.withResolvers<void>();
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

Deno.test("http:request through the server, with --allow-http", async (t) => {
  await using api = startApi();
  // Another server on 127.0.0.1, on a port the server is not allowed to call.
  await using other = startApi();
  // Only `localhost:<port>` is allowed for this one: a name, resolved by the server.
  await using byName = startApi();
  await using server = await startServer([
    "--allow-http",
    `127.0.0.1:${api.port}`,
    "--allow-http",
    `localhost:${byName.port}`,
    "--max-http-response-bytes",
    "100000",
  ]);

  await t.step("GET /tools lists it with its input schema", async () => {
    const { tools } = await (await fetch(server.at("/tools"))).json();
    const http = tools.find((tool: { name: string }) => tool.name === "http:request");
    assert.ok(http, "http:request is listed");
    assert.deepEqual(http.inputSchema.required, ["url"]);
    assert.match(http.description, new RegExp(`127\\.0\\.0\\.1:${api.port}`));
  });

  await t.step("GET of a JSON API: status, lower-case headers, parsed body", async () => {
    api.reset();
    const result = await call(server, { url: `${api.base}/json` });
    assert.equal(result.status, "success", result.error);
    assert.equal(result.output!.status, 200);
    assert.deepEqual(result.output!.body, { hello: "world" });
    assert.equal(result.output!.headers["content-type"], "application/json");
    assert.equal(result.output!.headers["x-api"], "1");
    assert.deepEqual(api.seen.map((s) => [s.method, s.path]), [["GET", "/json"]]);
  });

  await t.step("a text answer is text; HEAD has no body", async () => {
    const text = await call(server, { url: `${api.base}/text` });
    assert.equal(text.output!.body, "plain words");
    const head = await call(server, { method: "HEAD", url: `${api.base}/json` });
    assert.equal(head.status, "success", head.error);
    assert.equal(head.output!.body, null);
  });

  await t.step("POST with an object body: sent as JSON with its content-type", async () => {
    api.reset();
    const result = await call(server, {
      method: "POST",
      url: `${api.base}/echo`,
      headers: { authorization: "Bearer s3cret" },
      body: { n: 1, list: [true, null] },
    });
    assert.equal(result.status, "success", result.error);
    const got = result.output!.body as Seen;
    assert.equal(got.method, "POST");
    assert.equal(got.contentType, "application/json");
    assert.deepEqual(JSON.parse(got.body), { n: 1, list: [true, null] });
    assert.equal(got.authorization, "Bearer s3cret");
    // A string body is sent as it is, as text unless the call says otherwise.
    const text = await call(server, { method: "PUT", url: `${api.base}/echo`, body: "a,b" });
    assert.deepEqual(
      [(text.output!.body as Seen).body, (text.output!.body as Seen).contentType],
      ["a,b", "text/plain;charset=UTF-8"],
    );
    const csv = await call(server, {
      method: "PATCH",
      url: `${api.base}/echo`,
      headers: { "Content-Type": "text/csv" },
      body: "a,b",
    });
    assert.equal((csv.output!.body as Seen).contentType, "text/csv");
    // Request headers go to the API only: not to the server's log.
    assert.doesNotMatch(server.stderr(), /s3cret/);
  });

  await t.step("query: added to the URL's own query string", async () => {
    const result = await call(server, {
      url: `${api.base}/echo?a=1`,
      query: { b: "two words", c: 3, d: false },
    });
    assert.equal((result.output!.body as Seen).path, "/echo?a=1&b=two+words&c=3&d=false");
  });

  await t.step(
    "a status outside 2xx fails the task, with the status and a short preview",
    async () => {
      const result = await call(server, { url: `${api.base}/status/503` });
      assert.equal(result.status, "error");
      assert.match(
        result.error!,
        new RegExp(
          `^http:request: GET ${api.base}/status/503 answered 503 Service Unavailable: status 503 x+…$`,
        ),
      );
      const preview = result.error!.split(": ").at(-1)!;
      assert.equal(preview.length, 201, "200 characters and an ellipsis");
    },
  );

  await t.step("okStatuses: exactly these statuses succeed", async () => {
    const notFound = await call(server, { url: `${api.base}/status/404`, okStatuses: [404] });
    assert.equal(notFound.status, "success", notFound.error);
    assert.equal(notFound.output!.status, 404);
    assert.match(notFound.output!.body as string, /^status 404/);
    const ok = await call(server, { url: `${api.base}/json`, okStatuses: [404] });
    assert.equal(ok.status, "error");
    assert.match(ok.error!, /answered 200 OK/);
  });

  await t.step("a body declared JSON that is not fails the task", async () => {
    const result = await call(server, { url: `${api.base}/not-json` });
    assert.equal(result.status, "error");
    assert.match(result.error!, /says application\/json but is not JSON/);
  });

  await t.step("a body over --max-http-response-bytes fails; it is not read further", async () => {
    api.reset();
    const result = await call(server, { url: `${api.base}/endless` });
    assert.equal(result.status, "error");
    assert.equal(
      result.error,
      `http:request: the response of GET ${api.base}/endless is over 100000 bytes ` +
        "(--max-http-response-bytes; headers count too)",
    );
    // The endless body was cancelled: the tool stopped reading it.
    await api.endlessCancelled;
    // A body whose announced length is over the cap fails at once.
    const announced = await call(server, { url: `${api.base}/big` });
    assert.match(
      announced.error!,
      /\/big is over 100000 bytes \(--max-http-response-bytes; headers count too\)$/,
    );
    // The server is fine.
    assert.equal((await (await fetch(server.at("/health"))).json()).status, "ok");
    assert.equal((await call(server, { url: `${api.base}/json` })).status, "success");
  });

  await t.step("a redirect to an allowed host is followed", async () => {
    api.reset();
    const result = await call(server, {
      url: `${api.base}/redirect?to=${encodeURIComponent("/json")}`,
    });
    assert.equal(result.status, "success", result.error);
    assert.deepEqual(result.output!.body, { hello: "world" });
    assert.deepEqual(api.seen.map((s) => s.path), ["/redirect?to=%2Fjson", "/json"]);
    // 303 turns a POST into a GET, without its body.
    api.reset();
    const seeOther = await call(server, {
      method: "POST",
      url: `${api.base}/redirect?status=303&to=${encodeURIComponent("/echo")}`,
      body: { x: 1 },
    });
    const got = seeOther.output!.body as Seen;
    assert.deepEqual([got.method, got.body, got.contentType], ["GET", "", null]);
  });

  await t.step(
    "a redirect to a host not allowed is refused, and that host never called",
    async () => {
      other.reset();
      const target = `${other.base}/json?key=secret`;
      const result = await call(server, {
        url: `${api.base}/redirect?to=${encodeURIComponent(target)}`,
      });
      assert.equal(result.status, "error");
      assert.equal(
        result.error,
        `http:request: redirect to "${other.base}/json?…" is not allowed: ` +
          `host "127.0.0.1:${other.port}" is not in --allow-http`,
      );
      assert.deepEqual(other.seen, []);
    },
  );

  await t.step("credentials are not sent on to another origin", async () => {
    api.reset();
    byName.reset();
    const headers = { authorization: "Bearer s3cret", "x-trace": "t1" };
    const same = await call(server, {
      url: `${api.base}/redirect?to=${encodeURIComponent("/echo")}`,
      headers,
    });
    assert.equal((same.output!.body as Seen).authorization, "Bearer s3cret");
    const elsewhere = await call(server, {
      url: `${api.base}/redirect?to=${encodeURIComponent(`http://localhost:${byName.port}/echo`)}`,
      headers,
    });
    assert.equal(elsewhere.status, "success", elsewhere.error);
    assert.deepEqual(byName.seen.map((s) => [s.path, s.authorization]), [["/echo", null]]);
  });

  await t.step("5 redirects are followed, not 6", async () => {
    const chain = (hops: number) => {
      let url = `${api.base}/json`;
      for (let i = 0; i < hops; i++) url = `${api.base}/redirect?to=${encodeURIComponent(url)}`;
      return url;
    };
    const five = await call(server, { url: chain(5) });
    assert.equal(five.status, "success", five.error);
    const six = await call(server, { url: chain(6) });
    assert.equal(six.status, "error");
    assert.match(six.error!, /^http:request: more than 5 redirects \(the last to "http:\/\/127/);
  });

  await t.step("timeoutMs: the call fails, and the API sees its request abort", async () => {
    api.reset();
    const result = await call(server, { url: `${api.base}/hold`, timeoutMs: 50 });
    assert.equal(result.status, "error");
    assert.equal(result.error, `http:request: GET ${api.base}/hold timed out after 50 ms`);
    await api.released;
  });

  await t.step("cancelling the run aborts the request in flight", async () => {
    api.reset();
    const runId = await startRun(server, {
      tasks: [{ id: "held", tool: "http:request", arguments: { url: `${api.base}/hold` } }],
    });
    await api.held; // the request reached the API
    const deleted = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
    assert.equal(deleted.status, 202);
    await deleted.body?.cancel();
    await api.released; // and the API saw it abort
    const run = await waitForRunEnd(server, runId);
    assert.equal(run.status, "cancelled");
    const [task] = (run.result as { results: TaskOutcome[] }).results;
    assert.equal(task.status, "error");
    assert.match(task.error!, /cancelled by DELETE/);
  });

  await t.step("hosts not listed are refused: another name, another port", async () => {
    other.reset();
    byName.reset();
    const cases: [string, string][] = [
      ["http://example.com/", "example.com:80"],
      // localhost is another host than 127.0.0.1, though it resolves there.
      [`http://localhost:${api.port}/json`, `localhost:${api.port}`],
      [`http://127.0.0.1:${other.port}/json`, `127.0.0.1:${other.port}`],
      [`http://127.0.0.1:${byName.port}/json`, `127.0.0.1:${byName.port}`],
    ];
    for (const [url, host] of cases) {
      const result = await call(server, { url });
      assert.equal(result.status, "error", url);
      assert.equal(
        result.error,
        `http:request: host "${host}" is not allowed (start the server with --allow-http ${host})`,
      );
    }
    assert.deepEqual(other.seen, []);
    assert.deepEqual(byName.seen, []);
  });

  await t.step("localhost, listed, is resolved and called", async () => {
    byName.reset();
    const result = await call(server, { url: `http://localhost:${byName.port}/json` });
    assert.equal(result.status, "success", result.error);
    assert.deepEqual(result.output!.body, { hello: "world" });
    assert.deepEqual(byName.seen.map((s) => s.host), [`localhost:${byName.port}`]);
  });

  await t.step("arguments against the schema: 422 at submission", async () => {
    const response = await postDag(server.at("/runs"), {
      tasks: [{ id: "bad", tool: "http:request", arguments: { url: "ftp://x/", method: "get" } }],
    });
    const problem = await assertProblem(response, 422);
    const messages = (problem.errors as { path: string; message: string }[])
      .map((e) => `${e.path}: ${e.message}`);
    assert.ok(messages.some((m) => m.startsWith("tasks[0].arguments.url: must match pattern")));
    assert.ok(messages.some((m) => m.startsWith("tasks[0].arguments.method: must be one of")));
  });
});

Deno.test("without --allow-http, a DAG calling http:request is refused with 422 saying how", async () => {
  await using server = await startServer();
  const response = await postDag(server.at("/runs"), {
    tasks: [{ id: "get", tool: "http:request", arguments: { url: "http://127.0.0.1:1/" } }],
  });
  const problem = await assertProblem(response, 422);
  const [error] = problem.errors as { path: string; message: string }[];
  assert.equal(error.path, "tasks[0].tool");
  assert.match(
    error.message,
    /the HTTP tool is off: start the server with --allow-http HOST\[:PORT\]/,
  );
  const { tools } = await (await fetch(server.at("/tools"))).json();
  assert.ok(!tools.some((tool: { name: string }) => tool.name === "http:request"));
});

Deno.test("a bad --allow-http value stops the server with status 2", async () => {
  for (
    const args of [["--allow-http", "http://example.com"], ["--allow-http", "x.example:99999"]]
  ) {
    const { code, stderr } = await runMain(args);
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^dagstream: --allow-http must be HOST or HOST:PORT/);
    assert.ok(stderr.includes(JSON.stringify(args[1])), stderr);
  }
  const { code, stderr } = await runMain([], { DAGSTREAM_ALLOW_HTTP: "ok.example,*.example" });
  assert.equal(code, 2);
  assert.match(stderr, /--allow-http must be HOST or HOST:PORT.*"\*\.example"/);
});
