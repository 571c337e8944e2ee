/**
 * The pure parts of `http:request`: allowlist entries and how URLs match
 * them, which addresses count as not public, the input schema, the
 * `--allow-http` flag; and the refusals decided before any connection
 * (SSRF through a name, with a resolver given by the test). One call goes
 * out, to a server of the test on 127.0.0.1, to show that a name is
 * connected to at the address that was checked.
 */

import assert from "node:assert/strict";
import {
  classifyAddress,
  HttpAllowList,
  isHttpAllowEntry,
  parseHttpAllowEntry,
} from "../../../src/tools/http-allowlist.ts";
import {
  type HostResolver,
  HTTP_REQUEST_INPUT_SCHEMA,
  httpRequestTool,
} from "../../../src/tools/http-request.ts";
import { createToolRegistry } from "../../../src/tools/registry.ts";
import { argumentsError } from "../../../src/tools/schema.ts";
import { MAX_TIMER_MS } from "../../../src/dag/defaults.ts";
import { parseCommandLine, UsageError } from "../../../src/server/flags.ts";
import { resolveServerConfig } from "../../../src/server/config.ts";
import { unknownToolMessages } from "../../../src/server/unknown-tool.ts";

const ctx = () => ({ signal: new AbortController().signal, taskId: "t" });

/** A resolver answering from a table, and the names it was asked for. */
function fakeResolver(table: Record<string, string[]>): HostResolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = (name: string) => {
    asked.push(name);
    const addresses = table[name];
    return addresses === undefined
      ? Promise.reject(new Deno.errors.NotFound(`no records for ${name}`))
      : Promise.resolve(addresses);
  };
  return Object.assign(resolve, { asked });
}

Deno.test("allowlist entries: HOST or HOST:PORT, in the URL parser's form", () => {
  const accepted: [string, { host: string; port?: number }][] = [
    ["example.com", { host: "example.com" }],
    ["api.example.com:8443", { host: "api.example.com", port: 8443 }],
    ["127.0.0.1:9000", { host: "127.0.0.1", port: 9000 }],
    ["[::1]:8080", { host: "[::1]", port: 8080 }],
    ["[::1]", { host: "[::1]" }],
    ["localhost", { host: "localhost" }],
    ["API.Example.COM", { host: "api.example.com" }],
    [" example.com:1 ", { host: "example.com", port: 1 }],
    ["example.com:65535", { host: "example.com", port: 65535 }],
    ["[0:0:0:0:0:0:0:1]:80", { host: "[::1]", port: 80 }],
    ["127.1", { host: "127.0.0.1" }], // what a URL means by it
    ["internal_host.lan.", { host: "internal_host.lan." }],
  ];
  for (const [value, entry] of accepted) {
    assert.deepEqual(parseHttpAllowEntry(value), entry, value);
    assert.equal(isHttpAllowEntry(value), true, value);
  }
  const refused = [
    "",
    "http://example.com",
    "example.com/api",
    "*.example.com",
    "*",
    "example.com:0",
    "example.com:65536",
    "example.com:",
    "example.com:80:90",
    "::1",
    "[::1",
    "[::g]",
    "[1:2:3:4:5:6:7:8:9]",
    "user@example.com",
    "exa mple.com",
    ".example.com",
    "example..com",
  ];
  for (const value of refused) {
    assert.throws(() => parseHttpAllowEntry(value), RangeError, value);
    assert.equal(isHttpAllowEntry(value), false, value);
  }
  assert.throws(
    () => parseHttpAllowEntry("https://api.example.com"),
    /"https:\/\/api.example.com" is not HOST or HOST:PORT/,
  );
  assert.throws(() => parseHttpAllowEntry("a.example:70000"), /the port must be from 1 to 65535/);
});

Deno.test("allowlist matching: the host as the URL writes it, every port or the one listed", () => {
  const list = new HttpAllowList([
    "example.com",
    "api.example.com:8443",
    "127.0.0.1:9000",
    "[::1]:8080",
    "secure.example:443",
  ]);
  const cases: [string, boolean][] = [
    ["http://example.com/", true],
    ["https://example.com:1234/", true], // no port in the entry: every port
    ["http://EXAMPLE.com/", true], // the URL parser writes hosts in lower case
    ["http://www.example.com/", false], // no wildcard: a subdomain is another host
    ["https://api.example.com:8443/v1", true],
    ["https://api.example.com/v1", false], // 443 is not 8443
    ["http://127.0.0.1:9000/", true],
    ["http://127.0.0.1:9001/", false],
    ["http://127.1:9000/", true], // the same address, as the URL parser reads it
    ["http://localhost:9000/", false], // a name is not the address it resolves to
    ["http://[::1]:8080/", true],
    ["http://[0::1]:8080/", true],
    ["http://[::1]:9000/", false],
    ["https://secure.example/", true], // https's default port is 443
    ["http://secure.example/", false], // http's is 80
    ["http://example.com./", false], // written with the final dot: another name
  ];
  for (const [url, allowed] of cases) assert.equal(list.allowsUrl(new URL(url)), allowed, url);
});

