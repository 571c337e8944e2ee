/**
 * Fuzzing the HTTP API over real loopback HTTP (`createApp` served by
 * `Deno.serve` on 127.0.0.1, port 0): random bytes, truncated JSON, invalid
 * UTF-8, wrong types at every level, huge strings, deep nesting, cycles,
 * duplicate ids, thousands of tasks, odd methods and paths, bad headers, and
 * malformed HTTP written straight to a socket.
 *
 * Invariant: every bad request gets its 4xx as `application/problem+json`,
 * whose `status` is the HTTP status and whose `detail` (and, for a DAG,
 * `errors[].path`) names the problem; never a 5xx, a stack trace or a hang;
 * and the server answers `/health` afterwards. Bytes that are not HTTP at
 * all are refused by Deno's HTTP layer (a bare 400 or a closed connection)
 * before they reach the app: the server must still never answer 5xx or die.
 *
 * Short profile: `deno task test tests/fuzz/`. Long profile:
 * `DAGSTREAM_FUZZ_RUNS=20000 deno task test tests/fuzz/http_fuzz_test.ts`.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { validateDAG } from "../../mod.ts";
import type { DagstreamApp } from "../../src/server/mod.ts";
import { negotiateResponse } from "../../src/sse/mod.ts";
import { serveApp } from "../_in_process_app.ts";
import { isJsonContentType } from "../../src/server/json-body.ts";
import {
  count,
  expectedKind,
  fuzz,
  pathsOf,
  pathText,
  printSummary,
  runsFor,
  validDag,
  withValueAt,
  wrongTyped,
} from "./_fuzz.ts";

const MAX_BODY = 1024 * 1024;
const TOKEN = "s3cret-token";

interface Target {
  app: DagstreamApp;
  base: string;
  /** A finished run's id, for the routes that need one. */
  finishedRunId: string;
}

