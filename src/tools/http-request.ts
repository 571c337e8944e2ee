/**
 * `http:request`, a tool that calls HTTP APIs: `{ method?, url, headers?,
 * query?, body?, timeoutMs?, okStatuses? }` → `{ status, headers, body }`.
 *
 * Only the hosts of its allowlist can be called (`HOST` for every port,
 * `HOST:PORT` for one, see `http-allowlist.ts`), redirects included, which
 * are followed by hand (at most {@linkcode MAX_HTTP_REDIRECTS}), each hop
 * checked like the first. A host name is resolved before the call, and an
 * address that is not public (loopback, private, link-local… see
 * `classifyAddress`) is refused unless the allowlist names that address
 * itself; `localhost` may reach loopback addresses. Over `http:` the call
 * then goes to the address that was checked (the name is not resolved
 * again); over `https:` the platform resolves the name again, and the
 * certificate check ties the connection to the name.
 *
 * The tool writes no log: request headers (an `Authorization`…) go nowhere
 * but to the host called.
 *
 * @module
 */

import { MAX_TIMER_MS } from "../dag/defaults.ts";
import { describeError } from "../dag/errors.ts";
import { concatBytes } from "../sse/bytes.ts";
import {
  addressAsHost,
  type AddressRange,
  classifyAddress,
  HttpAllowList,
  isIpHost,
  portOf,
} from "./http-allowlist.ts";
import type { ToolDefinition } from "./registry.ts";

/**
 * The methods `http:request` sends, in upper case as it takes them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HTTP_METHODS } from "./http-request.ts";
 * assert.ok(HTTP_METHODS.includes("PATCH"));
 * ```
 */
export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/**
 * Default `timeoutMs` of a call, in ms (the task's own timeout applies too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_HTTP_TIMEOUT_MS } from "./http-request.ts";
 * assert.equal(DEFAULT_HTTP_TIMEOUT_MS, 30_000);
 * ```
 */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

/**
 * Default most bytes of a response body (1 MiB); past it the call fails.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_HTTP_RESPONSE_BYTES } from "./http-request.ts";
 * assert.equal(DEFAULT_MAX_HTTP_RESPONSE_BYTES, 1_048_576);
 * ```
 */
export const DEFAULT_MAX_HTTP_RESPONSE_BYTES = 1024 * 1024;

/**
 * Most redirects one call follows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_HTTP_REDIRECTS } from "./http-request.ts";
 * assert.equal(MAX_HTTP_REDIRECTS, 5);
 * ```
 */
export const MAX_HTTP_REDIRECTS = 5;

/** Most characters of a failed response's body its error message shows. */
const PREVIEW_CHARS = 200;
/** Bytes read of a failed response's body, for its preview. */
const PREVIEW_BYTES = 1024;

/** An HTTP token: what a header name is made of. */
const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/** {@linkcode TOKEN} as a pattern, to check header names with. */
const TOKEN_PATTERN = new RegExp(TOKEN);

/** Headers the platform writes itself (framing, connection, host): a call cannot set them. */
const RESERVED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
]);

/** Headers of credentials, dropped when a redirect leads to another origin. */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

/** Headers that describe a body, dropped with it when a redirect turns a call into a GET. */
const BODY_HEADERS = ["content-type", "content-encoding", "content-language", "content-location"];

/**
 * The JSON Schema of `http:request`'s arguments (enforced by the registry).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HTTP_REQUEST_INPUT_SCHEMA } from "./http-request.ts";
 * assert.deepEqual(HTTP_REQUEST_INPUT_SCHEMA.required, ["url"]);
 * ```
 */
