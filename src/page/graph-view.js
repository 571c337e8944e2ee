/**
 * The run's DAG, drawn left to right by dependency: one button per task
 * (`data-task-id`, `data-state`, a progress bar while its tool reports
 * progress), one path per edge (`data-edge="<from>-><to>"`, dashed when
 * the task only reads the other's output), zoomed with the wheel, the
 * buttons or `+`/`-`/`0`, and panned by dragging or with the arrow keys.
 *
 * @module
 */

import { dagEdges } from "../client/dag-edges.ts";
import { layoutDag } from "../client/layout.ts";
import { byId, formatDuration, h, svg } from "./dom.js";

/** @typedef {import("../client/run-state.ts").RunState} RunState */
/** @typedef {import("../client/run-state.ts").TaskView} TaskView */

/** The size of a task's box, in CSS pixels at scale 1. */
const NODE = { width: 184, height: 58 };
const MIN_SCALE = 0.15;
/** Below this scale a task's text cannot be read: the first view of a large DAG zooms in. */
const READABLE_SCALE = 0.6;
const MAX_SCALE = 2.5;

/**
 * Draws `state`'s tasks into the graph area.
 *
 * @param {RunState} state
 * @param {{ tasks: { id: string; tool: string; dependsOn?: string[]; arguments?: Record<string, unknown> }[] }} dag
 * @param {(taskId: string) => void} select called when a task is clicked
 * @returns {{ update(task: TaskView, now: number): void; selected(taskId: string | undefined): void; dispose(): void }}
 */
