import assert from "node:assert/strict";
import { ParallelExecutor } from "../../../mod.ts";

Deno.test("a two-task DAG runs and wires $OUTPUT", async () => {
  const executor = new ParallelExecutor((_tool, args) => Promise.resolve(args));
  const result = await executor.execute({
    tasks: [
      { id: "a", tool: "echo", arguments: { v: 1 } },
      { id: "b", tool: "echo", arguments: { prev: "$OUTPUT[a].v" } },
    ],
  });
  assert.equal(result.successfulTasks, 2);
  assert.deepEqual(result.results[1].output, { prev: 1 });
});
