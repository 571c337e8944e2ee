/**
 * The page's DAG layout (`src/client/layout.ts`) against `@dagrejs/dagre`
 * on the same graphs: edge crossings, time and drawing size, printed as a
 * Markdown table (`deno run -A bench/layout_compare.ts`).
 *
 * Graphs: the four examples in `examples/`, seeded random DAGs of 50, 200
 * and 1,000 tasks (`randomDag(n, 1)`), and a staged pipeline of 10 stages of
 * 20 tasks; edges from `dagEdges`, as on the page.
 *
 * Both drawings use the page's box (184 × 58) and comparable spacing:
 * dagre gets `rankdir: "LR"`, `ranksep: 72`, `nodesep: 18`, `edgesep: 10`
 * and a margin of 16, our layout its defaults (`layerGap` 72, `rowGap` 18,
 * `margin` 16).
 *
 * Crossings are counted the same way for both: geometrically, as proper
 * intersections between the segments of the edges' polylines (ours:
 * `edges[].points`; dagre: `g.edge(e).points`). Pairs of edges that share a
 * node (as `from` or `to`) are skipped entirely.
 *
 * Times are medians of several runs after a warm-up, the two layouts taking
 * turns in each round. Dagre's time includes building its graph, since ours
 * takes the ids and edges directly.
 *
 * @module
 */

import dagre from "npm:@dagrejs/dagre@3.1.3";
import { countCrossings, layoutDag } from "../src/client/layout.ts";
import { dagEdges } from "../src/client/dag-edges.ts";
import type { ViewedTaskSpec } from "../src/client/run-state.ts";
import { randomDag } from "./random_dag.ts";
import { median } from "./stats.ts";

const COMMAND = "deno run -A bench/layout_compare.ts";

/** The page's task box (`src/page/graph-view.js`). */
const NODE = { width: 184, height: 58 };
const MARGIN = 16;
const DAGRE_OPTIONS = {
  rankdir: "LR",
  ranksep: 72,
  nodesep: 18,
  edgesep: 10,
  marginx: MARGIN,
  marginy: MARGIN,
};

interface Point {
  x: number;
  y: number;
}

/** An edge as drawn: a polyline from its `from` node to its `to` node. */
interface Drawn {
  from: string;
  to: string;
  points: readonly Point[];
}

/** One graph to lay out. */
interface Case {
  name: string;
  ids: string[];
  edges: { from: string; to: string }[];
}

/** Warm-up runs, then timed runs, by number of tasks. */
function runsFor(tasks: number): { warmup: number; runs: number } {
  if (tasks <= 20) return { warmup: 50, runs: 101 };
  if (tasks <= 200) return { warmup: 5, runs: 21 };
  return { warmup: 1, runs: 5 };
}

// ---------------------------------------------------------------------------
// Graphs

function fromTasks(name: string, tasks: readonly ViewedTaskSpec[]): Case {
  return {
    name,
    ids: tasks.map((task) => task.id),
    edges: dagEdges(tasks).map(({ from, to }) => ({ from, to })),
  };
}

async function example(name: string): Promise<Case> {
  const url = new URL(`../examples/${name}.json`, import.meta.url);
  const dag = JSON.parse(await Deno.readTextFile(url)) as { tasks: ViewedTaskSpec[] };
  return fromTasks(name, dag.tasks);
}

/**
 * 10 stages of 20 tasks `s<stage>_<k>`: each depends on `s<stage-1>_<k>`
 * and, for odd k, also on `s<stage-1>_<(7k + 3) mod 20>`.
 */
function stagedPipeline(stages = 10, width = 20): Case {
  const tasks: ViewedTaskSpec[] = [];
  for (let stage = 0; stage < stages; stage++) {
    for (let k = 0; k < width; k++) {
      const dependsOn = stage === 0 ? [] : [`s${stage - 1}_${k}`];
      if (stage > 0 && k % 2 === 1) dependsOn.push(`s${stage - 1}_${(k * 7 + 3) % width}`);
      tasks.push({ id: `s${stage}_${k}`, tool: "noop", dependsOn });
    }
  }
  return fromTasks(`staged ${stages}×${width}`, tasks);
}

// ---------------------------------------------------------------------------
// Layouts

