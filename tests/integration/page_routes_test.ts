/**
 * The page at `GET /` and its assets, over real HTTP: HTML for browsers, a
 * JSON index for other clients, public (no token; a link from another site
 * opens it) but framed by no one, cached by ETag; and the listing the page
 * reads, `GET /runs`, newest first with `?status=`, `?limit=` and `?cursor=`.
 */

import assert from "node:assert/strict";
import {
  assertProblem,
  assertRawProblem,
  echoDag,
  holdDag,
  postDag,
  rawRequest,
  startRun,
  startServer,
  waitForRunEnd,
} from "./_server.ts";

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

Deno.test("GET /: the page for a browser, a JSON index of the routes for anyone else", async () => {
  await using server = await startServer(["--token", "s3cret"]);
  const page = await fetch(server.at("/"), { headers: { Accept: BROWSER_ACCEPT } });
  const html = await page.text();
  assert.equal(page.status, 200, "public: no token needed");
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(html, /<textarea id="dag"/);
  assert.match(html, /<script type="module" src="\/ui\/app.js"><\/script>/);
  const csp = page.headers.get("content-security-policy") ?? "";
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.equal(page.headers.get("x-frame-options"), "DENY");
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");

  for (const accept of [undefined, "*/*", "application/json"]) {
    const index = await fetch(server.at("/"), { headers: accept ? { Accept: accept } : {} });
    assert.equal(index.headers.get("content-type"), "application/json", String(accept));
    const body = await index.json();
    assert.equal(body.name, "dagstream");
    assert.ok(body.routes.some((r: { path: string }) => r.path === "/runs/{id}/events"));
  }
  // The API itself still needs the token.
  await assertProblem(await fetch(server.at("/runs")), 401);
});

Deno.test("the page's assets: typed, cached by ETag, 404 for unknown names", async () => {
  await using server = await startServer();
  for (
    const [name, type] of [
      ["app.js", "text/javascript; charset=utf-8"],
      ["app.css", "text/css; charset=utf-8"],
      ["icon.svg", "image/svg+xml"],
    ]
  ) {
    const first = await fetch(server.at(`/ui/${name}`));
    await first.body?.cancel();
    assert.equal(first.status, 200, name);
    assert.equal(first.headers.get("content-type"), type);
    const etag = first.headers.get("etag")!;
    assert.match(etag, /^"[0-9a-f]{16}(-gz)?"$/);
    const again = await fetch(server.at(`/ui/${name}`), { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304, name);
    assert.equal(await again.text(), "");
    // If-None-Match compares weakly, and * matches any representation.
    for (const tags of [`W/${etag}`, `"other", ${etag}`, "*"]) {
      const weak = await fetch(server.at(`/ui/${name}`), { headers: { "If-None-Match": tags } });
      await weak.body?.cancel();
      assert.equal(weak.status, 304, `${name} ${tags}`);
    }
  }
  // Gzipped ahead of time for clients that take it.
  const zipped = await rawRequest(server.at("/ui/app.js"), "GET", { "Accept-Encoding": "gzip" });
  assert.equal(zipped.headers.get("content-encoding"), "gzip");
  const plain = await rawRequest(server.at("/ui/app.js"), "GET", { "Accept-Encoding": "identity" });
  assert.equal(plain.headers.get("content-encoding"), undefined);
  assert.ok(
    Number(zipped.headers.get("content-length")) < Number(plain.headers.get("content-length")),
  );
  assert.notEqual(zipped.headers.get("etag"), plain.headers.get("etag"));
  await assertProblem(await fetch(server.at("/ui/index.html")), 404);
  await assertProblem(await fetch(server.at("/ui/secret.json")), 404);
});

Deno.test("a link from another site opens the page; the API stays closed to that site", async () => {
  await using server = await startServer();
  const navigation = await fetch(server.at("/"), {
    headers: {
      Accept: BROWSER_ACCEPT,
      "Sec-Fetch-Site": "cross-site",
      "Sec-Fetch-Mode": "navigate",
    },
  });
  await navigation.body?.cancel();
  assert.equal(navigation.status, 200);
  await assertProblem(
    await fetch(server.at("/runs"), { headers: { "Sec-Fetch-Site": "cross-site" } }),
    403,
  );
  // DNS rebinding: a foreign Host gets nothing, the page included.
  const rebound = await rawRequest(server.at("/"), "GET", {
    Host: "evil.example",
    Accept: BROWSER_ACCEPT,
  });
  assertRawProblem(rebound, 403);
});

Deno.test("GET /runs: newest first, ?status=, ?limit= and ?cursor= through every run once", async () => {
  await using server = await startServer();
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) {
    const id = await startRun(server, echoDag(1));
    await waitForRunEnd(server, id);
    ids.push(id);
  }
  const held = await startRun(server, holdDag());
  const newestFirst = [held, ...ids.reverse()];

  const all = await (await fetch(server.at("/runs"))).json();
  assert.deepEqual(all.runs.map((r: { runId: string }) => r.runId), newestFirst);
  assert.equal(all.nextCursor, undefined, "everything fit in one page");

  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const query = cursor === undefined ? "?limit=3" : `?limit=3&cursor=${cursor}`;
    const page = await (await fetch(server.at(`/runs${query}`))).json();
    assert.ok(page.runs.length <= 3);
    seen.push(...page.runs.map((r: { runId: string }) => r.runId));
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== undefined);
  assert.deepEqual(seen, newestFirst);
  assert.equal(pages, 3);

  const running = await (await fetch(server.at("/runs?status=running"))).json();
  assert.deepEqual(running.runs.map((r: { runId: string }) => r.runId), [held]);
  const succeeded = await (await fetch(server.at("/runs?status=succeeded&limit=2"))).json();
  assert.deepEqual(succeeded.runs.map((r: { runId: string }) => r.runId), newestFirst.slice(1, 3));
  assert.equal(typeof succeeded.nextCursor, "string");

  for (
    const [query, named] of [
      ["?status=done", /status/],
      ["?limit=0", /limit/],
      ["?limit=1001", /limit/],
      ["?limit=x", /limit/],
      ["?cursor=%%%", /cursor/],
      ["?cursor=bm90LWEtY3Vyc29y", /cursor/],
    ] as const
  ) {
    const problem = await assertProblem(await fetch(server.at(`/runs${query}`)), 400);
    assert.match(String(problem.detail), named, query);
  }
  const cancel = await fetch(server.at(`/runs/${held}`), { method: "DELETE" });
  await cancel.body?.cancel();
  await waitForRunEnd(server, held);
});

Deno.test("POST /runs answers 202 for a DAG the page submits as text", async () => {
  await using server = await startServer();
  const response = await postDag(server.at("/runs"), echoDag(2));
  const { runId } = await response.json();
  assert.equal(response.status, 202);
  const view = await waitForRunEnd(server, runId);
  assert.equal(view.status, "succeeded");
  assert.deepEqual(view.dag, echoDag(2));
});
