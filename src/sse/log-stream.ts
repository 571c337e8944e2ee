/**
 * The SSE body of one watcher of a run: replays the run's log after a
 * cursor, then follows it live, at the watcher's own pace. Its place is a
 * sequence id, and what it sends are views of the log's shared blocks (at
 * most 64 KiB each), not copies: the body holds one such view until the
 * client takes it, and the HTTP layer a few more while the socket is full.
 * So a slow or stalled watcher costs only references to bytes the log keeps
 * anyway — unless those bytes give way meanwhile, when it keeps its few
 * blocks alive. If the events it needs next have given way in the log, it
 * gets an `error` event saying how many it missed and where the full result
 * is, and the stream closes.
 *
 * @module
 */

import { errorEvent } from "../dag/events.ts";
import type { Run } from "../server/runs.ts";
import { formatSSEFrame, SSEBody } from "./sse.ts";

/** Settings of {@linkcode runEventStream}. */
export interface RunStreamOptions {
  /** Replay events after this sequence id (0 for all). */
  after: number;
  /** `retry:` announced first, in ms. */
  retryMs: number;
  /** Idle ms before a keep-alive comment. */
  heartbeatMs: number;
  /** Cancel the run when this watcher goes away (`POST /execute`). */
  cancelRunOnLeave: boolean;
  /** Where the run's full result is, for the events-lost message. */
  resultUrl: string;
}

/** Builds a frame for an event that is not part of the run's log (no `id:`). */
export function outOfLogErrorFrame(
  message: string,
  extra: Parameters<typeof errorEvent>[1],
): string {
  const event = errorEvent(message, extra);
  return formatSSEFrame({ event: event.type, data: JSON.stringify(event.data) });
}

/**
 * Opens a watcher's SSE body on `run`.
 *
 * @returns the body to send; pass it to `new Response(body.readable, ...)`
 */
export function runEventStream(run: Run, options: RunStreamOptions): SSEBody {
  const body = new SSEBody({
    retryMs: options.retryMs,
    heartbeatMs: options.heartbeatMs,
    onCancel: () => {
      if (options.cancelRunOnLeave) run.cancel("client disconnected");
    },
  });
  // Aborted when the body ends (the client left): stops waiting on the log.
  const left = new AbortController();
  body.finished.then(() => left.abort());
  follow(run, body, options, left.signal).catch(() => body.close());
  return body;
}

async function follow(
  run: Run,
  body: SSEBody,
  options: RunStreamOptions,
  left: AbortSignal,
): Promise<void> {
  let cursor = options.after;
  while (!body.ended) {
    const read = run.log.readChunk(cursor);
    switch (read.kind) {
      case "frames":
        body.push(read.bytes, read.events);
        cursor = read.lastSeq;
        await body.drained(0);
        break;
      case "lost":
        body.push(outOfLogErrorFrame(
          `${read.missed} event(s) after id ${cursor} are no longer kept; ` +
            `the full result is at ${options.resultUrl}`,
          { code: "events_lost", missedEvents: read.missed, resultUrl: options.resultUrl },
        ));
        body.close();
        return;
      case "end":
        body.close();
        return;
      case "wait":
        await run.log.changed(left);
        break;
    }
  }
}