function ours(c: Case) {
  return layoutDag(c.ids, c.edges, { nodeWidth: NODE.width, nodeHeight: NODE.height });
}

/** A dagre graph (the package's types name it differently across versions). */
type DagreGraph = InstanceType<typeof dagre.graphlib.Graph>;

function theirs(c: Case): DagreGraph {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ ...DAGRE_OPTIONS });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of c.ids) g.setNode(id, { width: NODE.width, height: NODE.height });
  for (const edge of c.edges) g.setEdge(edge.from, edge.to);
  dagre.layout(g);
  return g;
}

function dagreDrawn(g: DagreGraph): Drawn[] {
  return g.edges().map((e: { v: string; w: string }) => ({
    from: e.v,
    to: e.w,
    points: (g.edge(e) as { points: { x: number; y: number }[] }).points,
  }));
}

// ---------------------------------------------------------------------------
// Crossings

interface Segment {
  edge: number;
  a: Point;
  b: Point;
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
}

/** The sign of the turn a → b → c, 0 when (nearly) collinear. */
function orientation(a: Point, b: Point, c: Point): number {
  const cross = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
  const scale = Math.abs(b.x - a.x) + Math.abs(b.y - a.y) + Math.abs(c.x - a.x) +
    Math.abs(c.y - a.y);
  return Math.abs(cross) <= 1e-9 * scale * scale ? 0 : Math.sign(cross);
}

/** Whether the segments meet at one point inside both (not at an end, not collinear). */
function properlyIntersect(s: Segment, t: Segment): boolean {
  return orientation(s.a, s.b, t.a) * orientation(s.a, s.b, t.b) < 0 &&
    orientation(t.a, t.b, s.a) * orientation(t.a, t.b, s.b) < 0;
}

/**
 * Proper intersections between segments of different edges, skipping every
 * pair of edges that share a node. A sweep along x keeps it near-linear for
 * layered drawings.
 */
function geometricCrossings(edges: readonly Drawn[]): number {
  const segments: Segment[] = [];
  edges.forEach((edge, index) => {
    for (let k = 1; k < edge.points.length; k++) {
      const a = edge.points[k - 1];
      const b = edge.points[k];
      segments.push({
        edge: index,
        a,
        b,
        minX: Math.min(a.x, b.x),
        maxX: Math.max(a.x, b.x),
        minY: Math.min(a.y, b.y),
        maxY: Math.max(a.y, b.y),
      });
    }
  });
  segments.sort((s, t) => s.minX - t.minX);
  const shareNode = (i: number, j: number) => {
    const p = edges[i];
    const q = edges[j];
    return p.from === q.from || p.to === q.to || p.from === q.to || p.to === q.from;
  };
  let crossings = 0;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    for (let j = i + 1; j < segments.length && segments[j].minX <= s.maxX; j++) {
      const t = segments[j];
      if (t.edge === s.edge || t.minY > s.maxY || t.maxY < s.minY) continue;
      if (shareNode(s.edge, t.edge)) continue;
      if (properlyIntersect(s, t)) crossings++;
    }
  }
  return crossings;
}

// ---------------------------------------------------------------------------
// Timing

/** Milliseconds per run of each function, taking turns, after `warmup` rounds. */
function timeBoth(
  a: () => unknown,
  b: () => unknown,
  warmup: number,
  runs: number,
): [number[], number[]] {
  for (let k = 0; k < warmup; k++) {
    a();
    b();
  }
  const ta: number[] = [];
  const tb: number[] = [];
  for (let k = 0; k < runs; k++) {
    let start = performance.now();
    a();
    ta.push(performance.now() - start);
    start = performance.now();
    b();
    tb.push(performance.now() - start);
  }
  return [ta, tb];
}

// ---------------------------------------------------------------------------
// Report

async function denoVersionLine(): Promise<string> {
  try {
    const { stdout } = await new Deno.Command(Deno.execPath(), { args: ["--version"] }).output();
    return new TextDecoder().decode(stdout).split("\n")[0].trim();
  } catch {
    return `deno ${Deno.version.deno}`;
  }
}

async function cpuModel(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    const line = info.split("\n").find((l) => l.startsWith("model name"));
    const cores = info.split("\n").filter((l) => l.startsWith("processor")).length;
    return `${line?.split(":")[1]?.trim() ?? "unknown"} (${cores} logical CPUs)`;
  } catch {
    return "unknown";
  }
}

