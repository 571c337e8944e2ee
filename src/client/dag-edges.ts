/**
 * The edges a viewer draws between a DAG's tasks: one per pair of tasks,
 * whether the later one lists the earlier in `dependsOn`, reads its output
 * through a `$OUTPUT[id]` reference in its arguments, or both.
 *
 * Pure: bundled into the page.
 *
 * @module
 */

import { locateOutputReferences } from "../dag/arguments.ts";
import type { ViewedTaskSpec } from "./run-state.ts";

/** An edge from a task to one that waits for it. */
export interface DagEdge {
  /** The task waited for. */
  from: string;
  /** The task that waits. */
  to: string;
  /** Whether `to` lists `from` in `dependsOn`. */
  declared: boolean;
  /** Whether `to` reads `from`'s output (`$OUTPUT[from]`). */
  readsOutput: boolean;
}

/**
 * The edges of `tasks`, in declaration order of their `to` task, without
 * duplicates; edges to or from ids that are not tasks are left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dagEdges } from "./dag-edges.ts";
 * const edges = dagEdges([
 *   { id: "a", tool: "mock:echo" },
 *   { id: "b", tool: "mock:echo", dependsOn: ["a"], arguments: { x: "$OUTPUT[a].x" } },
 *   { id: "c", tool: "mock:echo", arguments: { y: "$OUTPUT[b]" } },
 * ]);
 * assert.deepEqual(edges, [
 *   { from: "a", to: "b", declared: true, readsOutput: true },
 *   { from: "b", to: "c", declared: false, readsOutput: true },
 * ]);
 * ```
 */
export function dagEdges(tasks: readonly ViewedTaskSpec[]): DagEdge[] {
  const ids = new Set(tasks.map((task) => task.id));
  const edges: DagEdge[] = [];
  for (const task of tasks) {
    const byFrom = new Map<string, DagEdge>();
    const add = (from: string): DagEdge | undefined => {
      if (!ids.has(from) || from === task.id) return undefined;
      let edge = byFrom.get(from);
      if (edge === undefined) {
        edge = { from, to: task.id, declared: false, readsOutput: false };
        byFrom.set(from, edge);
        edges.push(edge);
      }
      return edge;
    };
    for (const from of task.dependsOn ?? []) {
      const edge = add(from);
      if (edge) edge.declared = true;
    }
    for (const found of locateOutputReferences(task.arguments ?? {})) {
      const edge = add(found.reference.taskId);
      if (edge) edge.readsOutput = true;
    }
  }
  return edges;
}
