/**
 * Fuzzes the defences against hostile web pages (see src/server/cross-site.ts)
 * with seeded random `Host` and `Origin` headers and the body types browsers
 * send cross-origin without a preflight. Each input carries its own verdict,
 * built together with it (a name made from an allowed one plus a suffix is
 * foreign), so the oracle is not the code under test. The property: only an
 * allowed Host with an allowed (or absent) Origin and a JSON body starts a
 * run; everything else gets the right 403 or 415 and starts nothing.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { serveApp } from "../_in_process_app.ts";
import { rawRequest } from "../integration/_server.ts";
import { fuzz, printSummary, runsFor } from "./_fuzz.ts";

const ALLOWED_HOST = "dag.internal";
const CORS = "https://app.example";
const TOKEN = "fuzz-token";

/** A header value and whether the server must accept it. */
interface Labelled {
  value: string | undefined;
  allowed: boolean;
}

const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const withPort = (name: string, p: number | undefined) => p === undefined ? name : `${name}:${p}`;
const randomCase = (name: string) =>
  fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length })
    .map((flags) => [...name].map((c, i) => flags[i] ? c.toUpperCase() : c).join(""));

/** Host values: loopback names and the allowed one (any case, any port) vs look-alikes. */
const hosts: fc.Arbitrary<Labelled> = fc.oneof(
  fc.tuple(fc.constantFrom("localhost", "127.0.0.1", "[::1]", ALLOWED_HOST), port)
    .chain(([name, p]) => randomCase(name).map((n) => ({ value: withPort(n, p), allowed: true }))),
  fc.tuple(
    fc.constantFrom("localhost", "127.0.0.1", ALLOWED_HOST),
    fc.constantFrom(".evil.example", ".nip.io", "x", "-", "_", ".", ".localhost"),
    port,
  ).map(([name, suffix, p]) => ({ value: withPort(name + suffix, p), allowed: false })),
  fc.tuple(fc.constantFrom("evil.", "a.", "x"), fc.constantFrom("localhost", ALLOWED_HOST), port)
    .map(([prefix, name, p]) => ({ value: withPort(prefix + name, p), allowed: false })),
  fc.tuple(fc.domain(), port).filter(([d]) => d !== ALLOWED_HOST && d !== "localhost")
    .map(([d, p]) => ({ value: withPort(d, p), allowed: false })),
  fc.constantFrom(
    { value: "127.0.0.2", allowed: false },
    { value: "0.0.0.0", allowed: false },
    { value: "[::2]", allowed: false },
    { value: "2130706433", allowed: false },
    { value: "0x7f.0.0.1", allowed: false },
  ),
);

/** Origin values: none, the allowed CORS origin vs near misses, `null`, random origins. */
const origins: fc.Arbitrary<Labelled> = fc.oneof(
  fc.constant({ value: undefined, allowed: true }),
  fc.constant({ value: CORS, allowed: true }),
  fc.constantFrom(
    { value: "null", allowed: false },
    { value: "NULL", allowed: false },
    { value: `${CORS}:444`, allowed: false },
    { value: "http://app.example", allowed: false },
    { value: `${CORS}.evil.example`, allowed: false },
    { value: "https://evil.app.example", allowed: false },
    { value: "file://", allowed: false },
    { value: "chrome-extension://abcdef", allowed: false },
  ),
  fc.webUrl().map((url) => new URL(url).origin)
    .filter((origin) => origin !== CORS)
    .map((origin) => ({ value: origin, allowed: false })),
);

/** Body types: JSON ones vs the three a browser sends cross-origin without a preflight. */
const bodyTypes: fc.Arbitrary<Labelled> = fc.oneof(
  fc.constantFrom("application/json", "application/vnd.dag+json", "application/json; charset=utf-8")
    .chain((t) => randomCase(t).map((value) => ({ value, allowed: true }))),
  fc.constantFrom(
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "text/plain; charset=utf-8",
  ).chain((t) => randomCase(t).map((value) => ({ value, allowed: false }))),
);

