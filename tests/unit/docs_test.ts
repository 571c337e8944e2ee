/**
 * The docs and the code cannot drift apart: every problem type of
 * `PROBLEM_TYPES` has its section in docs/PROTOCOL.md, at the anchor its
 * `type` URI names, and `problemResponse` produces those types; the default
 * run log size the docs state is the one the code computes.
 */

import assert from "node:assert/strict";
import {
  PROBLEM_TYPE_BASE,
  PROBLEM_TYPES,
  problemResponse,
  type ProblemTypeSlug,
  problemTypeUri,
} from "../../src/sse/problem.ts";
import { defaultRunLogBytes, SERVER_DEFAULTS } from "../../src/server/config.ts";

const DOCS = new URL("../../docs/", import.meta.url);
const protocol = Deno.readTextFileSync(new URL("PROTOCOL.md", DOCS));

interface Heading {
  level: number;
  text: string;
  /** The anchor GitHub gives it (with `-1`, `-2`… for repeats). */
  anchor: string;
  /** Line index of the heading. */
  line: number;
}

/** GitHub's heading anchor: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
function githubSlug(text: string): string {
  return text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1") // a link counts by its text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replaceAll(" ", "-");
}

/** The ATX headings of a Markdown text, outside fenced code blocks. */
function headings(markdown: string): Heading[] {
  const seen = new Map<string, number>();
  const found: Heading[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((line, index) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker;
      else if (marker.startsWith(fence)) fence = undefined;
      return;
    }
    if (fence !== undefined) return;
    const match = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (match === null) return;
    const base = githubSlug(match[2]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.push({
      level: match[1].length,
      text: match[2],
      anchor: count === 0 ? base : `${base}-${count}`,
      line: index,
    });
  });
  return found;
}

/** The "Problem types" section's subsections: heading and body text. */
function problemSections(): Map<string, { heading: Heading; body: string }> {
  const lines = protocol.split("\n");
  const all = headings(protocol);
  const start = all.findIndex((h) => h.level === 2 && h.text === "Problem types");
  assert.ok(start >= 0, 'docs/PROTOCOL.md has a "## Problem types" section');
  const end = all.findIndex((h, i) => i > start && h.level <= 2);
  const inside = all.slice(start + 1, end < 0 ? undefined : end);
  const sections = new Map<string, { heading: Heading; body: string }>();
  inside.forEach((heading, i) => {
    assert.equal(heading.level, 3, `"${heading.text}": one level below "Problem types"`);
    const next = inside[i + 1]?.line ?? (end < 0 ? lines.length : all[end].line);
    sections.set(heading.anchor, {
      heading,
      body: lines.slice(heading.line + 1, next).join("\n"),
    });
  });
  return sections;
}

Deno.test("problem types: slugs are unique anchors, at most one default per status", () => {
  const slugs = PROBLEM_TYPES.map((t) => t.slug);
  assert.equal(new Set(slugs).size, slugs.length, "no slug twice");
  for (const type of PROBLEM_TYPES) {
    assert.match(type.slug, /^[a-z0-9]+(-[a-z0-9]+)*$/, `${type.slug} is its own anchor`);
    assert.equal(githubSlug(type.slug), type.slug);
    assert.ok(type.status >= 400 && type.status <= 599, `${type.slug}: an error status`);
    assert.ok(type.title.length > 0 && type.meaning.length > 0, `${type.slug}: title and meaning`);
    assert.ok(!type.meaning.includes("\n"), `${type.slug}: a one-line meaning`);
  }
  const statuses = new Set(PROBLEM_TYPES.map((t) => t.status));
  for (const status of statuses) {
    const defaults = PROBLEM_TYPES.filter((t) => t.status === status && t.isDefault);
    assert.ok(defaults.length <= 1, `status ${status} has at most one default type`);
  }
});

Deno.test("problem types: docs/PROTOCOL.md documents each one at the anchor its URI names", () => {
  assert.ok(
    protocol.includes(`\`${PROBLEM_TYPE_BASE}<slug>\` is documented at \`PROTOCOL.md#<slug>\``),
    "the doc states the mapping from type URI to section",
  );
  const sections = problemSections();
  for (const type of PROBLEM_TYPES) {
    const section = sections.get(type.slug);
    assert.ok(section !== undefined, `docs/PROTOCOL.md has a section #${type.slug}`);
    // The anchor is unique in the whole document (a repeat would get `-1`).
    const sameText = headings(protocol).filter((h) => githubSlug(h.text) === type.slug);
    assert.equal(sameText.length, 1, `only one heading of the doc has the anchor #${type.slug}`);
    assert.ok(
      section.body.trimStart().startsWith(`\`${type.status} ${type.title}\``),
      `#${type.slug} opens with its status and title`,
    );
    assert.ok(section.body.trim().length > 80, `#${type.slug} says when and what to do`);
  }
  const documented = [...sections.keys()].sort();
  const listed = PROBLEM_TYPES.map((t) => t.slug as string).sort();
  assert.deepEqual(documented, listed, "no section for a type the server does not produce");
});

