/**
 * The checks every request passes before the server does any work, in this
 * order (the first that fails answers):
 *
 * 1. `Host`: a name this server answers to (DNS rebinding) — 403 `forbidden-host`
 * 2. `Origin`: the server's own or an allowed CORS origin — 403 `forbidden-origin`
 *    (not for `GET` and `HEAD` of the page, `/` and `/ui/…`, which hold no data)
 * 3. the bearer token, when one is set — 401 (a CORS preflight carries none
 *    and skips this step)
 * 4. route and method — 404, 405; `OPTIONS` and `HEAD` are answered here
 * 5. the body's type and size, then its UTF-8 and JSON — 415, 413, 400
 * 6. validation of the DAG — 422
 *
 * {@linkcode answerChecked} runs steps 1–4 and hands the request to its
 * route's handler; a handler that takes a DAG runs steps 5–6 with
 * {@linkcode readDag}.
 *
 * @module
 */

import type { PreparedDAG } from "../dag/validate.ts";
import { invalidDag } from "../sse/problem.ts";
import { refuseWithoutToken } from "./auth.ts";
import { isPreflight } from "./cors.ts";
import { type CrossSiteSettings, refuseForeignHost, refuseForeignOrigin } from "./cross-site.ts";
import { checkDag, type DagChecks } from "./dag-checks.ts";
import { readJsonBody } from "./json-body.ts";
import { isPagePath } from "./page.ts";
import { dispatch, findRoute, type Route, type RouteMatch } from "./router.ts";

/**
 * What steps 1–4 read.
 *
 * @example
 * ```ts
 * import type { RequestChecks } from "./request-checks.ts";
 * const checks: RequestChecks = {
 *   crossSite: { allowedHosts: [], loopbackOnly: true, corsOrigins: [] },
 *   token: "s3cret",
 *   routes: [],
 * };
 * ```
 */
export interface RequestChecks {
  /** The Host and Origin checks' settings. */
  crossSite: CrossSiteSettings;
  /** The bearer token to require; none when undefined. */
  token?: string;
  /** The routes. */
  routes: readonly Route[];
}

/**
 * Answers a request (`url` is its URL, parsed once by the caller): steps
 * 1–4, then its route's handler.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { answerChecked } from "./request-checks.ts";
 * const checks = {
 *   crossSite: { allowedHosts: [], loopbackOnly: true, corsOrigins: [] },
 *   token: "s3cret",
 *   routes: [{ pattern: /^\/tools$/, methods: { GET: () => Response.json({ tools: [] }) } }],
 * };
 * const get = (headers: Record<string, string>) =>
 *   answerChecked(
 *     new Request("http://127.0.0.1:8000/tools", { headers }),
 *     new URL("http://127.0.0.1:8000/tools"),
 *     checks,
 *   );
 * // The Host check comes before the token check.
 * assert.equal((await get({ host: "evil.example" })).status, 403);
 * assert.equal((await get({ host: "127.0.0.1:8000" })).status, 401);
 * const ok = await get({ host: "127.0.0.1:8000", authorization: "Bearer s3cret" });
 * assert.deepEqual(await ok.json(), { tools: [] });
 * ```
 */
export async function answerChecked(
  request: Request,
  url: URL,
  checks: RequestChecks,
  matched: RouteMatch | undefined = findRoute(checks.routes, url.pathname),
): Promise<Response> {
  // The page and its assets hold no data: a link from another site may open them.
  const publicPage = (request.method === "GET" || request.method === "HEAD") &&
    isPagePath(url.pathname);
  return refuseForeignHost(request, checks.crossSite) ??
    (publicPage ? undefined : refuseForeignOrigin(request, checks.crossSite)) ??
    (isPreflight(request) ? undefined : refuseWithoutToken(request, url, checks.token)) ??
    await dispatch(checks.routes, request, url, checks.crossSite.corsOrigins, matched);
}

/**
 * Steps 5–6: reads the body as JSON and validates it as a DAG whose tasks
 * call known tools with arguments they take, or answers why not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinTools } from "../tools/builtin.ts";
 * import { createToolRegistry } from "../tools/registry.ts";
 * import { readDag } from "./request-checks.ts";
 * const checks = { maxBodyBytes: 1024, maxTasks: 10, tools: createToolRegistry({ ...builtinTools }) };
 * const post = (dag: unknown) =>
 *   new Request("http://127.0.0.1/runs", {
 *     method: "POST",
 *     headers: { "content-type": "application/json" },
 *     body: JSON.stringify(dag),
 *   });
 * const dag = await readDag(post({ tasks: [{ id: "a", tool: "mock:echo" }] }), checks);
 * assert.ok(!(dag instanceof Response) && dag.tasks.length === 1);
 * const invalid = await readDag(post({ tasks: [{ id: "a", tool: "nope" }] }), checks);
 * assert.ok(invalid instanceof Response && invalid.status === 422);
 * await invalid.body?.cancel();
 * ```
 */
export async function readDag(
  request: Request,
  checks: DagChecks,
): Promise<PreparedDAG | Response> {
  const body = await readJsonBody(request, checks.maxBodyBytes);
  if (body instanceof Response) return body;
  const checked = checkDag(body.value, checks);
  return checked.ok ? checked.dag : invalidDag(checked.issues);
}
