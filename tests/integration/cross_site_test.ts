/**
 * Safe defaults of the real server process against web pages and rebinding:
 * the Host check, the Origin check, the order of the request checks, JSON-only
 * bodies, and a token that is checked before routing and never logged.
 */

import assert from "node:assert/strict";
import {
  assertProblem,
  assertRawProblem,
  echoDag,
  holdDag,
  postDag,
  rawRequest,
  runCount,
  runMain,
  startRun,
  startServer,
} from "./_server.ts";

const PROBLEMS = "https://dagstream.dev/problems/";

/** Every route of the server, with each method it takes and some it does not. */
const ROUTES: [string, string][] = [
  ["POST", "/execute"],
  ["POST", "/runs"],
  ["GET", "/runs"],
  ["GET", "/runs/x"],
  ["DELETE", "/runs/x"],
  ["GET", "/runs/x/events"],
  ["GET", "/tools"],
  ["GET", "/health"],
  ["OPTIONS", "/execute"],
  ["GET", "/nope"],
  ["PUT", "/execute"],
];

Deno.test("Host: a loopback bind answers only loopback names and --allowed-host", async (t) => {
  await using server = await startServer(["--allowed-host", "dag.internal"]);
  const port = new URL(server.url).port;
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "LOCALHOST"]) {
    await t.step(`accepted: ${host}`, async () => {
      const response = await rawRequest(server.at("/health"), "GET", { Host: host });
      assert.equal(response.status, 200, response.body);
    });
  }
  await t.step("accepted: the --allowed-host name, any port", async () => {
    const response = await rawRequest(server.at("/health"), "GET", { Host: "dag.internal:443" });
    assert.equal(response.status, 200, response.body);
  });
  for (const host of ["rebind.example", `rebind.example:${port}`, "127.0.0.1.nip.io"]) {
    await t.step(`refused: ${host}`, async () => {
      const response = await rawRequest(server.at("/health"), "GET", { Host: host });
      assert.equal(response.status, 403);
      const body = assertRawProblem(response, 403);
      assert.equal(body.type, `${PROBLEMS}forbidden-host`);
      assert.match(String(body.detail), /--allowed-host/);
    });
  }
  for (const [method, path] of ROUTES) {
    await t.step(`refused: rebind.example ${method} ${path}`, async () => {
      const response = await rawRequest(
        server.at(path),
        method,
        {
          Host: "rebind.example",
          "Content-Type": "application/x-www-form-urlencoded",
          Accept: "text/event-stream",
        },
        method === "POST" ? new TextEncoder().encode(JSON.stringify(echoDag(1))) : undefined,
      );
      const body = assertRawProblem(response, 403);
      assert.equal(body.type, `${PROBLEMS}forbidden-host`);
      assert.equal(response.headers.get("access-control-allow-origin"), undefined);
    });
  }
  await t.step("refused before any work: a rebound POST starts no run", async () => {
    const body = new TextEncoder().encode(JSON.stringify(echoDag(1)));
    const response = await rawRequest(server.at("/runs"), "POST", {
      Host: "rebind.example",
      "Content-Type": "application/json",
    }, body);
    assert.equal(response.status, 403);
    assert.equal(await runCount(server), 0);
  });
});

Deno.test("Host: DAGSTREAM_ALLOWED_HOSTS is a comma-separated list", async () => {
  await using server = await startServer([], { DAGSTREAM_ALLOWED_HOSTS: "a.example, B.example" });
  for (const [host, status] of [["a.example", 200], ["b.example:9", 200], ["c.example", 403]]) {
    const response = await rawRequest(server.at("/health"), "GET", { Host: String(host) });
    assert.equal(response.status, status, `${host}: ${response.body}`);
  }
});

Deno.test("Host: a non-loopback bind checks Host only when --allowed-host is given", async () => {
  {
    await using open = await startServer(["--host", "0.0.0.0"]);
    const local = `http://127.0.0.1:${new URL(open.url).port}/health`;
    const response = await rawRequest(local, "GET", { Host: "dag.example.com" });
    assert.equal(response.status, 200, response.body);
  }
  {
    await using guarded = await startServer([
      "--host",
      "0.0.0.0",
      "--allowed-host",
      "dag.example.com",
    ]);
    const local = `http://127.0.0.1:${new URL(guarded.url).port}/health`;
    assert.equal((await rawRequest(local, "GET", { Host: "dag.example.com" })).status, 200);
    assert.equal((await rawRequest(local, "GET", { Host: "other.example" })).status, 403);
  }
});

