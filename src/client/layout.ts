/**
 * A left-to-right layered drawing of a DAG, in the style of Sugiyama,
 * Tagawa and Toda: tasks a run waits on stand to the left of the tasks that
 * wait for them, and edges are drawn so that few of them cross.
 *
 * The method, step by step:
 *
 * 1. **Input.** Edges naming an unknown id, self-loops and repeated
 *    `from → to` pairs are ignored, as are repeated ids (the first one
 *    counts). A depth-first search from each node in input order, following
 *    edges in input order, ignores every edge that closes a cycle (an edge to
 *    a node still on the search's stack), so even a cyclic input ends as a
 *    DAG.
 * 2. **Layering.** Longest path from the sources: a node's layer is one more
 *    than its predecessors' highest. Then, from the sinks back, a node with
 *    more edges out than in (any source with an edge, for one) moves right
 *    until it is one layer before its nearest successor: that shortens more
 *    edges than it lengthens, and a source whose only successor is in layer
 *    5 ends in layer 4 rather than stretching an edge from layer 0.
 * 3. **Dummy nodes.** An edge spanning k layers gets k − 1 dummy nodes, one
 *    per layer it crosses, so that every edge of the layered graph joins two
 *    adjacent layers and crossings can be counted layer pair by layer pair.
 * 4. **Components.** Each weakly connected component is ordered and placed on
 *    its own; the components are then stacked top to bottom in the order of
 *    their first node. Two components never cross each other that way.
 * 5. **Ordering.** Four starting orders are tried: input order (nodes in
 *    input order, then the dummies of each edge in edge input order) and the
 *    preorders of depth-first searches from the sources, from the sinks and
 *    along edges both ways. From each, sweeps alternate downward and upward,
 *    sorting every layer by the barycenter of its neighbours in the layer
 *    just fixed (nodes without such neighbours keep their slot), each
 *    followed by a transposition step that swaps two adjacent nodes whenever
 *    that removes crossings. Ties keep the previous relative order, so the
 *    result is deterministic; but after a sweep that found nothing better,
 *    the next one breaks ties the other way and swaps on ties too, to leave
 *    a plateau (as Graphviz's dot does). The ordering with the fewest
 *    crossings seen is kept, so a component never has more crossings than in
 *    input order.
 * 6. **Coordinates.** Boxes are stacked in each layer in their order; then
 *    sweeps pull every node toward the median height of its neighbours in
 *    the adjacent layer, placing each layer as close as possible to those
 *    wishes without changing the order or the minimum spacing (an exact
 *    weighted isotonic regression, "pool adjacent violators"). A dummy node
 *    is a point with a smaller gap to other dummies, so long edges do not
 *    push boxes far apart.
 * 7. **Edges.** Each edge is a polyline from the middle of the right side of
 *    its `from` box to the middle of the left side of its `to` box. At each
 *    dummy node it runs straight across the layer's column (two points, one
 *    at each side of the column, at the dummy's height), where the spacing
 *    keeps it clear of the boxes.
 *
 * Pure (no DOM, no Deno API): it is bundled into the page.
 *
 * @module
 */

/**
 * Sizes and spacing of a layout, in pixels; positive numbers. A field left
 * out (or `undefined`) takes its default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutDag, type LayoutOptions } from "./layout.ts";
 * const options: LayoutOptions = { nodeWidth: 100, layerGap: 40, margin: 0 };
 * const layout = layoutDag(["a", "b"], [{ from: "a", to: "b" }], options);
 * assert.deepEqual(layout.nodes.map((node) => node.x), [0, 140]);
 * assert.equal(layout.width, 240);
 * ```
 */
export interface LayoutOptions {
  /** Width of a node's box. Default 168. */
  nodeWidth?: number;
  /** Height of a node's box. Default 44. */
  nodeHeight?: number;
  /** Horizontal space between two layers' columns. Default 72. */
  layerGap?: number;
  /**
   * Vertical space between two boxes of a layer, and between a box and an
   * edge passing through its layer; edges passing side by side are half as
   * far apart. Default 18.
   */
  rowGap?: number;
  /** Space around the drawing. Default 16. */
  margin?: number;
}

/**
 * A node placed by {@linkcode layoutDag}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LaidOutNode, layoutDag } from "./layout.ts";
 * const [a, b, c]: LaidOutNode[] = layoutDag(["a", "b", "c"], [
 *   { from: "a", to: "b" },
 *   { from: "a", to: "c" },
 * ]).nodes;
 * assert.deepEqual([a.layer, b.layer, c.layer], [0, 1, 1]);
 * assert.deepEqual([b.order, c.order], [0, 1]);
 * assert.equal(c.y - b.y, 44 + 18);
 * ```
 */
export interface LaidOutNode {
  /** The node's id. */
  id: string;
  /** Left side of its box. */
  x: number;
  /** Top side of its box. */
  y: number;
  /** Its column, from 0 at the left. */
  layer: number;
  /** Its rank among the nodes (not counting edges passing through) of its layer, from 0 at the top. */
  order: number;
}