export const HTTP_REQUEST_INPUT_SCHEMA = {
  type: "object",
  properties: {
    method: {
      type: "string",
      enum: [...HTTP_METHODS],
      description: "the method, in upper case (default GET)",
    },
    url: {
      type: "string",
      pattern: "^[Hh][Tt][Tt][Pp][Ss]?://",
      description: "an http:// or https:// URL on a host the server allows (--allow-http)",
    },
    headers: {
      type: "object",
      propertyNames: { pattern: TOKEN },
      additionalProperties: { type: "string" },
      description: "request headers, by name",
    },
    query: {
      type: "object",
      additionalProperties: { type: ["string", "number", "boolean"] },
      description: "parameters added to the URL's query string",
    },
    body: {
      description: "a string is sent as is (text/plain unless content-type is given); " +
        "any other JSON value as JSON (application/json)",
    },
    timeoutMs: {
      type: "integer",
      minimum: 1,
      maximum: MAX_TIMER_MS,
      description:
        `ms the whole call may take, redirects and body included (default ${DEFAULT_HTTP_TIMEOUT_MS})`,
    },
    okStatuses: {
      type: "array",
      items: { type: "integer", minimum: 100, maximum: 599 },
      minItems: 1,
      description: "the statuses that succeed (default: 200-299)",
    },
  },
  required: ["url"],
  additionalProperties: false,
} as const;

/**
 * Resolves a host name to its addresses (IPv4 ones first), or rejects;
 * `signal` aborts the lookup.
 */
export type HostResolver = (hostname: string, signal: AbortSignal) => Promise<string[]>;

/**
 * Settings of {@linkcode httpRequestTool}.
 *
 * @example
 * ```ts
 * import type { HttpRequestToolOptions } from "./http-request.ts";
 * const options: HttpRequestToolOptions = { allow: ["api.example.com"], maxResponseBytes: 65536 };
 * ```
 */
export interface HttpRequestToolOptions {
  /** The hosts it may call: `HOST` (every port) or `HOST:PORT`, e.g. `api.example.com`, `127.0.0.1:9000`. */
  allow: readonly string[];
  /** Most bytes of a response body; past it the call fails. Default 1 MiB. */
  maxResponseBytes?: number;
  /** How host names are resolved. Default {@linkcode resolveHost} (`Deno.resolveDns`). */
  resolve?: HostResolver;
}

/**
 * What a call of `http:request` returns: the final response's status, its
 * headers (lower-case names; repeated ones joined with `, `), and its body,
 * parsed when it is JSON (`application/json`, `…+json`), else text (`null`
 * for `HEAD`, 204, 205 and 304).
 *
 * @example
 * ```ts
 * import type { HttpResponseOutput } from "./http-request.ts";
 * const output: HttpResponseOutput = { status: 200, headers: {}, body: { ok: true } };
 * ```
 */
export interface HttpResponseOutput {
  /** The status of the final response. */
  status: number;
  /** Its headers, by lower-case name. */
  headers: Record<string, string>;
  /** Its body: parsed JSON, text, or `null`. */
  body: unknown;
}

/**
 * Resolves a host name with `Deno.resolveDns`: its A records, then its
 * AAAA records. A kind of record the name has none of is left out; the
 * lookup fails when there are none at all, or when one of the two queries
 * fails otherwise.
 *
 * @example
 * ```ts ignore
 * import { resolveHost } from "./http-request.ts";
 * const addresses: string[] = await resolveHost("example.com", AbortSignal.timeout(5000));
 * ```
 */
export async function resolveHost(hostname: string, signal: AbortSignal): Promise<string[]> {
  const lookups = await Promise.allSettled(
    (["A", "AAAA"] as const).map((type) => Deno.resolveDns(hostname, type, { signal })),
  );
  const addresses: string[] = [];
  for (const lookup of lookups) {
    if (lookup.status === "fulfilled") addresses.push(...lookup.value);
    else if (!(lookup.reason instanceof Deno.errors.NotFound)) throw lookup.reason;
  }
  if (addresses.length === 0) throw new Error(`no address found for "${hostname}"`);
  return addresses;
}

/** A call, checked and ready to send. */
interface Prepared {
  method: string;
  url: URL;
  headers: Headers;
  body?: string;
  timeoutMs: number;
  okStatuses?: ReadonlySet<number>;
}

/** An error of a call; its message starts with `http:request: `. */
function failure(message: string): Error {
  return new Error(`http:request: ${message}`);
}

/**
 * A URL as messages show it: no user, password, query or fragment (they may
 * carry secrets); `?…` says a query was there.
 */