Deno.test("Origin: foreign origins get 403 on every route and method, before any work", async (t) => {
  await using server = await startServer();
  const own = new URL(server.url).origin;
  for (const origin of ["https://evil.example", "null", "http://localhost:1"]) {
    for (const [method, path] of ROUTES) {
      await t.step(`${origin} ${method} ${path}`, async () => {
        const response = await fetch(server.at(path), {
          method,
          headers: {
            Origin: origin,
            "Content-Type": "application/x-www-form-urlencoded",
            Accept: "text/event-stream",
          },
          body: method === "POST" ? JSON.stringify(echoDag(1)) : undefined,
        });
        const body = await assertProblem(response, 403);
        assert.equal(body.type, `${PROBLEMS}forbidden-origin`);
        assert.equal(response.headers.get("access-control-allow-origin"), null);
      });
    }
  }
  await t.step("no run was started by any of them", async () => {
    assert.equal(await runCount(server), 0);
  });
  await t.step("a foreign DELETE of a live run is refused and cancels nothing", async () => {
    const runId = await startRun(server, holdDag());
    const response = await fetch(server.at(`/runs/${runId}`), {
      method: "DELETE",
      headers: { Origin: "https://evil.example" },
    });
    const body = await assertProblem(response, 403);
    assert.equal(body.type, `${PROBLEMS}forbidden-origin`);
    const state = await fetch(server.at(`/runs/${runId}`));
    assert.equal(state.status, 200);
    assert.equal((await state.json()).status, "running", "the run goes on");
    const cancelled = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
    assert.equal(cancelled.status, 202);
    await cancelled.body?.cancel();
  });
  await t.step("the server's own origin and no Origin at all are served", async () => {
    const same = await postDag(server.at("/execute"), echoDag(1), "application/json", {
      Origin: own,
    });
    assert.equal(same.status, 200);
    await same.body?.cancel();
    const none = await postDag(server.at("/execute"), echoDag(1), "application/json");
    assert.equal(none.status, 200);
    await none.body?.cancel();
    assert.equal(await runCount(server), 3, "the held run and these two");
  });
});

Deno.test("Origin: without Origin, a browser's Sec-Fetch-Site: cross-site or same-site is refused", async () => {
  await using server = await startServer();
  for (
    const [site, status] of [["cross-site", 403], ["same-site", 403], ["same-origin", 200], [
      "none",
      200,
    ]] as const
  ) {
    const response = await fetch(server.at("/runs"), { headers: { "Sec-Fetch-Site": site } });
    assert.equal(response.status, status, site);
    if (status === 403) assert.equal((await response.json()).type, `${PROBLEMS}forbidden-origin`);
    else await response.body?.cancel();
  }
});

Deno.test("Origin: every --cors-origin is allowed and echoed; others are refused", async () => {
  const a = "https://a.example";
  const b = "http://b.example:8080";
  await using server = await startServer(["--cors-origin", a, "--cors-origin", b]);
  for (const origin of [a, b]) {
    const response = await fetch(server.at("/health"), { headers: { Origin: origin } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("access-control-allow-origin"), origin);
    assert.match(response.headers.get("vary") ?? "", /Origin/);
    await response.body?.cancel();
  }
  const own = await fetch(server.at("/health"), {
    headers: { Origin: new URL(server.url).origin },
  });
  assert.equal(own.status, 200, "the server's own origin is still served");
  await own.body?.cancel();
  const foreign = await fetch(server.at("/health"), { headers: { Origin: "https://c.example" } });
  await assertProblem(foreign, 403);
  assert.equal(foreign.headers.get("access-control-allow-origin"), null);
});

Deno.test("Origin: --cors-origin '*' allows any origin but never Origin: null", async () => {
  await using server = await startServer(["--cors-origin", "*"]);
  const any = await fetch(server.at("/health"), { headers: { Origin: "https://x.example" } });
  assert.equal(any.status, 200);
  assert.equal(any.headers.get("access-control-allow-origin"), "*");
  await any.body?.cancel();
  await assertProblem(await fetch(server.at("/health"), { headers: { Origin: "null" } }), 403);
});

Deno.test("checks run in order: Host, then Origin, then token, then route and method", async () => {
  await using server = await startServer(["--token", "tok-123"]);
  const health = server.at("/health");
  const everythingWrong = await rawRequest(server.at("/nope"), "PUT", {
    Host: "rebind.example",
    Origin: "https://evil.example",
  });
  assert.equal(assertRawProblem(everythingWrong, 403).type, `${PROBLEMS}forbidden-host`);
  const badOrigin = await rawRequest(server.at("/nope"), "PUT", { Origin: "https://evil.example" });
  assert.equal(assertRawProblem(badOrigin, 403).type, `${PROBLEMS}forbidden-origin`);
  // With a token set, an unauthenticated request learns nothing of the routes.
  for (const [method, path] of [["GET", "/nope"], ["PUT", "/execute"], ["GET", "/runs/x"]]) {
    const response = await fetch(server.at(path), { method });
    await assertProblem(response, 401);
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="dagstream"');
  }
  const auth = { Authorization: "Bearer tok-123" };
  await assertProblem(await fetch(server.at("/nope"), { headers: auth }), 404);
  await assertProblem(await fetch(server.at("/execute"), { method: "PUT", headers: auth }), 405);
  // Then the body type, then validation.
  const form = await fetch(server.at("/runs"), {
    method: "POST",
    headers: { ...auth, "Content-Type": "text/plain" },
    body: "{}",
  });
  await assertProblem(form, 415);
  await assertProblem(await postDag(server.at("/runs"), { tasks: "x" }, undefined, auth), 422);
  const open = await fetch(health);
  assert.equal(open.status, 200, "/health needs no token");
  await open.body?.cancel();
});

Deno.test("bodies: only JSON types start runs; the 415 says how to send JSON with curl", async (t) => {
  await using server = await startServer();
  const dag = JSON.stringify(echoDag(1));
  for (
    const type of [
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "text/plain",
      "text/plain;charset=UTF-8",
    ]
  ) {
    await t.step(`415 ${type}`, async () => {
      const response = await fetch(server.at("/execute"), {
        method: "POST",
        headers: { "Content-Type": type },
        body: dag,
      });
      const body = await assertProblem(response, 415);
      assert.match(String(body.detail), /-H 'Content-Type: application\/json'/);
      assert.match(String(body.detail), /--json/);
    });
  }
  await t.step("no run was started", async () => assert.equal(await runCount(server), 0));
  for (const type of ["Application/JSON; charset=UTF-8", "application/vnd.dag+json"]) {
    await t.step(`200 ${type}`, async () => {
      const response = await fetch(server.at("/execute"), {
        method: "POST",
        headers: { "Content-Type": type },
        body: dag,
      });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    });
  }
});

Deno.test("token: exit 2 with one line for an empty, blank or unsendable token", async (t) => {
  const cases: [string, string[], Record<string, string>][] = [
    ["--token ''", ["--token", ""], {}],
    ["--token=", ["--token="], {}],
    ["blank DAGSTREAM_TOKEN", [], { DAGSTREAM_TOKEN: "   " }],
    ["empty DAGSTREAM_TOKEN", [], { DAGSTREAM_TOKEN: "" }],
    ["a space", ["--token", "se cret"], {}],
    ["non-ASCII", ["--token", "s\u00e9cret"], {}],
    ["'=' inside", ["--token", "ab=cd"], {}],
    ["only '='", ["--token", "==="], {}],
    ["a comma", ["--token", "tok,en"], {}],
    ["a space in DAGSTREAM_TOKEN", [], { DAGSTREAM_TOKEN: "a b" }],
    ["--token of blanks", ["--token", "  "], {}],
  ];
  for (const [name, flags, env] of cases) {
    await t.step(name, async () => {
      const { code, stdout, stderr } = await runMain(["--port", "0", ...flags], env);
      assert.equal(code, 2, stderr);
      assert.equal(stdout, "", "it never listened");
      assert.match(stderr, /^dagstream: --token .+\n$/, "one line");
      assert.doesNotMatch(stderr, /se cret|s\u00e9cret/);
    });
  }
});

Deno.test("a port already in use: one line and exit 2, no stack trace", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const { code, stdout, stderr } = await runMain(["--port", String(port)]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.equal(stderr, `error: port ${port} is already in use (try --port 0)\n`);
  } finally {
    taken.close();
  }
});

