import assert from "node:assert/strict";
import fc from "fast-check";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import {
  parseSSEStream,
  readSSEEvents,
  type SSEEvent,
  type TaskCompleteEvent,
} from "../../../mod.ts";
import {
  DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  eventDataJson,
  utf8Length,
} from "../../../src/sse/frame.ts";
import { encodeSSEEvent, formatSSEFrame } from "../../../src/sse/mod.ts";
import type { WireTaskCompleteEvent } from "../../../src/sse/wire-events.ts";
import { byteStream, deferred, splitBytes } from "./_helpers.ts";

const encoder = new TextEncoder();
const TS = "2024-05-06T07:08:09.010Z";

function bytesOf(text: string): number {
  return encoder.encode(text).length;
}

/** Parses SSE text with eventsource-parser, as a browser would. */
function parseText(text: string): EventSourceMessage[] {
  const out: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (m) => out.push(m) });
  parser.feed(text);
  return out;
}

/** A task_complete event; with `output` undefined it has no `output` key. */
function complete(
  output: unknown,
  extra: Partial<TaskCompleteEvent["data"]> = {},
): TaskCompleteEvent {
  const data: TaskCompleteEvent["data"] = {
    taskId: "t1",
    tool: "mock:echo",
    status: "success",
    executionTimeMs: 12.5,
    timestamp: TS,
    ...extra,
  };
  if (output !== undefined) data.output = output;
  return { type: "task_complete", data };
}

/**
 * Any Unicode scalar value, weighted towards ASCII and the BMP (fast-check's
 * own `unit: "binary"` takes seconds to warm up).
 */
const anyChar = fc.oneof(
  fc.integer({ min: 0, max: 0x7f }),
  fc.integer({ min: 0x80, max: 0xd7ff }),
  fc.integer({ min: 0xe000, max: 0x10ffff }),
).map((c) => String.fromCodePoint(c));

// ---------------------------------------------------------------- formatSSEFrame

Deno.test("formatSSEFrame: id, event and one data line per line of data", () => {
  assert.equal(
    formatSSEFrame({ id: 1, event: "note", data: "a\nb" }),
    "id: 1\nevent: note\ndata: a\ndata: b\n\n",
  );
  assert.equal(formatSSEFrame({ data: "plain" }), "data: plain\n\n");
  assert.equal(formatSSEFrame({ event: "ping" }), "event: ping\n\n");
  assert.equal(formatSSEFrame({}), "\n");
});

Deno.test("formatSSEFrame: CR, CRLF and LF all split data lines; the client gets LF back", () => {
  for (const data of ["a\r\nb", "a\rb", "a\nb"]) {
    assert.equal(formatSSEFrame({ data }), "data: a\ndata: b\n\n", JSON.stringify(data));
    assert.equal(parseText(formatSSEFrame({ data }))[0].data, "a\nb");
  }
  // Mixed and trailing breaks: nothing lost, nothing merged.
  assert.equal(formatSSEFrame({ data: "x\r\n\ry\n" }), "data: x\ndata: \ndata: y\ndata: \n\n");
  assert.equal(parseText(formatSSEFrame({ data: "x\r\n\ry\n" }))[0].data, "x\n\ny\n");
  // "\n\n" inside data must not end the frame early.
  const frame = formatSSEFrame({ event: "e", data: "one\n\ntwo" });
  const parsed = parseText(frame);
  assert.equal(parsed.length, 1);
  assert.equal(parsed[0].data, "one\n\ntwo");
});

Deno.test("formatSSEFrame: empty data is one empty data line, and still an event", () => {
  assert.equal(formatSSEFrame({ data: "" }), "data: \n\n");
  const parsed = parseText(formatSSEFrame({ event: "empty", data: "" }));
  assert.equal(parsed.length, 1);
  assert.equal(parsed[0].data, "");
  assert.equal(parsed[0].event, "empty");
});

Deno.test("formatSSEFrame: unicode and leading spaces survive", () => {
  const data = "héllo wörld 😀 \u2028 \u0085 日本";
  assert.equal(formatSSEFrame({ data }), `data: ${data}\n\n`);
  assert.equal(parseText(formatSSEFrame({ data }))[0].data, data);
  assert.equal(parseText(formatSSEFrame({ data: "  two spaces" }))[0].data, "  two spaces");
  assert.equal(parseText(formatSSEFrame({ data: ":not a comment" }))[0].data, ":not a comment");
});

