/**
 * Reading a request's JSON body safely: content type checked (JSON only:
 * form and text bodies are what a browser sends cross-origin without a CORS
 * preflight, so they are refused), size limit
 * enforced while reading (a large body is refused without being buffered),
 * UTF-8 and JSON errors answered with a 4xx problem.
 *
 * @module
 */

import { problemResponse, quoteInDetail } from "../sse/problem.ts";
import { concatBytes } from "../sse/bytes.ts";
import { describeError } from "../dag/errors.ts";

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/**
 * Whether a `Content-Type` value is `application/json` or `application/*+json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isJsonContentType } from "./json-body.ts";
 * assert.equal(isJsonContentType("application/json; charset=utf-8"), true);
 * assert.equal(isJsonContentType("application/problem+json"), true);
 * assert.equal(isJsonContentType("text/plain"), false);
 * ```
 */
export function isJsonContentType(value: string | null): boolean {
  if (value === null) return false;
  return JSON_TYPE.test(value.split(";")[0].trim());
}

/**
 * Reads and parses the body as JSON, or returns the problem response to
 * send: 415 (not JSON), 413 (over `maxBytes`), 400 (bad UTF-8 or JSON).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readJsonBody } from "./json-body.ts";
 * const post = (body: string, type = "application/json") =>
 *   new Request("http://localhost/runs", { method: "POST", headers: { "content-type": type }, body });
 * assert.deepEqual(await readJsonBody(post('{"tasks":[]}'), 1024), { value: { tasks: [] } });
 * const tooLarge = await readJsonBody(post('{"tasks":[]}'), 4);
 * assert.equal(tooLarge instanceof Response && tooLarge.status, 413);
 * const form = await readJsonBody(post("a=1", "application/x-www-form-urlencoded"), 1024);
 * assert.equal(form instanceof Response && form.status, 415);
 * ```
 */
export async function readJsonBody(
  request: Request,
  maxBytes: number,
): Promise<{ value: unknown } | Response> {
  const type = request.headers.get("content-type");
  if (!isJsonContentType(type)) {
    const given = type === null
      ? "the request has no Content-Type"
      : `Content-Type ${quoteInDetail(type)} is not JSON`;
    return problemResponse(
      415,
      `${given}: send the DAG as application/json (with curl: ` +
        `-H 'Content-Type: application/json' --data @dag.json, or --json @dag.json)`,
    );
  }
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) return tooLarge(maxBytes);
  if (request.body === null) return problemResponse(400, "the request has no body: send a DAG");
  const bytes = declared !== null && /^\d+$/.test(declared)
    ? await bytesOf(request)
    : await boundedBytesOf(request, maxBytes);
  if (bytes instanceof Response) return bytes;
  // A Request built in process may carry a length its body does not keep.
  if (bytes.byteLength > maxBytes) return tooLarge(maxBytes);
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return problemResponse(400, "the request body is not valid UTF-8");
  }
  if (text.trim() === "") return problemResponse(400, "the request body is empty: send a DAG");
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return problemResponse(400, `the request body is not valid JSON: ${describeError(error)}`);
  }
}

/** Strict UTF-8 (a BOM is kept, so JSON.parse refuses it); reusable, as it never streams. */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * The body of a request with a `Content-Length` (checked against the limit
 * already): the HTTP layer delivers no more than that many bytes, so it is
 * read in one call.
 */
async function bytesOf(request: Request): Promise<Uint8Array | Response> {
  try {
    return await request.bytes();
  } catch {
    return problemResponse(400, "the request body could not be read");
  }
}

/** A body of unknown length (chunked), read chunk by chunk, no further than `maxBytes`. */
async function boundedBytesOf(request: Request, maxBytes: number): Promise<Uint8Array | Response> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body!.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        return tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  } catch {
    return problemResponse(400, "the request body could not be read");
  } finally {
    reader.releaseLock();
  }
  return concatBytes(chunks);
}

function tooLarge(maxBytes: number): Response {
  return problemResponse(413, `the request body is larger than ${maxBytes} bytes`);
}
