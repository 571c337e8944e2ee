/**
 * The FIFO queue behind buffered events, deadlines, run logs and finished
 * runs: it behaves as an array used with `push` and `shift`, whatever the
 * mix of operations, across its compactions.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Queue } from "../../../src/dag/queue.ts";

Deno.test("Queue: first in, first out; peek, at and length", () => {
  const queue = new Queue<number>();
  assert.equal(queue.length, 0);
  assert.equal(queue.empty, true);
  assert.equal(queue.peek(), undefined);
  assert.equal(queue.shift(), undefined);
  for (const n of [1, 2, 3]) queue.push(n);
  assert.equal(queue.length, 3);
  assert.equal(queue.empty, false);
  assert.equal(queue.peek(), 1);
  assert.equal(queue.at(0), 1);
  assert.equal(queue.at(2), 3);
  assert.equal(queue.at(3), undefined);
  assert.equal(queue.at(-1), undefined);
  assert.equal(queue.shift(), 1);
  assert.equal(queue.at(0), 2, "indices count from the current front");
  assert.deepEqual(queue.toArray(), [2, 3]);
  assert.deepEqual(queue.toArray(1), [3]);
  assert.equal(queue.shift(), 2);
  assert.equal(queue.shift(), 3);
  assert.equal(queue.empty, true);
  queue.push(4);
  assert.deepEqual(queue.toArray(), [4], "usable again once emptied");
});

Deno.test("Queue: drain() and clear() empty it", () => {
  const queue = new Queue<string>();
  for (const s of ["a", "b", "c"]) queue.push(s);
  queue.shift();
  assert.deepEqual(queue.drain(), ["b", "c"]);
  assert.equal(queue.length, 0);
  queue.push("d");
  queue.clear();
  assert.equal(queue.peek(), undefined);
  assert.deepEqual(queue.drain(), []);
});

Deno.test("Queue: long runs across compactions keep order and contents", () => {
  const queue = new Queue<number>();
  let next = 0;
  let expected = 0;
  // Keep about 500 items while 100,000 pass through: many compactions.
  for (let round = 0; round < 100_000; round++) {
    queue.push(next++);
    if (queue.length > 500) assert.equal(queue.shift(), expected++);
  }
  assert.equal(queue.length, 500);
  assert.equal(queue.peek(), expected);
  assert.equal(queue.at(499), next - 1);
  assert.deepEqual(queue.drain(), Array.from({ length: 500 }, (_, i) => expected + i));
});

Deno.test("Queue: behaves as an array with push and shift (property)", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("push" as const), value: fc.integer() }),
    fc.record({ kind: fc.constant("pushMany" as const), count: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ kind: fc.constant("shift" as const), count: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ kind: fc.constant("at" as const), index: fc.integer({ min: -2, max: 4000 }) }),
    fc.record({ kind: fc.constant("clear" as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const queue = new Queue<number>();
      let model: number[] = [];
      let counter = 0;
      for (const o of ops) {
        switch (o.kind) {
          case "push":
            queue.push(o.value);
            model.push(o.value);
            break;
          case "pushMany":
            for (let i = 0; i < o.count; i++) {
              queue.push(counter);
              model.push(counter++);
            }
            break;
          case "shift":
            for (let i = 0; i < o.count; i++) assert.equal(queue.shift(), model.shift());
            break;
          case "at":
            assert.equal(queue.at(o.index), o.index < 0 ? undefined : model[o.index]);
            break;
          case "clear":
            queue.clear();
            model = [];
            break;
        }
        assert.equal(queue.length, model.length);
        assert.equal(queue.empty, model.length === 0);
        assert.equal(queue.peek(), model[0]);
      }
      assert.deepEqual(queue.toArray(), model);
    }),
    { numRuns: 200 },
  );
});
