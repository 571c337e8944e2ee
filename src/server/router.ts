/**
 * Finding a request's route and method: 404 for no route, 405 (with
 * `Allow`) for a method the route does not take, `OPTIONS` answered for
 * every route, and `HEAD` answered as `GET` without the body.
 *
 * @module
 */

import { problemResponse, quoteInDetail } from "../sse/problem.ts";
import { optionsResponse } from "./cors.ts";

/**
 * Answers a request on a route; `params` are the route pattern's groups,
 * URL-decoded.
 */
export type Handler = (
  request: Request,
  url: URL,
  params: string[],
) => Promise<Response> | Response;

/**
 * A route: a path pattern and the handler of each method it takes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dispatch, type Route } from "./router.ts";
 * const routes: Route[] = [{ pattern: /^\/runs\/([^/]+)$/, methods: { GET: (_r, _u, [id]) => new Response(id) } }];
 * const request = new Request("http://127.0.0.1/runs/r%201");
 * assert.equal(await (await dispatch(routes, request, new URL(request.url), [])).text(), "r 1");
 * ```
 */
export interface Route {
  /** The paths it answers, with a group for each parameter. */
  pattern: RegExp;
  /** The paths it answers as documented, e.g. `/runs/{id}` (the `route` label of metrics). */
  template?: string;
  /** Handler by method (`HEAD` and `OPTIONS` come with `GET` and every route). */
  methods: Record<string, Handler>;
}

/**
 * Answers a request with its route's handler for its method, or says why
 * not. `corsOrigins` shape the answer to a CORS preflight.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dispatch, type Route } from "./router.ts";
 * const routes: Route[] = [{ pattern: /^\/health$/, methods: { GET: () => Response.json({ ok: true }) } }];
 * const answer = (method: string, path = "/health") => {
 *   const request = new Request(`http://127.0.0.1${path}`, { method });
 *   return dispatch(routes, request, new URL(request.url), []);
 * };
 * assert.equal((await answer("GET")).status, 200);
 * const head = await answer("HEAD");
 * assert.equal(head.headers.get("content-length"), "11");
 * assert.equal(head.body, null);
 * const wrong = await answer("POST");
 * assert.equal(wrong.status, 405);
 * assert.equal(wrong.headers.get("allow"), "GET, HEAD, OPTIONS");
 * await wrong.body?.cancel();
 * assert.equal((await answer("OPTIONS")).status, 204);
 * const missing = await answer("GET", "/nowhere");
 * assert.equal(missing.status, 404);
 * await missing.body?.cancel();
 * ```
 */
export async function dispatch(
  routes: readonly Route[],
  request: Request,
  url: URL,
  corsOrigins: readonly string[],
  matched: RouteMatch | undefined = findRoute(routes, url.pathname),
): Promise<Response> {
  if (matched === undefined) {
    return problemResponse(404, `no route ${quoteInDetail(url.pathname)}`);
  }
  const { route: found, match } = matched;
  if (request.method === "OPTIONS") {
    return optionsResponse(request, allowedMethods(found), corsOrigins);
  }
  const method = request.method === "HEAD" ? "GET" : request.method;
  // Own methods only: "toString" or "constructor" must not find Object's.
  const handler = Object.hasOwn(found.methods, method) ? found.methods[method] : undefined;
  if (!handler) {
    return problemResponse(
      405,
      `${quoteInDetail(request.method)} is not allowed on ${url.pathname}`,
      { headers: { Allow: allowedMethods(found).join(", ") } },
    );
  }
  let params: string[];
  try {
    params = match.slice(1).map(decodeURIComponent);
  } catch {
    return problemResponse(400, `the request path ${quoteInDetail(url.pathname)} is malformed`);
  }
  const response = await handler(request, url, params);
  return request.method === "HEAD" ? withoutBody(response) : response;
}

/** The route a path takes, with its pattern's match (the parameters). */
export interface RouteMatch {
  /** The route. */
  route: Route;
  /** Its pattern's match of the path. */
  match: RegExpExecArray;
}

/**
 * The first route whose pattern matches `pathname`, or undefined: found
 * once per request, for the answer and for the metrics' `route` label.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findRoute } from "./router.ts";
 * const routes = [{ pattern: /^\/runs\/([^/]+)$/, template: "/runs/{id}", methods: {} }];
 * assert.equal(findRoute(routes, "/runs/r1")?.match[1], "r1");
 * assert.equal(findRoute(routes, "/nope"), undefined);
 * ```
 */
export function findRoute(routes: readonly Route[], pathname: string): RouteMatch | undefined {
  for (const route of routes) {
    const match = route.pattern.exec(pathname);
    if (match !== null) return { route, match };
  }
  return undefined;
}

/** The methods a route answers: its own, HEAD with GET, and OPTIONS. */
function allowedMethods(route: Route): string[] {
  const allowed = Object.keys(route.methods);
  if (allowed.includes("GET")) allowed.push("HEAD");
  allowed.push("OPTIONS");
  return allowed;
}

/**
 * A GET answer's status and headers, without its body, for HEAD. A JSON
 * answer is measured so `Content-Length` is the GET's; a stream opened for
 * it ends at once.
 */
async function withoutBody(response: Response): Promise<Response> {
  const headers = new Headers(response.headers);
  if (response.body !== null && !headers.get("content-type")?.startsWith("text/event-stream")) {
    headers.set("Content-Length", String((await response.arrayBuffer()).byteLength));
  } else {
    await response.body?.cancel();
  }
  return new Response(null, { status: response.status, headers });
}
