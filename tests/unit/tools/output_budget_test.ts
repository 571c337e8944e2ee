/**
 * measureJson counts what JSON.stringify would write, without calling it:
 * the same values are serialisable, too deep or over the limit.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_JSON_DEPTH, measureJson } from "../../../src/tools/output-budget.ts";

function sized(value: unknown, limit = Infinity) {
  const size = measureJson(value, limit);
  assert.ok(size !== "over" && size !== "deep", `measured ${String(size)}`);
  return size;
}

Deno.test("measureJson: JSON values are counted within a small factor of their JSON text", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
      const text = JSON.stringify(value);
      const { json } = sized(value);
      // Each number counts 5, each key and item its punctuation: close to the text.
      assert.ok(json >= text.length / 6, `${json} for ${text.length}: ${text}`);
      assert.ok(json <= text.length * 3 + 16, `${json} for ${text.length}: ${text}`);
      // And the limit is where counting stops.
      if (json > 1) assert.equal(measureJson(value, json - 1), "over");
    }),
    { seed: 20261130, numRuns: 500 },
  );
});

Deno.test("measureJson: what JSON.stringify cannot write counts 0, for the executor to report", () => {
  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  assert.deepEqual(measureJson(cycle, 1000), { json: 0, memory: 0 });
  assert.deepEqual(measureJson({ n: 1n }, 1000), { json: 0, memory: 0 });
  assert.deepEqual(
    measureJson({
      toJSON: () => {
        throw new Error("no");
      },
    }, 1000),
    {
      json: 0,
      memory: 0,
    },
  );
  // A cycle far from the top is found too (not taken for deep nesting).
  let deep: Record<string, unknown> = {};
  const top = deep;
  for (let d = 0; d < 100; d++) deep = (deep.next = {}) as Record<string, unknown>;
  deep.back = top.next;
  assert.deepEqual(measureJson(top, Infinity), { json: 0, memory: 0 });
});

Deno.test("measureJson: a value shared by two branches is no cycle", () => {
  const shared = { x: "y" };
  assert.ok(sized({ a: shared, b: [shared, shared] }).json > 0);
});

Deno.test("measureJson: toJSON results and boxed primitives are what is counted", () => {
  const date = new Date(0);
  assert.equal(sized({ d: date }).json, sized({ d: date.toJSON() }).json);
  assert.equal(sized([new String("abc")]).json, sized(["abc"]).json);
  assert.equal(sized({ big: { toJSON: () => "x".repeat(500) } }).json > 500, true);
  assert.equal(measureJson({ big: { toJSON: () => "x".repeat(500) } }, 100), "over");
});

Deno.test("measureJson: nesting deeper than MAX_JSON_DEPTH is 'deep'; at the limit it is not", () => {
  let atLimit: unknown = "leaf";
  for (let d = 0; d < MAX_JSON_DEPTH; d++) atLimit = [atLimit];
  sized(atLimit);
  assert.equal(measureJson([atLimit], Infinity), "deep");
});

Deno.test("measureJson: a huge value stops being counted at the limit", () => {
  const huge = Array.from({ length: 1_000_000 }, (_, i) => ({ i }));
  assert.equal(measureJson(huge, 1000), "over");
});
