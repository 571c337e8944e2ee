/**
 * RFC 9457 problem details: every error answer of the HTTP layer.
 *
 * Every problem type the server can produce is in {@linkcode PROBLEM_TYPES}.
 * A problem's `type` is `https://dagstream.dev/problems/<slug>`, documented
 * at `docs/PROTOCOL.md#<slug>`.
 *
 * @module
 */

import type { ValidationIssue } from "../dag/issues.ts";

/**
 * A problem details body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Problem, problemResponse } from "./problem.ts";
 * const problem: Problem = await problemResponse(409, "run r1 is already over").json();
 * assert.equal(problem.status, 409);
 * assert.equal(problem.title, "Conflict");
 * ```
 */
export interface Problem {
  /** A URI naming the kind of problem. */
  type: string;
  /** Short summary of the kind of problem. */
  title: string;
  /** The HTTP status code (always equals the response's). */
  status: number;
  /** What went wrong with this request. */
  detail: string;
  /** For validation problems: each problem with its path. */
  errors?: ValidationIssue[];
  /** Additive members. */
  [extra: string]: unknown;
}

/**
 * One kind of problem: its `type` URI is {@linkcode PROBLEM_TYPE_BASE} + `slug`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROBLEM_TYPES, type ProblemType } from "./problem.ts";
 * const notFound: ProblemType | undefined = PROBLEM_TYPES.find((t) => t.slug === "not-found");
 * assert.equal(notFound?.status, 404);
 * ```
 */
export interface ProblemType {
  /** The last segment of the type URI, and the anchor of its section in docs/PROTOCOL.md. */
  readonly slug: string;
  /** The HTTP status a problem of this type has. */
  readonly status: number;
  /** The problem body's `title`. */
  readonly title: string;
  /** When it happens, in one line. */
  readonly meaning: string;
  /** True for the one type a problem of `status` gets when the caller names none. */
  readonly isDefault: boolean;
}

/**
 * Every problem type the server can produce, one entry each. Adding a type is
 * adding an entry here (and its section under "Problem types" in
 * docs/PROTOCOL.md, which a test checks).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROBLEM_TYPES } from "./problem.ts";
 * const forbidden = PROBLEM_TYPES.filter((t) => t.status === 403).map((t) => t.slug);
 * assert.deepEqual(forbidden, ["forbidden-host", "forbidden-origin"]);
 * ```
 */
export const PROBLEM_TYPES = [
  {
    slug: "bad-request",
    status: 400,
    title: "Bad Request",
    meaning: "malformed request: body not JSON or not UTF-8, bad Last-Event-ID, malformed URL",
    isDefault: true,
  },
  {
    slug: "unauthorized",
    status: 401,
    title: "Unauthorized",
    meaning: "a token is configured and the request carries none, or a wrong one",
    isDefault: true,
  },
  {
    slug: "forbidden-host",
    status: 403,
    title: "Forbidden",
    meaning: "a Host header not allowed on a loopback bind (DNS rebinding defence)",
    isDefault: false,
  },
  {
    slug: "forbidden-origin",
    status: 403,
    title: "Forbidden",
    meaning: "an Origin that is neither the server's own nor an allowed CORS origin",
    isDefault: false,
  },
  {
    slug: "not-found",
    status: 404,
    title: "Not Found",
    meaning: "no such route, or no such run (unknown or expired)",
    isDefault: true,
  },
  {
    slug: "method-not-allowed",
    status: 405,
    title: "Method Not Allowed",
    meaning: "the route does not take this method (Allow lists those it takes)",
    isDefault: true,
  },
  {
    slug: "not-acceptable",
    status: 406,
    title: "Not Acceptable",
    meaning: "Accept admits none of the media types the route answers with",
    isDefault: true,
  },
  {
    slug: "conflict",
    status: 409,
    title: "Conflict",
    meaning: "the run is already over, so it cannot be cancelled",
    isDefault: true,
  },
  {
    slug: "content-too-large",
    status: 413,
    title: "Content Too Large",
    meaning: "the request body is larger than the server's body limit",
    isDefault: true,
  },
  {
    slug: "unsupported-media-type",
    status: 415,
    title: "Unsupported Media Type",
    meaning: "the request body is not declared as JSON",
    isDefault: true,
  },
  {
    slug: "unprocessable-content",
    status: 422,
    title: "Unprocessable Content",
    meaning: "the DAG is invalid (errors lists every problem with its path)",
    isDefault: true,
  },
  {
    slug: "internal-server-error",
    status: 500,
    title: "Internal Server Error",
    meaning: "an unexpected failure in the server (its log has the details)",
    isDefault: true,
  },
  {
    slug: "service-unavailable",
    status: 503,
    title: "Service Unavailable",
    meaning: "the server is at a limit or shutting down; Retry-After says when to retry",
    isDefault: true,
  },
] as const satisfies readonly ProblemType[];

