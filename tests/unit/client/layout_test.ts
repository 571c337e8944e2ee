/**
 * The layered DAG layout: structural properties (edges left to right, no
 * overlapping boxes, everything inside the drawing, determinism) on known
 * and random graphs, crossing counts against brute force and against input
 * order, and the examples shipped with the project.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  countCrossings,
  inputOrderCrossings,
  type LaidOutNode,
  type Layout,
  layoutDag,
  type LayoutOptions,
} from "../../../src/client/layout.ts";
import { dagEdges } from "../../../src/client/dag-edges.ts";
import type { ViewedTaskSpec } from "../../../src/client/run-state.ts";
import { randomDag } from "../../../bench/random_dag.ts";

type Edge = { from: string; to: string };

const DEFAULTS = { nodeWidth: 168, nodeHeight: 44, layerGap: 72, rowGap: 18, margin: 16 };
const RUNS = { seed: 42, numRuns: 150 };

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const edge = (from: string, to: string): Edge => ({ from, to });

/** `a→b, …` written as "a>b c>d". */
function edgesOf(text: string): Edge[] {
  return text.split(/\s+/).filter(Boolean).map((pair) => {
    const [from, to] = pair.split(">");
    return edge(from, to);
  });
}

/** The edges `layoutDag` should draw: known ids, no self-loops, no repeats (for acyclic input). */
function expectedEdges(ids: readonly string[], edges: readonly Edge[]): Edge[] {
  const known = new Set(ids);
  const seen = new Set<string>();
  return edges.filter(({ from, to }) => {
    const key = JSON.stringify([from, to]);
    if (!known.has(from) || !known.has(to) || from === to || seen.has(key)) return false;
    seen.add(key);
    return true;
  }).map(({ from, to }) => edge(from, to));
}

/**
 * Everything that must hold of any layout: one node per distinct id in input
 * order, edges left to right along their layers, polylines that start and
 * end at the boxes and run level across the columns they cross, no two
 * boxes (or a box and an edge) closer than `rowGap`, `order` ranking each
 * layer's nodes top to bottom, and all of it inside the margins.
 */
function assertWellFormed(layout: Layout, ids: readonly string[], options: LayoutOptions = {}) {
  const o = { ...DEFAULTS, ...options };
  const column = (layer: number) => o.margin + layer * (o.nodeWidth + o.layerGap);
  assert.deepEqual(layout.nodes.map((node) => node.id), [...new Set(ids)]);
  const byId = new Map(layout.nodes.map((node) => [node.id, node]));
  for (const node of layout.nodes) {
    assert.ok(Number.isInteger(node.layer) && node.layer >= 0, `layer of ${node.id}`);
    assert.equal(node.x, column(node.layer), `x of ${node.id}`);
    assert.ok(node.y >= o.margin, `${node.id} below the top margin`);
    assert.ok(node.x + o.nodeWidth <= layout.width - o.margin, `${node.id} inside the width`);
    assert.ok(node.y + o.nodeHeight <= layout.height - o.margin, `${node.id} inside the height`);
  }
  const columns = Map.groupBy(layout.nodes, (node) => node.layer);
  for (const nodes of columns.values()) {
    const sorted = nodes.toSorted((a, b) => a.y - b.y);
    sorted.forEach((node, k) => assert.equal(node.order, k, `order of ${node.id}`));
    for (let k = 1; k < sorted.length; k++) {
      const gap = sorted[k].y - (sorted[k - 1].y + o.nodeHeight);
      assert.ok(gap >= o.rowGap, `${sorted[k - 1].id} and ${sorted[k].id} ${gap} px apart`);
    }
  }
  for (const e of layout.edges) assertEdgeWellFormed(e, byId, columns, layout, o);
}

