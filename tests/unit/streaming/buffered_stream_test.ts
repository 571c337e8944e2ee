import assert from "node:assert/strict";
import fc from "fast-check";
import { BufferedEventStream, type SSEEvent, StreamingExecutor } from "../../../mod.ts";
import { DEFAULT_MAX_BUFFER_SIZE } from "../../../src/dag/buffered-stream.ts";
import {
  assertRunOrder,
  deferred,
  ev,
  EventSink,
  GatedTools,
  ids,
  promiseState,
} from "./_helpers.ts";
import { turns, until } from "../dag/_helpers.ts";

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Lets queued microtasks (stream internals, the pump) run, without a timer. */
async function microtasks(n = 30): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

// ---------------------------------------------------------------------------
// onFlush: the reference design's batches.

Deno.test("BufferedEventStream (reference): 6 events, maxBufferSize 5: onFlush once with 5, then on close with 1", async () => {
  const sink = new EventSink();
  const calls: string[][] = [];
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 5,
    onFlush: (events) => calls.push(ids(events)),
  });
  for (const n of range(0, 6)) await buffer.write(ev(n));
  assert.deepEqual(calls, [["e0", "e1", "e2", "e3", "e4"]]);
  await buffer.close();
  assert.deepEqual(calls, [["e0", "e1", "e2", "e3", "e4"], ["e5"]]);
  assert.deepEqual(ids(sink.events), ["e0", "e1", "e2", "e3", "e4", "e5"]);
  assert.ok(sink.closed);
});

Deno.test("BufferedEventStream (reference): the same without awaiting each write", async () => {
  const sink = new EventSink();
  const calls: number[] = [];
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 5,
    onFlush: (events) => calls.push(events.length),
  });
  const writes = range(0, 6).map((n) => buffer.write(ev(n)));
  assert.deepEqual(calls, [5], "the fifth write completed a batch, synchronously");
  await Promise.all(writes);
  await buffer.close();
  assert.deepEqual(calls, [5, 1]);
  assert.deepEqual(ids(sink.events), range(0, 6).map((n) => `e${n}`));
});

Deno.test("BufferedEventStream: onFlush gets a batch every maxBufferSize events, and nothing more on close when none is left", async () => {
  const sink = new EventSink();
  const batches: string[][] = [];
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 4,
    onFlush: (events) => batches.push(ids(events)),
  });
  for (const n of range(0, 12)) {
    await buffer.write(ev(n));
    assert.equal(batches.length, Math.floor((n + 1) / 4), `after e${n}`);
  }
  await buffer.close();
  assert.deepEqual(batches, [
    ["e0", "e1", "e2", "e3"],
    ["e4", "e5", "e6", "e7"],
    ["e8", "e9", "e10", "e11"],
  ]);
});

Deno.test("BufferedEventStream: onFlush batches do not depend on the downstream's pace", async () => {
  const sink = new EventSink({ slow: true });
  const batches: string[][] = [];
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 3,
    onFlush: (events) => batches.push(ids(events)),
  });
  const writes = range(0, 7).map((n) => buffer.write(ev(n)));
  // e0 is with the downstream, e1..e3 held, e4..e6 wait: e0..e2 made a batch.
  assert.deepEqual(batches, [["e0", "e1", "e2"]]);
  await sink.writeWaiting();
  assert.deepEqual(ids(sink.events), ["e0"]);
  sink.releaseAll();
  await Promise.all(writes);
  assert.deepEqual(batches, [["e0", "e1", "e2"], ["e3", "e4", "e5"]]);
  await buffer.close();
  assert.deepEqual(batches, [["e0", "e1", "e2"], ["e3", "e4", "e5"], ["e6"]]);
  assert.deepEqual(ids(sink.events), range(0, 7).map((n) => `e${n}`));
});

