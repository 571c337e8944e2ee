import assert from "node:assert/strict";
import { DEFAULT_HEARTBEAT_MS } from "../../../src/sse/frame.ts";
import { SSE_HEADERS, SSEBody } from "../../../src/sse/mod.ts";
import { promiseState } from "./_helpers.ts";
import { FakeClock } from "../_fake_clock.ts";

const decoder = new TextDecoder();

async function readText(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string | null> {
  const { value, done } = await reader.read();
  return done ? null : decoder.decode(value);
}

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string[]> {
  const chunks: string[] = [];
  for (let text = await readText(reader); text !== null; text = await readText(reader)) {
    chunks.push(text);
  }
  return chunks;
}

Deno.test("SSEBody: the retry line is the first block", async () => {
  const body = new SSEBody({ retryMs: 1234.6, heartbeatMs: 0 });
  body.push("event: a\ndata: 1\n\n");
  body.close();
  const text = await new Response(body.readable).text();
  assert.equal(text, "retry: 1234\n\nevent: a\ndata: 1\n\n");
});

Deno.test("SSEBody: no retry line unless asked for", async () => {
  const body = new SSEBody({ heartbeatMs: 0 });
  body.push("data: x\n\n");
  body.close();
  assert.equal(await new Response(body.readable).text(), "data: x\n\n");
});

Deno.test("SSEBody: frames pushed in the same turn reach a waiting reader as ONE chunk", async () => {
  const body = new SSEBody({ heartbeatMs: 0 });
  const reader = body.readable.getReader();
  const first = reader.read();
  assert.equal(await promiseState(first), "pending", "nothing to read yet");
  body.push("id: 1\ndata: a\n\n");
  body.push("id: 2\ndata: b\n\n");
  body.push("id: 3\ndata: c\n\n");
  const { value } = await first;
  assert.equal(decoder.decode(value), "id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n");
  // A push in a later turn is a chunk of its own.
  const second = reader.read();
  body.push("id: 4\ndata: d\n\n");
  assert.equal(decoder.decode((await second).value), "id: 4\ndata: d\n\n");
  body.close();
  assert.equal((await reader.read()).done, true);
});

Deno.test("SSEBody: frames pushed while the client is busy are coalesced into its next read", async () => {
  const body = new SSEBody({ retryMs: 10, heartbeatMs: 0 });
  for (let i = 0; i < 100; i++) body.push(`id: ${i}\ndata: ${i}\n\n`);
  assert.ok(body.bufferedBytes > 0);
  const reader = body.readable.getReader();
  const text = await readText(reader);
  assert.ok(text!.startsWith("retry: 10\n\nid: 0\n"));
  assert.ok(text!.endsWith("id: 99\ndata: 99\n\n"));
  assert.equal(body.bufferedBytes, 0);
  body.close();
  assert.deepEqual(await readAll(reader), []);
});

Deno.test("SSEBody: an idle stream gets `: keep-alive` comments (real timer)", async () => {
  // The one test on the real interval: the keep-alive arrives by itself.
  // Nothing here depends on how long it took.
  let cancelled = 0;
  const body = new SSEBody({ heartbeatMs: 20, onCancel: () => cancelled++ });
  const reader = body.readable.getReader();
  // Nothing is pushed: the only thing that can arrive is a keep-alive.
  assert.equal(await readText(reader), ": keep-alive\n\n");
  assert.equal(await readText(reader), ": keep-alive\n\n");
  await reader.cancel("done");
  assert.equal(cancelled, 1);
  // The interval is cleared by cancel(): the op sanitizer would flag it otherwise.
});

Deno.test("SSEBody: keep-alives never pile up for a client that does not read", async () => {
  using clock = new FakeClock();
  const body = new SSEBody({ heartbeatMs: 5 });
  assert.deepEqual(clock.armed, [5], "one interval, of heartbeatMs");
  const reader = body.readable.getReader();
  const first = reader.read();
  await clock.advance(5);
  assert.equal(decoder.decode((await first).value), ": keep-alive\n\n");
  // Eight intervals pass unread: one comment waits, not eight.
  await clock.advance(40);
  assert.equal(body.bufferedBytes, ": keep-alive\n\n".length);
  body.close();
  assert.deepEqual(clock.armed, [], "close() clears the interval");
  assert.deepEqual(await readAll(reader), [": keep-alive\n\n"]);
});

Deno.test("SSEBody: heartbeatMs 0 sends no keep-alive", async () => {
  const body = new SSEBody({ heartbeatMs: 0 });
  body.push("data: only\n\n");
  body.close();
  const text = await new Response(body.readable).text();
  assert.ok(!text.includes("keep-alive"));
  assert.equal(DEFAULT_HEARTBEAT_MS, 15_000);
});

Deno.test("SSEBody: close() delivers pending frames, then ends; later pushes are ignored", async () => {
  const body = new SSEBody({ heartbeatMs: 20 });
  body.push("data: 1\n\n");
  body.push("data: 2\n\n");
  body.close();
  assert.equal(body.ended, true);
  body.push("data: 3\n\n");
  const reader = body.readable.getReader();
  assert.deepEqual(await readAll(reader), ["data: 1\n\ndata: 2\n\n"]);
  body.close(); // idempotent
});

Deno.test("SSEBody: close() ends a stream whose reader is waiting", async () => {
  const body = new SSEBody({ heartbeatMs: 20 });
  const reader = body.readable.getReader();
  const read = reader.read();
  assert.equal(await promiseState(read), "pending");
  body.close();
  assert.equal((await read).done, true);
});

Deno.test("SSEBody: frames pushed just before close() in the same turn are still delivered", async () => {
  const body = new SSEBody({ heartbeatMs: 0 });
  const reader = body.readable.getReader();
  const read = reader.read();
  await promiseState(read);
  body.push("data: last\n\n");
  body.close();
  assert.equal(decoder.decode((await read).value), "data: last\n\n");
  assert.equal((await reader.read()).done, true);
});

Deno.test("SSEBody: cancel() calls onCancel once with the reason and stops everything", async () => {
  const reasons: unknown[] = [];
  const body = new SSEBody({ retryMs: 5, heartbeatMs: 20, onCancel: (r) => reasons.push(r) });
  body.push("data: unread\n\n");
  const drained = body.drained();
  await body.readable.cancel("client left");
  assert.deepEqual(reasons, ["client left"]);
  assert.equal(body.ended, true);
  assert.equal(body.bufferedBytes, 0);
  await drained; // a producer waiting for the client is let go
  body.push("data: ignored\n\n");
  assert.equal(body.bufferedBytes, 0);
  body.close();
  assert.deepEqual(reasons, ["client left"], "close() after cancel does not call onCancel");
});

Deno.test("SSEBody: close() does not call onCancel", async () => {
  let cancelled = false;
  const body = new SSEBody({ heartbeatMs: 20, onCancel: () => cancelled = true });
  body.push("data: x\n\n");
  body.close();
  await new Response(body.readable).text();
  assert.equal(cancelled, false);
});

Deno.test("SSEBody: drained() resolves once the client has read below the mark", async () => {
  const body = new SSEBody({ heartbeatMs: 0 });
  body.push("x".repeat(100));
  assert.equal(body.bufferedBytes, 100);
  const below50 = body.drained(50);
  assert.equal(await promiseState(below50), "pending");
  assert.equal(await promiseState(body.drained(200)), "fulfilled");
  const reader = body.readable.getReader();
  await reader.read();
  await below50;
  assert.equal(body.bufferedBytes, 0);
  body.close();
  assert.equal((await reader.read()).done, true);
});

Deno.test("SSE_HEADERS are exactly the four of the contract", () => {
  assert.deepEqual(SSE_HEADERS, {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
  });
});

Deno.test("SSEBody: one keep-alive per idle interval, none after activity", async () => {
  using clock = new FakeClock();
  const body = new SSEBody({ heartbeatMs: 1000 });
  const reader = body.readable.getReader();
  let read = reader.read();
  await clock.advance(999);
  assert.equal(await promiseState(read), "pending", "no keep-alive before the interval");
  await clock.advance(1);
  assert.equal(decoder.decode((await read).value), ": keep-alive\n\n");
  // Still idle for the whole next interval: another keep-alive.
  read = reader.read();
  await clock.advance(1000);
  assert.equal(await promiseState(read), "fulfilled", "idle interval without keep-alive");
  assert.equal(decoder.decode((await read).value), ": keep-alive\n\n");
  // A frame in this interval: no keep-alive at its end, one at the next.
  read = reader.read();
  body.push("data: x\n\n");
  assert.equal(decoder.decode((await read).value), "data: x\n\n");
  read = reader.read();
  await clock.advance(1000);
  assert.equal(await promiseState(read), "pending");
  await clock.advance(1000);
  assert.equal(decoder.decode((await read).value), ": keep-alive\n\n");
  // Frames waiting for a slow reader: no keep-alive is added to them.
  body.push("data: y\n\n");
  await clock.advance(2000);
  assert.equal(body.bufferedBytes, "data: y\n\n".length);
  assert.deepEqual(clock.armed, [1000]);
  await reader.cancel();
  assert.deepEqual(clock.armed, [], "cancel() clears the heartbeat");
});

Deno.test("SSEBody: close() clears the heartbeat", async () => {
  using clock = new FakeClock();
  const body = new SSEBody({ heartbeatMs: 1000 });
  assert.deepEqual(clock.armed, [1000]);
  body.close();
  assert.deepEqual(clock.armed, []);
  assert.equal(await new Response(body.readable).text(), "");
});
