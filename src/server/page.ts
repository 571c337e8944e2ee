/**
 * The page at `GET /`: a browser (`Accept: text/html`) gets the run page,
 * any other client a JSON index of the routes. The page's script and style
 * are served from `/ui/`, out of `src/page/assets.json`, which
 * `deno task build:page` bundles ahead of time from `src/page/` (nothing is
 * built at run time, nothing is fetched from elsewhere).
 *
 * The page and its assets hold no data, so they are public: no token, and a
 * link from another site opens them. Every API call the page makes carries
 * the token and passes the same checks as any other client's. The answers
 * forbid framing (clickjacking of the Cancel button) and allow only the
 * server's own scripts, styles and connections.
 *
 * @module
 */

import Negotiator from "npm:negotiator@1.1.0";
import assets from "../page/assets.json" with { type: "json" };
import { problemResponse, quoteInDetail } from "../sse/problem.ts";
import type { Route } from "./router.ts";

/** One bundled asset. */
interface Asset {
  /** Its content. */
  body: string;
  /** Its `Content-Type`. */
  type: string;
  /** A hash of its content, for `ETag`. */
  hash: string;
  /** Its content gzipped ahead of time, in base64. */
  gzip: string;
}

const PAGE_ASSETS = assets.assets as Record<string, Asset>;

/**
 * The headers of the page and its assets: only this server's own scripts,
 * styles and connections; no framing; no referrer; no type sniffing.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

/**
 * Whether `pathname` is the page or one of its assets: public, and open to
 * a navigation from another site.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPagePath } from "./page.ts";
 * assert.equal(isPagePath("/"), true);
 * assert.equal(isPagePath("/ui/app.js"), true);
 * assert.equal(isPagePath("/runs"), false);
 * ```
 */
export function isPagePath(pathname: string): boolean {
  return pathname === "/" || pathname.startsWith("/ui/");
}

/** What `GET /` lists for clients that are not browsers. */
const ROUTE_INDEX = [
  ["POST", "/execute", "run a DAG; the answer is its SSE stream or, without SSE, its result"],
  ["POST", "/runs", "start a detached run (202, Location: /runs/<id>)"],
  ["GET", "/runs", "recent runs, newest first (?status=, ?limit=, ?cursor=)"],
  ["GET", "/runs/{id}", "a run: status, times, DAG and result"],
  ["GET", "/runs/{id}/events", "a run's events as SSE, replayed after Last-Event-ID"],
  ["DELETE", "/runs/{id}", "cancel a run"],
  ["GET", "/tools", "the tools this server runs"],
  ["GET", "/health", "liveness and load (no token needed)"],
  ["GET", "/metrics", "metrics in the Prometheus text format"],
  ["GET", "/", "this index; the run page for browsers"],
].map(([method, path, description]) => ({ method, path, description }));

/**
 * The routes of the page: `/` and `/ui/<asset>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageRoutes } from "./page.ts";
 * const [root] = pageRoutes("0.0.0");
 * const url = new URL("http://127.0.0.1/");
 * const html = await root.methods.GET(new Request(url, { headers: { accept: "text/html" } }), url, []);
 * assert.match(html.headers.get("content-type")!, /^text\/html/);
 * const index = await root.methods.GET(new Request(url), url, []);
 * assert.equal((await index.json()).name, "dagstream");
 * await html.body?.cancel();
 * ```
 */
export function pageRoutes(version: string): Route[] {
  const index = JSON.stringify({ name: "dagstream", version, routes: ROUTE_INDEX });
  return [
    {
      pattern: /^\/$/,
      template: "/",
      methods: {
        GET: (request) =>
          wantsHtml(request)
            ? assetResponse(request, PAGE_ASSETS["index.html"])
            : new Response(index, {
              headers: { "Content-Type": "application/json", Vary: "Accept" },
            }),
      },
    },
    {
      pattern: /^\/ui\/([a-z0-9.-]+)$/,
      template: "/ui/{asset}",
      methods: {
        GET: (request, _url, [name]) => {
          const asset = Object.hasOwn(PAGE_ASSETS, name) && name !== "index.html"
            ? PAGE_ASSETS[name]
            : undefined;
          return asset === undefined
            ? problemResponse(404, `no page asset ${quoteInDetail(name)}`)
            : assetResponse(request, asset);
        },
      },
    },
  ];
}

/** Whether the client prefers HTML to JSON (a browser's navigation). */
function wantsHtml(request: Request): boolean {
  const accept = request.headers.get("accept");
  if (accept === null || accept.trim() === "") return false;
  return new Negotiator({ headers: { accept } }).mediaType(["application/json", "text/html"]) ===
    "text/html";
}

/** The gzipped bodies, decoded once each. */
const gzipped = new Map<Asset, Uint8Array<ArrayBuffer>>();

/**
 * An asset's answer: gzipped when the client takes it (the bundle is
 * compressed ahead of time), `304` when the client has it already.
 */
function assetResponse(request: Request, asset: Asset): Response {
  const gzip = acceptsGzip(request.headers.get("accept-encoding"));
  const etag = `"${asset.hash}${gzip ? "-gz" : ""}"`;
  const headers: Record<string, string> = {
    ...PAGE_HEADERS,
    ETag: etag,
    "Content-Type": asset.type,
    Vary: "Accept, Accept-Encoding",
  };
  // If-None-Match compares weakly (RFC 9110): W/"x" matches "x", and * matches any.
  const cached = request.headers.get("if-none-match");
  if (
    cached !== null &&
    cached.split(",").some((tag) => {
      const trimmed = tag.trim();
      return trimmed === "*" || trimmed.replace(/^W\//, "") === etag;
    })
  ) {
    return new Response(null, { status: 304, headers });
  }
  if (!gzip) return new Response(asset.body, { headers });
  let body = gzipped.get(asset);
  if (body === undefined) {
    body = Uint8Array.from(atob(asset.gzip), (c) => c.charCodeAt(0));
    gzipped.set(asset, body);
  }
  return new Response(body, { headers: { ...headers, "Content-Encoding": "gzip" } });
}

/** Whether `Accept-Encoding` takes gzip (listed, and not with `q=0`). */
function acceptsGzip(acceptEncoding: string | null): boolean {
  if (acceptEncoding === null) return false;
  return acceptEncoding.split(",").some((coding) => {
    const [name, ...parameters] = coding.split(";").map((part) => part.trim().toLowerCase());
    if (name !== "gzip" && name !== "x-gzip") return false;
    const q = parameters.find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}
