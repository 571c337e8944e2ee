/**
 * CORS for the web apps the server is told to trust (`--cors-origin`): the
 * headers every answer to them carries, and the answer to a preflight.
 * Which origins may send requests at all is `cross-site.ts`'s business.
 *
 * @module
 */

/** Request headers a preflight may ask to send. */
const ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type, Accept, Last-Event-ID";

/** Response headers a web app may read. */
const EXPOSED_RESPONSE_HEADERS = "X-Run-Id, Location, Retry-After";

/** Seconds a browser may keep a preflight's answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * The `Access-Control-Allow-Origin` value for a request from `origin`, or
 * undefined for none: `*` when any origin is allowed, else the request's own
 * origin when it is one of the allowed ones, else the only allowed origin
 * (a client without `Origin` learns nothing it could not read in the docs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allowOriginHeader } from "./cors.ts";
 * const origins = ["https://a.example", "https://b.example"];
 * assert.equal(allowOriginHeader("https://b.example", origins), "https://b.example");
 * assert.equal(allowOriginHeader("https://c.example", origins), undefined);
 * assert.equal(allowOriginHeader(null, ["*"]), "*");
 * ```
 */
export function allowOriginHeader(
  origin: string | null,
  corsOrigins: readonly string[],
): string | undefined {
  if (corsOrigins.length === 0) return undefined;
  if (corsOrigins.includes("*")) return "*";
  if (origin !== null && corsOrigins.includes(origin.trim())) return origin.trim();
  return origin === null && corsOrigins.length === 1 ? corsOrigins[0] : undefined;
}

/**
 * Whether a request is a CORS preflight: `OPTIONS` from a page (`Origin`)
 * asking whether it may send a method (`Access-Control-Request-Method`).
 * A preflight carries no credentials.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPreflight } from "./cors.ts";
 * const headers = { origin: "https://app.example", "access-control-request-method": "POST" };
 * assert.equal(isPreflight(new Request("http://x/runs", { method: "OPTIONS", headers })), true);
 * assert.equal(isPreflight(new Request("http://x/runs", { method: "OPTIONS" })), false);
 * ```
 */
export function isPreflight(request: Request): boolean {
  return request.method === "OPTIONS" && request.headers.has("origin") &&
    request.headers.has("access-control-request-method");
}

/**
 * The 204 answer to `OPTIONS` on a route that takes `allowed` methods: `Allow`,
 * and for a preflight while CORS is on, what the page may send and for how long.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { optionsResponse } from "./cors.ts";
 * const headers = { origin: "https://app.example", "access-control-request-method": "POST" };
 * const preflight = new Request("http://x/runs", { method: "OPTIONS", headers });
 * const answer = optionsResponse(preflight, ["GET", "POST"], ["https://app.example"]);
 * assert.equal(answer.status, 204);
 * assert.equal(answer.headers.get("allow"), "GET, POST");
 * assert.equal(answer.headers.get("access-control-allow-methods"), "GET, POST");
 * const plain = optionsResponse(new Request("http://x/runs", { method: "OPTIONS" }), ["GET"], []);
 * assert.equal(plain.headers.get("access-control-allow-methods"), null);
 * ```
 */
export function optionsResponse(
  request: Request,
  allowed: readonly string[],
  corsOrigins: readonly string[],
): Response {
  const methods = allowed.join(", ");
  const headers: Record<string, string> = { Allow: methods };
  if (corsOrigins.length > 0 && isPreflight(request)) {
    headers["Access-Control-Allow-Methods"] = methods;
    headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS;
    headers["Access-Control-Max-Age"] = String(PREFLIGHT_MAX_AGE_SECONDS);
  }
  return new Response(null, { status: 204, headers });
}

/**
 * Adds the CORS headers to an answer to a request from `origin`:
 * `Access-Control-Allow-Origin` and the headers a page may read when the
 * origin is allowed, and `Vary: Origin` whenever the answer depends on it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addCorsHeaders } from "./cors.ts";
 * const response = addCorsHeaders(new Response("{}"), "https://app.example", ["https://app.example"]);
 * assert.equal(response.headers.get("access-control-allow-origin"), "https://app.example");
 * assert.equal(response.headers.get("vary"), "Origin");
 * ```
 */
export function addCorsHeaders(
  response: Response,
  origin: string | null,
  corsOrigins: readonly string[],
): Response {
  const allowOrigin = allowOriginHeader(origin, corsOrigins);
  if (allowOrigin !== undefined) {
    response.headers.set("Access-Control-Allow-Origin", allowOrigin);
    response.headers.set("Access-Control-Expose-Headers", EXPOSED_RESPONSE_HEADERS);
  }
  if (corsOrigins.length > 0 && allowOrigin !== "*") response.headers.append("Vary", "Origin");
  return response;
}