export function drawGraph(state, dag, select) {
  const graph = byId("graph");
  const canvas = byId("canvas");
  const edgesLayer = byId("edges", SVGSVGElement);
  const nodesLayer = byId("nodes");

  const edges = dagEdges(dag.tasks);
  const layout = layoutDag(state.tasks.map((t) => t.id), edges, {
    nodeWidth: NODE.width,
    nodeHeight: NODE.height,
  });
  edgesLayer.setAttribute("width", String(layout.width));
  edgesLayer.setAttribute("height", String(layout.height));
  canvas.style.width = `${layout.width}px`;
  canvas.style.height = `${layout.height}px`;

  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow",
    viewBox: "0 0 10 10",
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M0 0L10 5L0 10z" }));
  defs.append(marker);
  const byPair = new Map(edges.map((e) => [`${e.from}\n${e.to}`, e]));
  const paths = layout.edges.map((edge) => {
    const info = byPair.get(`${edge.from}\n${edge.to}`);
    return svg("path", {
      d: curve(edge.points),
      "data-edge": `${edge.from}->${edge.to}`,
      class: info && !info.declared ? "output-only" : undefined,
      "marker-end": "url(#arrow)",
    });
  });
  edgesLayer.replaceChildren(defs, ...paths);

  /** @type {Map<string, { node: HTMLElement; state: HTMLElement; meta: HTMLElement; progress?: HTMLElement }>} */
  const views = new Map();
  const buttons = layout.nodes.map((placed) => {
    const task = /** @type {TaskView} */ (state.byId.get(placed.id));
    const stateText = h("span", { class: "state" }, task.state);
    const meta = h("span", { class: "elapsed" });
    const node = h(
      "button",
      {
        type: "button",
        class: "node",
        "data-task-id": task.id,
        "data-state": task.state,
        "aria-pressed": "false",
        title: `${task.id} (${task.tool})`,
      },
      h("span", { class: "task-id" }, task.id),
      h("span", { class: "task-meta" }, task.tool),
      h("span", { class: "task-meta" }, stateText, " ", meta),
    );
    node.style.left = `${placed.x}px`;
    node.style.top = `${placed.y}px`;
    node.style.width = `${NODE.width}px`;
    node.style.height = `${NODE.height}px`;
    node.addEventListener("click", () => {
      if (!dragged) select(task.id);
    });
    views.set(task.id, { node, state: stateText, meta });
    return node;
  });
  nodesLayer.replaceChildren(...buttons);

  // Zoom and pan.
  let scale = 1;
  let x = 0;
  let y = 0;
  let dragged = false;
  const apply = () => {
    canvas.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
  };
  const zoomAt = (
    /** @type {number} */ factor,
    /** @type {number} */ px,
    /** @type {number} */ py,
  ) => {
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
    x = px - (px - x) * (next / scale);
    y = py - (py - y) * (next / scale);
    scale = next;
    apply();
  };
  graph.style.height = `${Math.min(Math.max(layout.height + 24, 200), innerHeight * 0.6)}px`;
  const fit = () => {
    const { clientWidth: w, clientHeight: hgt } = graph;
    scale = Math.min(1, Math.max(MIN_SCALE, Math.min(w / layout.width, hgt / layout.height)));
    x = Math.max(0, (w - layout.width * scale) / 2);
    y = Math.max(0, (hgt - layout.height * scale) / 2);
    apply();
  };
  /** The first view: the whole DAG, unless that makes its boxes too small to read. */
  const initial = () => {
    fit();
    if (scale >= READABLE_SCALE) return;
    scale = READABLE_SCALE;
    x = 8;
    y = 8;
    apply();
  };
  initial();

  const controller = new AbortController();
  const on = { signal: controller.signal };
  graph.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = graph.getBoundingClientRect();
    zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
  }, { ...on, passive: false });
  /** @type {{ id: number; x: number; y: number; startX: number; startY: number } | undefined} */
  let drag;
  graph.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    drag = { id: event.pointerId, x: event.clientX, y: event.clientY, startX: x, startY: y };
    dragged = false;
  }, on);
  graph.addEventListener("pointermove", (event) => {
    if (drag === undefined || event.pointerId !== drag.id) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    if (!dragged) {
      dragged = true;
      graph.setPointerCapture(drag.id);
      graph.classList.add("panning");
    }
    x = drag.startX + dx;
    y = drag.startY + dy;
    apply();
  }, on);
  const endDrag = () => {
    drag = undefined;
    graph.classList.remove("panning");
    // The click that ends a drag is not a selection; the next one may be.
    setTimeout(() => (dragged = false), 0);
  };
  graph.addEventListener("pointerup", endDrag, on);
  graph.addEventListener("pointercancel", endDrag, on);
  graph.addEventListener("keydown", (event) => {
    const center = () => [graph.clientWidth / 2, graph.clientHeight / 2];
    const step = 40;
    if (event.key === "+" || event.key === "=") zoomAt(1.25, ...center());
    else if (event.key === "-") zoomAt(0.8, ...center());
    else if (event.key === "0") fit();
    else if (event.key === "ArrowLeft" && event.target === graph) (x += step), apply();
    else if (event.key === "ArrowRight" && event.target === graph) (x -= step), apply();
    else if (event.key === "ArrowUp" && event.target === graph) (y += step), apply();
    else if (event.key === "ArrowDown" && event.target === graph) (y -= step), apply();
    else return;
    event.preventDefault();
  }, on);
  const button = (/** @type {string} */ id, /** @type {() => void} */ action) =>
    document.getElementById(id)?.addEventListener("click", action, on);
  button("zoom-in", () => zoomAt(1.25, graph.clientWidth / 2, graph.clientHeight / 2));
  button("zoom-out", () => zoomAt(0.8, graph.clientWidth / 2, graph.clientHeight / 2));
  button("zoom-fit", fit);

  return {
    update(task, now) {
      const view = views.get(task.id);
      if (view === undefined) return;
      if (view.node.dataset.state !== task.state) {
        view.node.dataset.state = task.state;
        view.state.textContent = task.state;
      }
      const elapsed = task.executionTimeMs ??
        (task.startedAt === undefined ? undefined : now - task.startedAt);
      const attempt = task.attempts ?? task.attempt;
      view.meta.textContent = (elapsed === undefined ? "" : `· ${formatDuration(elapsed)}`) +
        (attempt !== undefined && attempt > 1 ? ` · attempt ${attempt}` : "");
      const progress = task.state === "running" ? task.progress : undefined;
      if (progress === undefined) {
        view.progress?.remove();
        view.progress = undefined;
        return;
      }
      if (view.progress === undefined) {
        view.progress = h("span", {
          class: "progress",
          role: "progressbar",
          "aria-label": `Progress of ${task.id}`,
          "aria-valuemin": 0,
        }, h("span"));
        view.node.append(view.progress);
      }
      const max = progress.total ?? Math.max(progress.progress, 1);
      view.progress.setAttribute("aria-valuenow", String(progress.progress));
      view.progress.setAttribute("aria-valuemax", String(max));
      if (progress.message !== undefined) {
        view.progress.setAttribute("aria-valuetext", progress.message);
      }
      const fill = /** @type {HTMLElement} */ (view.progress.firstElementChild);
      fill.style.width = `${Math.min(100, (progress.progress / max) * 100)}%`;
    },
    selected(taskId) {
      for (const [id, view] of views) view.node.setAttribute("aria-pressed", String(id === taskId));
    },
    dispose() {
      controller.abort();
      nodesLayer.replaceChildren();
      edgesLayer.replaceChildren();
    },
  };
}

/**
 * A smooth path through `points`: horizontal tangents at each point, so
 * edges leave and enter the boxes level.
 *
 * @param {{ x: number; y: number }[]} points
 * @returns {string}
 */
function curve(points) {
  if (points.length === 0) return "";
  let d = `M${points[0].x} ${points[0].y}`;
  for (let k = 1; k < points.length; k++) {
    const a = points[k - 1];
    const b = points[k];
    const dx = (b.x - a.x) / 2;
    d += `C${a.x + dx} ${a.y} ${b.x - dx} ${b.y} ${b.x} ${b.y}`;
  }
  return d;
}
