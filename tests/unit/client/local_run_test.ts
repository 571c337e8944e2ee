/**
 * A run in the command's own process (`deno task run` without --server):
 * the server's validation rules, progress events, and a cancel that the
 * running tools see as their signal aborting. A tool that blocks until its
 * signal aborts orders the steps: nothing waits on a clock.
 */

import assert from "node:assert/strict";
import { openLocalRun } from "../../../src/client/local-run.ts";
import { RunSourceError } from "../../../src/client/run-source.ts";
import type { ManagedToolRegistry } from "../../../src/tools/registry.ts";

/** A registry with one tool, `test:block`, that reports progress, then waits for its signal to abort. */
function blockingTools() {
  const aborted: unknown[] = [];
  let closed = 0;
  const tools: ManagedToolRegistry = {
    execute(_tool, _args, ctx) {
      const blocked = new Promise((_, reject) => {
        ctx.signal.addEventListener("abort", () => {
          aborted.push(ctx.signal.reason);
          reject(ctx.signal.reason);
        }, { once: true });
      });
      ctx.progress?.({ progress: 0, total: 1, message: "blocked" });
      return blocked;
    },
    has: (name) => name === "test:block",
    list: () => [{ name: "test:block", description: "blocks", inputSchema: { type: "object" } }],
    health: () => ({}),
    close() {
      closed++;
      return Promise.resolve();
    },
  };
  return { tools, aborted, closed: () => closed };
}

Deno.test("local run: a cancel aborts the running tools' signals; the rest end unrun", async () => {
  const { tools, aborted, closed } = blockingTools();
  const source = openLocalRun({
    tasks: [
      { id: "block", tool: "test:block" },
      { id: "after", tool: "mock:echo", dependsOn: ["block"] },
    ],
  }, { mcp: tools });
  const events: { type: string; data: Record<string, unknown> }[] = [];
  await source.follow((type, data) => {
    events.push({ type, data: data as Record<string, unknown> });
    // The tool is blocked once it reported progress: cancel then.
    if (type === "task_progress") void source.cancel();
  });
  assert.equal(aborted.length, 1, "the blocked tool saw its signal abort");
  const ends = events.filter((e) => e.type === "task_complete").map((e) => [
    e.data.taskId,
    e.data.error,
  ]);
  assert.deepEqual(ends, [["block", "aborted: interrupted"], ["after", "aborted: interrupted"]]);
  assert.equal(events.at(-1)?.type, "execution_complete");
  await source.close();
  assert.equal(closed(), 1, "closing the source closes the MCP servers' registry");
});

Deno.test("local run: a DAG is held to the server's rules, every problem with its path", () => {
  assert.throws(
    () =>
      openLocalRun({
        tasks: [
          { id: "a", tool: "mock:delay", arguments: { ms: -1 } },
          { id: "b", tool: "mock:echo", arguments: { x: "$OUTPUT[nope]" } },
        ],
      }),
    (error) => {
      assert.ok(error instanceof RunSourceError);
      assert.equal(error.message, "the DAG is invalid (2 problems)");
      assert.deepEqual(error.issues.map((i) => i.path), [
        "tasks[0].arguments.ms",
        "tasks[1].arguments.x",
      ]);
      return true;
    },
  );
});