Deno.test("BufferedEventStream: no onFlush when nothing was written; each batch is a new array", async () => {
  const sink = new EventSink();
  let calls = 0;
  const empty = new BufferedEventStream(sink.stream.getWriter(), { onFlush: () => calls++ });
  await empty.close();
  assert.equal(calls, 0);

  const sink2 = new EventSink();
  const batches: SSEEvent[][] = [];
  const batchIds: string[][] = [];
  const buffer = new BufferedEventStream(sink2.stream.getWriter(), {
    maxBufferSize: 2,
    onFlush: (events) => {
      batches.push(events);
      batchIds.push(ids(events)); // before the callback empties its array
      events.length = 0; // the callback owns its array
    },
  });
  for (const n of range(0, 5)) await buffer.write(ev(n));
  await buffer.close();
  assert.equal(batches.length, 3);
  assert.deepEqual(batchIds, [["e0", "e1"], ["e2", "e3"], ["e4"]]);
  assert.notEqual(batches[0], batches[1]);
  assert.notEqual(batches[1], batches[2]);
  assert.notEqual(batches[0], batches[2]);
  assert.deepEqual(ids(sink2.events), range(0, 5).map((n) => `e${n}`), "downstream unaffected");
});

Deno.test("BufferedEventStream: an onFlush that throws fails the stream", async () => {
  const sink = new EventSink();
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 2,
    onFlush: () => {
      throw new Error("disk full");
    },
  });
  await buffer.write(ev(0));
  await assert.rejects(buffer.write(ev(1)), /disk full/);
  await assert.rejects(buffer.write(ev(2)), /disk full/);
  assert.equal(buffer.tryWrite(ev(2)), false);
  await assert.rejects(buffer.close(), /disk full/);
});

Deno.test("BufferedEventStream: held events never exceed maxBufferSize (batches and backpressure share them)", async () => {
  const sink = new EventSink({ slow: true });
  const max = 4;
  let batched = 0;
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: max,
    onFlush: (events) => batched += events.length,
  });
  const writes: Promise<void>[] = [];
  for (const n of range(0, 50)) {
    writes.push(buffer.write(ev(n)));
    assert.ok(buffer.held <= max, `held ${buffer.held} after e${n}`);
    if (n % 3 === 0 && sink.pendingWrites.length > 0) {
      sink.releaseWrite();
      await microtasks(10);
      assert.ok(buffer.held <= max, `held ${buffer.held} after a release`);
    }
  }
  sink.releaseAll();
  await Promise.all(writes);
  await buffer.flush();
  // Nothing waits for the downstream: only the open batch's events are kept.
  assert.equal(buffer.size, 0);
  assert.equal(buffer.held, 50 % max);
  await buffer.close();
  assert.equal(buffer.held, 0);
  assert.equal(batched, 50);
});

// ---------------------------------------------------------------------------
// Backpressure: write waits only at the bound; onBackpressure is told.