/** Serves a fresh app on 127.0.0.1:0 for the duration of `fn`, then stops everything. */
async function withServer(
  fn: (target: Target) => Promise<void>,
  options: { token?: string } = {},
): Promise<void> {
  // Short task timeout: a generated input that happens to be a valid DAG
  // (mock:delay included) ends quickly.
  await using served = serveApp({ taskTimeout: 50, token: options.token });
  const { app, base } = served;
  const auth: Record<string, string> = options.token
    ? { Authorization: `Bearer ${options.token}` }
    : {};
  const started = await fetch(`${base}/execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...auth },
    body: JSON.stringify({ tasks: [{ id: "a", tool: "mock:echo" }] }),
  });
  assert.equal(started.status, 200);
  await started.body?.cancel();
  const finishedRunId = started.headers.get("x-run-id")!;
  await fn({ app, base, finishedRunId });
  assert.deepEqual(served.internalErrors, [], "no request failed inside the server");
  await assertHealthy(base);
}

async function assertHealthy(base: string): Promise<void> {
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  assert.equal((await health.json()).status, "ok");
}

/** What a request must get: statuses allowed, and for a problem what its detail or errors say. */
interface Expect {
  status: number | number[];
  detail?: RegExp;
  /** For 422: an issue with this path must be listed. */
  errorPath?: string;
  /** For 422: an issue message must match. */
  errorMessage?: RegExp;
  /** The request was a HEAD: the answer has no body. */
  head?: boolean;
}

/**
 * Reads the answer and checks it against `expect` and the general invariant:
 * below 500; a 4xx is a well-formed problem with no stack trace.
 */
async function checkAnswer(response: Response, expect: Expect, label: string): Promise<void> {
  const allowed = Array.isArray(expect.status) ? expect.status : [expect.status];
  const type = response.headers.get("content-type");
  let text = "";
  if (type === "text/event-stream" && !expect.head) {
    // A stream of a run that really started: read it to its end.
    text = await response.text();
    assert.match(text, /^retry: \d+\n\n/, label);
  } else text = await response.text();
  if (expect.head) assert.equal(text, "", `a HEAD answer has no body (${label})`);
  const where = `${label}: ${response.status} ${text.slice(0, 300)}`;
  assert.ok(response.status < 500, `never a 5xx (${where})`);
  assert.ok(allowed.includes(response.status), `expected ${allowed.join("|")} (${where})`);
  if (response.status < 400) return;
  assert.equal(type, "application/problem+json", where);
  assert.doesNotMatch(
    text,
    /\bat \S+ \(|\.ts:\d+:\d+|file:\/\/|node_modules/,
    `no stack (${where})`,
  );
  if (response.status === 405) assert.ok(response.headers.get("allow"), `405 has Allow (${where})`);
  if (response.status === 401) assert.ok(response.headers.get("www-authenticate"), where);
  if (response.status === 503) assert.ok(response.headers.get("retry-after"), where);
  if (text === "") {
    assert.ok(expect.head, `only a HEAD answer has no body (${where})`);
    return;
  }
  const problem = JSON.parse(text);
  assert.equal(problem.status, response.status, where);
  for (const member of ["type", "title", "detail"]) {
    assert.equal(typeof problem[member], "string", `${member} (${where})`);
    assert.ok(problem[member].length > 0, `${member} is not empty (${where})`);
  }
  if (expect.detail) assert.match(problem.detail, expect.detail, where);
  if (response.status === 422) {
    assert.ok(Array.isArray(problem.errors) && problem.errors.length > 0, `errors (${where})`);
    for (const e of problem.errors) {
      assert.equal(typeof e.path, "string", where);
      assert.equal(typeof e.message, "string", where);
    }
    if (expect.errorPath !== undefined) {
      assert.ok(
        problem.errors.some((e: { path: string }) => e.path === expect.errorPath),
        `an error at ${expect.errorPath} (${where})`,
      );
    }
    if (expect.errorMessage !== undefined) {
      assert.ok(
        problem.errors.some((e: { message: string }) => expect.errorMessage!.test(e.message)),
        `an error matching ${expect.errorMessage} (${where})`,
      );
    }
  }
}

const ROUTES = ["/execute", "/runs"] as const;
const ACCEPTS = [undefined, "application/json", "text/event-stream", "*/*"] as const;

/** POSTs `body` as JSON to a random DAG route with a random Accept. */
function postBody(
  base: string,
  body: BodyInit,
  route: string,
  accept: string | undefined,
  headers: Record<string, string> = {},
): Promise<Response> {
  const h: Record<string, string> = { "Content-Type": "application/json", ...headers };
  if (accept !== undefined) h.Accept = accept;
  return fetch(`${base}${route}`, { method: "POST", headers: h, body });
}

const target = fc.record({
  route: fc.constantFrom(...ROUTES),
  accept: fc.constantFrom(...ACCEPTS),
});

/** What the server must answer to these body bytes (a model of the contract). */
function oracle(app: DagstreamApp, bytes: Uint8Array): Expect {
  if (bytes.byteLength > MAX_BODY) return { status: 413, detail: /larger than/ };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { status: 400, detail: /UTF-8/ };
  }
  if (text.trim() === "") return { status: 400, detail: /empty/ };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { status: 400, detail: /not valid JSON/ };
  }
  const checked = validateDAG(value, { maxTasks: 1000, isKnownTool: app.tools.has });
  if (checked.ok) return { status: [200, 202] };
  return { status: 422, errorPath: checked.issues[0].path, detail: /invalid/ };
}

const encoder = new TextEncoder();

Deno.test("fuzz HTTP: random bodies get 400/413/422 problems that say why", async () => {
  await withServer(async ({ app, base }) => {
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }),
      fc.string({ unit: "binary", maxLength: 512 }).map((s) => encoder.encode(s)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => encoder.encode(JSON.stringify(v))),
      fc.constantFrom("", " ", "\n\t", "\uFEFF", "null", "{}", "[]", '{"tasks":null}').map((s) =>
        encoder.encode(s)
      ),
    );
    await fuzz(
      "random bytes, strings and JSON values as a body",
      fc.asyncProperty(bodies, target, async (bytes, { route, accept }) => {
        const response = await postBody(base, bytes, route, accept);
        await checkAnswer(response, oracle(app, bytes), `${route} ${bytes.byteLength} bytes`);
      }),
      runsFor(300, 0.5),
    );
  });
});

Deno.test("fuzz HTTP: truncated JSON and invalid UTF-8 get 400", async () => {
  await withServer(async ({ base }) => {
    await fuzz(
      "truncated DAG JSON",
      fc.asyncProperty(validDag(8), fc.double({ min: 0, max: 1, noNaN: true }), target, async (
        dag,
        at,
        { route, accept },
      ) => {
        const json = JSON.stringify(dag);
        const cut = Math.min(json.length - 1, Math.floor(at * json.length));
        const response = await postBody(base, json.slice(0, cut), route, accept);
        await checkAnswer(
          response,
          { status: 400, detail: cut === 0 ? /empty/ : /not valid JSON/ },
          `cut at ${cut}/${json.length}`,
        );
      }),
      runsFor(200, 0.3),
    );
    const invalid = [
      [0xff],
      [0xfe],
      [0xc0, 0x80], // overlong NUL
      [0x80], // lone continuation byte
      [0xe2, 0x82], // truncated 3-byte sequence
      [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded in UTF-8
      [0xf0, 0x82, 0x82, 0xac], // overlong 4-byte
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
    ];
    await fuzz(
      "invalid UTF-8 anywhere in a DAG",
      fc.asyncProperty(
        validDag(6),
        fc.constantFrom(...invalid),
        fc.double({ min: 0, max: 1, noNaN: true }),
        target,
        async (dag, bad, at, { route, accept }) => {
          const json = encoder.encode(JSON.stringify(dag));
          const cut = Math.floor(at * json.byteLength);
          const bytes = new Uint8Array(json.byteLength + bad.length);
          bytes.set(json.subarray(0, cut));
          bytes.set(bad, cut);
          bytes.set(json.subarray(cut), cut + bad.length);
          const response = await postBody(base, bytes, route, accept);
          await checkAnswer(response, { status: 400, detail: /UTF-8/ }, `bytes ${bad} at ${cut}`);
        },
      ),
      runsFor(200, 0.3),
    );
  });
});

Deno.test("fuzz HTTP: a wrong type at any level is a 422 naming its path", async () => {
  await withServer(async ({ base }) => {
    const mutated = validDag(5).chain((dag) =>
      fc.constantFrom(...pathsOf(dag)).chain((path) =>
        wrongTyped(expectedKind(path)).map((value) => ({ dag, path, value }))
      )
    );
    await fuzz(
      "wrong-typed value at every level",
      fc.asyncProperty(mutated, target, async ({ dag, path, value }, { route, accept }) => {
        const response = await postBody(
          base,
          JSON.stringify(withValueAt(dag, path, value)),
          route,
          accept,
        );
        await checkAnswer(response, { status: 422, errorPath: pathText(path) }, pathText(path));
      }),
      runsFor(300, 0.5),
    );
  });
});

Deno.test("fuzz HTTP: huge strings, deep nesting, cycles, duplicates, thousands of tasks", async () => {
  await withServer(async ({ base }) => {
    await fuzz(
      "huge strings (up to 1.5 MiB)",
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_500_000 }),
        fc.constantFrom("tool", "dep", "field", "id", "value"),
        fc.constantFrom("x", "é", "😀", '"', "\\", "\u0000"),
        target,
        async (size, where, unit, { route, accept }) => {
          const huge = unit.repeat(Math.ceil(size / unit.length));
          const task: Record<string, unknown> = { id: "a", tool: "mock:echo" };
          let expect: Expect;
          if (where === "tool") {
            [task.tool, expect] = [huge, { status: 422, errorPath: "tasks[0].tool" }];
          } else if (where === "dep") {
            task.dependsOn = [huge];
            expect = { status: 422, errorPath: "tasks[0].dependsOn[0]" };
          } else if (where === "field") {
            task[huge] = 1;
            expect = { status: 422, errorMessage: /unknown field/ };
          } else if (where === "id") [task.id, expect] = [huge, { status: [200, 202] }];
          else [task.arguments, expect] = [{ v: huge }, { status: [200, 202] }];
          const body = encoder.encode(JSON.stringify({ tasks: [task] }));
          if (body.byteLength > MAX_BODY) expect = { status: 413, detail: /larger than/ };
          if (where === "dep" && huge === "a") expect = { status: 422, errorMessage: /Circular/ };
          await checkAnswer(
            await postBody(base, body, route, accept),
            expect,
            `${where} ${body.byteLength} bytes`,
          );
        },
      ),
      runsFor(40, 0.01),
    );
    await fuzz(
      "nesting to any depth (up to 400,000 levels)",
      fc.asyncProperty(
        fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 400_000 })),
        fc.constantFrom("arguments", "root", "id", "tasks", "dependsOn"),
        target,
        async (depth, where, { route, accept }) => {
          const nested = "[".repeat(depth) + "]".repeat(depth);
          let body: string;
          let expect: Expect;
          if (where === "arguments") {
            // {"v": <depth arrays>}: the deepest array is at level depth + 1.
            body = `{"tasks":[{"id":"a","tool":"mock:echo","arguments":{"v":${nested}}}]}`;
            expect = depth + 1 <= 64
              ? { status: [200, 202] }
              : { status: 422, errorPath: "tasks[0].arguments", errorMessage: /deeper than 64/ };
          } else if (where === "root") {
            [body, expect] = [nested, { status: 422, errorPath: "(root)" }];
          } else if (where === "id") {
            body = `{"tasks":[{"id":${nested},"tool":"mock:echo"}]}`;
            expect = { status: 422, errorPath: "tasks[0].id" };
          } else if (where === "tasks") {
            body = `{"tasks":${nested}}`;
            expect = depth === 1 ? { status: [200, 202] } : { status: 422, errorPath: "tasks[0]" };
          } else {
            body = `{"tasks":[{"id":"a","tool":"mock:echo","dependsOn":${nested}}]}`;
            expect = { status: 422, errorPath: depth === 1 ? undefined : "tasks[0].dependsOn[0]" };
            if (depth === 1) expect = { status: [200, 202] };
          }
          await checkAnswer(
            await postBody(base, body, route, accept),
            expect,
            `${where} depth ${depth}`,
          );
        },
      ),
      runsFor(60, 0.02),
    );
    await fuzz(
      "cycles of any length (1 to 1000) in a larger DAG",
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 20 }),
        target,
        async (k, extra, { route, accept }) => {
          const tasks = Array.from({ length: k }, (_, i) => ({
            id: `c${i}`,
            tool: "mock:echo",
            dependsOn: [`c${(i + 1) % k}`],
          }));
          for (let x = 0; x < Math.min(extra, 1000 - k); x++) {
            tasks.push({ id: `e${x}`, tool: "mock:echo", dependsOn: [`c${x % k}`] });
          }
          const response = await postBody(base, JSON.stringify({ tasks }), route, accept);
          const text = await response.clone().text();
          await checkAnswer(response, {
            status: 422,
            errorMessage: /^Circular dependency detected: c/,
          }, `cycle ${k}`);
          // The whole cycle is named: c0 ... c(k-1) and back.
          const message = JSON.parse(text).errors[0].message as string;
          assert.equal(message.split(" -> ").length, k + 1, message.slice(0, 200));
        },
      ),
      runsFor(60, 0.02),
    );
    await fuzz(
      "duplicate ids",
      fc.asyncProperty(validDag(8), fc.nat(), target, async (dag, pick, { route, accept }) => {
        const copy = dag.tasks[pick % dag.tasks.length];
        const tasks = [...dag.tasks, { id: copy.id, tool: "mock:echo" }];
        const response = await postBody(base, JSON.stringify({ tasks }), route, accept);
        await checkAnswer(
          response,
          { status: 422, errorPath: `tasks[${tasks.length - 1}].id`, errorMessage: /duplicate id/ },
          "duplicate",
        );
      }),
      runsFor(100, 0.1),
    );
    await fuzz(
      "thousands of tasks (1,001 to 30,000)",
      fc.asyncProperty(
        fc.integer({ min: 1001, max: 30_000 }),
        target,
        async (n, { route, accept }) => {
          const tasks = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, tool: "mock:echo" }));
          const body = encoder.encode(JSON.stringify({ tasks }));
          const expect: Expect = body.byteLength > MAX_BODY ? { status: 413 } : {
            status: 422,
            errorPath: "tasks",
            errorMessage: /too many tasks: \d+ \(at most 1000\)/,
          };
          await checkAnswer(await postBody(base, body, route, accept), expect, `${n} tasks`);
        },
      ),
      runsFor(20, 0.005),
    );
    // Exactly the limit runs.
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ id: `t${i}`, tool: "mock:echo" }));
    await checkAnswer(
      await postBody(base, JSON.stringify({ tasks }), "/execute", "application/json"),
      { status: 200 },
      "1000 tasks",
    );
    count("1000 tasks (the limit) accepted", 1);
  });
});

const METHODS = [
  "GET",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "HEAD",
  "OPTIONS",
  "get",
  "post",
  "patch",
  // Names of Object.prototype members: a route must not find them as handlers.
  "toString",
  "constructor",
  "valueOf",
  "hasOwnProperty",
  "__proto__",
];
const METHOD_TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/;

Deno.test("fuzz HTTP: odd methods and paths get 404/405 (with Allow) or their answer", async () => {
  await withServer(async ({ base, finishedRunId }) => {
    const paths = fc.oneof(
      fc.constantFrom(
        "/execute",
        "/runs",
        `/runs/${finishedRunId}`,
        `/runs/${finishedRunId}/events`,
        "/runs/nope",
        "/runs/nope/events",
        "/tools",
        "/health",
        "/",
        "/ui/app.js",
        "/ui/nope.js",
        "/execute/",
        "/runs//events",
        "/runs/%E0%A4%A/events",
        "/runs/%00",
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "/%",
        "/runs/%ZZ",
      ),
      fc.webPath(),
      fc.string({ maxLength: 40 }).map((s) => "/runs/" + encodeURIComponent(s)),
    );
    const methods = fc.oneof(
      fc.constantFrom(...METHODS),
      fc.stringMatching(METHOD_TOKEN).filter((m) => !/^(connect|trace|track)$/i.test(m)),
    );
    const routes: [RegExp, string[]][] = [
      [/^\/execute$/, ["POST"]],
      [/^\/runs$/, ["GET", "POST"]],
      [/^\/runs\/[^/]+$/, ["GET", "DELETE"]],
      [/^\/runs\/[^/]+\/events$/, ["GET"]],
      [/^\/tools$/, ["GET"]],
      [/^\/health$/, ["GET"]],
      [/^\/$/, ["GET"]],
      [/^\/ui\/[a-z0-9.-]+$/, ["GET"]],
    ];
    await fuzz(
      "odd methods on every route and on random paths",
      fc.asyncProperty(methods, paths, async (method, path) => {
        let response: Response;
        try {
          response = await fetch(`${base}${path}`, { method, headers: { Accept: "*/*" } });
        } catch (error) {
          // fetch itself refused the URL or method: nothing was sent.
          assert.ok(error instanceof TypeError, String(error));
          return;
        }
        const pathname = new URL(response.url).pathname;
        const route = routes.find(([pattern]) => pattern.test(pathname));
        const upper =
          ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"].includes(method.toUpperCase())
            ? method.toUpperCase()
            : method;
        let expect: Expect;
        const taken = route === undefined
          ? []
          : [...route[1], ...(route[1].includes("GET") ? ["HEAD"] : [])];
        if (!route) expect = { status: 404, detail: /no route/ };
        else if (upper === "OPTIONS") expect = { status: 204 };
        else if (!taken.includes(upper)) expect = { status: 405, detail: /not allowed/ };
        else expect = { status: [200, 202, 204, 400, 404, 406, 409, 415] };
        expect.head = upper === "HEAD";
        await checkAnswer(response, expect, `${method} ${path}`);
      }),
      runsFor(300, 0.5),
    );
  });
});

Deno.test("fuzz HTTP: bad headers get 400/406/415 problems", async () => {
  await withServer(async ({ app, base }) => {
    const headerValue = fc.oneof(
      fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, "")),
      fc.constantFrom(
        "",
        "application/json",
        "APPLICATION/JSON; charset=utf-8",
        "application/vnd.x+json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json;;;;",
        ";",
        "*/*",
        "text/event-stream",
        "text/event-stream;q=0, application/json;q=0",
        "application/*;q=abc",
        "text/html, image/*",
        "0",
        "-1",
        "１２",
        "1e3",
        "999999999999999999999",
        "application/json" + ";x=y".repeat(2000),
      ),
    );
    const dag = JSON.stringify({ tasks: [{ id: "a", tool: "mock:echo" }] });
    // A header value is a ByteString: fetch refuses others before sending.
    const headerOnly = headerValue.map((v) => v.replace(/[^\x20-\x7e]/g, "?"));
    await fuzz(
      "Content-Type values",
      fc.asyncProperty(headerOnly, fc.constantFrom(...ROUTES), async (type, route) => {
        const response = await fetch(`${base}${route}`, {
          method: "POST",
          headers: { "Content-Type": type, Accept: "application/json" },
          body: dag,
        });
        const json = isJsonContentType(type);
        await checkAnswer(
          response,
          json ? { status: [200, 202] } : { status: 415, detail: /Content-Type|not JSON/ },
          `Content-Type ${type.slice(0, 60)}`,
        );
      }),
      runsFor(200, 0.2),
    );
    await fuzz(
      "Accept values",
      fc.asyncProperty(headerOnly, async (accept) => {
        const response = await postBody(base, dag, "/execute", accept);
        const kind = negotiateResponse(new Headers({ accept }));
        await checkAnswer(
          response,
          kind === null ? { status: 406, detail: /Accept/ } : { status: 200 },
          `Accept ${accept.slice(0, 60)}`,
        );
      }),
      runsFor(200, 0.2),
    );
    // A run of its own: the properties above started thousands, and the
    // first ones are forgotten by now (--max-runs).
    const ran = await postBody(base, dag, "/execute", "application/json");
    await ran.body?.cancel();
    const runId = ran.headers.get("x-run-id")!;
    await fuzz(
      "Last-Event-ID values (header and query)",
      fc.asyncProperty(headerValue, fc.boolean(), async (value, inQuery) => {
        const id = inQuery ? value : value.replace(/[^\x20-\x7e]/g, "?");
        const url = `${base}/runs/${runId}/events` +
          (inQuery ? `?lastEventId=${encodeURIComponent(id)}` : "");
        const response = await fetch(url, {
          headers: inQuery ? { Accept: "text/event-stream" } : {
            Accept: "text/event-stream",
            "Last-Event-ID": id,
          },
        });
        // The run has ids 1..3: a whole number past them is 400 as well.
        const whole = /^\d{1,15}$/.test(id.trim());
        await checkAnswer(
          response,
          whole && Number(id.trim()) <= 3
            ? { status: [200, 204] }
            : { status: 400, detail: /Last-Event-ID/ },
          `Last-Event-ID ${id.slice(0, 60)}`,
        );
      }),
      runsFor(200, 0.2),
    );
    assert.ok(app.runs.list().length >= 1);
  });
  await withServer(async ({ base, finishedRunId }) => {
    await fuzz(
      "Authorization values with a token configured",
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, "")),
          fc.constantFrom(
            `Bearer ${TOKEN}`,
            `bearer   ${TOKEN}`,
            `Bearer ${TOKEN}x`,
            `Bearer ${TOKEN.slice(1)}`,
            "Bearer",
            "Basic czNjcmV0",
            `Bearer ${TOKEN}\t`,
          ),
        ),
        fc.constantFrom("/tools", "/runs", `/runs/${finishedRunId}`, "/health"),
        async (authorization, path) => {
          const response = await fetch(`${base}${path}`, {
            headers: { Authorization: authorization },
          });
          const ok = path === "/health" ||
            new RegExp(`^Bearer\\s+${TOKEN}$`, "i").test(authorization.trim());
          await checkAnswer(
            response,
            ok ? { status: 200 } : { status: 401, detail: /token/ },
            `Authorization ${authorization}`,
          );
        },
      ),
      runsFor(150, 0.1),
    );
  }, { token: TOKEN });
});

/** Sends raw bytes on a new connection, half-closes, and reads the answer to its end. */
async function rawExchange(base: string, request: Uint8Array): Promise<string> {
  const { hostname, port } = new URL(base);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const writer = conn.writable.getWriter();
  try {
    await writer.write(request);
    await conn.closeWrite();
  } catch {
    // The server may close first (e.g. on a bad request line): read what it said.
  } finally {
    writer.releaseLock();
  }
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of conn.readable) chunks.push(chunk);
  } catch {
    // reset by the server
  }
  return new TextDecoder().decode(concat(chunks));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Every answer on a raw connection: HTTP status lines, never a 5xx; problems when the app answered. */
function checkRaw(text: string, label: string): number[] {
  const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
  for (const status of statuses) assert.ok(status < 500, `${label}: ${text.slice(0, 300)}`);
  assert.doesNotMatch(text, /\bat \S+ \(|\.ts:\d+:\d+|file:\/\//, `${label}: no stack`);
  if (/content-type: application\/problem\+json/i.test(text)) {
    assert.match(text, /"status":4\d\d/, label);
  }
  return statuses;
}

Deno.test("fuzz HTTP: malformed HTTP on the wire never gets a 5xx or kills the server", async () => {
  await withServer(async ({ base }) => {
    const dag = '{"tasks":[{"id":"a","tool":"mock:echo"}]}';
    const line = (s: string) => encoder.encode(s);
    await fuzz(
      "random bytes as a whole request",
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          fc.string({ unit: "binary-ascii", maxLength: 300 }).map((s) => line(s)),
          fc.string({ maxLength: 200 }).map((s) => line(`POST /execute HTTP/1.1\r\n${s}\r\n\r\n`)),
        ),
        async (bytes) => void checkRaw(await rawExchange(base, bytes), `${bytes.byteLength} bytes`),
      ),
      runsFor(150, 0.1),
    );
    const headerSets = fc.constantFrom(
      // Body length lies and conflicts.
      `Content-Type: application/json\r\nContent-Length: 9999\r\n\r\n${dag}`,
      `Content-Type: application/json\r\nContent-Length: 3\r\n\r\n${dag}`,
      `Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n${dag}`,
      `Content-Type: application/json\r\nContent-Length: -1\r\n\r\n${dag}`,
      `Content-Type: application/json\r\nContent-Length: abc\r\n\r\n${dag}`,
      `Content-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n${dag}`,
      `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${dag}\r\n0\r\n\r\n`,
      `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx\r\n0\r\n\r\n`,
      `Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\n{"tas\r\n0\r\n\r\n`,
      `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\n{"ta\r\n0\r\n\r\n`,
      `Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      // Broken header lines.
      `Content-Type application/json\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `Content-Type: application/json\r\n folded: continuation\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `Bad Name: x\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `X: a\x00b\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `X: a\rb\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `Content-Type: application/json\nContent-Length: ${dag.length}\n\n${dag}`,
      `X-Big: ${"a".repeat(100_000)}\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `${Array.from({ length: 300 }, (_, i) => `X-H${i}: v`).join("\r\n")}\r\n\r\n`,
      `Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `Content-Type: \xff\xfe\r\nContent-Length: ${dag.length}\r\n\r\n${dag}`,
      `Last-Event-ID: \xff\r\n\r\n`,
    );
    const requestLines = fc.constantFrom(
      "POST /execute HTTP/1.1",
      "POST /runs HTTP/1.1",
      "GET /runs/x/events HTTP/1.1",
      "POST /execute HTTP/1.0",
      "POST /execute HTTP/2.0",
      "POST /execute HTTP/9.9",
      "POST /execute FOO/1.1",
      "POST  /execute  HTTP/1.1",
      "POST http://127.0.0.1/execute HTTP/1.1",
      "POST * HTTP/1.1",
      "POST execute HTTP/1.1",
      "POST /%ZZ HTTP/1.1",
      "POST /exe cute HTTP/1.1",
      "CONNECT 127.0.0.1:1 HTTP/1.1",
      "TRACE / HTTP/1.1",
      "GET /health?" + "x".repeat(20_000) + " HTTP/1.1",
      "P\x00ST /execute HTTP/1.1",
      "GET",
      "",
    );
    await fuzz(
      "malformed request lines, headers and framing",
      fc.asyncProperty(requestLines, headerSets, fc.boolean(), async (requestLine, rest, host) => {
        const head = host ? `${requestLine}\r\nHost: 127.0.0.1\r\n` : `${requestLine}\r\n`;
        const bytes = Uint8Array.from(head + rest, (c) => c.charCodeAt(0) & 0xff);
        checkRaw(
          await rawExchange(base, bytes),
          JSON.stringify(requestLine + " | " + rest.slice(0, 80)),
        );
      }),
      runsFor(200, 0.2),
    );
    // A request the app does see, sent raw: no Content-Type (fetch always adds one) → 415.
    const text = await rawExchange(
      base,
      line(
        `POST /execute HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${dag.length}\r\nConnection: close\r\n\r\n${dag}`,
      ),
    );
    assert.deepEqual(checkRaw(text, "no Content-Type"), [415]);
    assert.match(text, /application\/problem\+json/i);
    count("raw request without Content-Type", 1);
  });
});

Deno.test("fuzz summary (HTTP API)", () => printSummary("HTTP API"));