/**
 * An edge drawn by {@linkcode layoutDag}.
 *
 * @example A long edge runs level across the column it crosses
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LaidOutEdge, layoutDag } from "./layout.ts";
 * const layout = layoutDag(["a", "b", "c"], [
 *   { from: "a", to: "b" },
 *   { from: "b", to: "c" },
 *   { from: "a", to: "c" },
 * ]);
 * const long: LaidOutEdge = layout.edges[2];
 * const b = layout.nodes[1];
 * assert.equal(long.points.length, 4);
 * assert.deepEqual(long.points.slice(1, 3).map((p) => p.x), [b.x, b.x + 168]);
 * assert.equal(long.points[1].y, long.points[2].y);
 * ```
 */
export interface LaidOutEdge {
  /** The node waited for (on the left). */
  from: string;
  /** The node that waits (on the right). */
  to: string;
  /**
   * A polyline, left to right: the middle of the right side of `from`'s box,
   * then for each layer the edge crosses the points where it enters and
   * leaves that layer's column, then the middle of the left side of `to`'s
   * box. An edge between adjacent layers has two points; one spanning k
   * layers has 2k.
   */
  points: { x: number; y: number }[];
}

/**
 * The result of {@linkcode layoutDag}: everything lies within `width` ×
 * `height`, `margin` away from the sides.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Layout, layoutDag } from "./layout.ts";
 * const layout: Layout = layoutDag(["a", "b"], [{ from: "a", to: "b" }]);
 * assert.deepEqual([layout.width, layout.height], [16 + 168 + 72 + 168 + 16, 16 + 44 + 16]);
 * assert.deepEqual(layout.nodes.map((node) => [node.id, node.x, node.y]), [
 *   ["a", 16, 16],
 *   ["b", 256, 16],
 * ]);
 * ```
 */
export interface Layout {
  /** Width of the drawing, margins included. */
  width: number;
  /** Height of the drawing, margins included. */
  height: number;
  /** One per distinct id, in input order. */
  nodes: LaidOutNode[];
  /** One per edge drawn, in input order (ignored edges are left out). */
  edges: LaidOutEdge[];
}

const DEFAULTS: Required<LayoutOptions> = {
  nodeWidth: 168,
  nodeHeight: 44,
  layerGap: 72,
  rowGap: 18,
  margin: 16,
};

/** Sweeps of the crossing reduction at most, from each starting order. */
const ORDER_ITERATIONS = 24;
/** Sweeps in a row without a new best after which the crossing reduction gives up. */
const ORDER_PATIENCE = 6;
/** Passes of the transposition step at most: each pass is linear, and later passes rarely gain. */
const TRANSPOSE_PASSES = 12;
/** Placement sweeps, alternately downward and upward (an even number: the last is upward). */
const PLACEMENT_SWEEPS = 8;
/** How strongly a dummy holds its wished height against a box in the way: long edges stay straighter. */
const DUMMY_WEIGHT = 2;
/** How strongly a node without neighbours on the reference side holds its height: it mostly makes room. */
const FREE_WEIGHT = 0.25;

/**
 * Lays out a DAG left to right: an edge `from → to` means `to` depends on
 * `from`, so `from`'s layer is lower than `to`'s.
 *
 * Ignored (and left out of `edges`): edges naming an unknown id, self-loops,
 * repeats of an earlier `from → to` pair, and edges closing a cycle, found
 * by a depth-first search in input order. A repeated id is laid out once.
 * Deterministic: the same input gives the same layout.
 *
 * @example Diamond
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutDag } from "./layout.ts";
 * const layout = layoutDag(["a", "b", "c", "d"], [
 *   { from: "a", to: "b" },
 *   { from: "a", to: "c" },
 *   { from: "b", to: "d" },
 *   { from: "c", to: "d" },
 * ]);
 * const [a, b, c, d] = layout.nodes;
 * assert.deepEqual([a.layer, b.layer, c.layer, d.layer], [0, 1, 1, 2]);
 * assert.equal(b.x, c.x);
 * assert.ok(a.x + 168 < b.x && b.x + 168 < d.x);
 * // The join sits level with the fork, midway between the branches.
 * assert.equal(a.y, d.y);
 * assert.equal(d.y - b.y, c.y - d.y);
 * // Edges start at the right middle of `from` and end at the left middle of `to`.
 * assert.deepEqual(layout.edges[0].points, [
 *   { x: a.x + 168, y: a.y + 22 },
 *   { x: b.x, y: b.y + 22 },
 * ]);
 * ```
 *
 * @example A source moves next to its only successor
 * ```ts
 * import assert from "node:assert/strict";
 * import { layoutDag } from "./layout.ts";
 * const layout = layoutDag(["a", "b", "c", "late"], [
 *   { from: "a", to: "b" },
 *   { from: "b", to: "c" },
 *   { from: "late", to: "c" },
 *   { from: "c", to: "a" }, // closes a cycle: ignored
 * ]);
 * assert.deepEqual(layout.nodes.map((node) => node.layer), [0, 1, 2, 1]);
 * assert.equal(layout.edges.length, 3);
 * ```
 */
