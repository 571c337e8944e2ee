/**
 * The events of a run as a client receives them: the domain events of
 * `src/dag/events.ts`, plus the fields only the wire adds. A `task_complete`
 * too large for one event carries a preview and its full sizes (added when
 * it is framed, `frame.ts`); an `error` a log reader sends when the events a
 * watcher needed have given way says how many it missed and where the full
 * result is (`log-stream.ts`). The JSON on the wire is these types.
 *
 * @module
 */

import type {
  ExecutionCompleteEvent,
  RunErrorEvent,
  TaskCompleteEvent,
  TaskProgressEvent,
  TaskRetryEvent,
  TaskStartEvent,
} from "../dag/events.ts";

/**
 * What the wire adds to a `task_complete` whose data would exceed the
 * payload cap (`maxEventPayloadBytes`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TruncationFields } from "./wire-events.ts";
 * const fields: TruncationFields = { truncated: true, outputBytes: 100_000 };
 * assert.equal(fields.truncated, true);
 * ```
 */
export type TruncationFields = {
  /**
   * Present and `true` when the data was too large for one event: `output`
   * is then the start of its JSON text (a string), and the whole output is
   * in the run's JSON result.
   */
  truncated?: true;
  /** With `truncated`: size in bytes of the output's full JSON text. */
  outputBytes?: number;
  /**
   * With `truncated`, when the error message itself was too large: its
   * full size in bytes (`error` is then its start).
   */
  errorBytes?: number;
};

/**
 * A `task_complete` as sent: the domain event's data, and
 * {@linkcode TruncationFields} when it was too large.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WireTaskCompleteEvent } from "./wire-events.ts";
 * const event: WireTaskCompleteEvent = {
 *   type: "task_complete",
 *   data: {
 *     taskId: "big", tool: "echo", status: "success", executionTimeMs: 3,
 *     timestamp: "2025-01-01T00:00:00.000Z",
 *     output: '{"blob":"xxxx', truncated: true, outputBytes: 100_000,
 *   },
 * };
 * assert.equal(typeof event.data.output, "string");
 * ```
 */
export interface WireTaskCompleteEvent {
  /** Event name on the wire. */
  type: "task_complete";
  /** Payload: the domain event's, plus what truncation adds. */
  data: TaskCompleteEvent["data"] & TruncationFields;
}

/**
 * What the wire adds to an `error` event: a log reader whose next events
 * gave way says how many it missed (`code: "events_lost"`) and where the
 * run's full result is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LostEventsFields } from "./wire-events.ts";
 * const fields: LostEventsFields = { missedEvents: 12, resultUrl: "/runs/1" };
 * assert.equal(fields.missedEvents, 12);
 * ```
 */
export type LostEventsFields = {
  /** With `events_lost`: how many events this reader missed. */
  missedEvents?: number;
  /** Where the run's full JSON result can be fetched, when known. */
  resultUrl?: string;
};

/**
 * An `error` event as sent: the domain event's data, plus
 * {@linkcode LostEventsFields} when a reader missed events.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WireErrorEvent } from "./wire-events.ts";
 * const event: WireErrorEvent = {
 *   type: "error",
 *   data: {
 *     error: "3 event(s) are no longer kept", code: "events_lost", missedEvents: 3,
 *     resultUrl: "/runs/1", timestamp: "2025-01-01T00:00:00.000Z",
 *   },
 * };
 * assert.equal(event.data.code, "events_lost");
 * ```
 */
export interface WireErrorEvent {
  /** Event name on the wire. */
  type: "error";
  /** Payload: the domain event's, plus what a log reader adds. */
  data: RunErrorEvent["data"] & LostEventsFields;
}

/**
 * Any event as a client receives it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { WireEvent } from "./wire-events.ts";
 * function sizeOf(event: WireEvent): number | undefined {
 *   return event.type === "task_complete" ? event.data.outputBytes : undefined;
 * }
 * assert.equal(sizeOf({ type: "error", data: { error: "x", timestamp: "t" } }), undefined);
 * ```
 */
export type WireEvent =
  | TaskStartEvent
  | WireTaskCompleteEvent
  | TaskProgressEvent
  | TaskRetryEvent
  | ExecutionCompleteEvent
  | WireErrorEvent;
