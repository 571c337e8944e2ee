/**
 * JSON answers that always serialise: a run's result with each output as
 * its JSON text, for when `JSON.stringify` of the result threw.
 *
 * @module
 */

import type { DAGExecutionResult } from "../dag/types.ts";
import { withUnserialisableOutput } from "../dag/errors.ts";

/**
 * `body` (a `DAGExecutionResult`, or a run as `toJSON` gives it) with each
 * task output replaced by its JSON text, spliced in as is (`JSON.rawJSON`),
 * or, for an output that no longer serialises (a `toJSON` or getter that
 * throws the second time, a stack overflow), by the error saying so. For
 * answering when `JSON.stringify(body)` threw.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withSerialisableOutputs } from "./serialisable.ts";
 * let calls = 0;
 * const flaky = { toJSON: () => { if (calls++ > 0) throw new Error("gone"); return 1; } };
 * const result = {
 *   results: [{ taskId: "a", status: "success" as const, output: flaky }],
 *   errors: [], executionTimeMs: 1, parallelizationLayers: 1,
 *   totalTasks: 1, successfulTasks: 1, failedTasks: 0,
 * };
 * JSON.stringify(result); // the first time works
 * const safe = JSON.parse(JSON.stringify(withSerialisableOutputs(result)));
 * assert.equal(safe.results[0].status, "error");
 * assert.match(safe.results[0].error, /output is not JSON-serialisable: gone/);
 * ```
 */
export function withSerialisableOutputs(body: unknown): unknown {
  const fix = (result: DAGExecutionResult): DAGExecutionResult => ({
    ...result,
    results: result.results.map((r) => {
      if (r.output === undefined) return r;
      try {
        const text = JSON.stringify(r.output);
        return { ...r, output: text === undefined ? undefined : rawJSON(text) };
      } catch (error) {
        return withUnserialisableOutput(r, error);
      }
    }),
  });
  if (typeof body !== "object" || body === null) return body;
  if (Array.isArray((body as DAGExecutionResult).results)) return fix(body as DAGExecutionResult);
  const result = (body as { result?: DAGExecutionResult }).result;
  return result === undefined ? body : { ...body, result: fix(result) };
}

/** `JSON.rawJSON` (ES2026): a value `JSON.stringify` writes as the given text. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