Deno.test("address ranges: every non-public range, IPv4 carried in IPv6 included", () => {
  const cases: [string, string | undefined][] = [
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["10.0.0.5", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["169.254.169.254", "link-local"], // cloud metadata
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["100.64.0.1", "shared (carrier-grade NAT)"],
    ["100.127.255.255", "shared (carrier-grade NAT)"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.10", "reserved"],
    ["198.18.0.1", "reserved"],
    ["2001:db8::1", "reserved"],
    // IPv4 in IPv6: judged as the IPv4 address.
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.5", "private"],
    ["[::ffff:169.254.169.254]", "link-local"],
    ["64:ff9b::a00:5", "private"], // NAT64 of 10.0.0.5
    ["2002:c0a8:101::1", "private"], // 6to4 of 192.168.1.1
    ["::127.0.0.1", "loopback"], // IPv4-compatible (deprecated)
    ["::ffff:8.8.8.8", undefined],
    // Public.
    ["8.8.8.8", undefined],
    ["1.1.1.1", undefined],
    ["93.184.215.14", undefined],
    ["100.63.255.255", undefined],
    ["100.128.0.0", undefined],
    ["172.15.255.255", undefined],
    ["172.32.0.0", undefined],
    ["169.253.255.255", undefined],
    ["192.169.0.1", undefined],
    ["223.255.255.255", undefined],
    ["2001:4860:4860::8888", undefined],
    ["2606:4700:4700::1111", undefined],
    // Not an address: never public.
    ["example.com", "reserved"],
    ["1.2.3", "reserved"],
    ["1.2.3.256", "reserved"],
    ["1::2::3", "reserved"],
    ["1:2:3:4:5:6:7:8:9", "reserved"],
  ];
  for (const [address, range] of cases) assert.equal(classifyAddress(address), range, address);
});

Deno.test("input schema: what it accepts and refuses", () => {
  const check = (args: Record<string, unknown>) =>
    argumentsError("http:request", HTTP_REQUEST_INPUT_SCHEMA, args);
  const accepted: Record<string, unknown>[] = [
    { url: "http://example.com/" },
    { url: "HTTPS://example.com/" },
    {
      method: "POST",
      url: "https://example.com/x?a=1",
      headers: { authorization: "Bearer x", "X-Trace": "1" },
      query: { s: "a b", n: 2, b: false },
      body: { any: ["json", 1, null] },
      timeoutMs: 1,
      okStatuses: [200, 404],
    },
    ...["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"].map((method) => ({
      method,
      url: "http://e.example/",
    })),
    { method: "POST", url: "http://e.example/", body: null },
    { method: "POST", url: "http://e.example/", body: "text" },
    { url: "http://e.example/", timeoutMs: MAX_TIMER_MS, okStatuses: [100, 599] },
  ];
  for (const args of accepted) assert.equal(check(args), undefined, JSON.stringify(args));
  const refused: [Record<string, unknown>, RegExp][] = [
    [{}, /arguments\.url is required/],
    [{ url: 5 }, /arguments\.url must be string/],
    [{ url: "ftp://example.com/" }, /arguments\.url must match pattern/],
    [{ url: "file:///etc/passwd" }, /arguments\.url must match pattern/],
    [{ url: "http://e.example/", method: "get" }, /arguments\.method must be one of "GET", "HEAD"/],
    [{ url: "http://e.example/", method: "TRACE" }, /arguments\.method/],
    [{ url: "http://e.example/", headers: { a: 1 } }, /arguments\.headers\.a must be string/],
    [{ url: "http://e.example/", headers: { "bad name": "x" } }, /arguments\.headers/],
    [{ url: "http://e.example/", headers: [] }, /arguments\.headers must be object/],
    [{ url: "http://e.example/", query: { a: {} } }, /arguments\.query\.a must be/],
    [{ url: "http://e.example/", query: { a: null } }, /arguments\.query\.a must be/],
    [{ url: "http://e.example/", timeoutMs: 0 }, /arguments\.timeoutMs must be >= 1/],
    [{ url: "http://e.example/", timeoutMs: 1.5 }, /arguments\.timeoutMs must be integer/],
    [{ url: "http://e.example/", timeoutMs: MAX_TIMER_MS + 1 }, /arguments\.timeoutMs must be <=/],
    [{ url: "http://e.example/", okStatuses: [] }, /arguments\.okStatuses must NOT have fewer/],
    [{ url: "http://e.example/", okStatuses: [99] }, /arguments\.okStatuses\[0\] must be >= 100/],
    [{ url: "http://e.example/", okStatuses: [600] }, /arguments\.okStatuses\[0\] must be <= 599/],
    [{ url: "http://e.example/", okStatuses: ["200"] }, /arguments\.okStatuses\[0\] must be/],
    [{ url: "http://e.example/", follow: true }, /arguments\.follow is not allowed/],
  ];
  for (const [args, message] of refused) {
    assert.match(check(args) ?? "(accepted)", message, JSON.stringify(args));
  }
});

Deno.test("refused before any connection: scheme, credentials, headers, a body on GET", async () => {
  const resolve = fakeResolver({});
  const tool = httpRequestTool({ allow: ["example.com"], resolve });
  const refusals: [Record<string, unknown>, RegExp][] = [
    [
      { url: "file:///etc/passwd" },
      /^Error: http:request: url must be http:\/\/ or https:\/\/, not file:\/\/$/,
    ],
    [{ url: "not a url" }, /url is not a valid URL/],
    [
      { url: "http://user:pw@example.com/" },
      /url must not carry a user name or password \(send an authorization header\)/,
    ],
    [{ url: "http://example.com/", method: "get" }, /method must be one of GET, HEAD/],
    [
      { url: "http://example.com/", headers: { host: "x" } },
      /the host header is set by the platform/,
    ],
    [
      { url: "http://example.com/", headers: { "Content-Length": "1" } },
      /the content-length header is set by the platform/,
    ],
    [{ url: "http://example.com/", body: "x" }, /a GET request has no body/],
    [{ url: "http://example.com/", method: "HEAD", body: {} }, /a HEAD request has no body/],
    [{ url: "http://example.com/", timeoutMs: 0 }, /timeoutMs must be a whole number/],
    [{ url: "http://example.com/", okStatuses: [] }, /okStatuses must be a list/],
  ];
  for (const [args, message] of refusals) {
    await assert.rejects(async () => await tool.run(args, ctx()), message, JSON.stringify(args));
  }
  // A header value is never shown: it may be a secret.
  await assert.rejects(
    async () =>
      await tool.run({
        url: "http://example.com/",
        headers: { authorization: "Bearer s3cret\r\nX-Injected: 1" },
      }, ctx()),
    (error: Error) => {
      assert.match(error.message, /header authorization has a character a header cannot carry/);
      assert.doesNotMatch(error.message, /s3cret/);
      return true;
    },
  );
  assert.deepEqual(resolve.asked, [], "nothing was resolved");
});

Deno.test("a host not listed is refused before it is resolved", async () => {
  const resolve = fakeResolver({ "other.example": ["93.184.215.14"] });
  const tool = httpRequestTool({ allow: ["example.com:443", "127.0.0.1:9000"], resolve });
  const cases: [string, string][] = [
    ["http://other.example/", "other.example:80"],
    ["http://example.com/", "example.com:80"],
    ["http://localhost:9000/", "localhost:9000"],
    ["http://127.0.0.1:9001/", "127.0.0.1:9001"],
    ["http://[::1]:9000/", "[::1]:9000"],
  ];
  for (const [url, host] of cases) {
    await assert.rejects(
      async () => await tool.run({ url }, ctx()),
      (error: Error) => {
        assert.equal(
          error.message,
          `http:request: host "${host}" is not allowed (start the server with --allow-http ${host})`,
        );
        return true;
      },
      url,
    );
  }
  assert.deepEqual(resolve.asked, []);
});

Deno.test("timeoutMs and the task's signal reach the name lookup", async () => {
  const lookups: AbortSignal[] = [];
  const hanging: HostResolver = (_name, signal) => {
    lookups.push(signal);
    return new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  };
  const tool = httpRequestTool({ allow: ["slow.example"], resolve: hanging });
  await assert.rejects(
    async () => await tool.run({ url: "http://slow.example/x?k=v", timeoutMs: 5 }, ctx()),
    (error: Error) => {
      assert.equal(error.message, "http:request: GET http://slow.example/x?… timed out after 5 ms");
      return true;
    },
  );
  assert.equal(lookups[0].aborted, true, "the lookup was told to stop");

  const controller = new AbortController();
  const running = tool.run({ url: "http://slow.example/" }, {
    signal: controller.signal,
    taskId: "t",
  });
  const reason = new Error("cancelled by the test");
  controller.abort(reason);
  await assert.rejects(async () => await running, (error) => error === reason);
  assert.equal(lookups[1].aborted, true);
});

Deno.test("SSRF: a name resolving to an address that is not public is refused", async () => {
  const resolve = fakeResolver({
    "internal.example": ["10.0.0.5"],
    "mixed.example": ["93.184.215.14", "fd00::7"],
    "metadata.example": ["::ffff:169.254.169.254"],
    "loop.example": ["127.0.0.1"],
    "localhost": ["10.0.0.9"],
  });
  const tool = httpRequestTool({
    allow: [
      "internal.example",
      "mixed.example:8080",
      "metadata.example",
      "loop.example",
      "localhost",
    ],
    resolve,
  });
  const cases: [string, string][] = [
    [
      "http://internal.example/",
      '"internal.example" resolves to a private address 10.0.0.5 (list it with --allow-http 10.0.0.5:80 to allow)',
    ],
    [
      "http://mixed.example:8080/",
      '"mixed.example" resolves to a private address fd00::7 (list it with --allow-http [fd00::7]:8080 to allow)',
    ],
    [
      "https://metadata.example/",
      '"metadata.example" resolves to a link-local address ::ffff:169.254.169.254',
    ],
    ["http://loop.example/", '"loop.example" resolves to a loopback address 127.0.0.1'],
    // localhost may reach loopback addresses, and only those.
    ["http://localhost/", '"localhost" resolves to a private address 10.0.0.9'],
  ];
  for (const [url, message] of cases) {
    await assert.rejects(
      async () => await tool.run({ url }, ctx()),
      (error: Error) => error.message.startsWith(`http:request: ${message}`),
      url,
    );
  }
  await assert.rejects(
    async () => await tool.run({ url: "http://nowhere.example/" }, ctx()),
    /host "nowhere.example:80" is not allowed/,
  );
  const unresolved = httpRequestTool({ allow: ["nowhere.example"], resolve });
  await assert.rejects(
    async () => await unresolved.run({ url: "http://nowhere.example/" }, ctx()),
    /^Error: http:request: cannot resolve "nowhere.example": no records for nowhere.example$/,
  );
});

Deno.test("a name is called at the address that was checked, which must be listed when not public", async () => {
  const seen: { host: string | null; path: string }[] = [];
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    seen.push({ host: request.headers.get("host"), path: url.pathname + url.search });
    return Response.json({ ok: true });
  });
  try {
    const port = api.addr.port;
    // `api.test` exists in no DNS; the test's resolver gives 127.0.0.1, and this
    // process may only connect to 127.0.0.1 (--allow-net=127.0.0.1).
    const resolve = fakeResolver({ "api.test": ["127.0.0.1", "::1"] });
    const refused = httpRequestTool({ allow: [`api.test:${port}`], resolve });
    await assert.rejects(
      async () => await refused.run({ url: `http://api.test:${port}/x` }, ctx()),
      new RegExp(
        `"api.test" resolves to a loopback address 127.0.0.1 \\(list it with --allow-http 127.0.0.1:${port} to allow\\)`,
      ),
    );
    assert.deepEqual(seen, [], "the refused call sent nothing");

    const allowed = httpRequestTool({
      allow: [`api.test:${port}`, `127.0.0.1:${port}`, "[::1]"],
      resolve,
    });
    const output = await allowed.run({ url: `http://api.test:${port}/x?a=1` }, ctx());
    assert.deepEqual((output as { body: unknown }).body, { ok: true });
    assert.deepEqual(seen, [{ host: `api.test:${port}`, path: "/x?a=1" }]);
    assert.deepEqual(resolve.asked, ["api.test", "api.test"]);
  } finally {
    await api.shutdown();
  }
});