function assertEdgeWellFormed(
  e: Layout["edges"][number],
  byId: Map<string, LaidOutNode>,
  columns: Map<number, LaidOutNode[]>,
  layout: Layout,
  o: typeof DEFAULTS,
) {
  const from = byId.get(e.from)!;
  const to = byId.get(e.to)!;
  const name = `${e.from}→${e.to}`;
  assert.ok(from.x + o.nodeWidth < to.x, `${name} goes left to right`);
  assert.ok(from.layer < to.layer, `${name} layers`);
  assert.equal(e.points.length, 2 * (to.layer - from.layer), `${name} has a point pair per dummy`);
  assert.deepEqual(e.points[0], { x: from.x + o.nodeWidth, y: from.y + o.nodeHeight / 2 });
  assert.deepEqual(e.points.at(-1), { x: to.x, y: to.y + o.nodeHeight / 2 });
  for (let layer = from.layer + 1; layer < to.layer; layer++) {
    const enter = e.points[2 * (layer - from.layer) - 1];
    const leave = e.points[2 * (layer - from.layer)];
    const x = o.margin + layer * (o.nodeWidth + o.layerGap);
    assert.deepEqual(
      [enter.x, leave.x, leave.y],
      [x, x + o.nodeWidth, enter.y],
      `${name} is level`,
    );
    for (const box of columns.get(layer) ?? []) {
      const clear = enter.y <= box.y - o.rowGap || enter.y >= box.y + o.nodeHeight + o.rowGap;
      assert.ok(clear, `${name} passes ${box.id} at ${enter.y}, box at ${box.y}`);
    }
  }
  for (const p of e.points) {
    assert.ok(p.x >= 0 && p.x <= layout.width && p.y >= 0 && p.y <= layout.height, name);
  }
}

/** Crossings counted the slow, plain way: every pair of segments that properly intersect. */
function geometricCrossings(layout: Layout): number {
  type P = { x: number; y: number };
  const segments: [P, P][] = layout.edges.flatMap((e) =>
    e.points.slice(1).map((p, k): [P, P] => [e.points[k], p])
  );
  const turn = (a: P, b: P, c: P) =>
    Math.sign((b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x));
  let crossings = 0;
  for (let i = 0; i < segments.length; i++) {
    for (let j = i + 1; j < segments.length; j++) {
      const [a, b] = segments[i];
      const [c, d] = segments[j];
      if (turn(a, b, c) * turn(a, b, d) < 0 && turn(c, d, a) * turn(c, d, b) < 0) crossings++;
    }
  }
  return crossings;
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((item, k) =>
    permutations([...items.slice(0, k), ...items.slice(k + 1)]).map((rest) => [item, ...rest])
  );
}

/** The fewest crossings of a two-layer graph over every order of both layers. */
function bruteForceTwoLayers(tops: string[], bottoms: string[], edges: Edge[]): number {
  let best = Infinity;
  for (const top of permutations(tops)) {
    for (const bottom of permutations(bottoms)) {
      let crossings = 0;
      for (let i = 0; i < edges.length; i++) {
        for (let j = i + 1; j < edges.length; j++) {
          const above = top.indexOf(edges[i].from) - top.indexOf(edges[j].from);
          const below = bottom.indexOf(edges[i].to) - bottom.indexOf(edges[j].to);
          if (above * below < 0) crossings++;
        }
      }
      best = Math.min(best, crossings);
    }
  }
  return best;
}

function layerOf(layout: Layout): Record<string, number> {
  return Object.fromEntries(layout.nodes.map((node) => [node.id, node.layer]));
}

function readExample(name: string): ViewedTaskSpec[] {
  const url = new URL(`../../../examples/${name}`, import.meta.url);
  return JSON.parse(Deno.readTextFileSync(url)).tasks;
}

// ---------------------------------------------------------------------------
// Small and known graphs

Deno.test("layoutDag: no nodes gives an empty drawing of margins only", () => {
  const layout = layoutDag([], []);
  assert.deepEqual(layout, { width: 32, height: 32, nodes: [], edges: [] });
  assert.equal(countCrossings(layout), 0);
});

