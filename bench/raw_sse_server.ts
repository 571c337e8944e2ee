/**
 * The raw ceiling of the streaming benchmark, in its own process: no
 * executor and no encoding at request time. At startup it reads an SSE
 * body from stdin (the benchmark sends the very bytes the dagstream server
 * streamed), splits it into frames (blocks ended by an empty line) and
 * joins them `--frames-per-chunk` at a time (64 by default). Every request
 * has its body read and discarded, then gets those chunks, one per pull of
 * a plain `ReadableStream`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 bench/raw_sse_server.ts --port 0 < body.sse
 * ```
 *
 * It prints `Listening on http://127.0.0.1:PORT/ (N frames, M chunks)` once
 * ready and exits on SIGTERM or SIGINT.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "frames-per-chunk": { type: "string", default: "64" },
  },
});
const perChunk = Number(values["frames-per-chunk"]);
if (!Number.isInteger(perChunk) || perChunk < 1) {
  throw new RangeError("--frames-per-chunk must be a whole number ≥ 1");
}

/** Offsets just past each "\n\n" of `body`: the ends of its frames. */
function frameEnds(body: Uint8Array): number[] {
  const ends: number[] = [];
  let i = body.indexOf(10);
  while (i >= 0 && i + 1 < body.length) {
    if (body[i + 1] === 10) {
      ends.push(i + 2);
      i = body.indexOf(10, i + 2);
    } else {
      i = body.indexOf(10, i + 1);
    }
  }
  return ends;
}

const body = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
const ends = frameEnds(body);
if (ends.length === 0 || ends[ends.length - 1] !== body.length) {
  throw new Error(`stdin holds no whole SSE frames (${body.length} bytes)`);
}
const chunks: Uint8Array[] = [];
let start = 0;
for (let k = perChunk - 1; k < ends.length + perChunk - 1; k += perChunk) {
  const end = ends[Math.min(k, ends.length - 1)];
  chunks.push(body.slice(start, end));
  start = end;
}

const server = Deno.serve({
  hostname: values.host,
  port: Number(values.port),
  onListen({ hostname, port }) {
    console.log(
      `Listening on http://${hostname}:${port}/ (${ends.length} frames, ${chunks.length} chunks)`,
    );
  },
}, async (request) => {
  if (request.body !== null) await request.arrayBuffer();
  let next = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      // A copy per request: the runtime may take ownership of what it is given.
      if (next < chunks.length) controller.enqueue(chunks[next++].slice());
      else controller.close();
    },
  });
  return new Response(stream, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" },
  });
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    server.shutdown().then(() => Deno.exit(0));
  });
}
await server.finished;