export function layoutDag(
  ids: readonly string[],
  edges: readonly { from: string; to: string }[],
  options: LayoutOptions = {},
): Layout {
  const dims = { ...DEFAULTS, ...definedOnly(options) };
  const graph = readGraph(ids, edges);
  const layer = assignLayers(graph);
  const placed = placeComponents(graph, layer, dims);
  const columnX = (l: number) => dims.margin + l * (dims.nodeWidth + dims.layerGap);
  const middleY = (node: number) => placed.nodeY[node] + dims.nodeHeight / 2;
  return {
    width: 2 * dims.margin + placed.layerCount * (dims.nodeWidth + dims.layerGap) -
      (placed.layerCount > 0 ? dims.layerGap : 0),
    height: placed.bottom + dims.margin,
    nodes: graph.ids.map((id, node) => ({
      id,
      x: columnX(layer[node]),
      y: placed.nodeY[node],
      layer: layer[node],
      order: placed.nodeOrder[node],
    })),
    edges: graph.edges.map(({ from, to }, e) => {
      const points = [{ x: columnX(layer[from]) + dims.nodeWidth, y: middleY(from) }];
      placed.dummyY[e].forEach((y, k) => {
        const x = columnX(layer[from] + 1 + k);
        points.push({ x, y }, { x: x + dims.nodeWidth, y });
      });
      points.push({ x: columnX(layer[to]), y: middleY(to) });
      return { from: graph.ids[from], to: graph.ids[to], points };
    }),
  };
}

/** Where {@linkcode placeComponents} put things. */
interface Placement {
  /** Per node, the top of its box. */
  nodeY: number[];
  /** Per node, its rank among the nodes of its layer. */
  nodeOrder: number[];
  /** Per kept edge, the heights of its dummies from left to right. */
  dummyY: number[][];
  /** Columns used. */
  layerCount: number;
  /** The lowest pixel drawn (the top margin if nothing is). */
  bottom: number;
}

/** Orders and places each component, stacking them top to bottom, `rowGap` apart. */
function placeComponents(graph: Graph, layer: Int32Array, dims: Dimensions): Placement {
  const placement: Placement = {
    nodeY: graph.ids.map(() => 0),
    nodeOrder: graph.ids.map(() => 0),
    dummyY: graph.edges.map(() => []),
    layerCount: 0,
    bottom: dims.margin,
  };
  const nodesInLayer: number[] = [];
  let top = dims.margin;
  for (const component of components(graph)) {
    const layered = buildLayered(component, graph, layer);
    const order = orderLayers(layered);
    const center = placeVertically(layered, order, dims);
    const { min, max } = extent(layered, center, dims.nodeHeight);
    const shift = top - min;
    component.nodes.forEach((node, v) => {
      placement.nodeY[node] = center[v] + shift - dims.nodeHeight / 2;
    });
    component.edges.forEach((e, k) => {
      placement.dummyY[e] = layered.chains[k].map((v) => center[v] + shift);
    });
    order.forEach((vertices, l) => {
      for (const v of vertices) {
        if (v >= layered.realCount) continue;
        const rank = nodesInLayer[l] ?? 0;
        placement.nodeOrder[component.nodes[v]] = rank;
        nodesInLayer[l] = rank + 1;
      }
    });
    placement.bottom = max + shift;
    placement.layerCount = Math.max(placement.layerCount, order.length);
    top = placement.bottom + dims.rowGap;
  }
  return placement;
}

/**
 * The number of crossings in a layout: pairs of edge segments between the
 * same two columns whose ends are in opposite vertical order. Segments that
 * share an end (edges leaving or entering the same node) do not cross. For a
 * layout from {@linkcode layoutDag} that is every crossing of the drawing,
 * since edges run straight and level across the columns.
 *
 * It reads only the edges' points, so it also counts the crossings of a
 * hand-made arrangement drawn with the same convention.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countCrossings, layoutDag } from "./layout.ts";
 * const diamond = layoutDag(["a", "b", "c", "d"], [
 *   { from: "a", to: "b" },
 *   { from: "a", to: "c" },
 *   { from: "b", to: "d" },
 *   { from: "c", to: "d" },
 * ]);
 * assert.equal(countCrossings(diamond), 0);
 * // Two segments between x = 0 and x = 1 that swap places: one crossing.
 * assert.equal(
 *   countCrossings({
 *     width: 1,
 *     height: 1,
 *     nodes: [],
 *     edges: [
 *       { from: "a", to: "d", points: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
 *       { from: "b", to: "c", points: [{ x: 0, y: 1 }, { x: 1, y: 0 }] },
 *     ],
 *   }),
 *   1,
 * );
 * ```
 */