Deno.test("fuzz cross-site: only allowed Host, allowed Origin and a JSON body start a run", async () => {
  await using served = serveApp({
    token: TOKEN,
    corsOrigin: CORS,
    allowedHosts: [ALLOWED_HOST],
  });
  const { app, base } = served;
  const dag = JSON.stringify({ tasks: [{ id: "a", tool: "mock:echo" }] });
  const body = new TextEncoder().encode(dag);
  const outcomes = { started: 0, unsupportedType: 0, forbiddenOrigin: 0, forbiddenHost: 0 };
  await fuzz(
    "Host × Origin × body type on POST /runs",
    fc.asyncProperty(hosts, origins, bodyTypes, async (host, origin, type) => {
      const headers = Object.fromEntries(
        Object.entries({
          Host: host.value,
          Origin: origin.value,
          "Content-Type": type.value,
          Authorization: `Bearer ${TOKEN}`,
        }).filter((entry): entry is [string, string] => entry[1] !== undefined),
      );
      const answer = await rawRequest(`${base}/runs`, "POST", headers, body);
      const label = `Host ${host.value} Origin ${origin.value} type ${type.value}`;
      if (!host.allowed) {
        // Every refused Host generated here is a valid authority, so Deno
        // hands it to the app (none of them gets Deno's own 400): the app
        // must answer 403 forbidden-host.
        assert.equal(answer.status, 403, `${label}: ${answer.status} ${answer.body}`);
        assert.match(answer.body, /forbidden-host/, label);
        outcomes.forbiddenHost++;
      } else if (!origin.allowed) {
        assert.equal(answer.status, 403, label);
        assert.match(answer.body, /forbidden-origin/, label);
        outcomes.forbiddenOrigin++;
      } else if (!type.allowed) {
        assert.equal(answer.status, 415, label);
        outcomes.unsupportedType++;
      } else {
        assert.equal(answer.status, 202, `${label}: ${answer.body}`);
        outcomes.started++;
      }
      assert.equal(app.runs.list().length, Math.min(outcomes.started, 1000), label);
    }),
    runsFor(400, 0.3),
  );
  assert.ok(outcomes.started > 0, `some inputs started a run: ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.unsupportedType > 0, `some inputs got 415: ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.forbiddenOrigin > 0, `some got forbidden-origin: ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.forbiddenHost > 0, `some got forbidden-host: ${JSON.stringify(outcomes)}`);
  assert.equal(served.internalErrors.length, 0);
});

Deno.test("fuzz cross-site: a foreign Origin reads nothing, on any route and method", async () => {
  await using served = serveApp({ corsOrigin: CORS });
  const { app, base } = served;
  const foreign = origins.filter((o) => !o.allowed);
  const routes = fc.constantFrom(
    "/runs",
    "/runs/x",
    "/runs/x/events",
    "/tools",
    "/health",
    "/execute",
    "/nope",
  );
  const methods = fc.constantFrom("GET", "HEAD", "POST", "DELETE", "OPTIONS", "PUT");
  await fuzz(
    "foreign Origin × route × method",
    fc.asyncProperty(foreign, routes, methods, async (origin, path, method) => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          Origin: origin.value!,
          "Content-Type": "text/plain",
          "Access-Control-Request-Method": "POST",
        },
        body: method === "POST" || method === "PUT" ? "{}" : undefined,
      });
      const body = method === "HEAD" ? "" : await response.text();
      assert.equal(response.status, 403, `${origin.value} ${method} ${path}`);
      assert.equal(response.headers.get("access-control-allow-origin"), null);
      if (method !== "HEAD") assert.match(body, /forbidden-origin/);
      else await response.body?.cancel();
    }),
    runsFor(300, 0.3),
  );
  assert.equal(app.runs.list().length, 0);
  assert.equal(served.internalErrors.length, 0);
});

Deno.test("fuzz summary (cross-site)", () => printSummary("cross-site"));
