/**
 * The bytes of run logs: a log's frames are encoded once into shared blocks
 * (readers get views, never copies, and a view never changes), and a
 * registry's `maxLogBytesTotal` bounds all logs together — finished runs give
 * way first, oldest first, then an active run's own oldest events, and new
 * runs are refused while active runs fill the budget.
 */

import assert from "node:assert/strict";
import { type SSEEvent, type ToolExecutor, validateDAG } from "../../../mod.ts";
import { encodeSSEEvent } from "../../../src/sse/mod.ts";
import { LogBudget, RunLog } from "../../../src/sse/run-log.ts";
import type { Run } from "../../../src/server/run.ts";
import { RunRegistry, type RunSettings } from "../../../src/server/run-registry.ts";
import type { PreparedDAG } from "../../../src/dag/validate.ts";
import { GatedTools, until } from "../dag/_helpers.ts";

const decoder = new TextDecoder();

function note(text: string): SSEEvent {
  return { type: "error", data: { error: text, timestamp: "2026-01-01T00:00:00.000Z" } };
}

function complete(taskId: string, output: unknown): SSEEvent {
  return {
    type: "task_complete",
    data: {
      taskId,
      tool: "t",
      status: "success",
      output,
      executionTimeMs: 1,
      timestamp: "2026-01-01T00:00:00.000Z",
    },
  };
}

/** Every frame after `cursor`, read chunk by chunk, as text. */
function readAll(log: RunLog, cursor = 0): { text: string; chunks: number } {
  let text = "";
  let chunks = 0;
  for (;;) {
    const read = log.readChunk(cursor);
    if (read.kind !== "frames") return { text, chunks };
    text += decoder.decode(read.bytes);
    cursor = read.lastSeq;
    chunks++;
  }
}

Deno.test("RunLog: frames of every size, across blocks, read back exactly (chunks and text)", () => {
  const log = new RunLog(1 << 30, 64 * 1024);
  const expected: string[] = [""];
  const sizes = [0, 10, 300, 5_000, 20_000, 40_000, 70_000, 100];
  for (let i = 0; i < 600; i++) {
    const n = sizes[i % sizes.length];
    // ASCII, two- and three-byte characters, and a surrogate pair.
    const text = i % 3 === 0
      ? "é".repeat(n / 2)
      : i % 3 === 1
      ? "x".repeat(n)
      : "€😀".repeat(n / 8);
    const event = i % 2 === 0 ? note(text) : complete(`t${i}`, { text });
    const seq = log.append(event);
    assert.equal(seq, i + 1);
    expected.push(encodeSSEEvent(event, seq, 64 * 1024));
  }
  const all = expected.join("");
  const { text, chunks } = readAll(log);
  assert.equal(text, all);
  assert.ok(chunks > 1, "several blocks");
  assert.equal(log.bytes, new TextEncoder().encode(all).byteLength);
  for (const cursor of [0, 1, 7, 299, 598, 599]) {
    assert.equal(readAll(log, cursor).text, expected.slice(cursor + 1).join(""), `after ${cursor}`);
    const read = log.readChunk(cursor, 100_000);
    assert.equal(read.kind, "frames");
    if (read.kind === "frames") {
      assert.equal(
        new TextDecoder().decode(read.bytes),
        expected.slice(cursor + 1, read.lastSeq + 1).join(""),
      );
    }
  }
  assert.deepEqual(log.readChunk(600), { kind: "wait" });
  log.end();
  assert.deepEqual(log.readChunk(600), { kind: "end" });
  assert.equal(readAll(log).text, all, "ending the log (trimming its last block) changes nothing");
});

Deno.test("RunLog: readers share the same bytes, and a view never changes afterwards", () => {
  const log = new RunLog(50_000);
  log.append(note("first"));
  const a = log.readChunk(0);
  const b = log.readChunk(0);
  assert.ok(a.kind === "frames" && b.kind === "frames");
  assert.equal(a.bytes.buffer, b.bytes.buffer, "one buffer for both readers");
  const before = decoder.decode(a.bytes);
  // The open block grows (copied into a larger buffer), is sealed, and its
  // frames give way: a view handed out earlier keeps its bytes.
  for (let i = 0; i < 200; i++) log.append(note("y".repeat(1000)));
  assert.ok(log.firstSeq > 1, "the first frames gave way");
  assert.equal(decoder.decode(a.bytes), before);
  log.discard();
  assert.equal(decoder.decode(a.bytes), before);
});