/**
 * The slug of a problem type of {@linkcode PROBLEM_TYPES}, e.g. `"forbidden-origin"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROBLEM_TYPES, type ProblemTypeSlug } from "./problem.ts";
 * const slug: ProblemTypeSlug = "forbidden-host";
 * assert.ok(PROBLEM_TYPES.some((t) => t.slug === slug));
 * ```
 */
export type ProblemTypeSlug = (typeof PROBLEM_TYPES)[number]["slug"];

/**
 * What every dagstream problem `type` URI starts with; the slug follows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROBLEM_TYPE_BASE, problemResponse } from "./problem.ts";
 * const body = await problemResponse(415, "send JSON").json();
 * assert.equal(body.type, `${PROBLEM_TYPE_BASE}unsupported-media-type`);
 * ```
 */
export const PROBLEM_TYPE_BASE = "https://dagstream.dev/problems/";

const BY_SLUG: ReadonlyMap<string, ProblemType> = new Map(PROBLEM_TYPES.map((t) => [t.slug, t]));
const DEFAULT_BY_STATUS: ReadonlyMap<number, ProblemType> = new Map(
  PROBLEM_TYPES.filter((t) => t.isDefault).map((t) => [t.status, t]),
);

/**
 * The `type` URI of a problem type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { problemTypeUri } from "./problem.ts";
 * assert.equal(problemTypeUri("forbidden-host"), "https://dagstream.dev/problems/forbidden-host");
 * ```
 */
export function problemTypeUri(slug: ProblemTypeSlug): string {
  return PROBLEM_TYPE_BASE + slug;
}

/**
 * Options of {@linkcode problemResponse}: the type, headers, and extra members of the body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ProblemOptions, problemResponse } from "./problem.ts";
 * const options: ProblemOptions = { headers: { "Retry-After": "1" }, limit: 1000 };
 * const response = problemResponse(503, "too many active runs", options);
 * assert.equal(response.headers.get("retry-after"), "1");
 * assert.equal((await response.json()).limit, 1000);
 * ```
 */
export interface ProblemOptions {
  /**
   * The problem type, by slug; its status must be the response's. Default:
   * the status's default type, or `about:blank` for a status that has none
   * (403, or one no entry has). A `URL` names a type outside
   * {@linkcode PROBLEM_TYPES}, verbatim.
   */
  type?: ProblemTypeSlug | URL;
  /** For validation problems: each problem with its path. */
  errors?: ValidationIssue[];
  /** Headers of the response (its Content-Type is always `application/problem+json`). */
  headers?: HeadersInit;
  /** Additive members of the body. */
  [member: string]: unknown;
}

/**
 * Builds an `application/problem+json` response. The body's `type` and
 * `title` come from {@linkcode PROBLEM_TYPES}; `status` always equals the
 * response's.
 *
 * @throws {TypeError} `type` is a string that names no problem type.
 * @throws {RangeError} `type` names a problem type of another status.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { problemResponse } from "./problem.ts";
 *
 * const notFound = problemResponse(404, 'no run with id "x"');
 * assert.equal(notFound.status, 404);
 * assert.equal(notFound.headers.get("content-type"), "application/problem+json");
 * assert.deepEqual(await notFound.json(), {
 *   type: "https://dagstream.dev/problems/not-found",
 *   title: "Not Found",
 *   status: 404,
 *   detail: 'no run with id "x"',
 * });
 *
 * const origin = problemResponse(403, "origin not allowed", { type: "forbidden-origin" });
 * const body = await origin.json();
 * assert.equal(body.type, "https://dagstream.dev/problems/forbidden-origin");
 * assert.equal(body.title, "Forbidden");
 * ```
 */
