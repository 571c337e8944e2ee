/**
 * The MCP servers' tools of an in-process run (`deno task run:mcp
 * --mcp-config FILE <dag.json>`): the configuration is read and checked,
 * and the servers started, as the bundled server does it.
 *
 * @module
 */

import {
  loadMcpConfig,
  type McpConfig,
  McpConfigError,
  type McpPermissions,
  mcpPermissions,
} from "../tools/mcp-config.ts";
import type { ManagedToolRegistry } from "../tools/registry.ts";
import { RunSourceError } from "./run-source.ts";

/**
 * What {@linkcode openMcpTools} is given besides the file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { McpToolsOptions } from "./mcp-tools.ts";
 * const options: McpToolsOptions = { log: (record) => assert.equal(typeof record.msg, "string") };
 * options.log?.({ msg: "mcp server up" });
 * ```
 */
export interface McpToolsOptions {
  /** Most ms one tool call may take. Default 30000. */
  callTimeoutMs?: number;
  /** Receives the MCP client's log records (a server down, lost, its stderr lines). */
  log?: (record: Record<string, unknown>) => void;
  /**
   * Called with the registry as soon as it exists, before its servers are
   * up: closing it then stops them starting (a Ctrl-C during the start).
   */
  created?: (tools: ManagedToolRegistry) => void;
}

/**
 * Reads the MCP configuration at `path`, checks that this process may do
 * what it asks (run its commands, read the variables they inherit, reach
 * its URLs), starts every server, and resolves with their tools once each
 * is up or has failed (a server that failed is `down` and retried; a DAG
 * that names its tools is refused as the server refuses it). The caller
 * closes the result.
 *
 * @throws {RunSourceError} for a file that cannot be read or is invalid
 *   (with each problem and its path), or permissions this process lacks
 *   (the message names them, and `deno task run:mcp`)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openMcpTools } from "./mcp-tools.ts";
 * import { RunSourceError } from "./run-source.ts";
 * await assert.rejects(
 *   openMcpTools("no/such/mcp.json"),
 *   (error) => error instanceof RunSourceError && /cannot be read/.test(error.issues[0].message),
 * );
 * ```
 */
export async function openMcpTools(
  path: string,
  options: McpToolsOptions = {},
): Promise<ManagedToolRegistry> {
  let config: McpConfig;
  try {
    config = await loadMcpConfig(path);
  } catch (error) {
    if (error instanceof McpConfigError) {
      throw new RunSourceError(`invalid MCP config ${path}`, error.issues);
    }
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new RunSourceError(
        `no permission to read ${path}: use deno task run:mcp --mcp-config ${path} <dag.json>`,
      );
    }
    throw error;
  }
  const missing = missingPermissions(mcpPermissions(config, path));
  if (missing.length > 0) {
    throw new RunSourceError(
      `the MCP servers of ${path} need permissions this process lacks (${missing.join(" ")}): ` +
        `use deno task run:mcp --mcp-config ${path} <dag.json>`,
    );
  }
  // Loaded only now: a run without MCP servers does not load the SDK.
  const { McpToolSource } = await import("../tools/mcp.ts");
  const source = new McpToolSource(config, {
    callTimeoutMs: options.callTimeoutMs,
    log: options.log,
  });
  options.created?.(source);
  await source.start();
  return source;
}

/** The permissions of `needed` this process lacks, as `deno run` flags. */
function missingPermissions(needed: McpPermissions): string[] {
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  const run = needed.run.filter((command) => !granted({ name: "run", command }));
  let env = needed.env.filter((variable) => !granted({ name: "env", variable }));
  const net = needed.net.filter((host) => !granted({ name: "net", host }));
  try {
    // The SDK's dependencies read a few variables (OSTYPE…) when loaded:
    // they need --allow-env, or --ignore-env (read as unset).
    Deno.env.get("OSTYPE");
  } catch {
    env = ["*"];
  }
  const flag = (name: string, values: string[]) =>
    values.length === 0 ? [] : values[0] === "*" ? [name] : [`${name}=${values.join(",")}`];
  return [...flag("--allow-run", run), ...flag("--allow-env", env), ...flag("--allow-net", net)];
}