Deno.test("layoutDag: one node sits at the margin", () => {
  assert.deepEqual(layoutDag(["only"], []), {
    width: 16 + 168 + 16,
    height: 16 + 44 + 16,
    nodes: [{ id: "only", x: 16, y: 16, layer: 0, order: 0 }],
    edges: [],
  });
});

Deno.test("layoutDag: a diamond has no crossings and the join level with the fork", () => {
  const ids = ["a", "b", "c", "d"];
  const edges = edgesOf("a>b a>c b>d c>d");
  const layout = layoutDag(ids, edges);
  assertWellFormed(layout, ids);
  assert.deepEqual(layerOf(layout), { a: 0, b: 1, c: 1, d: 2 });
  assert.equal(countCrossings(layout), 0);
  const [a, b, c, d] = layout.nodes;
  assert.equal(a.y, d.y);
  assert.equal(a.y - b.y, c.y - a.y);
  assert.deepEqual(layout.edges.map((e) => [e.from, e.to]), edges.map((e) => [e.from, e.to]));
});

Deno.test("layoutDag: fan-out then fan-in has no crossings and stays symmetric", () => {
  const ids = ["plan", "s1", "s2", "s3", "s4", "s5", "merge"];
  const edges = [
    ...ids.slice(1, -1).map((s) => edge("plan", s)),
    ...ids.slice(1, -1).reverse().map((s) => edge(s, "merge")),
  ];
  const layout = layoutDag(ids, edges);
  assertWellFormed(layout, ids);
  assert.equal(countCrossings(layout), 0);
  const plan = layout.nodes[0];
  const merge = layout.nodes[6];
  const middle = layout.nodes[3];
  assert.equal(plan.y, merge.y);
  assert.equal(middle.y, plan.y);
});

Deno.test("layoutDag: a chain is one straight row", () => {
  const ids = range(30).map((i) => `step${i}`);
  const edges = ids.slice(1).map((id, i) => edge(ids[i], id));
  const layout = layoutDag(ids, edges);
  assertWellFormed(layout, ids);
  layout.nodes.forEach((node, i) => assert.deepEqual([node.layer, node.y], [i, 16]));
  assert.equal(layout.width, 2 * 16 + 30 * 168 + 29 * 72);
  assert.equal(layout.height, 2 * 16 + 44);
  for (const e of layout.edges) assert.equal(e.points.length, 2);
});

Deno.test("layoutDag: a long edge gets a level pair of points per layer it crosses", () => {
  const ids = ["a", "b", "c", "d"];
  const layout = layoutDag(ids, edgesOf("a>b b>c c>d a>d"));
  assertWellFormed(layout, ids);
  const long = layout.edges[3];
  assert.equal(long.points.length, 6);
  assert.deepEqual(long.points.slice(1, 5).map((p) => p.x), [256, 424, 496, 664]);
  assert.equal(countCrossings(layout), 0);
});

Deno.test("layoutDag: a node with more edges out than in moves next to its successors", () => {
  // late (a source) goes from layer 0 to 2, next to join; hub (1 edge in, 2 out)
  // from 1 to 2, next to x and y, and its source src follows, from 0 to 1. b and c
  // (also more out than in) are already next to their nearest successor.
  const ids = ["a", "b", "c", "join", "late", "src", "hub", "x", "y"];
  const edges = edgesOf("a>b b>c c>join late>join src>hub hub>x hub>y a>x b>x c>x c>y");
  const layout = layoutDag(ids, edges);
  assertWellFormed(layout, ids);
  assert.deepEqual(layerOf(layout), {
    a: 0,
    b: 1,
    c: 2,
    join: 3,
    late: 2,
    src: 1,
    hub: 2,
    x: 3,
    y: 3,
  });
});