export function countCrossings(layout: Layout): number {
  const spans = new Map<string, [number, number][]>();
  for (const edge of layout.edges) {
    for (let k = 1; k < edge.points.length; k++) {
      const a = edge.points[k - 1];
      const b = edge.points[k];
      const key = `${a.x} ${b.x}`;
      let segments = spans.get(key);
      if (segments === undefined) spans.set(key, segments = []);
      segments.push([a.y, b.y]);
    }
  }
  let crossings = 0;
  for (const segments of spans.values()) {
    segments.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    crossings += countInversions(segments.map((segment) => segment[1]));
  }
  return crossings;
}

// ---------------------------------------------------------------------------
// Input

/** An edge kept for layout, by node index. */
interface InputEdge {
  from: number;
  to: number;
}

/** The graph as laid out: distinct ids, and the edges kept, in input order. */
interface Graph {
  ids: string[];
  edges: InputEdge[];
  /** Per node, the indices (in `edges`) of its edges out, in input order. */
  out: number[][];
  /** Per node, the indices of its edges in. */
  in: number[][];
  /** All nodes, each before its successors. */
  topological: number[];
}

/** Options without their undefined fields, so that spreading them keeps the defaults. */
function definedOnly(options: LayoutOptions): LayoutOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/** Indexes the ids and keeps the edges that make a DAG of them. */
function readGraph(
  ids: readonly string[],
  edges: readonly { from: string; to: string }[],
): Graph {
  const index = new Map<string, number>();
  const distinct: string[] = [];
  for (const id of ids) {
    if (!index.has(id)) {
      index.set(id, distinct.length);
      distinct.push(id);
    }
  }
  const seen = new Set<string>();
  const candidates: InputEdge[] = [];
  for (const edge of edges) {
    const from = index.get(edge.from);
    const to = index.get(edge.to);
    if (from === undefined || to === undefined || from === to) continue;
    // Ids may hold any character, so the pair key uses the indices.
    const key = `${from} ${to}`;
    if (seen.has(key)) continue;
    seen.add(key);
    candidates.push({ from, to });
  }
  const { keep, topological } = searchDepthFirst(distinct.length, candidates);
  const kept = candidates.filter((_, e) => keep[e]);
  const out: number[][] = distinct.map(() => []);
  const into: number[][] = distinct.map(() => []);
  kept.forEach((edge, e) => {
    out[edge.from].push(e);
    into[edge.to].push(e);
  });
  return { ids: distinct, edges: kept, out, in: into, topological };
}

/**
 * A depth-first search from every node in input order, following edges in
 * input order: an edge to a node still on the stack closes a cycle and is
 * not kept. Reversed postorder, without those edges, is a topological order.
 * Iterative, so a long chain cannot overflow the call stack.
 */
function searchDepthFirst(
  n: number,
  edges: InputEdge[],
): { keep: boolean[]; topological: number[] } {
  const out: number[][] = Array.from({ length: n }, () => []);
  edges.forEach((edge, e) => out[edge.from].push(e));
  const keep = edges.map(() => true);
  const state = new Uint8Array(n); // 0: not seen, 1: on the stack, 2: done
  const stack: number[] = [];
  const next: number[] = [];
  const postorder: number[] = [];
  for (let root = 0; root < n; root++) {
    if (state[root] !== 0) continue;
    state[root] = 1;
    stack.push(root);
    next.push(0);
    while (stack.length > 0) {
      const v = stack[stack.length - 1];
      const k = next[next.length - 1]++;
      if (k === out[v].length) {
        stack.pop();
        next.pop();
        state[v] = 2;
        postorder.push(v);
        continue;
      }
      const e = out[v][k];
      const w = edges[e].to;
      if (state[w] === 1) keep[e] = false;
      else if (state[w] === 0) {
        state[w] = 1;
        stack.push(w);
        next.push(0);
      }
    }
  }
  return { keep, topological: postorder.reverse() };
}

// ---------------------------------------------------------------------------
// Layering

/** Longest-path layers, then nodes with more edges out than in moved toward their successors. */
function assignLayers(graph: Graph): Int32Array {
  const layer = new Int32Array(graph.ids.length);
  for (const v of graph.topological) {
    for (const e of graph.in[v]) layer[v] = Math.max(layer[v], layer[graph.edges[e].from] + 1);
  }
  // Successors come first, so each move sees where its successors ended.
  // Moving right only lengthens edges in and shortens edges out by the same
  // amount each, so this never lengthens the total, and a longest path (on
  // which every node is already tight) stays put: no layer empties.
  for (let i = graph.topological.length - 1; i >= 0; i--) {
    const v = graph.topological[i];
    if (graph.out[v].length <= graph.in[v].length) continue;
    let nearest = Infinity;
    for (const e of graph.out[v]) nearest = Math.min(nearest, layer[graph.edges[e].to]);
    layer[v] = nearest - 1;
  }
  return layer;
}

// ---------------------------------------------------------------------------
// Components and dummy nodes

/** A weakly connected component: its nodes and the indices of its edges, both in input order. */
interface Component {
  nodes: number[];
  edges: number[];
}

