/**
 * The page's DAG layout (`src/client/layout.ts`) on seeded random DAGs of
 * 50, 200 and 1,000 tasks (`deno bench bench/layout_bench.ts`). The
 * crossing count of each drawing, and of the same layers in input order,
 * is printed first.
 *
 * @module
 */

import { countCrossings, inputOrderCrossings, layoutDag } from "../src/client/layout.ts";
import { dagEdges } from "../src/client/dag-edges.ts";
import { randomDag } from "./random_dag.ts";

const SIZES = [50, 200, 1000];

for (const size of SIZES) {
  const { tasks } = randomDag(size, 1);
  const ids = tasks.map((task) => task.id);
  const edges = dagEdges(tasks);
  const layout = layoutDag(ids, edges);
  const layers = 1 + Math.max(...layout.nodes.map((node) => node.layer));
  const dummies = layout.edges.reduce((sum, edge) => sum + edge.points.length / 2 - 1, 0);
  console.log(
    `layout-${size}: ${edges.length} edges, ${layers} layers, ${dummies} dummies, ` +
      `${countCrossings(layout)} crossings (input order: ${inputOrderCrossings(layout)})`,
  );
  Deno.bench({
    name: `layoutDag ${size} tasks`,
    group: "layout",
    fn: () => void layoutDag(ids, edges),
  });
}