Deno.test("layoutDag: a source whose only successor is in layer 5 goes to layer 4", () => {
  const ids = ["s", "c0", "c1", "c2", "c3", "c4", "c5"];
  const edges = [...edgesOf("c0>c1 c1>c2 c2>c3 c3>c4 c4>c5"), edge("s", "c5")];
  const layout = layoutDag(ids, edges);
  assertWellFormed(layout, ids);
  assert.equal(layerOf(layout).s, 4);
  assert.equal(layout.edges[5].points.length, 2);
});

Deno.test("layoutDag: unknown ids, self-loops and repeated edges are left out, in input order", () => {
  const ids = ["a", "b", "c", "a"];
  const layout = layoutDag(ids, [
    edge("a", "b"),
    edge("a", "ghost"),
    edge("b", "b"),
    edge("b", "c"),
    edge("a", "b"),
    edge("ghost", "c"),
    edge("a", "c"),
  ]);
  assertWellFormed(layout, ids);
  assert.deepEqual(layout.edges.map((e) => `${e.from}>${e.to}`), ["a>b", "b>c", "a>c"]);
});

Deno.test("layoutDag: a cycle ends: the edge closing it, found searching in input order, is left out", () => {
  const ids = ["a", "b", "c", "d"];
  const layout = layoutDag(ids, edgesOf("a>b b>c c>a c>d d>b"));
  assertWellFormed(layout, ids);
  assert.deepEqual(layout.edges.map((e) => `${e.from}>${e.to}`), ["a>b", "b>c", "c>d"]);
  assert.deepEqual(layerOf(layout), { a: 0, b: 1, c: 2, d: 3 });
  // Two nodes pointing at each other: the search starts at x (first id), so y>x closes the cycle.
  const pair = layoutDag(["x", "y"], edgesOf("y>x x>y"));
  assert.deepEqual(pair.edges.map((e) => `${e.from}>${e.to}`), ["x>y"]);
});

Deno.test("layoutDag: components are stacked in the order of their first node", () => {
  const ids = ["a1", "b1", "a2", "alone", "b2", "a3"];
  const layout = layoutDag(ids, edgesOf("a1>a2 a2>a3 b1>b2"));
  assertWellFormed(layout, ids);
  const y = Object.fromEntries(layout.nodes.map((node) => [node.id, node.y]));
  assert.equal(y.a1, 16);
  assert.ok(y.a1 === y.a2 && y.a2 === y.a3);
  assert.equal(y.b1, y.a1 + 44 + 18);
  assert.equal(y.b2, y.b1);
  assert.equal(y.alone, y.b1 + 44 + 18);
  assert.equal(layout.height, y.alone + 44 + 16);
  assert.deepEqual(layout.nodes.map((node) => node.order), [0, 1, 0, 2, 1, 0]);
});

Deno.test("layoutDag: options set the sizes and spacing", () => {
  const options = { nodeWidth: 100, nodeHeight: 30, layerGap: 40, rowGap: 10, margin: 5 };
  const ids = ["a", "b", "c", "d", "e"];
  const layout = layoutDag(ids, edgesOf("a>b a>c b>d c>d a>e d>e"), options);
  assertWellFormed(layout, ids, options);
  assert.equal(layout.width, 5 + 4 * 100 + 3 * 40 + 5);
  assert.deepEqual(
    layout.nodes.map((node) => node.x),
    [5, 145, 145, 285, 425],
  );
  // Undefined options keep their defaults.
  assert.deepEqual(layoutDag(ids, [], { nodeWidth: undefined }), layoutDag(ids, []));
});

Deno.test("layoutDag: complete K(3,3) has the 9 crossings every two-layer drawing has", () => {
  const tops = ["a", "b", "c"];
  const bottoms = ["x", "y", "z"];
  const edges = tops.flatMap((t) => bottoms.map((b) => edge(t, b)));
  const layout = layoutDag([...tops, ...bottoms], edges);
  assertWellFormed(layout, [...tops, ...bottoms]);
  assert.equal(bruteForceTwoLayers(tops, bottoms, edges), 9);
  assert.equal(countCrossings(layout), 9);
});