function shownUrl(url: URL): string {
  return `${url.origin}${url.pathname}${url.search === "" ? "" : "?…"}`;
}

/** Reads and checks the arguments (the registry checked the schema; this guards direct calls too). */
function prepare(args: Record<string, unknown>): Prepared {
  const method = args.method ?? "GET";
  if (typeof method !== "string" || !(HTTP_METHODS as readonly string[]).includes(method)) {
    throw failure(`method must be one of ${HTTP_METHODS.join(", ")} (in upper case)`);
  }
  if (typeof args.url !== "string") throw failure("url must be a string");
  let url: URL;
  try {
    url = new URL(args.url);
  } catch {
    throw failure("url is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw failure(`url must be http:// or https://, not ${url.protocol}//`);
  }
  if (url.username !== "" || url.password !== "") {
    throw failure("url must not carry a user name or password (send an authorization header)");
  }
  url.hash = "";
  appendQuery(url, args.query);
  const headers = requestHeaders(args.headers);
  let body: string | undefined;
  if (args.body !== undefined) {
    if (method === "GET" || method === "HEAD") throw failure(`a ${method} request has no body`);
    if (typeof args.body === "string") {
      body = args.body;
      if (!headers.has("content-type")) headers.set("content-type", "text/plain;charset=UTF-8");
    } else {
      body = JSON.stringify(args.body);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
  }
  const timeoutMs = args.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  if (
    !Number.isInteger(timeoutMs) || (timeoutMs as number) < 1 ||
    (timeoutMs as number) > MAX_TIMER_MS
  ) {
    throw failure(`timeoutMs must be a whole number of ms from 1 to ${MAX_TIMER_MS}`);
  }
  let okStatuses: Set<number> | undefined;
  if (args.okStatuses !== undefined) {
    const list = args.okStatuses;
    if (
      !Array.isArray(list) || list.length === 0 ||
      !list.every((s) => Number.isInteger(s) && s >= 100 && s <= 599)
    ) {
      throw failure("okStatuses must be a list of statuses from 100 to 599");
    }
    okStatuses = new Set(list);
  }
  return { method, url, headers, body, timeoutMs: timeoutMs as number, okStatuses };
}

/** Adds `query` to the URL's query string, leaving what is already there as it is written. */
function appendQuery(url: URL, query: unknown): void {
  if (query === undefined) return;
  if (typeof query !== "object" || query === null || Array.isArray(query)) {
    throw failure("query must be an object of strings, numbers and booleans");
  }
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (!["string", "number", "boolean"].includes(typeof value)) {
      throw failure(`query.${name} must be a string, a number or a boolean`);
    }
    params.append(name, String(value));
  }
  const added = params.toString();
  if (added === "") return;
  const search = url.search.replace(/^\?/, "");
  url.search = search === "" ? added : `${search}&${added}`;
}

/** The caller's headers, checked: names are tokens, values can be sent, none the platform owns. */
function requestHeaders(given: unknown): Headers {
  const headers = new Headers();
  if (given === undefined) return headers;
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw failure("headers must be an object of strings");
  }
  for (const [name, value] of Object.entries(given)) {
    // The value is never shown: it may be a secret.
    if (!TOKEN_PATTERN.test(name)) {
      throw failure(`${JSON.stringify(name)} is not a header name`);
    }
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw failure(`the ${name.toLowerCase()} header is set by the platform and cannot be given`);
    }
    if (typeof value !== "string") throw failure(`header ${name} must be a string`);
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) {
      throw failure(
        `header ${name} has a character a header cannot carry (a control character, or one ` +
          "beyond U+00FF)",
      );
    }
    headers.append(name, value);
  }
  return headers;
}

/** `a` or `an` before a range's name. */
function article(range: AddressRange): string {
  return /^[aeiou]/.test(range) ? "an" : "a";
}

/** The host of an address as the URL parser writes it, to compare with allowlist entries. */
function addressHost(address: string): string {
  try {
    return new URL(`http://${addressAsHost(address)}/`).hostname;
  } catch {
    return address;
  }
}

