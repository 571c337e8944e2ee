/**
 * The bearer token check: when the server has a token, every route but
 * `/health` and the page (`/`, `/ui/…`, which hold no data) needs it, in `Authorization: Bearer <token>` or, for an event
 * stream that `EventSource` opens (it cannot send headers), in
 * `?access_token=`. Tokens are compared in constant time.
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import { problemResponse } from "../sse/problem.ts";
import { isPagePath } from "./page.ts";

const encoder = new TextEncoder();

/**
 * The 401 answer to a request without the right token, or undefined when it
 * may go on (no token is configured, the route is `/health`, or the token
 * matches).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseWithoutToken } from "./auth.ts";
 * const get = (path: string, headers: HeadersInit = {}) =>
 *   new Request(`http://127.0.0.1${path}`, { headers });
 * const check = (request: Request) => refuseWithoutToken(request, new URL(request.url), "s3cret");
 * assert.equal(check(get("/runs", { authorization: "Bearer s3cret" })), undefined);
 * assert.equal(check(get("/runs/r1/events?access_token=s3cret")), undefined);
 * assert.equal(check(get("/health")), undefined);
 * const refused = check(get("/runs", { authorization: "Bearer wrong" }));
 * assert.equal(refused?.status, 401);
 * assert.equal(refused?.headers.get("www-authenticate"), 'Bearer realm="dagstream"');
 * ```
 */
export function refuseWithoutToken(
  request: Request,
  url: URL,
  token: string | undefined,
): Response | undefined {
  if (token === undefined || url.pathname === "/health" || isPagePath(url.pathname)) {
    return undefined;
  }
  const given = givenToken(request, url);
  if (given !== undefined && sameSecret(given, token)) return undefined;
  return problemResponse(401, "a valid bearer token is required", {
    headers: { "WWW-Authenticate": 'Bearer realm="dagstream"' },
  });
}

/** The token a request carries: its bearer token, else an event stream's `access_token`. */
function givenToken(request: Request, url: URL): string | undefined {
  const header = request.headers.get("authorization") ?? "";
  const bearer = /^Bearer\s+(.+)$/i.exec(header.trim())?.[1];
  if (bearer !== undefined) return bearer;
  const opensStream = (request.method === "GET" || request.method === "HEAD") &&
    url.pathname.endsWith("/events");
  return opensStream ? url.searchParams.get("access_token") ?? undefined : undefined;
}

/**
 * Whether two secrets are equal, in time that does not depend on where they
 * differ (nor, beyond the length check, on the given one's content).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sameSecret } from "./auth.ts";
 * assert.equal(sameSecret("s3cret", "s3cret"), true);
 * assert.equal(sameSecret("s3creT", "s3cret"), false);
 * assert.equal(sameSecret("s3", "s3cret"), false);
 * ```
 */
export function sameSecret(given: string, expected: string): boolean {
  const a = encoder.encode(given);
  const b = encoder.encode(expected);
  if (a.byteLength !== b.byteLength) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}
