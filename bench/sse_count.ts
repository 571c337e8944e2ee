/**
 * Client side of the streaming benchmark: reads a whole SSE body and counts
 * its events, cheaply enough not to be the bottleneck. Also runs as a Worker
 * (`new Worker(new URL("./sse_count.ts", import.meta.url), { type: "module" })`)
 * so that the client reads on its own thread, as a real client would.
 *
 * @module
 */

/** What one read of a stream gives. */
export interface CountResult {
  /** Events in the body (blocks with a `data:` line). */
  events: number;
  /** Bytes read. */
  bytes: number;
  /** Chunks read. */
  chunks: number;
  /** From just before `fetch` to the end of the body, in ms. */
  ms: number;
  /** HTTP status of the answer (2xx: others are thrown). */
  status: number;
}

const LF = 10;
const D = 100; // "d", the first byte of a `data:` line

/**
 * Counts SSE events in a stream of bytes: blocks ended by an empty line that
 * hold a line starting with "d" (`data:`). Our servers write LF line ends
 * and no other field starts with "d", so this equals what a spec parser
 * dispatches (the benchmark checks that once per variant with
 * eventsource-parser).
 */
export class EventCounter {
  /** Events seen so far. */
  events = 0;
  #atLineStart = true;
  #hasData = false;

  /** Feeds one chunk. */
  feed(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#atLineStart) {
        const b = chunk[i];
        if (b === LF) {
          if (this.#hasData) this.events++;
          this.#hasData = false;
          i++;
          continue;
        }
        if (b === D) this.#hasData = true;
        this.#atLineStart = false;
      }
      const nl = chunk.indexOf(LF, i);
      if (nl < 0) break;
      i = nl + 1;
      this.#atLineStart = true;
    }
  }
}

/** Fetches `url` and counts the events of its body. */
export async function fetchAndCount(url: string, init?: RequestInit): Promise<CountResult> {
  const t0 = performance.now();
  const response = await fetch(url, init);
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  const counter = new EventCounter();
  const reader = response.body.getReader();
  let bytes = 0;
  let chunks = 0;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    chunks++;
    counter.feed(value);
  }
  return {
    events: counter.events,
    bytes,
    chunks,
    ms: performance.now() - t0,
    status: response.status,
  };
}

/** Message a Worker takes: fetch this URL and count. */
export interface CountRequest {
  /** Request id, echoed back. */
  n: number;
  /** URL to GET. */
  url: string;
}

// Worker mode: answer each CountRequest with { n, result } or { n, error }.
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<CountRequest>) => void) | null;
  postMessage?: (message: unknown) => void;
  WorkerGlobalScope?: unknown;
};
if (scope.WorkerGlobalScope !== undefined && typeof scope.postMessage === "function") {
  const post = scope.postMessage.bind(globalThis);
  scope.onmessage = (e) => {
    const { n, url } = e.data;
    fetchAndCount(url).then(
      (result) => post({ n, result }),
      (error) => post({ n, error: String(error) }),
    );
  };
}
