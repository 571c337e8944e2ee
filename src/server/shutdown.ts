/**
 * Graceful shutdown of an app: open streams get an `error` event and close,
 * active runs are cancelled, and once they are over the MCP servers are
 * closed (their processes end).
 *
 * @module
 */

import { outOfLogErrorFrame } from "../sse/log-stream.ts";
import type { ManagedToolRegistry } from "../tools/registry.ts";
import type { EventStreams } from "./event-streams.ts";
import type { RunRegistry } from "./run-registry.ts";
import type { RedisRunStore } from "./redis-store.ts";

/**
 * What a shutdown stops.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventStreams } from "./event-streams.ts";
 * import { RunRegistry } from "./run-registry.ts";
 * import { Shutdown, type ShutdownParts } from "./shutdown.ts";
 * const parts: ShutdownParts = {
 *   streams: new EventStreams({ maxWatchers: 10, retryMs: 2000, heartbeatMs: 15_000 }),
 *   runs: new RunRegistry((_tool, args) => Promise.resolve(args), {
 *     executor: {},
 *     maxRunLogBytes: 1 << 20,
 *     maxEventPayloadBytes: 65_536,
 *     maxActiveRuns: 10,
 *     maxRuns: 10,
 *     runTtlSeconds: 600,
 *   }),
 * };
 * const shutdown = new Shutdown(parts);
 * await shutdown.run();
 * assert.equal(shutdown.begun, true);
 * ```
 */
export interface ShutdownParts {
  /** The open event streams. */
  streams: EventStreams;
  /** The runs. */
  runs: RunRegistry;
  /** The MCP servers, when there are any. */
  mcp?: ManagedToolRegistry;
  /** The shared run store, when there is one. */
  store?: RedisRunStore;
}

/**
 * An app's shutdown: started once, however often it is asked for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createApp } from "./app.ts";
 * const app = createApp({ log: () => {} });
 * await app.shutdown();
 * const refused = await app.handle(new Request("http://127.0.0.1/runs", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ tasks: [] }),
 * }));
 * assert.equal(refused.status, 503);
 * await refused.body?.cancel();
 * ```
 */
export class Shutdown {
  readonly #parts: ShutdownParts;
  #begun = false;
  #done: Promise<void> | undefined;

  /** Prepares the shutdown of `parts`; nothing stops yet. */
  constructor(parts: ShutdownParts) {
    this.#parts = parts;
  }

  /** Whether the shutdown has begun: new work is refused from then on. */
  get begun(): boolean {
    return this.#begun;
  }

  /** Shuts down (once); resolves when all is stopped. */
  run(): Promise<void> {
    this.#begun = true;
    this.#done ??= this.#stop();
    return this.#done;
  }

  async #stop(): Promise<void> {
    const { streams, runs, mcp, store } = this.#parts;
    streams.closeAll(outOfLogErrorFrame("the server is shutting down", { code: "shutdown" }));
    runs.cancelAll("server shutting down");
    await runs.idle();
    // The runs are over: nothing calls the MCP servers any more.
    await mcp?.close();
    // Their last states are sent: the store's connections close after them.
    await store?.close();
  }
}