Deno.test("BufferedEventStream: writes resolve at once below the bound and wait only at it", async () => {
  const sink = new EventSink({ slow: true });
  const full: string[][] = [];
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    maxBufferSize: 3,
    onBackpressure: (events) => full.push(ids(events)),
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
  assert.deepEqual(full, [], "onBackpressure not called below the bound");

  const w4 = buffer.write(ev(4));
  const w5 = buffer.write(ev(5));
  assert.equal(buffer.size, 3, "never more than maxBufferSize held");
  assert.equal(await promiseState(w4), "pending", "a write at the bound waits");
  assert.equal(await promiseState(w5), "pending");
  assert.deepEqual(full, [["e1", "e2", "e3"]], "onBackpressure told once, with the held events");

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

Deno.test("BufferedEventStream: onBackpressure fires once per fill-up, and again when the buffer fills up again", async () => {
  const gates = [deferred<void>(), deferred<void>()];
  let calls = 0;
  // The first and the fifth downstream writes hang until the test releases them.
  const downstream = new WritableStream<SSEEvent>({
    write: () => {
      calls++;
      if (calls === 1) return gates[0].promise;
      if (calls === 5) return gates[1].promise;
    },
  });
  const full: number[] = [];
  const buffer = new BufferedEventStream(downstream.getWriter(), {
    maxBufferSize: 2,
    onBackpressure: (events) => full.push(events.length),
  });
  const first = range(0, 6).map((n) => buffer.write(ev(n)));
  assert.deepEqual(full, [2], "one call per fill-up, not per blocked write");
  gates[0].resolve();
  await Promise.all(first);
  await until(() => calls === 5, "e4 reaches the downstream");
  await turns(5);
  assert.equal(calls, 5, "nothing more is written while e4 is stuck");
  // e4 is stuck downstream now; e5 may be held: fill up again.
  const second = range(6, 10).map((n) => buffer.write(ev(n)));
  assert.deepEqual(full, [2, 2]);
  gates[1].resolve();
  await Promise.all(second);
  await buffer.close();
  assert.equal(calls, 10);
});

Deno.test("BufferedEventStream: onBackpressure and onFlush are not called when neither bound is reached", async () => {
  const sink = new EventSink();
  let backpressureCalls = 0;
  const flushed: string[][] = [];
  const buffer = new BufferedEventStream(sink.stream.getWriter(), {
    onBackpressure: () => backpressureCalls++,
    onFlush: (events) => flushed.push(ids(events)),
  });
  for (const n of range(0, 100)) await buffer.write(ev(n));
  assert.equal(flushed.length, 0, "100 events, maxBufferSize 1000: no batch");
  assert.equal(backpressureCalls, 0, "100 events, maxBufferSize 1000: never full");
  assert.equal(buffer.held, 100);
  await buffer.close();
  assert.equal(flushed.length, 1, "close calls onFlush once");
  assert.deepEqual(flushed[0], range(0, 100).map((n) => `e${n}`), "close hands onFlush the 100");
  assert.equal(backpressureCalls, 0, "closing does not report backpressure");
  assert.deepEqual(ids(sink.events), range(0, 100).map((n) => `e${n}`));
  assert.ok(sink.closed);
});

Deno.test("BufferedEventStream: order kept, nothing lost, bounds held, batches whole (property, slow consumer)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 120 }),
      async (max, ops) => {
        const sink = new EventSink({ slow: true });
        const batches: string[][] = [];
        const buffer = new BufferedEventStream(sink.stream.getWriter(), {
          maxBufferSize: max,
          onFlush: (events) => batches.push(ids(events)),
        });
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
          assert.ok(buffer.held <= max, `held ${buffer.held} > ${max}`);
          // Everything written is either downstream, held, or waiting: never dropped.
          assert.ok(sink.events.length + buffer.size <= written);
        }
        sink.releaseAll();
        await Promise.all(writes);
        await buffer.close();
        assert.deepEqual(ids(sink.events), range(0, written).map((n) => `e${n}`));
        assert.ok(sink.closed);
        // The batches, in order, are every event written, in full batches but the last.
        assert.deepEqual(batches.flat(), range(0, written).map((n) => `e${n}`));
        for (const batch of batches.slice(0, -1)) assert.equal(batch.length, max);
        assert.ok((batches.at(-1)?.length ?? 0) <= max);
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
  const full: number[] = [];
  const batches: number[] = [];
  const run = new StreamingExecutor(tools.executor).executeWithStreaming(
    { tasks },
    sink.stream,
    {
      maxBufferSize: 10,
      onBackpressure: (events) => full.push(events.length),
      onFlush: (events) => batches.push(events.length),
    },
  );
  await sink.writeWaiting();
  await until(() => tools.calls.length >= 11, "the tools that run before the buffer is full");
  await turns(5);
  // The client is stuck on the first event: the buffer filled up and held
  // the run back (a task runs only once its task_start was accepted).
  assert.deepEqual(full, [10]);
  assert.deepEqual(batches, [10], "e0 (downstream) and e1..e9 (held) made a batch");
  // t0, whose task_start the client is stuck on, and t1..t10, whose starts
  // fill the buffer; t11's start waits for room, so t11..t19 have not run.
  assert.equal(tools.calls.length, 11, "tools that ran while the client was stuck");
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
  assert.deepEqual(batches, [10, 10, 10, 10, 1], "41 events: four batches, then the rest on close");
  assert.ok(sink.closed);
});

Deno.test("BufferedEventStream via StreamingExecutor: a fast client never fills the buffer", async () => {
  const tasks = range(0, 20).map((n) => ({ id: `t${n}`, tool: "x" }));
  const tools = new GatedTools(new Set(tasks.map((t) => t.id)));
  const sink = new EventSink();
  let full = false;
  const batches: number[] = [];
  await new StreamingExecutor(tools.executor).executeWithStreaming(
    { tasks },
    sink.stream,
    {
      maxBufferSize: 100,
      onBackpressure: () => full = true,
      onFlush: (events) => batches.push(events.length),
    },
  );
  assert.equal(full, false);
  assert.equal(sink.events.length, 41);
  assert.deepEqual(batches, [41], "fewer than maxBufferSize events: one batch, on close");
});
