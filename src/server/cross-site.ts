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
 * @module
 */

/** The settings the checks read. */
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
 * The `Access-Control-Allow-Origin` value for a request from `origin`, or
 * undefined for none: `*` when any origin is allowed, else the request's own
 * origin when it is one of the allowed ones, else the only allowed origin
 * (a client without `Origin` learns nothing it could not read in the docs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allowOriginHeader } from "./cross-site.ts";
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