Deno.test("a name with several addresses is called at the next checked one when a connection fails", async () => {
  const seen: string[] = [];
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    seen.push(request.headers.get("host") ?? "");
    return Response.json({ ok: true });
  });
  try {
    const port = api.addr.port;
    // The first address cannot be reached from here (this process may connect to 127.0.0.1 only).
    const resolve = fakeResolver({
      "localhost": ["127.0.0.2", "127.0.0.1"],
      "localhost.": ["127.0.0.2", "127.0.0.1"],
    });
    // A trailing dot names the same host, and still may reach loopback.
    for (const name of ["localhost", "localhost."]) {
      const tool = httpRequestTool({ allow: [`${name}:${port}`], resolve });
      const output = await tool.run({ url: `http://${name}:${port}/` }, ctx());
      assert.deepEqual((output as { body: unknown }).body, { ok: true }, name);
    }
    assert.deepEqual(seen, [`localhost:${port}`, `localhost.:${port}`]);
  } finally {
    await api.shutdown();
  }
});

Deno.test("the response's headers count against the size cap", async () => {
  const api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const headers = new Headers();
    for (let i = 0; i < 10; i++) headers.set(`x-filler-${i}`, "y".repeat(100));
    return new Response("small", { headers });
  });
  try {
    const tool = httpRequestTool({ allow: [`127.0.0.1:${api.addr.port}`], maxResponseBytes: 500 });
    await assert.rejects(
      async () => await tool.run({ url: `http://127.0.0.1:${api.addr.port}/` }, ctx()),
      /is over 500 bytes \(--max-http-response-bytes; headers count too\)$/,
    );
    const roomy = httpRequestTool({
      allow: [`127.0.0.1:${api.addr.port}`],
      maxResponseBytes: 5000,
    });
    const output = await roomy.run({ url: `http://127.0.0.1:${api.addr.port}/` }, ctx());
    assert.equal((output as { body: unknown }).body, "small");
  } finally {
    await api.shutdown();
  }
});

