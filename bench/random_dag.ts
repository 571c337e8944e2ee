/**
 * Seeded random DAGs for benchmarks: each task depends on up to `maxDeps`
 * earlier tasks, so the graph is acyclic by construction.
 *
 * @module
 */

import type { DAGStructure } from "../mod.ts";

/** A small deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random DAG of `size` tasks using `tool`, each with 0 to `maxDeps` earlier dependencies. */
export function randomDag(size: number, seed = 1, maxDeps = 3, tool = "noop"): DAGStructure {
  const random = seededRandom(seed);
  const tasks = [];
  for (let i = 0; i < size; i++) {
    const deps = new Set<string>();
    const count = i === 0 ? 0 : Math.floor(random() * (maxDeps + 1));
    for (let k = 0; k < count; k++) deps.add(`t${Math.floor(random() * i)}`);
    tasks.push({ id: `t${i}`, tool, dependsOn: [...deps] });
  }
  return { tasks };
}