/** Whether a name is `localhost` (or under `.localhost`): it may reach loopback addresses. */
function isLocalhostName(host: string): boolean {
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  return name === "localhost" || name.endsWith(".localhost");
}

/**
 * Checks that a call may go to `url` (scheme, allowlist, the addresses a
 * name resolves to), and gives the addresses to connect to for a name over
 * `http:` (undefined: let the platform connect). `redirect` words the
 * refusal for a redirect's target.
 */
async function checkTarget(
  url: URL,
  allow: HttpAllowList,
  resolve: HostResolver,
  signal: AbortSignal,
  redirect: boolean,
): Promise<string[] | undefined> {
  const refused = (why: string) =>
    failure(redirect ? `redirect to "${shownUrl(url)}" is not allowed: ${why}` : why);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw refused(`the scheme must be http:// or https://, not ${url.protocol}//`);
  }
  if (url.username !== "" || url.password !== "") {
    throw refused("the URL carries a user name or password");
  }
  const host = url.hostname;
  const port = portOf(url);
  if (!allow.allowsUrl(url)) {
    const entry = `${host}:${port}`;
    throw refused(
      redirect
        ? `host "${entry}" is not in --allow-http`
        : `host "${entry}" is not allowed (start the server with --allow-http ${entry})`,
    );
  }
  // An address in the allowlist was named there: calling it is what was asked for.
  if (isIpHost(host)) return undefined;
  let addresses: string[];
  try {
    addresses = await resolve(host, signal);
  } catch (error) {
    if (signal.aborted) throw error;
    throw refused(`cannot resolve "${host}": ${describeError(error)}`);
  }
  if (addresses.length === 0) throw refused(`cannot resolve "${host}": no address`);
  for (const address of addresses) {
    const range = classifyAddress(address);
    if (range === undefined) continue;
    if (range === "loopback" && isLocalhostName(host)) continue;
    const listed = addressHost(address);
    if (allow.allows(listed, port)) continue;
    throw refused(
      `"${host}" resolves to ${article(range)} ${range} address ${address} ` +
        `(list it with --allow-http ${listed}:${port} to allow)`,
    );
  }
  return url.protocol === "http:" ? addresses : undefined;
}

/** A response, and what to release once its body is read. */
interface Sent {
  response: Response;
  close(): void;
}

/**
 * Sends one request. With `address`, to that address, the name going in
 * the `Host` header: the name is not resolved again.
 */
async function send(
  call: { method: string; url: URL; headers: Headers; body?: string },
  address: string | undefined,
  signal: AbortSignal,
): Promise<Sent> {
  let target = call.url;
  let headers = call.headers;
  let client: Deno.HttpClient | undefined;
  if (address !== undefined) {
    target = new URL(call.url);
    target.hostname = addressAsHost(address);
    headers = new Headers(call.headers);
    headers.set("host", call.url.host);
    client = Deno.createHttpClient({ allowHost: true });
  }
  try {
    const response = await fetch(target, {
      method: call.method,
      headers,
      body: call.body,
      redirect: "manual",
      signal,
      client,
    });
    return { response, close: () => client?.close() };
  } catch (error) {
    client?.close();
    if (signal.aborted) throw error;
    const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
    const message = describeError(cause)
      .replaceAll(target.href, shownUrl(call.url))
      .replaceAll(call.url.href, shownUrl(call.url));
    throw failure(`${call.method} ${shownUrl(call.url)} failed: ${message}`);
  }
}

/**
 * Sends one request to the first of `addresses` that takes the connection
 * (each was checked), as clients do with a name that has several; without
 * addresses, lets the platform connect.
 */
async function sendToAny(
  call: { method: string; url: URL; headers: Headers; body?: string },
  addresses: readonly string[] | undefined,
  signal: AbortSignal,
): Promise<Sent> {
  if (addresses === undefined) return send(call, undefined, signal);
  let last: unknown;
  for (const address of addresses) {
    try {
      return await send(call, address, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      last = error;
    }
  }
  throw last;
}

/** About how many bytes a response's headers take: names, values and separators. */
function headerBytes(headers: Headers): number {
  let bytes = 0;
  for (const [name, value] of headers) bytes += name.length + value.length + 4;
  return bytes;
}

/** Whether a status redirects (when a `Location` comes with it). */
function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 ||
    status === 308;
}

