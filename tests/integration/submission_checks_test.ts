/**
 * Mistakes the bundled server catches at submission (422, nothing runs) and
 * those only a run can reveal (the task fails), over real HTTP against the
 * real process: references to tasks not in the DAG, arguments against the
 * tools' input schemas, and unknown `<server>:<tool>` names.
 */

import assert from "node:assert/strict";
import { readSSEEvents } from "../../src/sse/client.ts";
import { assertProblem, postDag, runCount, startServer } from "./_server.ts";

const SSE = "text/event-stream";

type Data = Record<string, unknown>;

Deno.test("submission checks of the bundled server", async (t) => {
  await using server = await startServer();
  await t.step("$OUTPUT[x] naming a task not in the DAG → 422 at the argument's path", async () => {
    const dag = {
      tasks: [
        { id: "a", tool: "mock:echo", arguments: { n: 1 } },
        {
          id: "b",
          tool: "mock:echo",
          arguments: { input: "$OUTPUT[missing]", deep: { list: ["$OUTPUT[gone].x.y"] } },
        },
      ],
    };
    for (
      const [path, accept] of [["/execute", undefined], ["/execute", SSE], ["/runs", undefined]]
    ) {
      const problem = await assertProblem(await postDag(server.at(path!), dag, accept), 422);
      assert.deepEqual(problem.errors, [
        {
          path: "tasks[1].arguments.input",
          message: 'unknown task "missing" in reference "$OUTPUT[missing]"',
        },
        {
          path: "tasks[1].arguments.deep.list[0]",
          message: 'unknown task "gone" in reference "$OUTPUT[gone].x.y"',
        },
      ], `${path} ${accept ?? "json"}`);
    }
    assert.equal(await runCount(server), 0, "nothing ran");
  });

  await t.step(
    "literal arguments that break a tool's schema → 422, every problem with its path",
    async () => {
      for (const ms of [-1, "x", 1.5]) {
        const problem = await assertProblem(
          await postDag(server.at("/execute"), {
            tasks: [{ id: "a", tool: "mock:delay", arguments: { ms } }],
          }),
          422,
        );
        const errors = problem.errors as Data[];
        assert.equal(errors.length, 1);
        assert.equal(errors[0].path, "tasks[0].arguments.ms");
        assert.match(String(errors[0].message), ms === -1 ? /must be >= 0/ : /must be integer/);
      }
      const problem = await assertProblem(
        await postDag(server.at("/runs"), {
          tasks: [
            { id: "a", tool: "mock:delay", arguments: { ms: "x", msec: 5 } },
            { id: "b", tool: "mock:fail", arguments: { message: 3 } },
            { id: "c", tool: "mock:echo", arguments: { anything: [1, null] } },
            { id: "d", tool: "mock:delay", arguments: { ms: "$OUTPUT[c].anything" } },
          ],
        }),
        422,
      );
      assert.deepEqual(problem.errors, [
        { path: "tasks[0].arguments.msec", message: "is not allowed (unknown property)" },
        { path: "tasks[0].arguments.ms", message: "must be integer (got a string)" },
        { path: "tasks[1].arguments.message", message: "must be string (got 3)" },
      ]);
      assert.equal(await runCount(server), 0, "nothing ran");
    },
  );

  await t.step(
    "a referenced value that breaks the schema fails that task at run time",
    async () => {
      const response = await postDag(server.at("/execute"), {
        tasks: [
          { id: "a", tool: "mock:echo", arguments: { label: "soon", n: 0 } },
          { id: "wait", tool: "mock:delay", arguments: { ms: "$OUTPUT[a].label" } },
          { id: "fine", tool: "mock:delay", arguments: { ms: "$OUTPUT[a].n" } },
          { id: "after", tool: "mock:echo", arguments: { w: "$OUTPUT[wait]" } },
          { id: "absent", tool: "mock:echo", arguments: { v: "$OUTPUT[a].nothing" } },
        ],
      }, SSE);
      assert.equal(response.status, 200);
      const completes: Record<string, Data> = {};
      for await (const event of readSSEEvents(response.body!)) {
        if (event.type === "task_complete") {
          const data = event.data as Data;
          completes[data.taskId as string] = data;
        }
      }
      assert.equal(completes.wait.status, "error");
      assert.equal(
        completes.wait.error,
        'invalid arguments for "mock:delay": arguments.ms must be integer (got a string)',
      );
      assert.equal(completes.fine.status, "success");
      assert.deepEqual(completes.fine.output, { waitedMs: 0 });
      assert.equal(completes.after.error, "Dependency wait failed");
      // A reference to a task that exists but lacks the property: a run-time failure.
      assert.equal(completes.absent.status, "error");
      assert.match(String(completes.absent.error), /undefined task output: \$OUTPUT\[a\]\.nothing/);
    },
  );

  await t.step(
    "a <server>:<tool> name with no MCP configuration → 422 saying how to load one",
    async () => {
      const problem = await assertProblem(
        await postDag(server.at("/execute"), {
          tasks: [
            { id: "a", tool: "fs:read", arguments: { path: "/etc/hosts" } },
            { id: "b", tool: "mock:nope" },
          ],
        }),
        422,
      );
      const errors = problem.errors as Data[];
      assert.deepEqual(errors.map((e) => e.path), ["tasks[0].tool", "tasks[1].tool"]);
      assert.match(String(errors[0].message), /^unknown tool "fs:read"/);
      assert.match(String(errors[0].message), /--mcp-config FILE/);
      assert.match(String(errors[0].message), /deno task serve:mcp --mcp-config FILE/);
      assert.equal(
        errors[1].message,
        'unknown tool "mock:nope": the mock:* tools are mock:delay, mock:echo, mock:fail, mock:flaky',
      );
    },
  );

  await t.step("GET /tools lists the schemas that are enforced", async () => {
    const { tools } = await (await fetch(server.at("/tools"))).json();
    const delay = tools.find((tool: Data) => tool.name === "mock:delay");
    assert.deepEqual(delay.inputSchema.properties.ms.type, "integer");
    assert.equal(delay.inputSchema.properties.ms.minimum, 0);
    assert.equal(delay.inputSchema.additionalProperties, false);
  });
});
