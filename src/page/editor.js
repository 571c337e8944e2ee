/**
 * The DAG editor: a textarea labelled **DAG**, prefilled with an example,
 * a picker of the examples the server ships, and **Run**, which starts the
 * DAG with `POST /runs` and opens its run view. A refused DAG shows each
 * problem of the answer with its path exactly as the API gives it.
 *
 * @module
 */

import diamond from "../../examples/diamond.json" with { type: "json" };
import failingBranch from "../../examples/failing-branch.json" with { type: "json" };
import fanOutFanIn from "../../examples/fan-out-fan-in.json" with { type: "json" };
import mcpDag from "../../examples/mcp-dag.json" with { type: "json" };
import { api, readProblem } from "./api.js";
import { byId, h } from "./dom.js";

/** The examples, by file name. */
const EXAMPLES = {
  "diamond.json": diamond,
  "fan-out-fan-in.json": fanOutFanIn,
  "failing-branch.json": failingBranch,
  "mcp-dag.json": mcpDag,
};

/**
 * Starts the editor.
 *
 * @param {(runId: string) => void} opened called with the id of a run it started
 */
export function startEditor(opened) {
  const form = byId("submit-form", HTMLFormElement);
  const picker = byId("example", HTMLSelectElement);
  const textarea = byId("dag", HTMLTextAreaElement);
  const problems = byId("dag-problems");
  const button = byId("run-button", HTMLButtonElement);

  for (const name of Object.keys(EXAMPLES)) picker.append(h("option", { value: name }, name));
  const show = (/** @type {string} */ name) => {
    textarea.value = JSON.stringify(EXAMPLES[/** @type {keyof EXAMPLES} */ (name)], null, 2);
  };
  show(picker.value);
  picker.addEventListener("change", () => {
    show(picker.value);
    problems.replaceChildren();
  });
  markUnavailable(picker);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    problems.replaceChildren();
    try {
      const response = await api("/runs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: textarea.value,
      });
      if (response.status === 202) {
        const { runId } = await response.json();
        opened(runId);
        return;
      }
      const { detail, errors } = await readProblem(response);
      problems.replaceChildren(
        h("p", {}, detail),
        errors.length === 0 ? undefined : h(
          "ul",
          {},
          ...errors.map((error) =>
            h(
              "li",
              { "data-path": error.path },
              h("code", {}, error.path),
              ": ",
              error.message,
            )
          ),
        ),
      );
    } catch {
      problems.replaceChildren(h("p", {}, "The server cannot be reached."));
    } finally {
      button.disabled = false;
    }
  });
}

/**
 * Marks the examples that call tools this server lacks (the MCP example
 * without `--mcp-config`).
 *
 * @param {HTMLSelectElement} picker
 */
async function markUnavailable(picker) {
  try {
    const response = await api("/tools");
    if (!response.ok) return void await response.body?.cancel();
    const known = new Set(
      (await response.json()).tools.map((/** @type {{ name: string }} */ t) => t.name),
    );
    for (const option of picker.options) {
      const dag = EXAMPLES[/** @type {keyof EXAMPLES} */ (option.value)];
      const missing = dag.tasks.filter((/** @type {{ tool: string }} */ t) => !known.has(t.tool));
      if (missing.length > 0) {
        option.textContent = `${option.value} (needs tools this server lacks)`;
      }
    }
  } catch {
    // The list says so already.
  }
}
