/**
 * `GET /runs`: which runs a page of the listing holds. Runs are listed
 * newest first (by creation time, then by id, so that runs created in the
 * same millisecond keep one order), filtered by `?status=`, `?limit=` at
 * a time (default 50, at most 1000), and `?cursor=` (the `nextCursor` of
 * the previous page) continues after the last run of that page — even if
 * runs were created or expired in between.
 *
 * @module
 */

import { problemResponse, quoteInDetail } from "../sse/problem.ts";
import type { RunStatus } from "./run.ts";

/** Runs per page when `?limit=` is absent. */
export const DEFAULT_LIST_LIMIT = 50;
/** The most runs one page may hold. */
export const MAX_LIST_LIMIT = 1000;

const STATUSES: readonly RunStatus[] = ["queued", "running", "succeeded", "failed", "cancelled"];

/** What a `GET /runs` asks for. */
export interface ListQuery {
  /** Only runs with this status. */
  status?: RunStatus;
  /** Most runs in the page. */
  limit: number;
  /** Only runs listed after this one (newest first). */
  after?: ListPosition;
}

/** Where a run sits in the listing's order. */
export interface ListPosition {
  /** Its creation time, ms since the epoch. */
  createdMs: number;
  /** Its id. */
  id: string;
}

/**
 * The query of `GET /runs`, or a 400 naming the parameter that is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseListQuery } from "./run-listing.ts";
 * const query = parseListQuery(new URL("http://h/runs?status=running&limit=2"));
 * assert.deepEqual(query, { status: "running", limit: 2 });
 * const bad = parseListQuery(new URL("http://h/runs?limit=0"));
 * assert.ok(bad instanceof Response && bad.status === 400);
 * ```
 */
export function parseListQuery(url: URL): ListQuery | Response {
  const params = url.searchParams;
  const query: ListQuery = { limit: DEFAULT_LIST_LIMIT };
  const status = params.get("status");
  if (status !== null) {
    if (!(STATUSES as readonly string[]).includes(status)) {
      return problemResponse(
        400,
        `status must be one of ${STATUSES.join(", ")}, got ${quoteInDetail(status)}`,
      );
    }
    query.status = status as RunStatus;
  }
  const limit = params.get("limit");
  if (limit !== null) {
    const n = /^\d{1,4}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= MAX_LIST_LIMIT)) {
      return problemResponse(
        400,
        `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, got ${quoteInDetail(limit)}`,
      );
    }
    query.limit = n;
  }
  const cursor = params.get("cursor");
  if (cursor !== null) {
    const after = decodeCursor(cursor);
    if (after === undefined) {
      return problemResponse(
        400,
        `cursor ${quoteInDetail(cursor)} is not a nextCursor this server gave`,
      );
    }
    query.after = after;
  }
  return query;
}

/**
 * Whether run `a` is listed before run `b` (newer first; same time: greater id first).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listedBefore } from "./run-listing.ts";
 * assert.equal(listedBefore({ createdMs: 2, id: "a" }, { createdMs: 1, id: "z" }), true);
 * assert.equal(listedBefore({ createdMs: 1, id: "b" }, { createdMs: 1, id: "a" }), true);
 * ```
 */
export function listedBefore(a: ListPosition, b: ListPosition): boolean {
  return a.createdMs !== b.createdMs ? a.createdMs > b.createdMs : a.id > b.id;
}

/** One page of `GET /runs`. */
export interface RunPage<T> {
  /** The runs, newest first. */
  runs: T[];
  /** Continues after the last of them, when more runs may follow. */
  nextCursor?: string;
}

/**
 * The page of `candidates` (in any order) that `query` asks for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageOf } from "./run-listing.ts";
 * const runs = [1, 2, 3].map((n) => ({ createdMs: n, id: `r${n}`, status: "succeeded" as const }));
 * const first = pageOf(runs, { limit: 2 }, (r) => r, (r) => r.status);
 * assert.deepEqual(first.runs.map((r) => r.id), ["r3", "r2"]);
 * const rest = pageOf(runs, { limit: 2, after: runs[1] }, (r) => r, (r) => r.status);
 * assert.deepEqual(rest, { runs: [runs[0]] });
 * ```
 */
export function pageOf<T>(
  candidates: readonly T[],
  query: ListQuery,
  positionOf: (run: T) => ListPosition,
  statusOf: (run: T) => RunStatus,
): RunPage<T> {
  const { after, status, limit } = query;
  const kept = candidates.filter((run) =>
    (status === undefined || statusOf(run) === status) &&
    (after === undefined || listedBefore(after, positionOf(run)))
  );
  kept.sort((a, b) => listedBefore(positionOf(a), positionOf(b)) ? -1 : 1);
  if (kept.length <= limit) return { runs: kept };
  const runs = kept.slice(0, limit);
  return { runs, nextCursor: encodeCursor(positionOf(runs[limit - 1])) };
}

/**
 * The opaque `nextCursor` that continues after `position`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCursor, encodeCursor } from "./run-listing.ts";
 * const position = { createdMs: 1764500000000, id: "r-1" };
 * assert.deepEqual(decodeCursor(encodeCursor(position)), position);
 * assert.equal(decodeCursor("nonsense"), undefined);
 * ```
 */
export function encodeCursor(position: ListPosition): string {
  return btoa(`${position.createdMs}.${position.id}`).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** The position a cursor names, or undefined when it is not one of {@linkcode encodeCursor}'s. */
export function decodeCursor(cursor: string): ListPosition | undefined {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) return undefined;
  let text: string;
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    return undefined;
  }
  const match = /^(\d{1,15})\.([\x21-\x7e]{1,200})$/.exec(text);
  return match === null ? undefined : { createdMs: Number(match[1]), id: match[2] };
}
