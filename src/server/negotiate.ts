/**
 * Content negotiation on `Accept` (q-values honoured): SSE or batch JSON.
 *
 * @module
 */

import Negotiator from "negotiator";

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
 * negotiateResponse(new Headers({ accept: "text/event-stream" })); // "sse"
 * negotiateResponse(new Headers()); // "json"
 * ```
 */
export function negotiateResponse(headers: Headers): ResponseKind | null {
  const accept = headers.get("accept");
  if (accept === null || accept.trim() === "") return "json";
  const preferred = new Negotiator({ headers: { accept } }).mediaType(OFFERED);
  if (preferred === undefined) return null;
  return preferred === "text/event-stream" ? "sse" : "json";
}
