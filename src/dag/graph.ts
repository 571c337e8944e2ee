/**
 * The dependency graph of a DAG as index arrays, its topological layers
 * (Kahn's algorithm, O(V+E)) and cycle finding.
 *
 * @module
 */

/**
 * A DAG's dependencies by task index: `deps[i]` are the tasks task `i` waits
 * for, `dependents[i]` the tasks that wait for task `i` (in declaration order).
 */
export interface TaskGraph {
  /** Number of tasks. */
  size: number;
  /** For each task, the indices of its dependencies (no duplicates). */
  deps: number[][];
  /** For each task, the indices of the tasks depending on it, ascending. */
  dependents: number[][];
  /** `deps[i].length` for each task, in one array. */
  dependencyCounts: Int32Array;
  /**
   * `dependents` in two flat arrays, for the scheduler's hot loop: task `i`'s
   * dependents are `dependentIndices[dependentOffsets[i]]` up to (not
   * including) `dependentIndices[dependentOffsets[i + 1]]`. Contiguous
   * memory keeps a 100,000-task run about as fast per task as a small one.
   */
  dependentOffsets: Int32Array;
  /** See {@linkcode TaskGraph.dependentOffsets}. */
  dependentIndices: Int32Array;
}

/**
 * Builds the index graph from each task's dependency indices, taking
 * ownership of the lists (duplicates are removed in place).
 *
 * @param deps for each task, the indices of the tasks it depends on
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildGraph } from "./graph.ts";
 * // task 1 waits for task 0 (listed twice); task 2 for tasks 0 and 1
 * const graph = buildGraph([[], [0, 0], [0, 1]]);
 * assert.equal(graph.size, 3);
 * assert.deepEqual(graph.deps, [[], [0], [0, 1]]);
 * assert.deepEqual(graph.dependents, [[1, 2], [2], []]);
 * assert.deepEqual([...graph.dependentOffsets], [0, 2, 3, 3]);
 * assert.deepEqual([...graph.dependentIndices], [1, 2, 2]);
 * ```
 */
export function buildGraph(deps: number[][]): TaskGraph {
  const size = deps.length;
  const dependents: number[][] = new Array(size);
  for (let i = 0; i < size; i++) dependents[i] = [];
  for (let i = 0; i < size; i++) {
    const own = deps[i];
    if (own.length > 1) dedupe(own);
    for (const d of own) dependents[d].push(i);
  }
  const dependencyCounts = new Int32Array(size);
  const dependentOffsets = new Int32Array(size + 1);
  for (let i = 0; i < size; i++) {
    dependencyCounts[i] = deps[i].length;
    dependentOffsets[i + 1] = dependentOffsets[i] + dependents[i].length;
  }
  const dependentIndices = new Int32Array(dependentOffsets[size]);
  for (let i = 0, at = 0; i < size; i++) {
    const list = dependents[i];
    for (let k = 0; k < list.length; k++) dependentIndices[at++] = list[k];
  }
  return { size, deps, dependents, dependencyCounts, dependentOffsets, dependentIndices };
}

function dedupe(list: number[]): void {
  if (list.length > 16) {
    // A loop, not `push(...unique)`: spreading an unbounded list into a call
    // overflows the stack (one task may depend on hundreds of thousands).
    const unique = new Set(list);
    list.length = 0;
    for (const d of unique) list.push(d);
    return;
  }
  let n = 0;
  for (let k = 0; k < list.length; k++) {
    if (list.indexOf(list[k]) === k) list[n++] = list[k];
  }
  list.length = n;
}

/**
 * Splits the graph into topological layers: layer 0 holds the tasks without
 * dependencies, layer k those whose deepest dependency is in layer k-1. Each
 * layer lists task indices in declaration order. Runs in O(V+E).
 *
 * @returns the layers, or `null` when the graph has a cycle
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildGraph, topologicalLayers } from "./graph.ts";
 * // 0 and 3 wait for nothing, 1 waits for 0, 2 for 1 and 3
 * assert.deepEqual(topologicalLayers(buildGraph([[], [0], [1, 3], []])), [[0, 3], [1], [2]]);
 * assert.equal(topologicalLayers(buildGraph([[1], [0]])), null, "a cycle has no layers");
 * ```
 */
export function topologicalLayers(graph: TaskGraph): number[][] | null {
  const { size, dependencyCounts, dependentOffsets, dependentIndices } = graph;
  const remaining = dependencyCounts.slice();
  const depth = new Int32Array(size);
  const queue = new Int32Array(size);
  let tail = 0;
  for (let i = 0; i < size; i++) if (remaining[i] === 0) queue[tail++] = i;
  // Kahn's algorithm; a task's layer is one more than its deepest dependency's.
  let layerCount = size === 0 ? 0 : 1;
  for (let head = 0; head < tail; head++) {
    const t = queue[head];
    const next = depth[t] + 1;
    for (let k = dependentOffsets[t], end = dependentOffsets[t + 1]; k < end; k++) {
      const d = dependentIndices[k];
      if (next > depth[d]) depth[d] = next;
      if (--remaining[d] === 0) {
        queue[tail++] = d;
        if (next + 1 > layerCount) layerCount = next + 1;
      }
    }
  }
  if (tail !== size) return null;
  // Bucketing by index keeps each layer in declaration order without sorting.
  const layers: number[][] = [];
  for (let k = 0; k < layerCount; k++) layers.push([]);
  for (let i = 0; i < size; i++) layers[depth[i]].push(i);
  return layers;
}

/**
 * Finds one dependency cycle, as task indices in dependency order with the
 * first index repeated at the end (`[a, b, a]` means a waits for b, b for a).
 * Iterative depth-first search, O(V+E).
 *
 * @returns the cycle, or `null` when there is none
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildGraph, findCycle } from "./graph.ts";
 * // 0 waits for 1, 1 for 2, 2 for 0; 3 waits for 0
 * assert.deepEqual(findCycle(buildGraph([[1], [2], [0], [0]])), [0, 1, 2, 0]);
 * assert.equal(findCycle(buildGraph([[], [0], [0, 1]])), null);
 * ```
 */
export function findCycle(graph: TaskGraph): number[] | null {
  const { size, deps } = graph;
  // 0 = unvisited, 1 = on the current path, 2 = done
  const state = new Uint8Array(size);
  const cursor = new Int32Array(size);
  const path: number[] = [];
  for (let root = 0; root < size; root++) {
    if (state[root] !== 0) continue;
    path.push(root);
    state[root] = 1;
    while (path.length > 0) {
      const node = path[path.length - 1];
      const list = deps[node];
      if (cursor[node] < list.length) {
        const next = list[cursor[node]++];
        if (state[next] === 1) {
          const start = path.indexOf(next);
          return [...path.slice(start), next];
        }
        if (state[next] === 0) {
          state[next] = 1;
          path.push(next);
        }
      } else {
        state[node] = 2;
        path.pop();
      }
    }
  }
  return null;
}