/** The title and status each problem type must have, written out here, not read from the table. */
const EXPECTED_PROBLEMS: Record<string, { title: string; status: number }> = {
  "bad-request": { title: "Bad Request", status: 400 },
  "unauthorized": { title: "Unauthorized", status: 401 },
  "forbidden-host": { title: "Forbidden", status: 403 },
  "forbidden-origin": { title: "Forbidden", status: 403 },
  "not-found": { title: "Not Found", status: 404 },
  "method-not-allowed": { title: "Method Not Allowed", status: 405 },
  "not-acceptable": { title: "Not Acceptable", status: 406 },
  "conflict": { title: "Conflict", status: 409 },
  "content-too-large": { title: "Content Too Large", status: 413 },
  "unsupported-media-type": { title: "Unsupported Media Type", status: 415 },
  "unprocessable-content": { title: "Unprocessable Content", status: 422 },
  "internal-server-error": { title: "Internal Server Error", status: 500 },
  "service-unavailable": { title: "Service Unavailable", status: 503 },
};

Deno.test("problemResponse: each status gets its default type; each slug its own", async () => {
  assert.deepEqual(
    PROBLEM_TYPES.map((t) => t.slug as string).sort(),
    Object.keys(EXPECTED_PROBLEMS).sort(),
    "the problem types are exactly the expected ones",
  );
  for (const type of PROBLEM_TYPES) {
    const expected = EXPECTED_PROBLEMS[type.slug];
    assert.equal(type.status, expected.status, `status of ${type.slug}`);
    const expectedType = `${PROBLEM_TYPE_BASE}${type.slug}`;
    const chosen = problemResponse(expected.status, "detail", { type: type.slug });
    assert.equal(chosen.status, expected.status);
    assert.equal(chosen.headers.get("content-type"), "application/problem+json");
    assert.deepEqual(await chosen.json(), {
      type: expectedType,
      title: expected.title,
      status: expected.status,
      detail: "detail",
    });
    assert.equal(problemTypeUri(type.slug), expectedType);
    if (type.isDefault) {
      const body = await problemResponse(expected.status, "detail").json();
      assert.equal(body.type, expectedType, `default of ${expected.status}`);
      assert.equal(body.title, expected.title);
    }
  }
});

Deno.test("problemResponse: the types existing responses have always had", async () => {
  const expected: Record<number, string> = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "unprocessable-content",
    500: "internal-server-error",
    503: "service-unavailable",
  };
  for (const [status, slug] of Object.entries(expected)) {
    const body = await problemResponse(Number(status), "x").json();
    assert.equal(body.type, `https://dagstream.dev/problems/${slug}`);
  }
});

Deno.test("problemResponse: 403 types, and the status without a default", async () => {
  const origin = await problemResponse(403, "origin", { type: "forbidden-origin" }).json();
  assert.equal(origin.type, "https://dagstream.dev/problems/forbidden-origin");
  assert.equal(origin.title, "Forbidden");
  const host = await problemResponse(403, "host", { type: "forbidden-host" }).json();
  assert.equal(host.type, "https://dagstream.dev/problems/forbidden-host");
  assert.equal(host.title, "Forbidden");
  // 403 has no default type: RFC 9457's "about:blank", titled by the status.
  const bare = await problemResponse(403, "no type").json();
  assert.equal(bare.type, "about:blank");
  assert.equal(bare.title, "Forbidden");
  const teapot = await problemResponse(418, "unknown status").json();
  assert.deepEqual([teapot.type, teapot.title, teapot.status], ["about:blank", "Error", 418]);
});

Deno.test("problemResponse: a wrong type is a programming error; members never override", async () => {
  assert.throws(
    () => problemResponse(503, "x", { type: "forbidden-origin" }),
    (e: unknown) =>
      e instanceof RangeError && /forbidden-origin has status 403, not 503/.test(e.message),
  );
  assert.throws(
    () => problemResponse(400, "x", { type: "no-such-type" as ProblemTypeSlug }),
    TypeError,
  );
  const custom = new URL("https://example.com/problems/quota");
  const own = await problemResponse(429, "x", { type: custom }).json();
  assert.equal(own.type, "https://example.com/problems/quota");
  const response = problemResponse(409, "over", {
    title: "Other",
    status: 200,
    runId: "r1",
    headers: { "Retry-After": "1" },
  });
  assert.equal(response.headers.get("retry-after"), "1");
  assert.deepEqual(await response.json(), {
    type: "https://dagstream.dev/problems/conflict",
    title: "Conflict",
    status: 409,
    detail: "over",
    runId: "r1",
  });
});

Deno.test("docs: the default --max-run-log-bytes is the one the code computes", () => {
  const computed = defaultRunLogBytes(
    SERVER_DEFAULTS.maxTasks,
    SERVER_DEFAULTS.maxEventPayloadBytes,
  );
  const operations = Deno.readTextFileSync(new URL("OPERATIONS.md", DOCS));
  const row = operations.split("\n").find((line) => line.startsWith("| `--max-run-log-bytes`"));
  assert.ok(row !== undefined, "OPERATIONS.md lists --max-run-log-bytes");
  assert.equal(row.split("|")[2].trim(), `\`${computed}\``, "its default column");
  assert.ok(
    protocol.includes(computed.toLocaleString("en-US")),
    "PROTOCOL.md states the same figure",
  );
});