Deno.test("layoutDag: two-layer graphs reach the brute-force minimum", () => {
  const cases: [string[], string[], string][] = [
    // K(3,3) without a perfect matching: a 6-cycle, which needs 1 crossing.
    [["a", "b", "c"], ["x", "y", "z"], "a>y a>z b>x b>z c>x c>y"],
    // A caterpillar, given in an order with 3 crossings, drawn without any.
    [["a0", "a1", "a2", "a3"], ["b0", "b1", "b2"], "a0>b0 a0>b1 a1>b1 a2>b0 a2>b2 a3>b1"],
    // K(3,3) minus one edge.
    [["a", "b", "c"], ["x", "y", "z"], "a>x a>y a>z b>x b>y c>y c>z b>z"],
    [["a", "b", "c", "d"], ["w", "x", "y", "z"], "a>z b>y c>x d>w a>w d>z"],
  ];
  for (const [tops, bottoms, text] of cases) {
    const edges = edgesOf(text);
    const layout = layoutDag([...tops, ...bottoms], edges);
    assertWellFormed(layout, [...tops, ...bottoms]);
    assert.equal(countCrossings(layout), bruteForceTwoLayers(tops, bottoms, edges), text);
  }
});

Deno.test("layoutDag: chains declared in a tangled order are untangled", () => {
  // Three chains from one root to one sink, each layer's links declared in a
  // different order: input order crosses at every layer, yet no crossing is needed.
  const chains = ["p", "q", "r"];
  const length = 6;
  const shuffles = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0], [0, 2, 1], [1, 0, 2]];
  const ids = ["root", ...range(length).flatMap((i) => shuffles[i].map((c) => `${chains[c]}${i}`))];
  ids.push("sink");
  const edges = [
    ...range(length - 1).flatMap((i) =>
      shuffles[i + 1].map((c) => edge(`${chains[c]}${i}`, `${chains[c]}${i + 1}`))
    ),
    ...chains.map((c) => edge("root", `${c}0`)),
    ...chains.map((c) => edge(`${c}${length - 1}`, "sink")),
  ];
  const layout = layoutDag(ids, edges);
  assertWellFormed(layout, ids);
  assert.ok(inputOrderCrossings(layout) >= 5);
  assert.equal(countCrossings(layout), 0);
});

Deno.test("layoutDag: the same input gives the same layout", () => {
  const { tasks } = randomDag(120, 7);
  const ids = tasks.map((task) => task.id);
  const edges = dagEdges(tasks);
  assert.deepEqual(layoutDag(ids, edges), layoutDag(ids, edges));
});

// ---------------------------------------------------------------------------
// countCrossings

Deno.test("countCrossings: counts segments between the same columns that swap places", () => {
  const layout = (segments: [number, number, number, number][]): Layout => ({
    width: 0,
    height: 0,
    nodes: [],
    edges: segments.map(([x1, y1, x2, y2], k) => ({
      from: `f${k}`,
      to: `t${k}`,
      points: [{ x: x1, y: y1 }, { x: x2, y: y2 }],
    })),
  });
  assert.equal(countCrossings(layout([])), 0);
  assert.equal(countCrossings(layout([[0, 0, 1, 1], [0, 1, 1, 0]])), 1);
  // Shared ends are no crossing.
  assert.equal(countCrossings(layout([[0, 0, 1, 1], [0, 0, 1, 0], [0, 2, 1, 1]])), 0);
  // Three lines all reversed: every pair crosses.
  assert.equal(countCrossings(layout([[0, 0, 1, 2], [0, 1, 1, 1], [0, 2, 1, 0]])), 3);
  // Different columns never meet.
  assert.equal(countCrossings(layout([[0, 0, 1, 1], [1, 1, 2, 0]])), 0);
});

// ---------------------------------------------------------------------------
// The examples and random DAGs

