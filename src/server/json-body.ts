/**
 * Reading a request's JSON body safely: content type checked, size limit
 * enforced while reading (a large body is refused without being buffered),
 * UTF-8 and JSON errors answered with a 4xx problem.
 *
 * @module
 */

import { problemResponse } from "./problem.ts";

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/** Whether a `Content-Type` value is `application/json` or `application/*+json`. */
export function isJsonContentType(value: string | null): boolean {
  if (value === null) return false;
  return JSON_TYPE.test(value.split(";")[0].trim());
}

/**
 * curl's `--data` labels any body `application/x-www-form-urlencoded`; such a
 * body is read as JSON too, so `curl --data @dag.json` works as people type it.
 */
function isCurlDefault(value: string | null): boolean {
  return value !== null &&
    value.split(";")[0].trim().toLowerCase() === "application/x-www-form-urlencoded";
}

/**
 * Reads and parses the body as JSON, or returns the problem response to
 * send: 415 (not JSON), 413 (over `maxBytes`), 400 (bad UTF-8 or JSON).
 */
export async function readJsonBody(
  request: Request,
  maxBytes: number,
): Promise<{ value: unknown } | Response> {
  const type = request.headers.get("content-type");
  const lenient = isCurlDefault(type);
  if (!isJsonContentType(type) && !lenient) {
    return problemResponse(
      415,
      type === null
        ? "missing Content-Type: send the DAG as application/json"
        : `Content-Type ${JSON.stringify(type)} is not JSON: send application/json`,
    );
  }
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) return tooLarge(maxBytes);
  if (request.body === null) return problemResponse(400, "the request has no body: send a DAG");
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
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
  const bytes = concat(chunks, size);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return problemResponse(400, "the request body is not valid UTF-8");
  }
  if (text.trim() === "") return problemResponse(400, "the request body is empty: send a DAG");
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    if (lenient) {
      return problemResponse(
        415,
        "the body is form data, not JSON: send the DAG as application/json",
      );
    }
    const reason = error instanceof Error ? error.message : "syntax error";
    return problemResponse(400, `the request body is not valid JSON: ${reason}`);
  }
}

function tooLarge(maxBytes: number): Response {
  return problemResponse(413, `the request body is larger than ${maxBytes} bytes`);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
