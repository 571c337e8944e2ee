import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BufferedEventStream,
  DEFAULT_MAX_BUFFER_SIZE,
  type SSEEvent,
  StreamingExecutor,
} from "../../../mod.ts";
import {
  assertRunOrder,
  deferred,
  ev,
  EventSink,
  GatedTools,
  ids,
  promiseState,
} from "./_helpers.ts";

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Lets queued microtasks (stream internals, the pump) run, without a timer. */
async function microtasks(n = 30): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

Deno.test("BufferedEventStream: writes resolve at once below the bound and wait only at it", async () => {
  const sink = new EventSink({ slow: true });
  const flushes: string[][] = [];
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 3,
    onFlush: (events) => flushes.push(ids(events)),
  });
  const w0 = buffer.write(ev(0));
  assert.equal(await promiseState(w0), "fulfilled");
  await sink.writeWaiting();
  // e0 is with the downstream (held there, not in the buffer).
  assert.deepEqual(ids(sink.events), ["e0"]);
  assert.equal(buffer.size, 0);

  const below = [1, 2, 3].map((n) => buffer.write(ev(n)));
  assert.equal(buffer.size, 3);
  for (const w of below) assert.equal(await promiseState(w), "fulfilled");
  assert.deepEqual(flushes, [], "onFlush not called below the bound");

  const w4 = buffer.write(ev(4));
  const w5 = buffer.write(ev(5));
  assert.equal(buffer.size, 3, "never more than maxBufferSize held");
  assert.equal(await promiseState(w4), "pending", "a write at the bound waits");
  assert.equal(await promiseState(w5), "pending");
  assert.deepEqual(flushes, [["e1", "e2", "e3"]], "onFlush told once, with the held events");

  // The downstream takes e0: room for one, so e4 (and only e4) is admitted.
  sink.releaseWrite();
  await sink.writeWaiting();
  assert.equal(await promiseState(w4), "fulfilled");
  assert.equal(await promiseState(w5), "pending");
  assert.equal(buffer.size, 3);
  assert.deepEqual(ids(sink.events), ["e0", "e1"]);

  sink.releaseAll();
  await w5;
  await buffer.flush();
  assert.equal(buffer.size, 0);
  assert.deepEqual(ids(sink.events), ["e0", "e1", "e2", "e3", "e4", "e5"]);
  await buffer.close();
  assert.ok(sink.closed);
});

Deno.test("BufferedEventStream: onFlush fires each time the buffer fills up again", async () => {
  const sink = new EventSink({ slow: true });
  let flushes = 0;
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 2,
    onFlush: (events) => {
      flushes++;
      assert.equal(events.length, 2);
    },
  });
  const first = range(0, 6).map((n) => buffer.write(ev(n)));
  assert.equal(flushes, 1, "one call per fill-up, not per blocked write");
  sink.releaseAll();
  await Promise.all(first);
  await buffer.flush();
  // Slow again and refill: a second call.
  const sink2Gate = deferred<void>();
  let calls = 0;
  const sink2 = new WritableStream<SSEEvent>({
    write: () => ++calls === 1 ? sink2Gate.promise : undefined,
  });
  let flushes2 = 0;
  const buffer2 = new BufferedEventStream(sink2.getWriter(), {
    maxBufferSize: 1,
    onFlush: () => flushes2++,
  });
  const a = [buffer2.write(ev(0)), buffer2.write(ev(1)), buffer2.write(ev(2))];
  await microtasks();
  assert.equal(flushes2, 1);
  sink2Gate.resolve();
  await Promise.all(a);
  await buffer2.flush();
  assert.equal(flushes2, 1);
  await buffer.close();
  await buffer2.close();
});

Deno.test("BufferedEventStream: onFlush is not called when the bound is never reached", async () => {
  const sink = new EventSink();
  let flushed = false;
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    onFlush: () => flushed = true,
  });
  for (const n of range(0, 100)) await buffer.write(ev(n));
  await buffer.close();
  assert.equal(flushed, false);
  assert.deepEqual(ids(sink.events), range(0, 100).map((n) => `e${n}`));
  assert.ok(sink.closed);
});

