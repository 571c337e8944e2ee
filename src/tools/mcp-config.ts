/**
 * The MCP configuration file of the bundled server: the `mcpServers` JSON
 * that MCP clients already use (Claude Desktop, Claude Code's `.mcp.json`,
 * Cursor…), read and checked with clear errors that name the path of each
 * problem, and the Deno permissions a given configuration needs.
 *
 * ```json
 * {
 *   "mcpServers": {
 *     "fs": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"] },
 *     "remote": { "url": "http://127.0.0.1:3001/mcp", "headers": { "Authorization": "Bearer …" } }
 *   }
 * }
 * ```
 *
 * This module does not load the MCP SDK: reading a configuration needs no
 * more than the permission to read the file.
 *
 * @module
 */

import { z } from "npm:zod@4.6.7";
import { describeError } from "../dag/errors.ts";
import { formatPath, type ValidationIssue, zodIssues } from "../dag/issues.ts";

/** A server started as a child process, spoken to over its stdin and stdout. */
export interface McpStdioServerSpec {
  /** How the server is reached. */
  transport: "stdio";
  /** The program to run (looked up in `PATH` when it has no slash). */
  command: string;
  /** Its arguments. */
  args: string[];
  /**
   * Environment variables given to it, on top of `HOME`, `LOGNAME`, `PATH`,
   * `SHELL`, `TERM` and `USER` (passed on from the server's environment).
   */
  env: Record<string, string>;
  /** Working directory (relative ones are resolved against the config file's folder). */
  cwd?: string;
}

/** A server reached over MCP's Streamable HTTP transport. */
export interface McpHttpServerSpec {
  /** How the server is reached. */
  transport: "http";
  /** The MCP endpoint, e.g. `http://127.0.0.1:3001/mcp`. */
  url: string;
  /** Headers sent with every request (e.g. `Authorization`). */
  headers: Record<string, string>;
}

/** One configured MCP server. */
export type McpServerSpec = McpStdioServerSpec | McpHttpServerSpec;

/** A checked MCP configuration. */
export interface McpConfig {
  /** The servers to connect to, by name (each tool is called `<name>:<tool>`). */
  servers: Record<string, McpServerSpec>;
  /** Things worth telling the operator that are not errors (ignored fields, disabled servers). */
  warnings: string[];
}

/** One problem in a configuration file, at a path such as `mcpServers.fs.args[1]`. */
export type McpConfigIssue = ValidationIssue;

/** Thrown for a configuration that cannot be used; the message lists every problem. */
export class McpConfigError extends Error {
  /** Every problem found. */
  readonly issues: McpConfigIssue[];
  /**
   * Creates the error; its message names `source` and lists every issue.
   *
   * @param source the file (or other origin) of the configuration, named in the message
   * @param issues the problems
   */
  constructor(source: string, issues: McpConfigIssue[]) {
    super(
      `invalid MCP config ${source}:\n` +
        issues.map((i) => `  ${i.path}: ${i.message}`).join("\n"),
    );
    this.name = "McpConfigError";
    this.issues = issues;
  }
}

/**
 * Names a server may have: letters, digits, `_`, `-` and `.` (no `:`, which
 * separates the server from the tool in `<server>:<tool>`).
 */
export const MCP_SERVER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Server names that are taken (`mock` is the prefix of the built-in tools). */
export const RESERVED_SERVER_NAMES: readonly string[] = ["mock"];

/**
 * Environment variables the MCP SDK passes on to a stdio server by default
 * (its `DEFAULT_INHERITED_ENV_VARS` on Linux and macOS): the server needs
 * permission to read them.
 */
export const INHERITED_ENV_VARS: readonly string[] = [
  "HOME",
  "LOGNAME",
  "PATH",
  "SHELL",
  "TERM",
  "USER",
];

const stringMap = z.record(z.string(), z.string({ error: "must be a string" }), {
  error: "must be an object of strings",
});

const stdioSchema = z.object({
  type: z.literal("stdio", { error: 'must be "stdio" for a server with a command' }).optional(),
  command: z.string({ error: "must be a string" }).min(1, "must not be empty"),
  args: z.array(z.string({ error: "must be a string" }), { error: "must be an array of strings" })
    .optional(),
  env: stringMap.optional(),
  cwd: z.string({ error: "must be a string" }).min(1, "must not be empty").optional(),
  disabled: z.boolean({ error: "must be true or false" }).optional(),
});

