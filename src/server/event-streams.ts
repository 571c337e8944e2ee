/**
 * The event streams the server has open (`POST /execute` with SSE, and
 * `GET /runs/<id>/events`), bounded server-wide by `maxWatchers`, and closed
 * with a last `error` event when the server shuts down.
 *
 * @module
 */

import { SSE_HEADERS } from "../sse/frame.ts";
import { runEventStream } from "../sse/log-stream.ts";
import type { LoggedRun } from "../sse/log-stream.ts";

/** One open stream's body. */
type StreamBody = ReturnType<typeof runEventStream>;

/**
 * Settings of {@linkcode EventStreams}.
 *
 * @example
 * ```ts
 * import type { EventStreamSettings } from "./event-streams.ts";
 * const settings: EventStreamSettings = { maxWatchers: 100, retryMs: 2000, heartbeatMs: 15_000 };
 * ```
 */
export interface EventStreamSettings {
  /** Most streams open at once. */
  maxWatchers: number;
  /** `retry:` announced first, in ms. */
  retryMs: number;
  /** Idle ms before a keep-alive comment. */
  heartbeatMs: number;
}

/**
 * The open event streams of an app.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventStreams } from "./event-streams.ts";
 * const streams = new EventStreams({ maxWatchers: 1, retryMs: 2000, heartbeatMs: 15_000 });
 * assert.equal(streams.hasRoom(), true);
 * assert.equal(streams.openCount, 0);
 * streams.closeAll("event: error\ndata: {}\n\n");
 * assert.equal(streams.hasRoom(), true);
 * ```
 */
export class EventStreams {
  readonly #settings: EventStreamSettings;
  readonly #open = new Set<StreamBody>();

  /** Creates the (empty) set of streams. */
  constructor(settings: EventStreamSettings) {
    this.#settings = settings;
  }

  /** Streams open now. */
  get openCount(): number {
    return this.#open.size;
  }

  /** Whether one more stream may open (`maxWatchers`, server-wide). */
  hasRoom(): boolean {
    return this.#open.size < this.#settings.maxWatchers;
  }

  /**
   * Opens a stream of `run`'s events after sequence id `after`; when
   * `cancelRunOnLeave`, the client's leaving cancels the run. `onClose` is
   * called once the stream is over.
   */
  open(
    run: LoggedRun & { readonly id: string },
    after: number,
    cancelRunOnLeave: boolean,
    onClose?: () => void,
  ): Response {
    const body = runEventStream(run, {
      after,
      cancelRunOnLeave,
      retryMs: this.#settings.retryMs,
      heartbeatMs: this.#settings.heartbeatMs,
      resultUrl: `/runs/${run.id}`,
    });
    this.#open.add(body);
    body.finished.then(() => {
      this.#open.delete(body);
      onClose?.();
    });
    return new Response(body.readable, { headers: { ...SSE_HEADERS, "X-Run-Id": run.id } });
  }

  /** Sends every open stream `lastFrame` and closes it. */
  closeAll(lastFrame: string): void {
    for (const body of this.#open) {
      body.push(lastFrame);
      body.close();
    }
  }
}
