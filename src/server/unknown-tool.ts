/**
 * What the bundled server says about a tool it does not have: the
 * registry's own explanation when it has one; for `http:request` when it is
 * off, how to turn it on; for `<prefix>:<name>`, the tools it does have
 * under that prefix, or else how MCP servers' tools are loaded (or that no
 * MCP server of that name is configured).
 *
 * @module
 */

import type { ManagedToolRegistry, ToolRegistry } from "../tools/registry.ts";

/** The name of the HTTP tool, there only when the server allows hosts (`--allow-http`). */
const HTTP_TOOL = "http:request";

/** Most tool names a message lists. */
const MAX_LISTED = 10;

/**
 * The `unknownToolMessage` the server gives `validateDAG`. `tools` are all
 * the server's tools; `mcp`, the MCP servers' tools when an MCP
 * configuration was given (`--mcp-config`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinTools } from "../tools/builtin.ts";
 * import { createToolRegistry } from "../tools/registry.ts";
 * import { unknownToolMessages } from "./unknown-tool.ts";
 * const explain = unknownToolMessages(createToolRegistry({ ...builtinTools }));
 * assert.match(explain("fs:read")!, /--mcp-config FILE/);
 * assert.match(explain("http:request")!, /start the server with --allow-http HOST\[:PORT\]/);
 * assert.equal(
 *   explain("mock:nope"),
 *   'unknown tool "mock:nope": the mock:* tools are mock:delay, mock:echo, mock:fail, mock:flaky',
 * );
 * assert.equal(explain("nope"), undefined);
 * ```
 */
export function unknownToolMessages(
  tools: ToolRegistry,
  mcp?: ManagedToolRegistry,
): (name: string) => string | undefined {
  return (name) => {
    const explained = tools.explainUnknown?.(name);
    if (explained !== undefined) return explained;
    const colon = name.indexOf(":");
    if (colon <= 0) return undefined;
    const prefix = name.slice(0, colon + 1);
    const siblings = tools.list().map((t) => t.name).filter((n) => n.startsWith(prefix));
    if (siblings.length > 0) {
      return `unknown tool "${name}": the ${prefix}* tools are ${listing(siblings)}`;
    }
    const server = name.slice(0, colon);
    if (server === "http" && !(mcp !== undefined && "http" in mcp.health())) {
      const which = name === HTTP_TOOL
        ? "the HTTP tool is off"
        : `the HTTP tool is ${HTTP_TOOL}, off`;
      return `unknown tool "${name}": ${which}: start the server with --allow-http HOST[:PORT] ` +
        "for each host it may call (repeatable; see docs/OPERATIONS.md)";
    }
    if (mcp !== undefined) {
      const servers = Object.keys(mcp.health()).sort();
      return `unknown tool "${name}": no MCP server "${server}" is configured` +
        (servers.length === 0 ? "" : ` (the configured servers are ${listing(servers)})`);
    }
    return `unknown tool "${name}": tools named <server>:<tool> come from MCP servers; ` +
      "start the server with --mcp-config FILE (deno task serve:mcp --mcp-config FILE)";
  };
}

function listing(names: readonly string[]): string {
  const listed = names.slice(0, MAX_LISTED).join(", ");
  return names.length > MAX_LISTED ? `${listed} and ${names.length - MAX_LISTED} more` : listed;
}
