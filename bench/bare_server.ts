/**
 * The reference point of the server load benchmark: a bare `Deno.serve`
 * that reads the request body and answers a fixed JSON document, doing no
 * other work. `bench/server_load.ts` starts it next to the dagstream server.
 *
 * `GET /sse?ms=M&heartbeat=H` is the reference for held streams: a plain
 * `ReadableStream` body that sends the retry line and one event, a
 * `: keep-alive` comment every H ms, and after M ms four more events
 * (ids 2-5, the same event names as a dagstream run of two tasks), then
 * ends.
 *
 * ```sh
 * deno run --allow-net bench/bare_server.ts --port 0 [--json '{"ok":true}']
 * ```
 *
 * It prints `Listening on http://127.0.0.1:PORT/` once ready, like the
 * dagstream server, and exits on SIGTERM or SIGINT.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    json: { type: "string", default: '{"ok":true}' },
  },
});

const answer = values.json;
JSON.parse(answer); // refuse to start with a body that is not JSON

const server = Deno.serve({
  hostname: values.host,
  port: Number(values.port),
  onListen({ hostname, port }) {
    console.log(`Listening on http://${hostname}:${port}/`);
  },
}, async (request) => {
  if (request.method === "GET" && request.url.includes("/sse")) return heldStream(request.url);
  if (request.body !== null) await request.arrayBuffer();
  return new Response(answer, { headers: { "Content-Type": "application/json" } });
});

const encoder = new TextEncoder();
const frame = (id: number, event: string) =>
  encoder.encode(`id: ${id}\nevent: ${event}\ndata: {}\n\n`);

function heldStream(url: string): Response {
  const params = new URL(url).searchParams;
  const ms = Math.min(Number(params.get("ms") ?? 5000), 600_000);
  const heartbeat = Math.max(Number(params.get("heartbeat") ?? 1000), 10);
  let beat: ReturnType<typeof setInterval> | undefined;
  let end: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode("retry: 2000\n\n"));
      controller.enqueue(frame(1, "task_start"));
      beat = setInterval(() => controller.enqueue(encoder.encode(": keep-alive\n\n")), heartbeat);
      end = setTimeout(() => {
        clearInterval(beat);
        controller.enqueue(frame(2, "task_complete"));
        controller.enqueue(frame(3, "task_start"));
        controller.enqueue(frame(4, "task_complete"));
        controller.enqueue(frame(5, "execution_complete"));
        controller.close();
      }, ms);
    },
    cancel() {
      clearInterval(beat);
      clearTimeout(end);
    },
  });
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" },
  });
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    server.shutdown().then(() => Deno.exit(0));
  });
}
await server.finished;