/**
 * Reads a body to its end, or fails once it is over `cap` bytes (what came
 * is dropped and the rest is not read).
 */
async function readCapped(
  response: Response,
  cap: number,
  overCap: () => Error,
): Promise<Uint8Array> {
  if (cap < 0) {
    await response.body?.cancel().catch(() => {});
    throw overCap();
  }
  const declared = response.headers.get("content-length");
  if (
    declared !== null && !response.headers.has("content-encoding") && Number(declared) > cap
  ) {
    await response.body?.cancel().catch(() => {});
    throw overCap();
  }
  if (response.body === null) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > cap) {
      await reader.cancel().catch(() => {});
      throw overCap();
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}

/** The first characters of a body, on one line, for an error message; "" when empty. */
async function preview(response: Response): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < PREVIEW_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // what came is enough
  } finally {
    await reader.cancel().catch(() => {});
  }
  const text = new TextDecoder().decode(concatBytes(chunks).subarray(0, PREVIEW_BYTES)).replace(
    /\s+/g,
    " ",
  )
    .trim();
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
}

/** Whether a media type is JSON: `application/json`, `text/json`, or a `+json` type. */
function isJson(contentType: string | null): boolean {
  const type = contentType?.split(";")[0].trim().toLowerCase() ?? "";
  return /^[a-z0-9!#$&^_.+-]+\/(?:json|[a-z0-9!#$&^_.+-]*\+json)$/.test(type);
}

/** Decodes text with the `charset` of `contentType`, UTF-8 when it names none or one unknown. */
function decodeText(bytes: Uint8Array, contentType: string | null): string {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? "")?.[1];
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset ?? "utf-8");
  } catch {
    decoder = new TextDecoder();
  }
  return decoder.decode(bytes);
}

/** The response headers as a plain object: lower-case names, repeated ones joined. */
function plainHeaders(headers: Headers): Record<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of headers) {
    const before = out.get(name);
    out.set(name, before === undefined ? value : `${before}, ${value}`);
  }
  return Object.fromEntries(out);
}

/** Follows the call through its redirects and reads the final response. */
async function perform(
  call: Prepared,
  allow: HttpAllowList,
  resolve: HostResolver,
  maxResponseBytes: number,
  signal: AbortSignal,
): Promise<HttpResponseOutput> {
  let { method, url, body } = call;
  const headers = new Headers(call.headers);
  for (let redirects = 0;; redirects++) {
    const addresses = await checkTarget(url, allow, resolve, signal, redirects > 0);
    const sent = await sendToAny({ method, url, headers, body }, addresses, signal);
    try {
      const { response } = sent;
      const location = response.headers.get("location");
      if (isRedirect(response.status) && location !== null) {
        await response.body?.cancel().catch(() => {});
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw failure(`${method} ${shownUrl(url)} redirected to an invalid URL`);
        }
        if (redirects === MAX_HTTP_REDIRECTS) {
          throw failure(
            `more than ${MAX_HTTP_REDIRECTS} redirects (the last to "${shownUrl(next)}")`,
          );
        }
        const status = response.status;
        if (
          status === 303
            ? method !== "HEAD"
            : (status === 301 || status === 302) && method === "POST"
        ) {
          method = "GET";
          body = undefined;
          for (const name of BODY_HEADERS) headers.delete(name);
        }
        if (next.origin !== url.origin) {
          for (const name of CREDENTIAL_HEADERS) headers.delete(name);
        }
        next.hash = "";
        url = next;
        continue;
      }
      const ok = call.okStatuses?.has(response.status) ??
        (response.status >= 200 && response.status <= 299);
      if (!ok) {
        const text = await preview(response);
        throw failure(
          `${method} ${shownUrl(url)} answered ${response.status}` +
            (response.statusText === "" ? "" : ` ${response.statusText}`) +
            (text === "" ? "" : `: ${text}`),
        );
      }
      const contentType = response.headers.get("content-type");
      const tooLarge = () =>
        failure(
          `the response of ${method} ${shownUrl(url)} is over ${maxResponseBytes} bytes ` +
            "(--max-http-response-bytes; headers count too)",
        );
      if (headerBytes(response.headers) > maxResponseBytes) {
        await response.body?.cancel().catch(() => {});
        throw tooLarge();
      }
      let output: unknown = null;
      if (method === "HEAD" || [204, 205, 304].includes(response.status)) {
        await response.body?.cancel().catch(() => {});
      } else {
        // The headers count too: the cap bounds what a response can put into a run.
        const bytes = await readCapped(
          response,
          maxResponseBytes - headerBytes(response.headers),
          tooLarge,
        );
        if (!isJson(contentType)) {
          output = decodeText(bytes, contentType);
        } else if (bytes.byteLength > 0) {
          try {
            output = JSON.parse(new TextDecoder().decode(bytes));
          } catch (error) {
            throw failure(
              `the response of ${method} ${shownUrl(url)} says ${contentType} but is not JSON: ` +
                describeError(error),
            );
          }
        }
      }
      return { status: response.status, headers: plainHeaders(response.headers), body: output };
    } finally {
      sent.close();
    }
  }
}