Deno.test("formatSSEFrame: line breaks in id and event cannot inject fields", () => {
  const frame = formatSSEFrame({ id: "1\nevent: evil\r\ndata: x", event: "a\rb\nc", data: "d" });
  assert.equal(frame.split("\n").filter((l) => l.startsWith("event:")).length, 1);
  assert.equal(frame, "id: 1 event: evil data: x\nevent: a b c\ndata: d\n\n");
  const [parsed] = parseText(frame);
  assert.equal(parsed.id, "1 event: evil data: x");
  assert.equal(parsed.event, "a b c");
  assert.equal(parsed.data, "d");
  // NUL in an id makes a client ignore it: it is removed.
  assert.equal(formatSSEFrame({ id: "a\0b" }), "id: ab\n\n");
});

Deno.test("formatSSEFrame: retry is a whole, non-negative number of ms, first", () => {
  assert.equal(formatSSEFrame({ retry: 1500.9, data: "x" }), "retry: 1500\ndata: x\n\n");
  assert.equal(formatSSEFrame({ retry: -5 }), "retry: 0\n\n");
});

Deno.test("formatSSEFrame: any data round-trips through eventsource-parser (property)", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: anyChar }),
      fc.string({ unit: fc.constantFrom("a", "é", "\n", "\r", "\r\n", " ", ":", "😀") }),
      fc.nat(),
      (random, breaks, id) => {
        for (const data of [random, breaks]) {
          const frame = formatSSEFrame({ id, event: "x", data });
          const parsed = parseText(frame);
          assert.equal(parsed.length, 1);
          assert.equal(parsed[0].data, data.replace(/\r\n|\r/g, "\n"));
          assert.equal(parsed[0].id, String(id));
          assert.equal(parsed[0].event, "x");
        }
      },
    ),
  );
});

// ---------------------------------------------------------------- encodeSSEEvent

Deno.test("encodeSSEEvent: `id: N\\nevent: T\\ndata: JSON\\n\\n`", () => {
  const event: SSEEvent = { type: "task_start", data: { taskId: "a", tool: "t", timestamp: TS } };
  assert.equal(
    encodeSSEEvent(event, 7),
    `id: 7\nevent: task_start\ndata: {"taskId":"a","tool":"t","timestamp":"${TS}"}\n\n`,
  );
  assert.equal(
    encodeSSEEvent(event),
    `event: task_start\ndata: {"taskId":"a","tool":"t","timestamp":"${TS}"}\n\n`,
    "no id line without an id",
  );
});

Deno.test("encodeSSEEvent: data stays one line whatever the output holds", () => {
  const output = { text: "line1\nline2\r\nline3\r", sep: "\u2028\u2029", nul: "\0", emoji: "😀" };
  const frame = encodeSSEEvent(complete(output), 3);
  const lines = frame.split("\n");
  assert.deepEqual(lines.slice(0, 2), ["id: 3", "event: task_complete"]);
  assert.ok(lines[2].startsWith("data: {"));
  assert.deepEqual(lines.slice(3), ["", ""], "exactly one data line, then the blank line");
  assert.ok(!frame.includes("\r"));
  const [parsed] = parseText(frame);
  assert.deepEqual(JSON.parse(parsed.data), complete(output).data);
});

// ---------------------------------------------------------------- eventDataJson / truncation

Deno.test("eventDataJson: small events are their data's JSON, unchanged", () => {
  const events: SSEEvent[] = [
    complete({ a: 1 }),
    complete(undefined, { status: "error", error: "boom" }),
    { type: "task_start", data: { taskId: "a", tool: "t", timestamp: TS } },
    {
      type: "execution_complete",
      data: {
        totalTasks: 1,
        successCount: 1,
        errorCount: 0,
        totalExecutionTimeMs: 3,
        speedup: 1,
        timestamp: TS,
      },
    },
    { type: "error", data: { error: "bad", timestamp: TS, code: "invalid_dag" } },
  ];
  for (const event of events) {
    assert.equal(eventDataJson(event), JSON.stringify(event.data));
    assert.equal(eventDataJson(event, 200), JSON.stringify(event.data));
  }
  // Exactly at the cap: not truncated.
  const event = complete("x".repeat(1000));
  const size = bytesOf(JSON.stringify(event.data));
  assert.equal(eventDataJson(event, size), JSON.stringify(event.data));
  assert.ok(JSON.parse(eventDataJson(event, size - 1)).truncated);
  assert.equal(DEFAULT_MAX_EVENT_PAYLOAD_BYTES, 65536);
});

function assertTruncated(event: TaskCompleteEvent, cap: number): void {
  const json = eventDataJson(event, cap);
  assert.ok(bytesOf(json) <= cap, `data is ${bytesOf(json)} bytes, cap ${cap}`);
  const data = JSON.parse(json);
  const fullOutput = JSON.stringify(event.data.output);
  assert.equal(data.truncated, true);
  assert.equal(data.outputBytes, bytesOf(fullOutput));
  assert.equal(typeof data.output, "string");
  assert.ok(fullOutput.startsWith(data.output), "the preview is the start of the output's JSON");
  assert.ok(data.output.isWellFormed(), "the preview does not split a character");
  assert.ok(data.output.length > 0, "some preview is given");
  // Everything else is kept as is.
  for (const key of ["taskId", "tool", "status", "executionTimeMs", "timestamp"] as const) {
    assert.equal(data[key], event.data[key]);
  }
  // The frame carrying it is one data line of that size.
  const frame = encodeSSEEvent(event, 1, cap);
  assert.equal(frame, `id: 1\nevent: task_complete\ndata: ${json}\n\n`);
}

