/**
 * Slow clients ("slowloris"), against the real server process on 127.0.0.1:
 * `--connections` (2,000) connections that never finish a request, kept open
 * `--hold` seconds (60), of the first `--kinds` (5) of these kinds in turn:
 * one that sends a request line and a header line and then nothing (headers
 * never end), one that sends nothing, one that sends half a request line,
 * one that sends headers announcing a 100-byte JSON body and then 10 bytes
 * of it, and one idle keep-alive connection after a complete `GET /health`.
 * Measured: the server's resident memory (`VmRSS` from /proc) and
 * descriptors before and with them open, whether normal requests are still
 * answered meanwhile (and how fast), and how many of each kind the server
 * closed or answered by itself during the hold (Deno's HTTP server has no
 * such timeout: a reverse proxy in front must provide it, see
 * docs/OPERATIONS.md).
 *
 * ```sh
 * ulimit -n 4096
 * deno run -A tests/stress/slow_headers.ts [--connections 2000] [--hold 60] [--kinds 5]
 * ```
 *
 * @module
 */

import { flags, memoryMiB, openFds, post, Report, requireOpenFiles, sleep, start } from "./_lib.ts";

const options = flags({ connections: 2000, hold: 60, kinds: 5 });
if (options.connections > 10_000 || options.hold > 600) {
  throw new Error("at most 10,000 connections and 600 s");
}
requireOpenFiles(options.connections + 200);

const report = new Report();
const server = await start(["--heartbeat-ms", "0"]);
const { hostname, port } = new URL(server.url);
const host = `Host: ${hostname}:${port}\r\n`;
const KINDS: Record<string, string> = {
  "headers never end": `GET /health HTTP/1.1\r\n${host}`,
  "nothing sent": "",
  "half a request line": "GET /hea",
  "body never ends": `POST /runs HTTP/1.1\r\n${host}Content-Type: application/json\r\n` +
    `Content-Length: 100\r\n\r\n{"tasks":`,
  "idle keep-alive": `GET /health HTTP/1.1\r\n${host}\r\n`,
};
const names = Object.keys(KINDS).slice(0, Math.max(1, options.kinds));

/** What the server did to one connection during the hold. */
interface Outcome {
  kind: string;
  answered: boolean;
  closed: boolean;
}

const conns: Deno.Conn[] = [];
let holding = true;
try {
  await (await post(server, "/execute", { tasks: [{ id: "a", tool: "mock:echo" }] })).text();
  await sleep(1000);
  const before = memoryMiB(server.pid);
  const fdsBefore = openFds(server.pid);
  const outcomes: Outcome[] = [];
  const watching: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < options.connections; i++) {
    const kind = names[i % names.length];
    const conn = await Deno.connect({ hostname, port: Number(port) });
    if (KINDS[kind] !== "") await conn.write(new TextEncoder().encode(KINDS[kind]));
    conns.push(conn);
    const outcome: Outcome = { kind, answered: false, closed: false };
    outcomes.push(outcome);
    // Reads until the server closes; what arrives for the idle keep-alive
    // connection is its one answer, for the others an answer nobody asked for.
    watching.push((async () => {
      const buffer = new Uint8Array(4096);
      try {
        while (true) {
          const n = await conn.read(buffer);
          if (n === null) break;
          if (holding && kind !== "idle keep-alive") outcome.answered = true;
        }
        if (holding) outcome.closed = true;
      } catch {
        // closed by this side at the end
      }
    })());
  }
  const openedSeconds = (performance.now() - t0) / 1000;
  await sleep(3000);
  const withThem = memoryMiB(server.pid);
  const fdsWith = openFds(server.pid);
  // Normal requests while they are open, five times over the hold.
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const health = await fetch(server.at("/health"));
    if (health.status !== 200) throw new Error(`GET /health: ${health.status}`);
    await health.body?.cancel();
    const run = await post(server, "/execute", { tasks: [{ id: "a", tool: "mock:echo" }] }, "*/*");
    if (run.status !== 200) throw new Error(`POST /execute: ${run.status}`);
    await run.body?.cancel();
    latencies.push(Math.round((performance.now() - t) * 10) / 10);
    await sleep((options.hold * 1000) / 5);
  }
  holding = false;
  const byKind = Object.fromEntries(names.map((kind) => {
    const of = outcomes.filter((o) => o.kind === kind);
    return [kind, {
      connections: of.length,
      closedByServer: of.filter((o) => o.closed).length,
      answered: of.filter((o) => o.answered).length,
    }];
  }));
  report.set(
    `${options.connections} connections that never finish a request, held ${options.hold} s`,
    {
      openedInS: Math.round(openedSeconds * 10) / 10,
      serverFds: { before: fdsBefore, with: fdsWith },
      rssBeforeMiB: before,
      rssWithThemMiB: withThem,
      rssEndOfHoldMiB: memoryMiB(server.pid),
      perConnectionKiB: Math.round((withThem - before) * 1024 / options.connections * 10) / 10,
      normalRequestsMs: latencies,
      byKind,
    },
  );
  for (const conn of conns.splice(0)) conn.close();
  await Promise.all(watching);
} finally {
  for (const conn of conns) conn.close();
  await server.stop();
}
report.print("SLOW CLIENTS");