/** The weakly connected components, in the order of their first node. */
function components(graph: Graph): Component[] {
  const n = graph.ids.length;
  const parent = Int32Array.from({ length: n }, (_, v) => v);
  const root = (v: number): number => {
    while (parent[v] !== v) v = parent[v] = parent[parent[v]];
    return v;
  };
  for (const edge of graph.edges) {
    const a = root(edge.from);
    const b = root(edge.to);
    // The lower index becomes the root, so a component's root is its first node.
    if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
  }
  const byRoot = new Map<number, Component>();
  const list: Component[] = [];
  for (let v = 0; v < n; v++) {
    const r = root(v);
    let component = byRoot.get(r);
    if (component === undefined) {
      byRoot.set(r, component = { nodes: [], edges: [] });
      list.push(component);
    }
    component.nodes.push(v);
  }
  graph.edges.forEach((edge, e) => byRoot.get(root(edge.from))!.edges.push(e));
  return list;
}

/**
 * A component as a proper layered graph: vertices `0 … realCount − 1` are
 * its nodes in input order, the rest dummies, created edge by edge in input
 * order; every link joins adjacent layers.
 */
interface Layered {
  realCount: number;
  layerCount: number;
  layerOf: number[];
  /** Per vertex, its neighbours in the layer before (left). */
  up: number[][];
  /** Per vertex, its neighbours in the layer after (right). */
  down: number[][];
  /** Per component edge, its dummies from left to right. */
  chains: number[][];
}

/** Builds the layered graph of one component, with a dummy per layer crossed by a long edge. */
function buildLayered(component: Component, graph: Graph, layer: Int32Array): Layered {
  const local = new Map<number, number>();
  component.nodes.forEach((node, v) => local.set(node, v));
  const layerOf = component.nodes.map((node) => layer[node]);
  const up: number[][] = layerOf.map(() => []);
  const down: number[][] = layerOf.map(() => []);
  const link = (a: number, b: number) => {
    down[a].push(b);
    up[b].push(a);
  };
  const chains = component.edges.map((e) => {
    const { from, to } = graph.edges[e];
    const chain: number[] = [];
    let previous = local.get(from)!;
    for (let l = layer[from] + 1; l < layer[to]; l++) {
      const dummy = layerOf.length;
      layerOf.push(l);
      up.push([]);
      down.push([]);
      link(previous, dummy);
      chain.push(dummy);
      previous = dummy;
    }
    link(previous, local.get(to)!);
    return chain;
  });
  // A loop, not Math.max(...layers): spreading a huge component could overflow the stack.
  let layerCount = 0;
  for (const node of component.nodes) layerCount = Math.max(layerCount, layer[node] + 1);
  return { realCount: component.nodes.length, layerCount, layerOf, up, down, chains };
}

// ---------------------------------------------------------------------------
// Ordering (crossing reduction)

/** The order of each layer with the fewest crossings found, from any of the starting orders. */
function orderLayers(g: Layered): number[][] {
  const starts = [
    inputOrder(g),
    depthFirstOrder(g, "down"),
    depthFirstOrder(g, "up"),
    depthFirstOrder(g, "both"),
  ];
  let best = reduceCrossings(g, starts[0]);
  for (let k = 1; k < starts.length && best.crossings > 0; k++) {
    // Small graphs often start the same several ways: no need to repeat the work.
    if (starts.slice(0, k).some((other) => sameOrder(other, starts[k]))) continue;
    const found = reduceCrossings(g, starts[k]);
    if (found.crossings < best.crossings) best = found;
  }
  return best.layers;
}

/** Vertices in index order: nodes in input order, then dummies in edge input order. */
function inputOrder(g: Layered): number[][] {
  const layers: number[][] = Array.from({ length: g.layerCount }, () => []);
  g.layerOf.forEach((l, v) => layers[l].push(v));
  return layers;
}

/**
 * Vertices in the preorder of a depth-first search, following links `down`
 * (from each source in input order), `up` (from each sink) or both ways
 * (from each node): vertices linked to one another start close together,
 * usually a better start than input order. Which of them is best varies, so
 * all are tried.
 */
function depthFirstOrder(g: Layered, direction: "down" | "up" | "both"): number[][] {
  const follow = direction === "down" ? [g.down] : direction === "up" ? [g.up] : [g.down, g.up];
  const against = direction === "down" ? g.up : direction === "up" ? g.down : undefined;
  const layers: number[][] = Array.from({ length: g.layerCount }, () => []);
  const seen = new Uint8Array(g.layerOf.length);
  const stack: number[] = [];
  for (let root = 0; root < g.realCount; root++) {
    if (seen[root] || (against !== undefined && against[root].length > 0)) continue;
    stack.push(root);
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (seen[v]) continue;
      seen[v] = 1;
      layers[g.layerOf[v]].push(v);
      // Pushed last to first, so the first neighbour is visited first.
      for (let f = follow.length - 1; f >= 0; f--) {
        for (let k = follow[f][v].length - 1; k >= 0; k--) {
          if (!seen[follow[f][v][k]]) stack.push(follow[f][v][k]);
        }
      }
    }
  }
  return layers;
}

