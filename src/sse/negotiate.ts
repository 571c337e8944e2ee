/**
 * Content negotiation on `Accept` (q-values honoured): SSE or batch JSON.
 *
 * @module
 */

import Negotiator from "npm:negotiator@1.1.0";

/** How to answer a workflow request. */
export type ResponseKind = "sse" | "json";

const OFFERED = ["application/json", "text/event-stream"];

/**
 * Picks SSE when the client prefers `text/event-stream`, JSON when it
 * prefers JSON or sends no `Accept` (or `*∕*`), and `null` when it accepts
 * neither (answer 406).
 *
 * @example
 * ```ts
 * import { negotiateResponse } from "./negotiate.ts";
 * import assert from "node:assert/strict";
 * assert.equal(negotiateResponse(new Headers({ accept: "text/event-stream" })), "sse");
 * assert.equal(negotiateResponse(new Headers()), "json");
 * assert.equal(negotiateResponse(new Headers({ accept: "image/png" })), null);
 * ```
 */
export function negotiateResponse(headers: Headers): ResponseKind | null {
  const accept = headers.get("accept");
  if (accept === null || accept.trim() === "") return "json";
  const known = answers.get(accept);
  if (known !== undefined) return known;
  const preferred = new Negotiator({ headers: { accept: withoutParameters(accept) } })
    .mediaType(OFFERED);
  const kind = preferred === undefined ? null : preferred === "text/event-stream" ? "sse" : "json";
  if (accept.length <= MAX_REMEMBERED_LENGTH) {
    if (answers.size >= MAX_REMEMBERED) answers.clear();
    answers.set(accept, kind);
  }
  return kind;
}

/**
 * Answers for `Accept` values seen lately: clients send the same one again
 * and again, and negotiating it costs more than the rest of the request's
 * headers. Bounded (64 values of at most 256 characters, about 32 KiB):
 * forgotten all at once when full.
 */
const answers = new Map<string, ResponseKind | null>();
const MAX_REMEMBERED = 64;
const MAX_REMEMBERED_LENGTH = 256;

/**
 * Whether a route that answers only `text/event-stream` may answer this
 * request: no `Accept`, or one that admits the type (q-values honoured,
 * other parameters such as `charset=utf-8` ignored).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { acceptsEventStream } from "./negotiate.ts";
 * assert.equal(acceptsEventStream(new Headers({ accept: "text/event-stream; charset=utf-8" })), true);
 * assert.equal(acceptsEventStream(new Headers({ accept: "application/json" })), false);
 * assert.equal(acceptsEventStream(new Headers()), true);
 * ```
 */
export function acceptsEventStream(headers: Headers): boolean {
  const accept = headers.get("accept");
  if (accept === null || accept.trim() === "") return true;
  return new Negotiator({ headers: { accept: withoutParameters(accept) } })
    .mediaType(["text/event-stream"]) !== undefined;
}

/**
 * An `Accept` value with each media range's parameters dropped except `q`:
 * the offered types have no parameters, and a range that names one
 * (`text/event-stream; charset=utf-8`) still means that type.
 */
function withoutParameters(accept: string): string {
  return accept.split(",").map((range) => {
    const [type, ...parameters] = range.split(";");
    const q = parameters.find((p) => /^\s*q\s*=/i.test(p));
    return q === undefined ? type.trim() : `${type.trim()};${q.trim()}`;
  }).join(", ");
}