Deno.test("eventDataJson: an oversized task_complete is truncated within the cap (ASCII)", () => {
  assertTruncated(complete("a".repeat(5000)), 1000);
  assertTruncated(complete({ list: Array.from({ length: 3000 }, (_, i) => i) }), 2048);
  assertTruncated(complete("x".repeat(200_000)), DEFAULT_MAX_EVENT_PAYLOAD_BYTES);
  assert.ok(bytesOf(encodeSSEEvent(complete("x".repeat(200_000)))) < 66_000);
});

Deno.test("eventDataJson: truncation counts UTF-8 bytes of multi-byte characters", () => {
  assertTruncated(complete("é".repeat(3000)), 1000); // 2 bytes each
  assertTruncated(complete("日本語".repeat(1000)), 1000); // 3 bytes each
  assertTruncated(complete("😀".repeat(3000)), 1000); // 4 bytes, a surrogate pair
  assertTruncated(complete("a😀".repeat(3000)), 1001);
  assertTruncated(complete({ k: "😀a".repeat(1000) }), 999);
});

Deno.test("eventDataJson: truncation accounts for JSON escaping", () => {
  assertTruncated(complete('"'.repeat(3000)), 1000); // \" : 2 bytes each
  assertTruncated(complete("\u0001".repeat(3000)), 1000); // \u0001 : 6 bytes each
  assertTruncated(complete("\\\n".repeat(3000)), 1000);
});

Deno.test("eventDataJson: the preview uses the room it has (not a small fraction of it)", () => {
  const json = eventDataJson(complete("a".repeat(5000)), 1000);
  assert.ok(bytesOf(json) > 900, `only ${bytesOf(json)} of 1000 bytes used`);
});

Deno.test("eventDataJson: an oversized error message is cut to fit too", () => {
  const event = complete(undefined, { status: "error", error: "E".repeat(5000) });
  const json = eventDataJson(event, 1000);
  assert.ok(bytesOf(json) <= 1000, `data is ${bytesOf(json)} bytes`);
  const data = JSON.parse(json);
  assert.equal(data.truncated, true);
  assert.equal(data.status, "error");
  assert.equal(data.errorBytes, 5000);
  assert.ok(data.error.length > 800, "the room is used");
  assert.ok(/^E+$/.test(data.error));
  assert.ok(!("output" in data));
  assert.ok(!("outputBytes" in data));
  // Multi-byte error text is cut on a character boundary.
  const wide = eventDataJson(
    complete(undefined, { status: "error", error: "😀".repeat(2000) }),
    700,
  );
  assert.ok(bytesOf(wide) <= 700);
  assert.ok(JSON.parse(wide).error.isWellFormed());
  assert.equal(JSON.parse(wide).errorBytes, 8000);
});

Deno.test("eventDataJson: other event types are never truncated", () => {
  const event: SSEEvent = { type: "error", data: { error: "x".repeat(5000), timestamp: TS } };
  assert.equal(eventDataJson(event, 100), JSON.stringify(event.data));
});

Deno.test("eventDataJson: any output fits the cap or is untouched (property)", () => {
  let truncatedRuns = 0;
  fc.assert(
    fc.property(
      fc.oneof(
        fc.jsonValue({ maxDepth: 3 }),
        fc.string({ unit: anyChar, minLength: 50, maxLength: 3000 }),
        fc.array(fc.string({ unit: anyChar, minLength: 50, maxLength: 300 }), { maxLength: 20 }),
        fc.string({
          unit: fc.constantFrom("a", "é", "日", "😀", '"', "\\", "\n", "\u0001"),
          minLength: 100,
          maxLength: 2000,
        }),
      ),
      fc.integer({ min: 300, max: 4000 }),
      (output, cap) => {
        const event = complete(output);
        const full = JSON.stringify(event.data);
        const json = eventDataJson(event, cap);
        if (bytesOf(full) <= cap) {
          assert.equal(json, full);
        } else {
          assert.ok(bytesOf(json) <= cap);
          const data = JSON.parse(json);
          assert.equal(data.truncated, true);
          assert.equal(data.outputBytes, bytesOf(JSON.stringify(output)));
          assert.ok(JSON.stringify(output).startsWith(data.output));
          assert.ok(data.output.isWellFormed());
          truncatedRuns++;
        }
      },
    ),
    { numRuns: 200 },
  );
  assert.ok(truncatedRuns > 20, `only ${truncatedRuns} runs needed truncation`);
});