function sameOrder(a: number[][], b: number[][]): boolean {
  return a.every((layer, l) => layer.every((v, k) => b[l][k] === v));
}

/**
 * Barycenter sweeps, alternately downward and upward, each followed by
 * transpositions, from `start`; returns the best ordering seen (`start`
 * included) and its crossing count.
 */
function reduceCrossings(g: Layered, start: number[][]): { layers: number[][]; crossings: number } {
  const layers = start.map((layer) => layer.slice());
  const position = new Int32Array(g.layerOf.length);
  for (const layer of layers) layer.forEach((v, k) => position[v] = k);
  let best = {
    layers: layers.map((layer) => layer.slice()),
    crossings: totalCrossings(g, layers, position),
  };
  let stale = 0;
  for (let i = 0; i < ORDER_ITERATIONS && best.crossings > 0 && stale < ORDER_PATIENCE; i++) {
    // After a sweep that found nothing better, break ties the other way and
    // let transpositions swap on ties, to walk off the plateau (as dot does).
    const ties = stale > 0;
    sweep(g, layers, position, i % 2 === 0, ties);
    transpose(g, layers, position, ties);
    const crossings = totalCrossings(g, layers, position);
    if (crossings < best.crossings) {
      best = { layers: layers.map((layer) => layer.slice()), crossings };
      stale = 0;
    } else {
      stale++;
    }
  }
  return best;
}

/** Sorts each layer by barycenter of its neighbours in the previous layer of the sweep. */
function sweep(
  g: Layered,
  layers: number[][],
  position: Int32Array,
  downward: boolean,
  ties: boolean,
): void {
  const count = layers.length;
  for (let step = 1; step < count; step++) {
    const l = downward ? step : count - 1 - step;
    sortByBarycenter(layers[l], downward ? g.up : g.down, position, ties);
  }
}

/**
 * Sorts a layer by the mean position of each vertex's `neighbours`. A vertex
 * without any keeps its slot, and equal means keep their current relative
 * order (reversed with `ties`), so a sweep never shuffles what it has no
 * reason to move, and the result is deterministic.
 */
function sortByBarycenter(
  layer: number[],
  neighbours: number[][],
  position: Int32Array,
  ties: boolean,
): void {
  const slots: number[] = [];
  const movable: { v: number; key: number; was: number }[] = [];
  layer.forEach((v, k) => {
    const around = neighbours[v];
    if (around.length === 0) return;
    let sum = 0;
    for (const w of around) sum += position[w];
    slots.push(k);
    movable.push({ v, key: sum / around.length, was: k });
  });
  movable.sort((a, b) => a.key - b.key || (ties ? b.was - a.was : a.was - b.was));
  movable.forEach(({ v }, k) => {
    layer[slots[k]] = v;
    position[v] = slots[k];
  });
}

/**
 * Swaps adjacent vertices of a layer whenever that lowers the crossings
 * with both neighbouring layers, and passes over the layers again while
 * some swap was made. A swap only changes crossings between the two
 * vertices' own edges, so each lowers the total. With `ties`, swaps that
 * keep the count are made too, to leave a plateau; they could go back and
 * forth, so the passes are capped.
 */
function transpose(g: Layered, layers: number[][], position: Int32Array, ties: boolean): void {
  for (let pass = 0; pass < TRANSPOSE_PASSES; pass++) {
    let swapped = false;
    for (const layer of layers) {
      if (transposeLayer(layer, g, position, ties)) swapped = true;
    }
    if (!swapped) return;
  }
}

/** One pass of {@linkcode transpose} over a layer; whether it swapped anything. */
function transposeLayer(
  layer: number[],
  g: Layered,
  position: Int32Array,
  ties: boolean,
): boolean {
  let swappedAny = false;
  for (let k = 0; k + 1 < layer.length; k++) {
    const u = layer[k];
    const v = layer[k + 1];
    const [aboveUp, belowUp] = crossingsBothWays(g.up[u], g.up[v], position);
    const [aboveDown, belowDown] = crossingsBothWays(g.down[u], g.down[v], position);
    const kept = aboveUp + aboveDown;
    const swapped = belowUp + belowDown;
    if (swapped > kept || (swapped === kept && !ties)) continue;
    layer[k] = v;
    layer[k + 1] = u;
    position[v] = k;
    position[u] = k + 1;
    swappedAny = true;
  }
  return swappedAny;
}

/** Above this many neighbour pairs, {@linkcode crossingsBothWays} sorts instead of trying every pair. */
const PAIRS_TRIED_ONE_BY_ONE = 64;

/**
 * The crossings between the edges of two adjacent vertices to their
 * neighbours `a` and `b` in one adjacent layer, with the first vertex above
 * the second and the other way round. A pair of edges crosses in exactly
 * one of the two orders, unless they share their other end.
 */