function ms(x: number): string {
  return x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(0);
}

function crossingRatio(a: number, b: number): string {
  if (b === 0) return a === 0 ? "– (both 0)" : "∞";
  return (a / b).toFixed(2);
}

function verdict(
  name: string,
  cross: [number, number],
  time: [number, number],
  area: [number, number],
): string {
  const [co, cd] = cross;
  const crossings = co === cd
    ? `same crossings (${co})`
    : co < cd
    ? `fewer crossings (${co} vs ${cd})`
    : `MORE crossings (${co} vs ${cd})`;
  const [to, td] = time;
  const speed = to <= td ? `${(td / to).toFixed(1)}× faster` : `${(to / td).toFixed(1)}× SLOWER`;
  const size = `drawing area ${(area[0] / area[1]).toFixed(2)}× dagre's`;
  return `- **${name}**: ${crossings}; ${speed}; ${size}.`;
}

const cases: Case[] = [
  await example("diamond"),
  await example("fan-out-fan-in"),
  await example("failing-branch"),
  await example("mcp-dag"),
  ...[50, 200, 1000].map((n) => fromTasks(`random ${n}`, randomDag(n, 1).tasks)),
  stagedPipeline(),
];

/** The version dagre reports (its type declarations leave the field out). */
const dagreVersion = (dagre as typeof dagre & { version?: string }).version ?? "?";

console.log(`# Layout: layoutDag vs @dagrejs/dagre ${dagreVersion}\n`);
console.log(`- command: \`${COMMAND}\``);
console.log(`- ${await denoVersionLine()}`);
console.log(`- CPU: ${await cpuModel()}`);
console.log(`- date: ${new Date().toISOString()}`);
console.log(
  `- boxes ${NODE.width}×${NODE.height}; ours: layerGap 72, rowGap 18, margin ${MARGIN}; ` +
    `dagre: ${JSON.stringify(DAGRE_OPTIONS)}`,
);
console.log(
  "- crossings: proper intersections between edge polylines (segment pairs of different " +
    "edges meeting inside both); pairs of edges sharing a node are skipped entirely",
);
console.log(
  "- times: median ms per layout after a warm-up, the two taking turns; dagre's includes " +
    "building its graph\n",
);

console.log(
  "| graph | tasks | edges | crossings ours | crossings dagre | ratio | ours median ms | " +
    "dagre median ms | time ratio | ours W×H | dagre W×H |",
);
console.log("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");

const verdicts: string[] = [];
const checks: string[] = [];
for (const c of cases) {
  const mine = ours(c);
  const g = theirs(c);
  const label = g.graph() as { width?: number; height?: number };
  const crossOurs = geometricCrossings(mine.edges);
  const crossDagre = geometricCrossings(dagreDrawn(g));
  const { warmup, runs } = runsFor(c.ids.length);
  const [tOurs, tDagre] = timeBoth(() => ours(c), () => theirs(c), warmup, runs);
  const mOurs = median(tOurs);
  const mDagre = median(tDagre);
  const dw = label.width ?? 0;
  const dh = label.height ?? 0;
  console.log(
    `| ${c.name} | ${c.ids.length} | ${c.edges.length} | ${crossOurs} | ${crossDagre} | ` +
      `${crossingRatio(crossOurs, crossDagre)} | ${ms(mOurs)} | ${ms(mDagre)} | ` +
      `${(mOurs / mDagre).toFixed(2)} | ${Math.round(mine.width)}×${Math.round(mine.height)} | ` +
      `${Math.round(dw)}×${Math.round(dh)} |`,
  );
  verdicts.push(
    verdict(c.name, [crossOurs, crossDagre], [mOurs, mDagre], [
      mine.width * mine.height,
      dw * dh,
    ]),
  );
  checks.push(
    `${c.name}: ${countCrossings(mine)} (${mine.edges.length}/${g.edgeCount()} edges drawn, ` +
      `${runs} timed runs)`,
  );
}

console.log("\nVerdicts (ours against dagre):\n");
for (const line of verdicts) console.log(line);
console.log(
  "\nFor reference, `countCrossings` of our layout (layer pair by layer pair, counting " +
    "edges that share a node too):",
);
console.log(checks.join("; "));