Deno.test("BufferedEventStream: order kept, nothing lost, bound held (property, slow consumer)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 120 }),
      async (max, ops) => {
        const sink = new EventSink({ slow: true });
        const buffer = new BufferedEventStream(sink.stream.getWriter(), { maxBufferSize: max });
        const writes: Promise<void>[] = [];
        let written = 0;
        for (const op of ops) {
          if (op) {
            writes.push(buffer.write(ev(written++)));
          } else if (sink.pendingWrites.length > 0) {
            sink.releaseWrite();
            await microtasks(10);
          }
          assert.ok(buffer.size <= max, `size ${buffer.size} > ${max}`);
          // Everything written is either downstream, held, or waiting: never dropped.
          assert.ok(sink.events.length + buffer.size <= written);
        }
        sink.releaseAll();
        await Promise.all(writes);
        await buffer.close();
        assert.deepEqual(ids(sink.events), range(0, written).map((n) => `e${n}`));
        assert.ok(sink.closed);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("BufferedEventStream: flush() waits for the downstream to accept everything", async () => {
  const sink = new EventSink({ slow: true });
  const buffer = new BufferedEventStream(sink.stream.getWriter(), { maxBufferSize: 2 });
  assert.equal(await promiseState(buffer.flush()), "fulfilled", "nothing held: at once");
  const writes = range(0, 4).map((n) => buffer.write(ev(n)));
  const flushed = buffer.flush();
  for (let i = 0; i < 2; i++) {
    await sink.writeWaiting();
    sink.releaseWrite();
  }
  await sink.writeWaiting();
  assert.equal(await promiseState(flushed), "pending", "events still held or being written");
  sink.releaseAll();
  await flushed;
  assert.equal(buffer.size, 0);
  assert.deepEqual(ids(sink.events), ["e0", "e1", "e2", "e3"]);
  await Promise.all(writes);
  assert.equal(sink.closed, false, "flush does not close");
  await buffer.close();
});

Deno.test("BufferedEventStream: close() delivers what is held, then closes; later writes reject", async () => {
  const sink = new EventSink({ slow: true });
  const buffer = new BufferedEventStream(sink.stream.getWriter(), { maxBufferSize: 2 });
  const writes = range(0, 5).map((n) => buffer.write(ev(n)));
  const closing = buffer.close();
  await sink.writeWaiting();
  assert.equal(await promiseState(closing), "pending");
  assert.equal(sink.closed, false);
  sink.releaseAll();
  await closing;
  await Promise.all(writes);
  assert.deepEqual(ids(sink.events), ["e0", "e1", "e2", "e3", "e4"]);
  assert.ok(sink.closed);
  await assert.rejects(buffer.write(ev(9)), TypeError);
});

Deno.test("BufferedEventStream: a failing downstream rejects later writes, waiting writes, flush and close", async () => {
  const gate = deferred<void>();
  let writes = 0;
  const downstream = new WritableStream<SSEEvent>({
    async write() {
      writes++;
      await gate.promise;
      throw new Error("socket reset");
    },
  });
  const buffer = new BufferedEventStream(downstream.getWriter(), { maxBufferSize: 1 });
  const accepted = [buffer.write(ev(0)), buffer.write(ev(1))];
  const waiting = buffer.write(ev(2));
  const flushed = buffer.flush();
  await Promise.all(accepted);
  assert.equal(await promiseState(waiting), "pending");
  gate.resolve();
  await assert.rejects(waiting, /socket reset/);
  await assert.rejects(flushed, /socket reset/);
  await assert.rejects(buffer.write(ev(3)), /socket reset/);
  await assert.rejects(buffer.flush(), /socket reset/);
  await assert.rejects(buffer.close(), /socket reset/);
  assert.equal(buffer.size, 0);
  assert.equal(writes, 1, "nothing more is sent to a failed downstream");
});

Deno.test("BufferedEventStream: abort() drops held events and aborts the downstream", async () => {
  const sink = new EventSink({ slow: true });
  const buffer = new BufferedEventStream(sink.stream.getWriter(), { maxBufferSize: 2 });
  const accepted = range(0, 3).map((n) => buffer.write(ev(n)));
  const waiting = buffer.write(ev(3));
  await sink.writeWaiting();
  const reason = new Error("shutting down");
  const aborting = buffer.abort(reason);
  await assert.rejects(waiting, /shutting down/);
  await Promise.all(accepted);
  assert.equal(buffer.size, 0);
  sink.releaseAll();
  await aborting;
  await sink.done;
  assert.ok(sink.aborted);
  assert.equal(sink.abortReason, reason);
  assert.deepEqual(ids(sink.events), ["e0"], "held events were dropped");
  await assert.rejects(buffer.write(ev(4)), /shutting down/);
});

Deno.test("BufferedEventStream: maxBufferSize must be a whole number >= 1", () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    const writer = new WritableStream<SSEEvent>().getWriter();
    assert.throws(
      () => new BufferedEventStream(writer, { maxBufferSize: bad }),
      RangeError,
      String(bad),
    );
  }
  const writer = new WritableStream<SSEEvent>().getWriter();
  new BufferedEventStream(writer, { maxBufferSize: 1 });
  writer.releaseLock();
  assert.equal(DEFAULT_MAX_BUFFER_SIZE, 1000);
});

Deno.test("BufferedEventStream via StreamingExecutor: maxBufferSize 10, 20 tasks, slow client: all 41 events", async () => {
  const tasks = range(0, 20).map((n) => ({ id: `t${n}`, tool: "x" }));
  const tools = new GatedTools(new Set(tasks.map((t) => t.id)));
  const sink = new EventSink({ slow: true });
  const flushes: number[] = [];
  const run = new StreamingExecutor(tools.executor).executeWithStreaming(
    { tasks },
    sink.stream,
    { maxBufferSize: 10, onFlush: (events) => flushes.push(events.length) },
  );
  await sink.writeWaiting();
  await microtasks();
  // The client is stuck on the first event: the buffer filled up and held
  // the run back (a task runs only once its task_start was accepted).
  assert.deepEqual(flushes, [10]);
  assert.ok(tools.calls.length <= 11, `${tools.calls.length} tools ran while the client was stuck`);
  assert.equal(await promiseState(run), "pending");

  // Release the client one event at a time.
  while (sink.events.length < 41) {
    await sink.writeWaiting();
    sink.releaseWrite();
  }
  const result = await run;
  assert.equal(sink.events.length, 41);
  assertRunOrder(sink.events, tasks);
  assert.equal(result.successfulTasks, 20);
  assert.ok(sink.closed);
});

Deno.test("BufferedEventStream via StreamingExecutor: a fast client never fills the buffer", async () => {
  const tasks = range(0, 20).map((n) => ({ id: `t${n}`, tool: "x" }));
  const tools = new GatedTools(new Set(tasks.map((t) => t.id)));
  const sink = new EventSink();
  let flushed = false;
  await new StreamingExecutor(tools.executor).executeWithStreaming(
    { tasks },
    sink.stream,
    { maxBufferSize: 100, onFlush: () => flushed = true },
  );
  assert.equal(flushed, false);
  assert.equal(sink.events.length, 41);
});