const httpSchema = z.object({
  type: z.enum(["http", "streamable-http", "streamableHttp"], {
    error: 'must be "http" (Streamable HTTP) for a server with a url',
  }).optional(),
  url: z.string({ error: "must be a string" }).refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:";
    } catch {
      return false;
    }
  }, "must be an http:// or https:// URL"),
  headers: stringMap.optional(),
  disabled: z.boolean({ error: "must be true or false" }).optional(),
});

const KNOWN_KEYS = new Set([...Object.keys(stdioSchema.shape), ...Object.keys(httpSchema.shape)]);

/**
 * Checks a parsed configuration document.
 *
 * @param document the parsed JSON
 * @param source names the configuration in messages (a file path)
 * @param baseDir folder against which relative `cwd`s are resolved
 * @throws {McpConfigError} listing every problem, each with its path
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMcpConfig } from "./mcp-config.ts";
 * const config = parseMcpConfig({
 *   mcpServers: {
 *     everything: { command: "npx", args: ["-y", "@modelcontextprotocol/server-everything"] },
 *     remote: { url: "http://127.0.0.1:3001/mcp" },
 *   },
 * }, "inline");
 * assert.deepEqual(config.servers.everything, {
 *   transport: "stdio",
 *   command: "npx",
 *   args: ["-y", "@modelcontextprotocol/server-everything"],
 *   env: {},
 * });
 * assert.deepEqual(config.servers.remote, {
 *   transport: "http",
 *   url: "http://127.0.0.1:3001/mcp",
 *   headers: {},
 * });
 * assert.deepEqual(config.warnings, []);
 * ```
 */
export function parseMcpConfig(document: unknown, source: string, baseDir?: string): McpConfig {
  const issues: McpConfigIssue[] = [];
  const warnings: string[] = [];
  const servers: Record<string, McpServerSpec> = {};
  if (!isObject(document)) {
    throw new McpConfigError(source, [{ path: "(root)", message: "must be a JSON object" }]);
  }
  const entries = document.mcpServers;
  if (!isObject(entries)) {
    throw new McpConfigError(source, [{
      path: "mcpServers",
      message: entries === undefined
        ? 'is missing: the file must look like { "mcpServers": { "<name>": { "command": … } } }'
        : "must be an object of servers by name",
    }]);
  }
  for (const [name, entry] of Object.entries(entries)) {
    const path = formatPath(["mcpServers", name]);
    if (!MCP_SERVER_NAME.test(name)) {
      issues.push({
        path,
        message: "a server name may only have letters, digits, _, - and . (at most 64)",
      });
      continue;
    }
    if (RESERVED_SERVER_NAMES.includes(name)) {
      issues.push({ path, message: `"${name}" is reserved for the built-in tools` });
      continue;
    }
    if (!isObject(entry)) {
      issues.push({ path, message: "must be an object" });
      continue;
    }
    if (entry.type === "sse") {
      issues.push({
        path: `${path}.type`,
        message:
          'the legacy SSE transport is not supported: use a Streamable HTTP url ("type": "http")',
      });
      continue;
    }
    const hasCommand = "command" in entry;
    const hasUrl = "url" in entry;
    if (hasCommand === hasUrl) {
      issues.push({
        path,
        message: hasCommand
          ? 'has both "command" and "url": give "command" for a stdio server, or "url" for Streamable HTTP'
          : 'needs "command" (a stdio server) or "url" (a Streamable HTTP server)',
      });
      continue;
    }
    const ignored = Object.keys(entry).filter((key) => !KNOWN_KEYS.has(key));
    if (ignored.length > 0) warnings.push(`${path}: ignoring ${ignored.join(", ")}`);
    if (hasCommand) {
      const stdio = enabledEntry(stdioSchema, entry, path, issues, warnings);
      if (stdio === undefined) continue;
      const spec: McpStdioServerSpec = {
        transport: "stdio",
        command: stdio.command,
        args: stdio.args ?? [],
        env: stdio.env ?? {},
      };
      if (stdio.cwd !== undefined) spec.cwd = resolvePath(stdio.cwd, baseDir);
      servers[name] = spec;
    } else {
      const http = enabledEntry(httpSchema, entry, path, issues, warnings);
      if (http === undefined) continue;
      servers[name] = { transport: "http", url: http.url, headers: http.headers ?? {} };
    }
  }
  if (issues.length > 0) throw new McpConfigError(source, issues);
  return { servers, warnings };
}

