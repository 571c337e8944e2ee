/**
 * Defences against being driven by a web page the user happens to have open:
 * the `Host` check (DNS rebinding) and the `Origin` check (cross-site
 * requests). Both run before anything else looks at a request.
 *
 * - A page on `evil.example` whose name the attacker re-points at 127.0.0.1
 *   sends `Host: evil.example`: on a loopback bind only the loopback names
 *   (and `allowedHosts`) are accepted.
 * - A page on any other origin can send simple requests without a CORS
 *   preflight, and browsers label them with `Origin`: one that is neither
 *   the server's own origin nor an allowed CORS origin is refused.
 *   `Origin: null` (sandboxed frames, `file:` pages) is always foreign.
 *   Browsers leave `Origin` off a few requests (a `no-cors` GET, an image),
 *   but label every request with `Sec-Fetch-Site`: one without `Origin` that
 *   a browser marks `cross-site` or `same-site` (another port of localhost
 *   is the same site) is refused too.
 *
 * Each check has its 403 answer here too; `request-checks.ts` runs them in order.
 *
 * @module
 */

import { problemResponse, quoteInDetail } from "../sse/problem.ts";

/**
 * The settings the checks read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CrossSiteSettings, hostAllowed } from "./cross-site.ts";
 * const settings: CrossSiteSettings = { allowedHosts: ["dag.internal"], loopbackOnly: true, corsOrigins: [] };
 * assert.equal(hostAllowed("dag.internal:8000", settings), true);
 * ```
 */
export interface CrossSiteSettings {
  /** Extra names the `Host` header may carry (lower case, no port). */
  allowedHosts: readonly string[];
  /** Whether the server listens on loopback only (then the `Host` check is always on). */
  loopbackOnly: boolean;
  /** Origins allowed by CORS; `*` allows any (but never `null`). */
  corsOrigins: readonly string[];
}

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * The host name of a `Host` header value, lower case and without the port
 * (`[::1]:8000` → `[::1]`), or undefined when it is not a plausible one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostName } from "./cross-site.ts";
 * assert.equal(hostName("LocalHost:8000"), "localhost");
 * assert.equal(hostName("[::1]:8000"), "[::1]");
 * assert.equal(hostName("a b"), undefined);
 * ```
 */
export function hostName(host: string): string | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?$/i.exec(host.trim());
  return match === null ? undefined : match[1].toLowerCase();
}

/**
 * Whether the request's `Host` may be served: always when the check is off
 * (a non-loopback bind without `allowedHosts`), else only for the loopback
 * names and `allowedHosts`. A request without `Host` cannot come from a
 * browser and is let through.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostAllowed } from "./cross-site.ts";
 * const settings = { allowedHosts: [], loopbackOnly: true, corsOrigins: [] };
 * assert.equal(hostAllowed("127.0.0.1:8000", settings), true);
 * assert.equal(hostAllowed("rebind.example:8000", settings), false);
 * ```
 */
export function hostAllowed(host: string | null, settings: CrossSiteSettings): boolean {
  if (!settings.loopbackOnly && settings.allowedHosts.length === 0) return true;
  if (host === null) return true;
  const name = hostName(host);
  if (name === undefined) return false;
  return LOOPBACK_NAMES.has(name) || settings.allowedHosts.includes(name);
}

/**
 * Whether a request with this `Origin` may be served: no `Origin` at all
 * (curl, server to server) unless a browser marked it as sent by another
 * site's page (`secFetchSite` `cross-site` or `same-site`), the server's own
 * origin (same host and port as `Host`, whatever the scheme, so a
 * TLS-terminating proxy in front changes nothing), or an allowed CORS origin.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { originAllowed } from "./cross-site.ts";
 * const settings = { allowedHosts: [], loopbackOnly: true, corsOrigins: ["https://app.example"] };
 * assert.equal(originAllowed(null, "127.0.0.1:8000", settings), true);
 * assert.equal(originAllowed("http://127.0.0.1:8000", "127.0.0.1:8000", settings), true);
 * assert.equal(originAllowed("https://app.example", "127.0.0.1:8000", settings), true);
 * assert.equal(originAllowed("https://evil.example", "127.0.0.1:8000", settings), false);
 * assert.equal(originAllowed("null", "127.0.0.1:8000", settings), false);
 * assert.equal(originAllowed(null, "127.0.0.1:8000", settings, "cross-site"), false);
 * assert.equal(originAllowed(null, "127.0.0.1:8000", settings, "none"), true);
 * ```
 */
