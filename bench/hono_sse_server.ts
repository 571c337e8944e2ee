/**
 * The Hono peer of the streaming benchmark, in its own process: `POST /`
 * with a DAG as JSON body runs it with the library's `StreamingExecutor`
 * and streams its events with Hono's `streamSSE`, one
 * `stream.writeSSE({ id, event, data })` per event, as a Hono user would
 * write it. Every tool is an echo (returns its arguments), like the
 * bundled server's `mock:echo`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 bench/hono_sse_server.ts --port 0 --max-tasks 20000
 * ```
 *
 * It prints `Listening on http://127.0.0.1:PORT/` once ready and exits on
 * SIGTERM or SIGINT.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { type DAGStructure, type SSEEvent, StreamingExecutor } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "max-tasks": { type: "string", default: "20000" },
  },
});

const echo = (_tool: string, args: Record<string, unknown>): Promise<unknown> =>
  Promise.resolve(args);
const config = { maxTasks: Number(values["max-tasks"]) };

const app = new Hono();
app.post("/", async (c) => {
  const dag = await c.req.json<DAGStructure>();
  return streamSSE(c, async (stream) => {
    let seq = 0;
    const sink = new WritableStream<SSEEvent>({
      write: (event) =>
        stream.writeSSE({ id: String(++seq), event: event.type, data: JSON.stringify(event.data) }),
    });
    await new StreamingExecutor(echo, config).executeWithStreaming(dag, sink);
  });
});

const server = Deno.serve({
  hostname: values.host,
  port: Number(values.port),
  onListen({ hostname, port }) {
    console.log(`Listening on http://${hostname}:${port}/`);
  },
}, app.fetch);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    server.shutdown().then(() => Deno.exit(0));
  });
}
await server.finished;
