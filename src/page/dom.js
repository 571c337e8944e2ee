/**
 * Building DOM nodes without HTML strings: text always goes in as text, so
 * nothing a run carries (task ids, outputs, errors) can become markup.
 *
 * @module
 */

/**
 * An element with attributes (`class`, `data-*`, `aria-*`…; `hidden` and
 * other booleans with `true`) and children (nodes or text).
 *
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attributes]
 * @param {...(Node | string | number | undefined | null)} children
 * @returns {HTMLElement}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  for (const child of children) {
    if (child === undefined || child === null) continue;
    element.append(typeof child === "object" ? child : String(child));
  }
  return element;
}

/**
 * The page's element `id`, which `index.html` always has, as a `type`
 * (`HTMLElement` unless told).
 *
 * @template {Element} [T=HTMLElement]
 * @param {string} id
 * @param {{ new (): T; prototype: T }} [type]
 * @returns {T}
 */
export function byId(id, type = /** @type {any} */ (HTMLElement)) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`the page has no ${type.name} #${id}`);
  return element;
}

/**
 * An SVG element with attributes.
 *
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attributes]
 * @returns {SVGElement}
 */
export function svg(tag, attributes = {}) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttributes(element, attributes);
  return element;
}

/**
 * @param {Element} element
 * @param {Record<string, string | number | boolean | undefined>} attributes
 */
function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
}

/**
 * A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`.
 *
 * @param {number} ms
 * @returns {string}
 */
export function formatDuration(ms) {
  if (!(ms >= 0)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.floor((ms % 60_000) / 1000);
  return `${minutes} min ${String(seconds).padStart(2, "0")} s`;
}

/**
 * A time of day in the viewer's locale, e.g. `14:03:27`.
 *
 * @param {string | number | undefined} when
 * @returns {string}
 */
export function formatTime(when) {
  if (when === undefined) return "";
  const date = new Date(when);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString(undefined, { hour12: false });
}

/**
 * Runs `render` once before the next frame, however often it is asked
 * (and within 200 ms even when the tab is hidden and frames stop).
 *
 * @param {() => void} render
 * @returns {() => void} asks for a render
 */
export function renderSoon(render) {
  let asked = false;
  const run = () => {
    if (!asked) return;
    asked = false;
    render();
  };
  return () => {
    if (asked) return;
    asked = true;
    requestAnimationFrame(run);
    setTimeout(run, 200);
  };
}