export function originAllowed(
  origin: string | null,
  host: string | null,
  settings: CrossSiteSettings,
  secFetchSite: string | null = null,
): boolean {
  if (origin === null) {
    const site = secFetchSite?.trim().toLowerCase();
    return site !== "cross-site" && site !== "same-site";
  }
  const value = origin.trim();
  if (value.toLowerCase() === "null") return false;
  if (settings.corsOrigins.includes("*") || settings.corsOrigins.includes(value)) return true;
  if (host === null) return false;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return false;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return false;
  const ownName = hostName(host);
  const ownPort = /:(\d{1,5})$/.exec(host.trim())?.[1];
  const originPort = parsed.port || (parsed.protocol === "https:" ? "443" : "80");
  return ownName !== undefined && parsed.hostname.toLowerCase() === ownName &&
    (ownPort === undefined ? originPort === "80" || originPort === "443" : originPort === ownPort);
}

/**
 * The 403 answer to a request whose `Host` may not be served (see
 * {@linkcode hostAllowed}), or undefined when it may.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseForeignHost } from "./cross-site.ts";
 * const settings = { allowedHosts: [], loopbackOnly: true, corsOrigins: [] };
 * const request = (host: string) => new Request("http://127.0.0.1/health", { headers: { host } });
 * assert.equal(refuseForeignHost(request("localhost:8000"), settings), undefined);
 * const refused = refuseForeignHost(request("rebind.example"), settings);
 * assert.equal(refused?.status, 403);
 * assert.equal((await refused?.json()).type, "https://dagstream.dev/problems/forbidden-host");
 * ```
 */
export function refuseForeignHost(
  request: Request,
  settings: CrossSiteSettings,
): Response | undefined {
  const host = request.headers.get("host");
  if (hostAllowed(host, settings)) return undefined;
  const extra = settings.allowedHosts.length > 0 ? ` and ${settings.allowedHosts.join(", ")}` : "";
  return problemResponse(
    403,
    `the Host header ${
      quoteInDetail(host ?? "")
    } is not allowed: this server answers requests for ` +
      `localhost, 127.0.0.1 and [::1]${extra} (start it with --allowed-host NAME to add a name)`,
    { type: "forbidden-host" },
  );
}

/**
 * The 403 answer to a request sent by another site's page (see
 * {@linkcode originAllowed}), or undefined when it may be served.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refuseForeignOrigin } from "./cross-site.ts";
 * const settings = { allowedHosts: [], loopbackOnly: true, corsOrigins: [] };
 * const request = (origin: string) =>
 *   new Request("http://127.0.0.1:8000/runs", { headers: { host: "127.0.0.1:8000", origin } });
 * assert.equal(refuseForeignOrigin(request("http://127.0.0.1:8000"), settings), undefined);
 * const refused = refuseForeignOrigin(request("https://evil.example"), settings);
 * assert.equal(refused?.status, 403);
 * assert.equal((await refused?.json()).type, "https://dagstream.dev/problems/forbidden-origin");
 * ```
 */
export function refuseForeignOrigin(
  request: Request,
  settings: CrossSiteSettings,
): Response | undefined {
  const { headers } = request;
  const origin = headers.get("origin");
  if (originAllowed(origin, headers.get("host"), settings, headers.get("sec-fetch-site"))) {
    return undefined;
  }
  const from = origin === null ? "another site's page" : `origin ${quoteInDetail(origin)}`;
  return problemResponse(
    403,
    `requests from ${from} are not allowed ` +
      `(start the server with --cors-origin ORIGIN to allow a web app's origin)`,
    { type: "forbidden-origin" },
  );
}
