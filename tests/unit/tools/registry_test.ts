/**
 * Tool registries: merging the built-in tools with another source, and how
 * an MCP tool result becomes a task's output.
 */

import assert from "node:assert/strict";
import {
  builtinTools,
  combineToolRegistries,
  createToolRegistry,
  type ToolRegistry,
} from "../../../src/server/mod.ts";
import { mapToolResult } from "../../../src/tools/mcp.ts";

const ctx = { signal: new AbortController().signal, taskId: "t" };

Deno.test("combineToolRegistries: first owner runs a name; sorted listing; explanations", async () => {
  const other: ToolRegistry = {
    ...createToolRegistry({
      "x:b": { description: "b", inputSchema: {}, run: () => "x:b" },
      "mock:echo": { description: "shadowed", inputSchema: {}, run: () => "shadowed" },
    }),
    explainUnknown: (name) => name.startsWith("x:") ? `x has no ${name.slice(2)}` : undefined,
  };
  const tools = combineToolRegistries(createToolRegistry({ ...builtinTools }), other);
  assert.deepEqual(await tools.execute("mock:echo", { a: 1 }, ctx), { a: 1 });
  assert.equal(await tools.execute("x:b", {}, ctx), "x:b");
  assert.deepEqual(tools.list().map((t) => t.name), [
    "mock:delay",
    "mock:echo",
    "mock:fail",
    "mock:flaky",
    "x:b",
  ]);
  assert.equal(
    tools.list().find((t) => t.name === "mock:echo")!.description,
    "Returns its arguments unchanged.",
  );
  assert.ok(tools.has("x:b") && !tools.has("x:c"));
  assert.equal(tools.explainUnknown!("x:c"), "x has no c");
  assert.equal(tools.explainUnknown!("y:c"), undefined);
  await assert.rejects(tools.execute("x:c", {}, ctx), { message: "x has no c" });
  await assert.rejects(tools.execute("y:c", {}, ctx), { message: 'unknown tool "y:c"' });
});

Deno.test("mapToolResult: structured content, JSON text, plain text, content array, isError", () => {
  assert.deepEqual(
    mapToolResult({ content: [{ type: "text", text: "{}" }], structuredContent: { sum: 3 } }),
    { sum: 3 },
  );
  assert.deepEqual(mapToolResult({ content: [{ type: "text", text: '[1,"a"]' }] }), [1, "a"]);
  assert.equal(mapToolResult({ content: [{ type: "text", text: "null" }] }), null);
  assert.equal(mapToolResult({ content: [{ type: "text", text: "Echo: hi" }] }), "Echo: hi");
  const image = { type: "image", data: "AAAA", mimeType: "image/png" };
  assert.deepEqual(mapToolResult({ content: [image] }), [image]);
  assert.deepEqual(mapToolResult({ content: [] }), []);
  assert.throws(
    () =>
      mapToolResult({ content: [{ type: "text", text: "no such file" }, image], isError: true }),
    { message: "no such file" },
  );
  assert.throws(() => mapToolResult({ content: [], isError: true }), /with no text/);
  assert.equal(mapToolResult({ toolResult: 7 }), 7);
});