Deno.test("utf8Length equals the length TextEncoder produces (property, lone surrogates too)", () => {
  const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
  fc.assert(
    fc.property(
      fc.oneof(fc.string({ unit: anyChar }), fc.string({ unit: codeUnit })),
      (text) => assert.equal(utf8Length(text), bytesOf(text)),
    ),
  );
  assert.equal(utf8Length("😀"), 4);
  assert.equal(utf8Length("\ud83d"), 3);
  assert.equal(utf8Length(""), 0);
});

// ---------------------------------------------------------------- round trip through the client

const SAMPLE: SSEEvent[] = [
  { type: "task_start", data: { taskId: "α", tool: "mock:echo", timestamp: TS } },
  complete({ text: "multi\nline\r\ntext", emoji: "😀👍🏽", quote: '"', nested: [1, { x: null }] }),
  complete(undefined, { taskId: "β", status: "error", error: "failed:\nreason" }),
  {
    type: "execution_complete",
    data: {
      totalTasks: 2,
      successCount: 1,
      errorCount: 1,
      totalExecutionTimeMs: 4.25,
      speedup: 1.5,
      timestamp: TS,
    },
  },
];

function wireText(events: readonly SSEEvent[]): string {
  return "retry: 2000\n\n" +
    events.map((e, i) => encodeSSEEvent(e, i + 1)).join(": keep-alive\n\n");
}

Deno.test("round trip: parseSSEStream gives back the same events, ids and data", async () => {
  const received = await parseSSEStream(byteStream([encoder.encode(wireText(SAMPLE))]));
  assert.deepEqual(
    received,
    SAMPLE.map((e, i) => ({ ...e, id: String(i + 1) })),
  );
});

Deno.test("round trip: chunk boundaries anywhere (mid-line, mid-character) change nothing (property)", async () => {
  const bytes = encoder.encode(wireText(SAMPLE));
  const expected = SAMPLE.map((e, i) => ({ ...e, id: String(i + 1) }));
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat({ max: bytes.length }), { maxLength: 40 }), async (cuts) => {
      const received = await parseSSEStream(byteStream(splitBytes(bytes, cuts)));
      assert.deepEqual(received, expected);
    }),
    { numRuns: 60 },
  );
  // Every single-byte chunking too.
  const singles = Array.from({ length: bytes.length }, (_, i) => i);
  assert.deepEqual(await parseSSEStream(byteStream(splitBytes(bytes, singles))), expected);
});

Deno.test("round trip: a truncated event stays valid JSON for the client", async () => {
  const big = complete("😀".repeat(50_000));
  const [received] = await parseSSEStream(byteStream([encoder.encode(encodeSSEEvent(big, 1))]));
  assert.equal(received.type, "task_complete");
  const data = received.data as WireTaskCompleteEvent["data"];
  assert.equal(data.truncated, true);
  assert.equal(data.outputBytes, bytesOf(JSON.stringify(big.data.output)));
});

Deno.test("parseSSEStream: non-JSON data stays a string; no event name means `message`", async () => {
  const events = await parseSSEStream(byteStream([encoder.encode("data: not json\n\n")]));
  assert.deepEqual(events, [{ type: "message", data: "not json" }]);
  assert.deepEqual(await parseSSEStream(byteStream([])), []);
  assert.deepEqual(
    await parseSSEStream(byteStream([encoder.encode(": only a comment\n\nretry: 10\n\n")])),
    [],
  );
});

Deno.test("readSSEEvents: yields each event as soon as its frame arrives", async () => {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const events = readSSEEvents(body);
  controller.enqueue(encoder.encode(encodeSSEEvent(SAMPLE[0], 1)));
  // The stream is still open: the first event is delivered anyway.
  const first = await events.next();
  assert.deepEqual(first.value, { ...SAMPLE[0], id: "1" });
  // Half a frame is not an event yet.
  const frame2 = encodeSSEEvent(SAMPLE[1], 2);
  controller.enqueue(encoder.encode(frame2.slice(0, 10)));
  const second = events.next();
  controller.enqueue(encoder.encode(frame2.slice(10)));
  assert.deepEqual((await second).value, { ...SAMPLE[1], id: "2" });
  controller.close();
  assert.equal((await events.next()).done, true);
});

Deno.test("readSSEEvents: stopping early cancels the body", async () => {
  const cancelled = deferred<unknown>();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(wireText(SAMPLE)));
    },
    cancel: (reason) => cancelled.resolve(reason),
  });
  for await (const event of readSSEEvents(body)) {
    assert.equal(event.type, "task_start");
    break;
  }
  await cancelled.promise;
});