export function problemResponse(
  status: number,
  detail: string,
  options: ProblemOptions = {},
): Response {
  const { headers, type, ...members } = options;
  const resolved = resolveType(status, type);
  const body: Problem = { type: resolved.uri, title: resolved.title, status, detail, ...members };
  // An extra member never overrides the type, title or HTTP status.
  body.type = resolved.uri;
  body.title = resolved.title;
  body.status = status;
  const h = new Headers(headers);
  h.set("Content-Type", "application/problem+json");
  return new Response(JSON.stringify(body), { status, headers: h });
}

/**
 * The 406 answer of a route that answers `offered` media types only, when
 * the request's `Accept` admits none of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notAcceptable } from "./problem.ts";
 * const response = notAcceptable(["application/json", "text/event-stream"]);
 * assert.equal(response.status, 406);
 * assert.match((await response.json()).detail, /application\/json or text\/event-stream/);
 * ```
 */
export function notAcceptable(offered: readonly string[]): Response {
  const list = offered.length === 1
    ? `${offered[0]} only`
    : `${offered.slice(0, -1).join(", ")} or ${offered[offered.length - 1]}`;
  return problemResponse(
    406,
    offered.length === 1 ? `this route answers ${list}` : `Accept must admit ${list}`,
  );
}

/**
 * The 422 answer for a DAG that failed validation: every problem, each with
 * its path, under `errors`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invalidDag } from "./problem.ts";
 * const response = invalidDag([{ path: "tasks[0].tool", message: "unknown tool \"x\"" }]);
 * assert.equal(response.status, 422);
 * const body = await response.json();
 * assert.equal(body.detail, "the DAG is invalid (1 problem)");
 * assert.equal(body.errors[0].path, "tasks[0].tool");
 * ```
 */
export function invalidDag(issues: readonly ValidationIssue[]): Response {
  const n = issues.length;
  return problemResponse(422, `the DAG is invalid (${n} problem${n === 1 ? "" : "s"})`, {
    errors: [...issues],
  });
}

/**
 * A value the client sent, written into a problem's `detail`: as a JSON
 * string (quotes and control characters escaped), cut to its first 100
 * characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quoteInDetail } from "./problem.ts";
 * assert.equal(quoteInDetail('a"b'), '"a\\"b"');
 * assert.equal(quoteInDetail("x".repeat(150)), `"${"x".repeat(100)}…"`);
 * ```
 */
export function quoteInDetail(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

function resolveType(
  status: number,
  type: ProblemTypeSlug | URL | undefined,
): { uri: string; title: string } {
  if (type instanceof URL) return { uri: type.href, title: statusTitle(status) };
  if (type === undefined) {
    const fallback = DEFAULT_BY_STATUS.get(status);
    return fallback === undefined
      ? { uri: "about:blank", title: statusTitle(status) }
      : { uri: PROBLEM_TYPE_BASE + fallback.slug, title: fallback.title };
  }
  const known = BY_SLUG.get(type);
  if (known === undefined) throw new TypeError(`unknown problem type ${JSON.stringify(type)}`);
  if (known.status !== status) {
    throw new RangeError(`problem type ${type} has status ${known.status}, not ${status}`);
  }
  return { uri: PROBLEM_TYPE_BASE + known.slug, title: known.title };
}

/** The title the table gives problems of `status`, or "Error" for a status it does not know. */
function statusTitle(status: number): string {
  return (DEFAULT_BY_STATUS.get(status) ?? PROBLEM_TYPES.find((t) => t.status === status))
    ?.title ?? "Error";
}