Deno.test("RunLog with a budget: charges its bytes, gives them back as frames go, and on discard", () => {
  const budget = new LogBudget(1_000_000);
  const log = new RunLog(3000, undefined, budget);
  for (let i = 0; i < 50; i++) {
    log.append(note(`event ${i} ${"z".repeat(i * 10)}`));
    assert.equal(budget.usedBytes, log.bytes);
    assert.ok(log.bytes <= 3000 || log.lastSeq === log.firstSeq, "own bound");
  }
  log.end();
  const kept = log.bytes;
  assert.ok(kept > 0);
  log.discard();
  assert.equal(log.bytes, 0);
  assert.equal(budget.usedBytes, 0);
  assert.equal(log.readChunk(0).kind, "lost");
  assert.deepEqual(
    log.readChunk(log.lastSeq),
    { kind: "end" },
    "a reader that had everything ends",
  );
});

Deno.test("RunLog with a budget: over it, reclaim runs first, then the appending log gives way", () => {
  let reclaims = 0;
  let other: RunLog | undefined;
  const budget = new LogBudget(5000, () => {
    reclaims++;
    other?.discard();
    other = undefined;
  });
  other = new RunLog(1 << 20, undefined, budget);
  other.append(note("o".repeat(2000)));
  other.end();
  const log = new RunLog(1 << 20, undefined, budget);
  log.append(note("a".repeat(2000)));
  assert.equal(reclaims, 0);
  log.append(note("b".repeat(2000)));
  assert.equal(reclaims, 1, "the other log was freed first");
  assert.equal(log.firstSeq, 1, "nothing of this log gave way");
  for (let i = 0; i < 5; i++) log.append(note("c".repeat(2000)));
  assert.ok(budget.usedBytes <= 5000, `${budget.usedBytes} bytes`);
  assert.ok(log.firstSeq > 1, "then its own oldest events");
  assert.equal(budget.usedBytes, log.bytes);
  // A single event larger than the budget is still kept (the newest always is).
  log.append(note("d".repeat(10_000)));
  assert.equal(log.firstSeq, log.lastSeq);
  assert.equal(budget.usedBytes, log.bytes);
});

/** Tools: `big` answers at once with `n` characters; every other tool waits for its gate. */
function tools(gates: GatedTools): ToolExecutor {
  return (tool, args, ctx) =>
    tool === "big" ? Promise.resolve("x".repeat(Number(args.n))) : gates.tool(tool, args, ctx);
}

function prepared(tasks: unknown[]): PreparedDAG {
  const checked = validateDAG({ tasks });
  assert.ok(checked.ok, JSON.stringify(!checked.ok && checked.issues));
  return checked.dag;
}

function settings(overrides: Partial<RunSettings> = {}): RunSettings {
  return {
    executor: {},
    maxRunLogBytes: 1 << 30,
    maxEventPayloadBytes: 64 * 1024,
    maxActiveRuns: 100,
    maxRuns: 100,
    runTtlSeconds: 600,
    ...overrides,
  };
}

const BIG = 10_000;

/**
 * A run that writes one ~10 KB event at once (4 events in all), another
 * once gate `gate<i>` opens, and stays active until gate `hold<i>` opens.
 */
function heldRun(i: number): PreparedDAG {
  return prepared([
    { id: `hold${i}`, tool: "gate" },
    { id: `big${i}`, tool: "big", arguments: { n: BIG } },
    { id: `gate${i}`, tool: "gate" },
    { id: `late${i}`, tool: "big", arguments: { n: BIG }, dependsOn: [`gate${i}`] },
  ]);
}