Deno.test("token: never in a log line, whatever the requests", async () => {
  const token = "Zq9-secret.token_~+/==";
  await using server = await startServer(["--token", token]);
  const auth = { Authorization: `Bearer ${token}` };
  const run = await postDag(server.at("/runs"), holdDag(), undefined, auth);
  const { runId } = await run.json();
  const events = await fetch(
    server.at(`/runs/${runId}/events?access_token=${encodeURIComponent(token)}`),
  );
  assert.equal(events.status, 200);
  await events.body?.cancel();
  for (const bad of [token + "x", token.slice(1), ""]) {
    const response = await fetch(server.at("/runs"), {
      headers: { Authorization: `Bearer ${bad}` },
    });
    await assertProblem(response, 401);
  }
  const cancelled = await fetch(server.at(`/runs/${runId}`), { method: "DELETE", headers: auth });
  assert.equal(cancelled.status, 202);
  await cancelled.body?.cancel();
  const health = await fetch(server.at("/health"));
  assert.doesNotMatch(await health.text(), /secret/);
  await server.stop();
  const log = server.stderr();
  assert.ok(log.split("\n").filter((l) => l.trim() !== "").length >= 6, log);
  assert.ok(!log.includes(token) && !log.includes("secret"), log);
});

Deno.test("token: the MCP permissions message shows --token ***, never the value", async () => {
  const token = "mcp-secret-token";
  const config = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(
      config,
      JSON.stringify({ mcpServers: { fx: { command: "deno", args: ["run", "x.ts"] } } }),
    );
    // Allowed to read the file but not to run its server: exit 2 with the command to use.
    for (const flags of [["--token", token], [`--token=${token}`]]) {
      const { code, stderr } = await runMain(
        ["--port", "0", "--mcp-config", config, ...flags],
        {},
        [
          "--allow-net",
          "--allow-env=DAGSTREAM_*",
          `--allow-read=${config}`,
        ],
      );
      assert.equal(code, 2, stderr);
      assert.match(stderr, /need more permissions/);
      assert.match(stderr, /--token(=| ')\*\*\*'/);
      assert.ok(!stderr.includes(token), stderr);
    }
  } finally {
    await Deno.remove(config);
  }
});
