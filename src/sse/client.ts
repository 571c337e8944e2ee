/**
 * Reading a dagstream SSE response on the client side, with
 * `npm:eventsource-parser`: all events at once, or one by one as they come.
 *
 * @module
 */

import { createParser, type EventSourceMessage } from "npm:eventsource-parser@4.1.3";
import type { SSEEvent } from "../dag/events.ts";

/** An event as read from the wire, with its `id:` when it had one. */
export type ReceivedSSEEvent = SSEEvent & { id?: string };

/**
 * Yields each event of an SSE body the moment it arrives. Comments
 * (keep-alives) are skipped; each `data` is parsed as JSON. Stopping the
 * loop early cancels the body.
 *
 * @example
 * ```ts
 * import { readSSEEvents } from "./client.ts";
 * const response = await fetch("http://127.0.0.1:8000/execute", {
 *   method: "POST",
 *   headers: { accept: "text/event-stream", "content-type": "application/json" },
 *   body: JSON.stringify({ tasks: [{ id: "a", tool: "mock:echo" }] }),
 * });
 * for await (const event of readSSEEvents(response.body!)) {
 *   console.log(event.id, event.type, event.data);
 * }
 * ```
 */
export async function* readSSEEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ReceivedSSEEvent, void, undefined> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let pending: ReceivedSSEEvent[] = [];
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      pending.push(toEvent(message));
    },
  });
  let finished = false;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
      if (pending.length > 0) {
        const ready = pending;
        pending = [];
        yield* ready;
      }
    }
    finished = true;
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * Reads a whole SSE body and resolves with its events once the stream ends
 * (the reference design's client helper).
 *
 * @example
 * ```ts
 * import { parseSSEStream } from "./client.ts";
 * const body = new Response("id: 1\nevent: error\ndata: {\"error\":\"x\",\"timestamp\":\"t\"}\n\n").body!;
 * const events = await parseSSEStream(body);
 * console.log(events[0].type); // "error"
 * ```
 */
export async function parseSSEStream(
  body: ReadableStream<Uint8Array>,
): Promise<ReceivedSSEEvent[]> {
  const events: ReceivedSSEEvent[] = [];
  for await (const event of readSSEEvents(body)) events.push(event);
  return events;
}

function toEvent(message: EventSourceMessage): ReceivedSSEEvent {
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    data = message.data;
  }
  const event = { type: message.event ?? "message", data } as ReceivedSSEEvent;
  if (message.id !== undefined) event.id = message.id;
  return event;
}
