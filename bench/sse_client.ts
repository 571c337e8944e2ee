/**
 * The client process of the process-separated benchmarks: it requests SSE
 * streams and counts their events with the byte-level counter of
 * `sse_count.ts`, on its own process (so on its own core when there is one),
 * the same client for every server compared.
 *
 * By default it speaks HTTP/1.1 itself over a TCP connection
 * (`Deno.connect`, one connection per request, `Connection: close`) and
 * reads the socket 256 KiB at a time, so a read takes whatever has arrived
 * however the server cut it into chunks: a server that writes many small
 * chunks does not make the client slow (with `fetch`, every chunk the
 * server writes becomes a read of its own, tens of µs each). `--transport
 * fetch` uses `fetch` instead.
 *
 * Run as a script it speaks JSON lines: it prints `{"ready":true}`, then
 * reads commands on stdin and answers each on stdout:
 *
 * - `{"op":"body","key":K,"text":T}`: keep T as request body K; answers
 *   `{"op":"body","key":K}`.
 * - `{"op":"count","id":N,"url":U,"method":M,"headers":H,"body":K}`: one
 *   request, its body read to the end; answers `{"id":N,"result":R}`
 *   ({@linkcode ClientResult}) or `{"id":N,"error":E}`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 bench/sse_client.ts
 * ```
 *
 * {@linkcode CountingClient} starts it and sends it requests.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import type { ProcessGroup } from "./processes.ts";
import { type CountResult, EventCounter, fetchAndCount } from "./sse_count.ts";

/** One counted stream, as the client process measured it. */
export interface ClientResult extends CountResult {
  /** CPU ms the client process used meanwhile (all its threads). */
  clientCpuMs: number;
}

/** A request for the client process. */
export interface CountCommand {
  /** URL to request. */
  url: string;
  /** HTTP method (default GET). */
  method?: string;
  /** Request headers. */
  headers?: Record<string, string>;
  /** Key of a body sent before with {@linkcode CountingClient.defineBody}. */
  body?: string;
}

const CR = 13;
const LF = 10;
const READ_BYTES = 256 * 1024;

/**
 * Decodes an HTTP/1.1 body framed with `Transfer-Encoding: chunked`,
 * handing the payload to `onData` as views of the bytes fed.
 */
class ChunkedDecoder {
  /** The zero-length last chunk has been seen. */
  done = false;
  #state: "size" | "ext" | "sizeLF" | "data" | "dataCR" | "dataLF" = "size";
  #size = 0;
  #left = 0;
  #onData: (bytes: Uint8Array) => void;

  constructor(onData: (bytes: Uint8Array) => void) {
    this.#onData = onData;
  }

