/**
 * Server-Sent Events for any `Deno.serve` app (`@dagstream/dagstream/sse`):
 * frame encoding, a coalescing response body with heartbeats, the response
 * headers, `Accept` negotiation between SSE and JSON, RFC 9457 problem
 * responses, and the client-side readers of a stream.
 *
 * @example Serve a stream and read it back
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   formatSSEFrame,
 *   negotiateResponse,
 *   problemResponse,
 *   readSSEEvents,
 *   SSE_HEADERS,
 *   SSEBody,
 * } from "./mod.ts";
 *
 * function handle(request: Request): Response {
 *   if (negotiateResponse(request.headers) !== "sse") {
 *     return problemResponse(406, "this route only streams");
 *   }
 *   const body = new SSEBody({ retryMs: 2000 });
 *   const data = JSON.stringify({ taskId: "a", tool: "echo", timestamp: new Date().toISOString() });
 *   body.push(formatSSEFrame({ id: 1, event: "task_start", data }));
 *   body.close();
 *   return new Response(body.readable, { headers: SSE_HEADERS });
 * }
 *
 * const refused = handle(new Request("http://x/", { headers: { accept: "text/html" } }));
 * assert.equal(refused.status, 406);
 * assert.equal(refused.headers.get("content-type"), "application/problem+json");
 * await refused.body?.cancel();
 *
 * const response = handle(new Request("http://x/", { headers: { accept: "text/event-stream" } }));
 * assert.equal(response.headers.get("content-type"), "text/event-stream");
 * const events = [];
 * for await (const event of readSSEEvents(response.body!)) events.push(event);
 * assert.equal(events.length, 1);
 * assert.equal(events[0].id, "1");
 * assert.equal(events[0].type, "task_start");
 * ```
 *
 * @module
 */

export { encodeSSEEvent, formatSSEFrame, SSE_HEADERS, type SSEFields } from "./frame.ts";
export { SSEBody, type SSEBodyOptions } from "./body.ts";
export { negotiateResponse, type ResponseKind } from "./negotiate.ts";
export {
  type Problem,
  PROBLEM_TYPE_BASE,
  PROBLEM_TYPES,
  type ProblemOptions,
  problemResponse,
  type ProblemType,
  type ProblemTypeSlug,
  problemTypeUri,
} from "./problem.ts";
export { parseSSEStream, readSSEEvents, type ReceivedSSEEvent } from "./client.ts";
export { SSE_EVENT_TYPES } from "../dag/events.ts";
export type {
  ExecutionCompleteEvent,
  RunErrorEvent,
  SSEEvent,
  SSEEventType,
  TaskCompleteEvent,
  TaskProgressEvent,
  TaskRetryEvent,
  TaskStartEvent,
} from "../dag/events.ts";
export type {
  LostEventsFields,
  TruncationFields,
  WireErrorEvent,
  WireEvent,
  WireTaskCompleteEvent,
} from "./wire-events.ts";
export type { ValidationIssue } from "../dag/validate.ts";