function crossingsBothWays(a: number[], b: number[], position: Int32Array): [number, number] {
  if (a.length * b.length > PAIRS_TRIED_ONE_BY_ONE) {
    const first = sortedPositions(a, position);
    const second = sortedPositions(b, position);
    return [crossingPairs(first, second), crossingPairs(second, first)];
  }
  // Few neighbours (the usual case): trying every pair costs less than sorting.
  let above = 0;
  let below = 0;
  for (const x of a) {
    for (const y of b) {
      if (position[x] > position[y]) above++;
      else if (position[x] < position[y]) below++;
    }
  }
  return [above, below];
}

/** The positions of `vertices`, ascending. */
function sortedPositions(vertices: number[], position: Int32Array): number[] {
  return vertices.map((v) => position[v]).sort((p, q) => p - q);
}

/**
 * Crossings between the edges of a vertex drawn above another, both sorted
 * lists of their neighbours' positions in one adjacent layer: the pairs
 * where the upper vertex's neighbour lies below the lower vertex's.
 */
function crossingPairs(upper: number[], lower: number[]): number {
  let crossings = 0;
  let below = 0;
  for (const p of upper) {
    while (below < lower.length && lower[below] < p) below++;
    crossings += below;
  }
  return crossings;
}

/** Crossings between all pairs of adjacent layers. */
function totalCrossings(g: Layered, layers: number[][], position: Int32Array): number {
  let crossings = 0;
  for (let l = 0; l + 1 < layers.length; l++) {
    crossings += crossingsBetween(layers[l], layers[l + 1].length, g.down, position);
  }
  return crossings;
}

/**
 * Crossings between one layer and the next, in O(E log V): edges taken in
 * the order of their upper end; each crosses the edges already taken whose
 * lower end lies strictly below its own, counted with a Fenwick tree.
 */
function crossingsBetween(
  upper: number[],
  lowerSize: number,
  down: number[][],
  position: Int32Array,
): number {
  const tree = new Int32Array(lowerSize + 1);
  let taken = 0;
  let crossings = 0;
  for (const u of upper) {
    // All counted before any is added: edges from one vertex never cross.
    for (const w of down[u]) crossings += taken - prefixCount(tree, position[w]);
    for (const w of down[u]) {
      for (let i = position[w] + 1; i <= lowerSize; i += i & -i) tree[i]++;
      taken++;
    }
  }
  return crossings;
}

/** How many positions `≤ p` the Fenwick tree holds. */
function prefixCount(tree: Int32Array, p: number): number {
  let count = 0;
  for (let i = p + 1; i > 0; i -= i & -i) count += tree[i];
  return count;
}

/** Pairs `i < j` with `values[i] > values[j]`, by merge sort (the values need not be integers). */
function countInversions(values: number[]): number {
  let source = Float64Array.from(values);
  let target = new Float64Array(values.length);
  let inversions = 0;
  for (let width = 1; width < source.length; width *= 2) {
    for (let start = 0; start < source.length; start += 2 * width) {
      const middle = Math.min(start + width, source.length);
      const end = Math.min(start + 2 * width, source.length);
      let i = start;
      let j = middle;
      let k = start;
      while (i < middle && j < end) {
        // Equal values are not inversions: the left one goes first.
        if (source[i] <= source[j]) target[k++] = source[i++];
        else {
          inversions += middle - i;
          target[k++] = source[j++];
        }
      }
      while (i < middle) target[k++] = source[i++];
      while (j < end) target[k++] = source[j++];
    }
    [source, target] = [target, source];
  }
  return inversions;
}

// ---------------------------------------------------------------------------
// Vertical placement

/** Sizes and spacing, with every default filled in. */
type Dimensions = Required<LayoutOptions>;

/**
 * The vertical center of every vertex: first stacked in order, then pulled
 * toward the median of its neighbours by alternate sweeps, and at last
 * rounded to whole pixels without breaking the spacing.
 */
function placeVertically(g: Layered, layers: number[][], dims: Dimensions): Float64Array {
  const center = new Float64Array(g.layerOf.length);
  const gaps = layers.map((layer) => layer.slice(1).map((v, k) => spacing(g, layer[k], v, dims)));
  layers.forEach((layer, l) => {
    for (let k = 1; k < layer.length; k++) center[layer[k]] = center[layer[k - 1]] + gaps[l][k - 1];
  });
  const count = layers.length;
  // Ending on an upward sweep lines sources up with their successors.
  for (let pass = 0; pass < PLACEMENT_SWEEPS; pass++) {
    const downward = pass % 2 === 0;
    for (let step = 1; step < count; step++) {
      const l = downward ? step : count - 1 - step;
      placeLayer(layers[l], gaps[l], downward ? g.up : g.down, g, center);
    }
  }
  layers.forEach((layer, l) => {
    for (let k = 0; k < layer.length; k++) {
      const rounded = Math.round(center[layer[k]]);
      center[layer[k]] = k === 0
        ? rounded
        : Math.max(rounded, center[layer[k - 1]] + gaps[l][k - 1]);
    }
  });
  return center;
}