  feed(bytes: Uint8Array): void {
    let i = 0;
    const n = bytes.length;
    while (i < n && !this.done) {
      switch (this.#state) {
        case "size": {
          const b = bytes[i++];
          if (b === CR) this.#state = "sizeLF";
          else if (b === 59 /* ; */ || b === 32) this.#state = "ext";
          else {
            const digit = parseInt(String.fromCharCode(b), 16);
            if (Number.isNaN(digit)) throw new Error(`bad chunk size byte ${b}`);
            this.#size = this.#size * 16 + digit;
          }
          break;
        }
        case "ext":
          if (bytes[i++] === CR) this.#state = "sizeLF";
          break;
        case "sizeLF":
          if (bytes[i++] !== LF) throw new Error("bad chunk size line");
          if (this.#size === 0) {
            this.done = true; // trailers, if any, are not read
          } else {
            this.#left = this.#size;
            this.#size = 0;
            this.#state = "data";
          }
          break;
        case "data": {
          const take = Math.min(this.#left, n - i);
          this.#onData(bytes.subarray(i, i + take));
          i += take;
          this.#left -= take;
          if (this.#left === 0) this.#state = "dataCR";
          break;
        }
        case "dataCR":
          if (bytes[i++] !== CR) throw new Error("chunk not ended by CRLF");
          this.#state = "dataLF";
          break;
        case "dataLF":
          if (bytes[i++] !== LF) throw new Error("chunk not ended by CRLF");
          this.#state = "size";
          break;
      }
    }
  }
}

/** Writes all of `bytes` to `conn`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

/**
 * One HTTP/1.1 request over its own TCP connection; the answer's body is
 * read to its end and its events counted. Non-2xx answers throw.
 */
export async function tcpCount(url: string, init: {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
} = {}): Promise<CountResult> {
  const encoder = new TextEncoder();
  const target = new URL(url);
  const body = init.body === undefined ? new Uint8Array() : encoder.encode(init.body);
  const head = encoder.encode(
    [
      `${init.method ?? "GET"} ${target.pathname}${target.search} HTTP/1.1`,
      `Host: ${target.host}`,
      ...Object.entries(init.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
      ...(init.body === undefined ? [] : [`Content-Length: ${body.length}`]),
      "Connection: close",
      "",
      "",
    ].join("\r\n"),
  );
  const request = new Uint8Array(head.length + body.length);
  request.set(head);
  request.set(body, head.length);
  const t0 = performance.now();
  const conn = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
  try {
    await writeAll(conn, request);
    const counter = new EventCounter();
    const buffer = new Uint8Array(READ_BYTES);
    let headBytes = new Uint8Array();
    let status = 0;
    let bytes = 0;
    let chunks = 0;
    let chunked: ChunkedDecoder | undefined;
    let length = Infinity;
    const onData = (data: Uint8Array) => {
      bytes += data.length;
      counter.feed(data);
    };
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks++;
      let data = buffer.subarray(0, n);
      if (status === 0) {
        // Still reading the head: it ends at the first CRLFCRLF.
        const joined = new Uint8Array(headBytes.length + data.length);
        joined.set(headBytes);
        joined.set(data, headBytes.length);
        const end = findHeadEnd(joined);
        if (end < 0) {
          headBytes = joined;
          continue;
        }
        const text = new TextDecoder().decode(joined.subarray(0, end));
        const [statusLine, ...fields] = text.split("\r\n");
        status = Number(statusLine.split(" ")[1]);
        const headers = new Map(fields.map((f) => {
          const colon = f.indexOf(":");
          return [f.slice(0, colon).trim().toLowerCase(), f.slice(colon + 1).trim()];
        }));
        if (status < 200 || status > 299) {
          throw new Error(`HTTP ${status}: ${new TextDecoder().decode(joined.subarray(end + 4))}`);
        }
        if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
          chunked = new ChunkedDecoder(onData);
        } else if (headers.has("content-length")) {
          length = Number(headers.get("content-length"));
        }
        data = joined.subarray(end + 4);
      }
      if (chunked) {
        chunked.feed(data);
        if (chunked.done) break;
      } else {
        onData(data.subarray(0, Math.min(data.length, length - bytes)));
        if (bytes >= length) break;
      }
    }
    if (status === 0) throw new Error("connection closed before an answer");
    if (chunked && !chunked.done) throw new Error("connection closed inside a chunked body");
    return { events: counter.events, bytes, chunks, ms: performance.now() - t0, status };
  } finally {
    conn.close();
  }
}

/** Index of the CRLFCRLF ending an HTTP head, or -1. */
function findHeadEnd(bytes: Uint8Array): number {
  for (let i = bytes.indexOf(CR); i >= 0 && i + 3 < bytes.length; i = bytes.indexOf(CR, i + 1)) {
    if (bytes[i + 1] === LF && bytes[i + 2] === CR && bytes[i + 3] === LF) return i;
  }
  return -1;
}

/** Splits a byte stream into lines of text. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim() !== "") yield line;
    }
  }
  if (pending.trim() !== "") yield pending;
}

/** The client process's side: answers commands until stdin ends. */
async function serve(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { transport: { type: "string", default: "tcp" } },
  });
  if (values.transport !== "tcp" && values.transport !== "fetch") {
    throw new Error(`--transport must be tcp or fetch, got ${values.transport}`);
  }
  const count = values.transport === "tcp" ? tcpCount : fetchAndCount;
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  const encoder = new TextEncoder();
  const say = (message: unknown) =>
    Deno.stdout.writeSync(encoder.encode(JSON.stringify(message) + "\n"));
  const bodies = new Map<string, string>();
  say({ ready: true });
  for await (const line of lines(Deno.stdin.readable)) {
    const command = JSON.parse(line);
    if (command.op === "body") {
      bodies.set(command.key, command.text);
      say({ op: "body", key: command.key });
      continue;
    }
    const { id, url, method = "GET", headers = {}, body } = command as CountCommand & {
      id: number;
    };
    try {
      if (body !== undefined && !bodies.has(body)) throw new Error(`no body "${body}"`);
      const cpu0 = process.cpuUsage();
      const result = await count(url, {
        method,
        headers,
        body: body === undefined ? undefined : bodies.get(body),
      });
      const cpu = process.cpuUsage(cpu0);
      say({ id, result: { ...result, clientCpuMs: (cpu.user + cpu.system) / 1000 } });
    } catch (error) {
      say({ id, error: error instanceof Error ? error.message : String(error) });
    }
  }
}