/**
 * Reads and checks a configuration file (needs read permission for it).
 * Relative `cwd`s are resolved against the file's folder.
 *
 * @throws {McpConfigError} for a file that cannot be read, is not JSON, or is invalid
 */
export async function loadMcpConfig(path: string): Promise<McpConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw error;
    }
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : describeError(error);
    throw new McpConfigError(path, [{ path: "(root)", message: `cannot be read: ${reason}` }]);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new McpConfigError(path, [{
      path: "(root)",
      message: `is not valid JSON: ${describeError(error)}`,
    }]);
  }
  return parseMcpConfig(document, path, dirname(path));
}

/** The Deno permissions a configuration needs, besides those of the server itself. */
export interface McpPermissions {
  /** Files to read (the configuration file). */
  read: string[];
  /** Programs to run: the `command` of each stdio server. */
  run: string[];
  /** Environment variables to read: those the SDK passes on to stdio servers. */
  env: string[];
  /** Hosts (with port) of the Streamable HTTP servers. */
  net: string[];
}

/**
 * Works out the narrowest Deno permissions that run the bundled server with
 * this configuration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mcpPermissions, parseMcpConfig } from "./mcp-config.ts";
 * const config = parseMcpConfig({ mcpServers: { e: { command: "npx" } } }, "mcp.json");
 * const permissions = mcpPermissions(config, "mcp.json");
 * assert.deepEqual(permissions.read, ["mcp.json"]);
 * assert.deepEqual(permissions.run, ["npx"]);
 * assert.deepEqual(permissions.net, []);
 * ```
 */
export function mcpPermissions(config: McpConfig, configPath: string): McpPermissions {
  const run = new Set<string>();
  const net = new Set<string>();
  for (const spec of Object.values(config.servers)) {
    if (spec.transport === "stdio") run.add(spec.command);
    else net.add(new URL(spec.url).host);
  }
  return {
    read: [configPath],
    run: [...run],
    env: run.size > 0 ? [...INHERITED_ENV_VARS] : [],
    net: [...net],
  };
}

/**
 * The `deno run` command line that starts the bundled server with exactly
 * the permissions `permissions` adds to the ones it always needs:
 * `--allow-net` (listening, and reaching HTTP servers), `--allow-env` for
 * `DAGSTREAM_*` and the inherited variables, `--ignore-env` (the SDK's
 * dependencies probe a few other variables when loaded: they read as unset),
 * `--allow-read` of the file and `--allow-run` of the commands.
 */
export function denoServeCommand(permissions: McpPermissions, serverArgs: string[]): string {
  const flags = [
    "--unstable-no-legacy-abort",
    "--allow-net",
    `--allow-env=${["DAGSTREAM_*", ...permissions.env].join(",")}`,
    "--ignore-env",
    `--allow-read=${permissions.read.join(",")}`,
  ];
  if (permissions.run.length > 0) flags.push(`--allow-run=${permissions.run.join(",")}`);
  return ["deno", "run", ...flags, "src/server/main.ts", ...serverArgs].map(shellQuote).join(" ");
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * A server entry parsed with `schema`, or undefined when it is invalid (its
 * problems go to `issues`) or disabled (said in `warnings`).
 */
function enabledEntry<T extends { disabled?: boolean }>(
  schema: z.ZodType<T>,
  entry: Record<string, unknown>,
  path: string,
  issues: McpConfigIssue[],
  warnings: string[],
): T | undefined {
  const parsed = schema.safeParse(entry);
  if (!parsed.success) {
    for (const issue of zodIssues(parsed.error, path)) issues.push(issue);
    return undefined;
  }
  if (parsed.data.disabled) {
    warnings.push(`${path}: disabled`);
    return undefined;
  }
  return parsed.data;
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

function resolvePath(path: string, baseDir: string | undefined): string {
  if (path.startsWith("/") || baseDir === undefined) return path;
  return `${baseDir.replace(/\/+$/, "")}/${path}`;
}
