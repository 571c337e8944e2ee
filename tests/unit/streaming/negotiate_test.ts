import assert from "node:assert/strict";
import { negotiateResponse } from "../../../src/sse/mod.ts";

function pick(accept?: string) {
  const headers = new Headers();
  if (accept !== undefined) headers.set("accept", accept);
  return negotiateResponse(headers);
}

Deno.test("negotiateResponse: text/event-stream → sse", () => {
  assert.equal(pick("text/event-stream"), "sse");
  assert.equal(pick("text/event-stream; q=1"), "sse");
  assert.equal(pick("text/event-stream, */*;q=0.1"), "sse");
});

Deno.test("negotiateResponse: application/json → json", () => {
  assert.equal(pick("application/json"), "json");
  assert.equal(pick("application/*"), "json");
});

Deno.test("negotiateResponse: missing, empty or */* Accept → json", () => {
  assert.equal(pick(), "json");
  assert.equal(pick(""), "json");
  assert.equal(pick("   "), "json");
  assert.equal(pick("*/*"), "json");
  assert.equal(pick("text/html, */*;q=0.1"), "json");
});

Deno.test("negotiateResponse: q-values decide between the two", () => {
  assert.equal(pick("text/event-stream;q=0.5, application/json;q=0.9"), "json");
  assert.equal(pick("application/json;q=0.1, text/event-stream"), "sse");
  assert.equal(pick("application/json;q=0.8, text/event-stream;q=0.9"), "sse");
  assert.equal(pick("text/*;q=0.9, application/json;q=0.2"), "sse");
  assert.equal(pick("*/*;q=0.5, text/event-stream"), "sse");
  assert.equal(pick("*/*, text/event-stream;q=0.2"), "json");
});

Deno.test("negotiateResponse: q=0 refuses a type", () => {
  assert.equal(pick("text/event-stream;q=0"), null);
  assert.equal(pick("application/json;q=0"), null);
  assert.equal(pick("*/*;q=0"), null);
  assert.equal(pick("text/event-stream;q=0, application/json"), "json");
  assert.equal(pick("*/*, application/json;q=0"), "sse");
  assert.equal(pick("application/json;q=0, text/event-stream;q=0.3"), "sse");
});

Deno.test("negotiateResponse: media types compare case-insensitively", () => {
  assert.equal(pick("TEXT/EVENT-STREAM"), "sse");
  assert.equal(pick("Text/Event-Stream; Q=0.9"), "sse");
  assert.equal(pick("Application/JSON"), "json");
  assert.equal(pick("TEXT/EVENT-STREAM;q=0.1, APPLICATION/JSON;q=0.9"), "json");
});

Deno.test("negotiateResponse: types admitting neither → null", () => {
  assert.equal(pick("text/html"), null);
  assert.equal(pick("text/plain, image/*"), null);
  assert.equal(pick("application/xml;q=1"), null);
  assert.equal(pick("text/event-streams"), null);
});