/**
 * The least distance between the centers of two vertices next to each
 * other in a layer: half of each one's height plus a gap. Dummies have no
 * height, and two dummies a smaller gap (never 0, so edges stay apart).
 */
function spacing(g: Layered, a: number, b: number, dims: Dimensions): number {
  const aDummy = a >= g.realCount;
  const bDummy = b >= g.realCount;
  const half = (dummy: boolean) => dummy ? 0 : dims.nodeHeight / 2;
  const gap = aDummy && bDummy ? Math.max(dims.rowGap / 2, 1) : dims.rowGap;
  return half(aDummy) + half(bDummy) + gap;
}

/**
 * Places one layer: each vertex wishes to be at the median center of its
 * `neighbours` in the layer placed last (or where it is, if it has none), and
 * the layer takes the order-keeping, spacing-respecting positions nearest
 * to the wishes in weighted least squares.
 */
function placeLayer(
  layer: number[],
  gaps: number[],
  neighbours: number[][],
  g: Layered,
  center: Float64Array,
): void {
  const wishes = layer.map((v) => {
    const around = neighbours[v];
    if (around.length === 0) return { at: center[v], weight: FREE_WEIGHT };
    const at = median(around.map((w) => center[w]));
    return { at, weight: v >= g.realCount ? DUMMY_WEIGHT : 1 };
  });
  const placed = isotonicFit(wishes, gaps);
  layer.forEach((v, k) => center[v] = placed[k]);
}

function median(values: number[]): number {
  values.sort((a, b) => a - b);
  const middle = values.length >> 1;
  return values.length % 2 === 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

/**
 * Positions `y` minimizing `Σ weight·(y − at)²` subject to
 * `y[k + 1] − y[k] ≥ gaps[k]`. Subtracting the cumulative gaps turns the
 * constraints into "non-decreasing", which pool-adjacent-violators solves
 * exactly in linear time: merge neighbouring blocks while out of order,
 * each block sitting at the weighted mean of its wishes.
 */
function isotonicFit(wishes: { at: number; weight: number }[], gaps: number[]): number[] {
  const offset: number[] = [];
  wishes.forEach((_, k) => offset.push(k === 0 ? 0 : offset[k - 1] + gaps[k - 1]));
  const blocks: { start: number; weight: number; mean: number }[] = [];
  wishes.forEach(({ at, weight }, k) => {
    let block = { start: k, weight, mean: at - offset[k] };
    while (blocks.length > 0 && blocks[blocks.length - 1].mean > block.mean) {
      const before = blocks.pop()!;
      const total = before.weight + block.weight;
      block = {
        start: before.start,
        weight: total,
        mean: (before.mean * before.weight + block.mean * block.weight) / total,
      };
    }
    blocks.push(block);
  });
  const placed: number[] = new Array(wishes.length);
  blocks.forEach((block, b) => {
    const end = b + 1 < blocks.length ? blocks[b + 1].start : wishes.length;
    for (let k = block.start; k < end; k++) placed[k] = block.mean + offset[k];
  });
  return placed;
}

/** The topmost and bottommost pixel any vertex occupies. */
function extent(
  g: Layered,
  center: Float64Array,
  nodeHeight: number,
): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  center.forEach((c, v) => {
    const half = v < g.realCount ? nodeHeight / 2 : 0;
    min = Math.min(min, c - half);
    max = Math.max(max, c + half);
  });
  return { min, max };
}

/**
 * The crossings of `layout`'s layering drawn in input order: in every
 * layer the nodes in input order, then the edges passing through it in
 * edge order. Drawn with unit spacing and counted by
 * {@linkcode countCrossings}: the baseline the ordering step is measured
 * against (tests, `bench/layout_bench.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countCrossings, inputOrderCrossings, layoutDag } from "./layout.ts";
 * // b and a swapped in the next layer: input order crosses, the layout does not.
 * const layout = layoutDag(["a", "b", "c", "d"], [
 *   { from: "a", to: "d" },
 *   { from: "b", to: "c" },
 * ]);
 * assert.equal(inputOrderCrossings(layout), 1);
 * assert.equal(countCrossings(layout), 0);
 * ```
 */
export function inputOrderCrossings(layout: Layout): number {
  const next = new Map<number, number>();
  const rank = (layer: number) => {
    const r = next.get(layer) ?? 0;
    next.set(layer, r + 1);
    return r;
  };
  const nodes = new Map(layout.nodes.map((node) => [node.id, { ...node, y: rank(node.layer) }]));
  const edges = layout.edges.map((e) => {
    const from = nodes.get(e.from)!;
    const to = nodes.get(e.to)!;
    const points = [{ x: 2 * from.layer + 1, y: from.y }];
    for (let layer = from.layer + 1; layer < to.layer; layer++) {
      const y = rank(layer);
      points.push({ x: 2 * layer, y }, { x: 2 * layer + 1, y });
    }
    points.push({ x: 2 * to.layer, y: to.y });
    return { ...e, points };
  });
  return countCrossings({ width: 0, height: 0, nodes: [...nodes.values()], edges });
}
