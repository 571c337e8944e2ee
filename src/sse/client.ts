/**
 * Reading a dagstream SSE response on the client side, with
 * `npm:eventsource-parser`: all events at once, or one by one as they come.
 *
 * @module
 */

import {
  type EventSourceMessage,
  EventSourceParserStream,
} from "npm:eventsource-parser@4.1.3/stream";
import type { WireEvent } from "./wire-events.ts";

/**
 * An event as read from the wire, with its `id:` when it had one. Its type
 * and data are what the dagstream protocol sends; the reader does not check
 * them (a frame without `event:` is a `message`, data that is not JSON a string).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReceivedSSEEvent } from "./client.ts";
 * const event: ReceivedSSEEvent = {
 *   id: "1",
 *   type: "error",
 *   data: { error: "x", timestamp: "2025-01-01T00:00:00.000Z" },
 * };
 * assert.equal(event.type === "error" && event.data.error, "x");
 * ```
 */
export type ReceivedSSEEvent = WireEvent & { id?: string };

/**
 * Yields each event of an SSE body the moment it arrives. Comments
 * (keep-alives) are skipped; each `data` is parsed as JSON. Stopping the
 * loop early cancels the body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSSEEvents } from "./client.ts";
 * const wire = "retry: 2000\n\n: keep-alive\n\n" +
 *   'id: 1\nevent: task_start\ndata: {"taskId":"a","tool":"mock:echo","timestamp":"t"}\n\n';
 * const seen = [];
 * for await (const event of readSSEEvents(new Response(wire).body!)) {
 *   seen.push([event.id, event.type, event.type === "task_start" && event.data.taskId]);
 * }
 * assert.deepEqual(seen, [["1", "task_start", "a"]]);
 * ```
 *
 * @example Reading a run of the bundled server as it happens
 * ```ts ignore
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
  const messages = body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream());
  // Leaving the loop early cancels `messages`, and through the pipes the body.
  for await (const message of messages) yield toEvent(message);
}

/**
 * Reads a whole SSE body and resolves with its events once the stream ends
 * (the reference design's client helper).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSSEStream } from "./client.ts";
 * const body = new Response("id: 1\nevent: error\ndata: {\"error\":\"x\",\"timestamp\":\"t\"}\n\n").body!;
 * const events = await parseSSEStream(body);
 * assert.deepEqual(events, [{ id: "1", type: "error", data: { error: "x", timestamp: "t" } }]);
 * ```
 */
export function parseSSEStream(body: ReadableStream<Uint8Array>): Promise<ReceivedSSEEvent[]> {
  return Array.fromAsync(readSSEEvents(body));
}

function toEvent(message: EventSourceMessage): ReceivedSSEEvent {
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    data = message.data;
  }
  // The protocol's promise, not checked here (see ReceivedSSEEvent).
  const event = { type: message.event ?? "message", data } as ReceivedSSEEvent;
  if (message.id !== undefined) event.id = message.id;
  return event;
}