Deno.test("--allow-http: repeatable, or comma-separated in DAGSTREAM_ALLOW_HTTP; bad values are usage errors", () => {
  const noEnv = () => undefined;
  assert.equal(parseCommandLine([], noEnv).config.allowHttp, undefined);
  const flags = parseCommandLine(
    ["--allow-http", "API.example.com", "--allow-http", "127.0.0.1:9000"],
    noEnv,
  );
  assert.deepEqual(flags.config.allowHttp, ["api.example.com", "127.0.0.1:9000"]);
  const env = (name: string) =>
    ({
      DAGSTREAM_ALLOW_HTTP: "localhost:8080, [::1]:9000",
      DAGSTREAM_MAX_HTTP_RESPONSE_BYTES: "10",
    } as Record<
      string,
      string
    >)[name];
  const fromEnv = parseCommandLine([], env);
  assert.deepEqual(fromEnv.config.allowHttp, ["localhost:8080", "[::1]:9000"]);
  assert.equal(fromEnv.config.maxHttpResponseBytes, 10);
  assert.deepEqual(parseCommandLine(["--allow-http", "x.example"], env).config.allowHttp, [
    "x.example",
  ]);
  for (const bad of ["http://x.example", "*.example.com", "x.example:0", "::1"]) {
    assert.throws(
      () => parseCommandLine(["--allow-http", bad], noEnv),
      (error: Error) =>
        error instanceof UsageError &&
        error.message.startsWith(`--allow-http must be HOST or HOST:PORT`) &&
        error.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
  assert.throws(
    () => parseCommandLine(["--max-http-response-bytes", "0"], noEnv),
    /--max-http-response-bytes must be a whole number from 1/,
  );
});

Deno.test("the server has http:request only when a host is allowed; otherwise it says how", () => {
  const off = resolveServerConfig({});
  assert.equal(off.tools.has("http:request"), false);
  assert.deepEqual(off.allowHttp, []);
  assert.equal(off.maxHttpResponseBytes, 1048576);
  const explain = unknownToolMessages(off.tools);
  assert.equal(
    explain("http:request"),
    'unknown tool "http:request": the HTTP tool is off: start the server with ' +
      "--allow-http HOST[:PORT] for each host it may call (repeatable; see docs/OPERATIONS.md)",
  );
  assert.match(explain("http:get")!, /the HTTP tool is http:request, off: start the server/);

  const on = resolveServerConfig({ allowHttp: ["127.0.0.1:9000"], maxHttpResponseBytes: 10 });
  assert.equal(on.tools.has("http:request"), true);
  assert.ok(on.tools.has("mock:echo"), "the built-in tools stay");
  const listed = on.tools.list().find((t) => t.name === "http:request")!;
  assert.equal(listed.inputSchema, HTTP_REQUEST_INPUT_SCHEMA);
  assert.match(listed.description, /Allowed hosts: 127\.0\.0\.1:9000\./);
  assert.match(
    unknownToolMessages(on.tools)("http:get")!,
    /the http:\* tools are http:request/,
  );
  assert.throws(() => resolveServerConfig({ allowHttp: ["http://x"] }), RangeError);

  // Given its own tools, the server adds http:request to them.
  const own = createToolRegistry({
    "x:y": { description: "", inputSchema: { type: "object" }, run: () => 1 },
  });
  const mixed = resolveServerConfig({ tools: own, allowHttp: ["example.com"] });
  assert.deepEqual(mixed.tools.list().map((t) => t.name), ["http:request", "x:y"]);
});
