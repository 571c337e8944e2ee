/**
 * RFC 9457 problem details: every error answer of the HTTP layer.
 *
 * @module
 */

import type { ValidationIssue } from "../dag/validate.ts";

/** A problem details body. */
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

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/**
 * Builds an `application/problem+json` response.
 *
 * @example
 * ```ts
 * import { problemResponse } from "./problem.ts";
 * const response = problemResponse(404, "no run with id \"x\"");
 * console.log(response.status, response.headers.get("content-type"));
 * ```
 */
export function problemResponse(
  status: number,
  detail: string,
  extra: {
    errors?: ValidationIssue[];
    type?: string;
    headers?: HeadersInit;
    [k: string]: unknown;
  } = {},
): Response {
  const { headers, type, ...members } = extra;
  const title = TITLES[status] ?? "Error";
  const body: Problem = {
    type: type ?? `https://dagstream.dev/problems/${title.toLowerCase().replaceAll(" ", "-")}`,
    title,
    status,
    detail,
    ...members,
  };
  body.status = status; // an extra member never overrides the HTTP status
  const h = new Headers(headers);
  h.set("Content-Type", "application/problem+json");
  return new Response(JSON.stringify(body), { status, headers: h });
}
