/**
 * Runs a DAG file on a dagstream server and prints each event as it arrives.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read=examples examples/client.ts examples/diamond.json
 *
 * Flags: --url (default http://127.0.0.1:8000), --token.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { readSSEEvents } from "../mod.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { url: { type: "string", default: "http://127.0.0.1:8000" }, token: { type: "string" } },
  allowPositionals: true,
});
const file = positionals[0] ?? "examples/diamond.json";
const headers: Record<string, string> = {
  "Accept": "text/event-stream",
  "Content-Type": "application/json",
};
if (values.token) headers.Authorization = `Bearer ${values.token}`;

const response = await fetch(new URL("/execute", values.url), {
  method: "POST",
  headers,
  body: await Deno.readTextFile(file),
});
if (!response.ok || response.body === null) {
  console.error(`${response.status}: ${await response.text()}`);
  Deno.exit(1);
}
console.log(`run ${response.headers.get("x-run-id")}`);
for await (const event of readSSEEvents(response.body)) {
  switch (event.type) {
    case "task_start":
      console.log(`▶ ${event.data.taskId} (${event.data.tool})`);
      break;
    case "task_complete":
      if (event.data.status === "success") {
        console.log(`✓ ${event.data.taskId} ${event.data.executionTimeMs.toFixed(0)} ms`);
      } else console.log(`✗ ${event.data.taskId}: ${event.data.error}`);
      break;
    case "execution_complete":
      console.log(
        `done: ${event.data.successCount}/${event.data.totalTasks} succeeded in ` +
          `${event.data.totalExecutionTimeMs.toFixed(0)} ms (speedup ${
            event.data.speedup.toFixed(2)
          }x)`,
      );
      break;
    case "error":
      console.log(`error: ${event.data.error}`);
      break;
  }
}
