/**
 * The server's log is written in batches: every line reaches stderr, in
 * order, when the process ends by itself or when the server exits.
 */

import assert from "node:assert/strict";

const LOG = new URL("../../../src/server/log.ts", import.meta.url).href;

async function stderrOf(code: string): Promise<string[]> {
  const { stderr, code: status } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(status, 0);
  return new TextDecoder().decode(stderr).split("\n").filter((line) => line !== "");
}

Deno.test("log: a process that ends by itself writes every waiting line, in order", async () => {
  const lines = await stderrOf(`
    import { logToStderr } from ${JSON.stringify(LOG)};
    for (let i = 0; i < 5; i++) logToStderr({ msg: "line", i });
  `);
  assert.deepEqual(lines.map((line) => JSON.parse(line).i), [0, 1, 2, 3, 4]);
});

Deno.test("log: flushLog writes the waiting lines before other output and an exit", async () => {
  const lines = await stderrOf(`
    import { flushLog, logToStderr } from ${JSON.stringify(LOG)};
    logToStderr({ msg: "first" });
    flushLog();
    console.error("second");
    logToStderr({ msg: "third" });
    flushLog();
    Deno.exit(0);
  `);
  assert.equal(lines.length, 3);
  assert.equal(JSON.parse(lines[0]).msg, "first");
  assert.equal(lines[1], "second");
  assert.equal(JSON.parse(lines[2]).msg, "third");
});

Deno.test("log: more than 64 KiB of lines is written as it fills, all of it, in order", async () => {
  const lines = await stderrOf(`
    import { logToStderr } from ${JSON.stringify(LOG)};
    for (let i = 0; i < 2000; i++) logToStderr({ msg: "x".repeat(100), i });
  `);
  assert.equal(lines.length, 2000);
  assert.ok(lines.every((line, i) => JSON.parse(line).i === i));
});

Deno.test("log: each line is the record's JSON with time first; an empty record is just the time", async () => {
  const lines = await stderrOf(`
    import { logToStderr } from ${JSON.stringify(LOG)};
    logToStderr({ msg: "a", n: 1, nested: { s: "x\\ny" } });
    logToStderr({});
  `);
  const first = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(first), ["time", "msg", "n", "nested"]);
  assert.deepEqual(first.nested, { s: "x\ny" });
  assert.ok(!Number.isNaN(Date.parse(first.time)));
  assert.deepEqual(Object.keys(JSON.parse(lines[1])), ["time"]);
});