Deno.test("layoutDag: the example DAGs are drawn without crossings", () => {
  for (
    const name of ["diamond.json", "fan-out-fan-in.json", "failing-branch.json", "mcp-dag.json"]
  ) {
    const tasks = readExample(name);
    const ids = tasks.map((task) => task.id);
    const edges = dagEdges(tasks);
    const layout = layoutDag(ids, edges);
    assertWellFormed(layout, ids);
    assert.deepEqual(layout.edges.map((e) => [e.from, e.to]), edges.map((e) => [e.from, e.to]));
    assert.equal(countCrossings(layout), 0, name);
  }
});

Deno.test("layoutDag: the examples' diamond puts the join in layer 2", () => {
  const tasks = readExample("diamond.json");
  const layout = layoutDag(tasks.map((task) => task.id), dagEdges(tasks));
  assert.deepEqual(layerOf(layout), { fetch: 0, left: 1, right: 1, join: 2 });
});

Deno.test("layoutDag: a random 200-task DAG is well formed and beats input order", () => {
  const { tasks } = randomDag(200, 1);
  const ids = tasks.map((task) => task.id);
  const layout = layoutDag(ids, dagEdges(tasks));
  assertWellFormed(layout, ids);
  assert.ok(countCrossings(layout) < inputOrderCrossings(layout) / 2);
});

/** A random DAG: each node links to a few earlier ones, declared and linked in shuffled orders. */
const genDag = fc.integer({ min: 0, max: 40 }).chain((n) =>
  fc.tuple(
    fc.tuple(
      ...range(n).map((i) => fc.uniqueArray(fc.nat(Math.max(i - 1, 0)), { maxLength: i && 3 })),
    ),
    fc.shuffledSubarray(range(n), { minLength: n, maxLength: n }),
  ).chain(([deps, order]) => {
    const edges = deps.flatMap((from, to) => from.map((f) => edge(`n${f}`, `n${to}`)));
    return fc.record({
      ids: fc.constant(order.map((i) => `n${i}`)),
      edges: fc.shuffledSubarray(edges, { minLength: edges.length, maxLength: edges.length }),
    });
  })
);

Deno.test("layoutDag: random DAGs are well formed, stable, and cross no more than input order", () => {
  fc.assert(
    fc.property(genDag, ({ ids, edges }) => {
      const layout = layoutDag(ids, edges);
      assertWellFormed(layout, ids);
      assert.deepEqual(
        layout.edges.map((e) => edge(e.from, e.to)),
        expectedEdges(ids, edges),
      );
      const crossings = countCrossings(layout);
      assert.ok(crossings <= inputOrderCrossings(layout), `${crossings} crossings`);
      assert.deepEqual(layoutDag(ids, edges), layout);
    }),
    RUNS,
  );
});

Deno.test("countCrossings: equals the number of properly intersecting segments", () => {
  fc.assert(
    fc.property(genDag, ({ ids, edges }) => {
      const layout = layoutDag(ids, edges);
      assert.equal(countCrossings(layout), geometricCrossings(layout));
    }),
    { ...RUNS, numRuns: 60 },
  );
});

Deno.test("layoutDag: any edge list (cycles, repeats, unknown ids) still gives a well-formed DAG", () => {
  const names = ["a", "b", "c", "d", "e", "f", "g"];
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(...names), { maxLength: 8 }),
      fc.array(fc.record({ from: fc.constantFrom(...names), to: fc.constantFrom(...names) }), {
        maxLength: 30,
      }),
      (ids, edges) => {
        const layout = layoutDag(ids, edges);
        assertWellFormed(layout, ids);
        // What is drawn is a subset of the usable edges, in input order.
        const usable = expectedEdges(ids, edges).map((e) => `${e.from}>${e.to}`);
        const drawn = layout.edges.map((e) => `${e.from}>${e.to}`);
        assert.deepEqual(usable.filter((e) => drawn.includes(e)), drawn);
        assert.deepEqual(layoutDag(ids, edges), layout);
      },
    ),
    RUNS,
  );
});