Deno.test("maxLogBytesTotal: finished runs go first, oldest first; then an active log gives way; new runs wait", async () => {
  const gates = new GatedTools();
  const max = 50_000;
  const registry = new RunRegistry(tools(gates), settings({ maxLogBytesTotal: max }));
  const active: Run[] = [];
  try {
    const finished: Run[] = [];
    for (let i = 0; i < 3; i++) {
      const run = registry.start(prepared([{ id: "b", tool: "big", arguments: { n: BIG } }]))!;
      await run.done;
      finished.push(run);
    }
    const one = finished[0].log.bytes;
    assert.ok(one > BIG && one < BIG + 1000, `${one} bytes per finished run`);
    assert.equal(registry.logBytes, finished.reduce((n, run) => n + run.log.bytes, 0));
    assert.equal(registry.activeLogBytes, 0);

    const start = async (i: number) => {
      const run = registry.start(heldRun(i));
      assert.ok(run, `run ${i} started`);
      active.push(run);
      // hold, big and gate start, big completes: then the run waits for its gates.
      await until(() => run.log.lastSeq === 4, `run ${i}'s first 4 events`);
      assert.ok(registry.logBytes <= max, `${registry.logBytes} <= ${max}`);
      return run;
    };
    // Each active run holds about 10 KB: the oldest finished run gives way
    // when the second one writes, the next oldest with the third.
    await start(1);
    assert.equal(registry.list().length, 4, "nothing forgotten yet");
    await start(2);
    assert.equal(registry.get(finished[0].id), undefined, "the oldest finished run is forgotten");
    assert.ok(finished[0].log.discarded, "and its log freed");
    assert.ok(registry.get(finished[1].id) && registry.get(finished[2].id), "the others stay");
    await start(3);
    assert.equal(registry.get(finished[1].id), undefined, "then the next oldest");
    assert.ok(registry.get(finished[2].id));

    // Three active runs hold ~31 KB: less than one full-size event's room
    // (here half the budget) is left for a fourth.
    assert.equal(registry.refusal(), "maxLogBytesTotal");
    assert.equal(registry.start(heldRun(4)), null);
    assert.equal(registry.activeCount, 3);

    // Run 1 writes 10 KB more: the last finished run gives way, no active event does.
    gates.release("gate1");
    // gate1 completes, late1 starts and completes: events 5 to 7.
    await until(() => active[0].log.lastSeq === 7, "late1 completes");
    assert.equal(registry.get(finished[2].id), undefined);
    assert.ok(registry.logBytes <= max);
    for (const run of active) assert.equal(run.log.firstSeq, 1, "active logs are whole");

    // Run 3 writes 10 KB more with no finished run left: its own oldest
    // events give way (its watchers that still needed them get events_lost).
    assert.ok(registry.logBytes + BIG > max, "the next event does not fit");
    gates.release("gate3");
    await until(() => active[2].log.lastSeq === 7, "late3 completes");
    assert.ok(registry.logBytes <= max, `${registry.logBytes} bytes`);
    assert.ok(active[2].log.firstSeq > 1, "the run that wrote gave way itself");
    assert.equal(active[0].log.firstSeq, 1);
    assert.equal(active[1].log.firstSeq, 1);
    assert.equal(active[2].log.readChunk(0).kind, "lost");
    assert.equal(registry.activeCount, 3);

    // Once the active runs end, new runs start again.
    gates.releaseAll();
    await registry.idle();
    assert.equal(registry.activeLogBytes, 0);
    assert.equal(registry.refusal(), undefined);
    const again = registry.start(prepared([{ id: "b", tool: "big", arguments: { n: BIG } }]));
    assert.ok(again);
    await again.done;
    assert.ok(registry.logBytes <= max);
  } finally {
    gates.releaseAll();
    registry.cancelAll("test over");
    await registry.idle();
  }
});

Deno.test("maxLogBytesTotal: finished runs never block new ones, and the budget counts exactly the kept logs", async () => {
  const gates = new GatedTools();
  const max = 40_000;
  const registry = new RunRegistry(tools(gates), settings({ maxLogBytesTotal: max }));
  let worst = 0;
  try {
    const all: Run[] = [];
    for (let i = 0; i < 30; i++) {
      const run = registry.start(
        prepared(
          Array.from(
            { length: 5 },
            (_, k) => ({ id: `b${k}`, tool: "big", arguments: { n: 3000 } }),
          ),
        ),
      );
      if (run === null) break;
      all.push(run);
      await run.done;
      worst = Math.max(worst, registry.logBytes);
      let sum = 0;
      for (const kept of registry.list()) sum += kept.log.bytes;
      assert.equal(registry.logBytes, sum, "the budget counts exactly the kept logs");
    }
    assert.equal(all.length, 30, "finished runs never block new ones");
    assert.ok(worst <= max, `worst ${worst}`);
    // A run's log is about 16 KB: two of them fit in 40,000 bytes, a third does not.
    assert.equal(registry.list().length, 2, "old runs were forgotten");
    assert.equal(registry.list().at(-1)!.id, all.at(-1)!.id);
  } finally {
    gates.releaseAll();
    await registry.idle();
  }
});

Deno.test("refusal names maxActiveRuns first", async () => {
  const gates = new GatedTools();
  const registry = new RunRegistry(
    tools(gates),
    settings({ maxActiveRuns: 1, maxLogBytesTotal: 1 << 20 }),
  );
  try {
    assert.equal(registry.refusal(), undefined);
    assert.ok(registry.start(prepared([{ id: "g", tool: "gate" }])));
    assert.equal(registry.refusal(), "maxActiveRuns");
    assert.equal(registry.start(prepared([{ id: "g", tool: "gate" }])), null);
  } finally {
    gates.releaseAll();
    await registry.idle();
  }
});