/** Drives a client process started with {@linkcode CountingClient.start}. */
export class CountingClient {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiting = new Map<string | number, (message: Record<string, unknown>) => void>();
  #nextId = 0;
  #encoder = new TextEncoder();
  /** Rejects once the client process's stdout has ended. */
  #ended: Promise<never>;

  private constructor(child: Deno.ChildProcess, ready: () => void) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#ended = (async () => {
      for await (const line of lines(child.stdout)) {
        const message = JSON.parse(line);
        if (message.ready) ready();
        const key = message.op === "body" ? `body:${message.key}` : message.id;
        const done = this.#waiting.get(key);
        this.#waiting.delete(key);
        done?.(message);
      }
      throw new Error("the client process ended");
    })();
    // Handled here once; every wait races against it.
    this.#ended.catch(() => {});
  }

  /** Starts the client process in `group` and waits for its `ready` line. */
  static async start(
    group: ProcessGroup,
    transport: "tcp" | "fetch" = "tcp",
  ): Promise<CountingClient> {
    const child = group.spawn("client", [
      "run",
      "--allow-net=127.0.0.1",
      "bench/sse_client.ts",
      "--transport",
      transport,
    ], { pipeStdin: true });
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => ready = resolve);
    const client = new CountingClient(child, ready);
    await Promise.race([isReady, client.#ended]);
    return client;
  }

  /** The client's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** The process, for {@linkcode ProcessGroup.stop}. */
  get child(): Deno.ChildProcess {
    return this.#child;
  }

  #send(key: string | number, message: unknown): Promise<Record<string, unknown>> {
    const answered = new Promise<Record<string, unknown>>((resolve) =>
      this.#waiting.set(key, resolve)
    );
    return this.#writer.write(this.#encoder.encode(JSON.stringify(message) + "\n"))
      .then(() => Promise.race([answered, this.#ended]));
  }

  /** Sends a request body once; later requests name it by `key`. */
  async defineBody(key: string, text: string): Promise<void> {
    await this.#send(`body:${key}`, { op: "body", key, text });
  }

  /** Makes one request in the client process and reads its body to the end. */
  async count(command: CountCommand): Promise<ClientResult> {
    const id = ++this.#nextId;
    const answer = await this.#send(id, { op: "count", id, ...command });
    if (typeof answer.error === "string") throw new Error(`${command.url}: ${answer.error}`);
    return answer.result as ClientResult;
  }
}

if (import.meta.main) await serve();
