/**
 * A run executed in this process, for `deno task run <dag.json>`: the
 * built-in tools, plus the MCP servers' tools when there are some, the
 * server's validation rules, and the library's streaming executor.
 *
 * @module
 */

import { DEFAULT_MAX_TASKS } from "../dag/defaults.ts";
import { StreamingExecutor } from "../dag/streaming.ts";
import { checkDag } from "../server/dag-checks.ts";
import { builtinTools } from "../tools/builtin.ts";
import { httpRequestTool } from "../tools/http-request.ts";
import {
  combineToolRegistries,
  createToolRegistry,
  type ManagedToolRegistry,
} from "../tools/registry.ts";
import { type RunSource, RunSourceError } from "./run-source.ts";

/**
 * What {@linkcode openLocalRun} is given besides the DAG.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LocalRunOptions } from "./local-run.ts";
 * const options: LocalRunOptions = { allowHttp: ["127.0.0.1:8000"] };
 * assert.equal(options.mcp, undefined);
 * ```
 */
export interface LocalRunOptions {
  /** MCP servers' tools offered besides the built-in ones; closed with the source. */
  mcp?: ManagedToolRegistry;
  /** Hosts `http:request` may call (`HOST` or `HOST:PORT`); without any, there is no such tool. */
  allowHttp?: readonly string[];
}

/**
 * Validates `document` as a DAG with the bundled server's rules (at most
 * 1000 tasks, known tools, arguments their input schemas take, references
 * to tasks that exist) and returns a source that runs it in this process.
 *
 * @throws {RunSourceError} with every problem and its path, for a DAG the server would refuse
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLocalRun } from "./local-run.ts";
 * const source = openLocalRun({ tasks: [{ id: "a", tool: "mock:echo", arguments: { n: 1 } }] });
 * const types: string[] = [];
 * await source.follow((type) => types.push(type));
 * assert.deepEqual(types, ["task_start", "task_complete", "execution_complete"]);
 * await source.close();
 *
 * assert.throws(
 *   () => openLocalRun({ tasks: [{ id: "a", tool: "mock:nope" }] }),
 *   (error: any) => error.issues[0].path === "tasks[0].tool",
 * );
 * ```
 */
export function openLocalRun(document: unknown, options: LocalRunOptions = {}): RunSource {
  const builtin = createToolRegistry(
    options.allowHttp === undefined || options.allowHttp.length === 0
      ? { ...builtinTools }
      : { ...builtinTools, "http:request": httpRequestTool({ allow: options.allowHttp }) },
  );
  const { mcp } = options;
  const tools = mcp === undefined ? builtin : combineToolRegistries(builtin, mcp);
  const checked = checkDag(document, {
    maxBodyBytes: Infinity, // the file is read whole; the server's bound is on its requests
    maxTasks: DEFAULT_MAX_TASKS,
    tools,
    mcp,
  });
  if (!checked.ok) {
    const n = checked.issues.length;
    throw new RunSourceError(
      `the DAG is invalid (${n} problem${n === 1 ? "" : "s"})`,
      checked.issues,
    );
  }
  const dag = checked.dag;
  const stop = new AbortController();
  let started = false;
  return {
    tasks: dag.tasks,
    async follow(onEvent) {
      if (started) throw new RunSourceError("the run was already followed");
      started = true;
      const executor = new StreamingExecutor(tools.execute);
      // The sink returns nothing: the run never waits for the view.
      await executor.executeWithEventSink(dag, (event) => {
        onEvent(event.type, event.data);
      }, { signal: stop.signal });
    },
    cancel() {
      // Tasks end with "aborted: interrupted": the view shows them cancelled.
      stop.abort(new Error("interrupted"));
      return Promise.resolve();
    },
    async close() {
      stop.abort(new Error("interrupted"));
      await mcp?.close();
    },
  };
}
