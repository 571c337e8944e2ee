/**
 * The page's DAG layout (`src/client/layout.ts`) on seeded random DAGs of
 * 50, 200 and 1,000 tasks (`deno bench bench/layout_bench.ts`). The
 * crossing count of each drawing, and of the same layers in input order,
 * is printed first.
 *
 * @module
 */

import { countCrossings, type Layout, layoutDag } from "../src/client/layout.ts";
import { dagEdges } from "../src/client/dag-edges.ts";
import { randomDag } from "./random_dag.ts";

const SIZES = [50, 200, 1000];

/** The crossings of the same layers with nodes in input order, then long edges in edge order. */
function inputOrderCrossings(layout: Layout): number {
  const next = new Map<number, number>();
  const rank = (layer: number) => {
    const r = next.get(layer) ?? 0;
    next.set(layer, r + 1);
    return r;
  };
  const rows = new Map(
    layout.nodes.map((node) => [node.id, { layer: node.layer, y: rank(node.layer) }]),
  );
  const edges = layout.edges.map((edge) => {
    const from = rows.get(edge.from)!;
    const to = rows.get(edge.to)!;
    const points = [{ x: 2 * from.layer + 1, y: from.y }];
    for (let layer = from.layer + 1; layer < to.layer; layer++) {
      const y = rank(layer);
      points.push({ x: 2 * layer, y }, { x: 2 * layer + 1, y });
    }
    points.push({ x: 2 * to.layer, y: to.y });
    return { ...edge, points };
  });
  return countCrossings({ width: 0, height: 0, nodes: [], edges });
}

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