/**
 * The `http:request` tool, calling only the hosts of `options.allow`: give
 * it a name in a registry (`createToolRegistry({ "http:request":
 * httpRequestTool({ allow }) })`). Throws a `RangeError` for a bad
 * allowlist entry. A call fails on a host that is not allowed, a network
 * error, a status outside `okStatuses` (default 200–299), a body over
 * `maxResponseBytes`, a body declared JSON that is not, or `timeoutMs`; the
 * task's signal (its timeout, a cancelled run) aborts it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { httpRequestTool } from "./http-request.ts";
 * import { createToolRegistry } from "./registry.ts";
 * const api = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen: () => {} },
 *   async (request) => Response.json({ got: await request.json() }),
 * );
 * const tools = createToolRegistry({
 *   "http:request": httpRequestTool({ allow: [`127.0.0.1:${api.addr.port}`] }),
 * });
 * const ctx = { signal: new AbortController().signal, taskId: "t1" };
 * const output = await tools.execute("http:request", {
 *   method: "POST",
 *   url: `http://127.0.0.1:${api.addr.port}/echo`,
 *   body: { n: 1 },
 * }, ctx) as { status: number; body: unknown };
 * assert.equal(output.status, 200);
 * assert.deepEqual(output.body, { got: { n: 1 } });
 * await assert.rejects(
 *   tools.execute("http:request", { url: "http://example.com/" }, ctx),
 *   /host "example.com:80" is not allowed \(start the server with --allow-http example.com:80\)/,
 * );
 * await api.shutdown();
 * ```
 */
export function httpRequestTool(options: HttpRequestToolOptions): ToolDefinition {
  const allow = new HttpAllowList(options.allow);
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_HTTP_RESPONSE_BYTES;
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 1) {
    throw new RangeError(`maxResponseBytes must be a whole number of bytes, at least 1`);
  }
  const resolve = options.resolve ?? resolveHost;
  const hosts = allow.entries.map((e) => e.port === undefined ? e.host : `${e.host}:${e.port}`);
  return {
    description: "Calls an HTTP API and returns { status, headers, body } (body parsed when " +
      "JSON, else text). Fails on a network error, a status outside okStatuses (default " +
      `2xx), a body over ${maxResponseBytes} bytes, or timeoutMs. Allowed hosts: ` +
      `${hosts.join(", ")}.`,
    inputSchema: HTTP_REQUEST_INPUT_SCHEMA,
    async run(args, ctx) {
      const call = prepare(args);
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), call.timeoutMs);
      const signal = AbortSignal.any([ctx.signal, timeout.signal]);
      try {
        return await perform(call, allow, resolve, maxResponseBytes, signal);
      } catch (error) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (timeout.signal.aborted) {
          throw failure(
            `${call.method} ${shownUrl(call.url)} timed out after ${call.timeoutMs} ms`,
          );
        }
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
