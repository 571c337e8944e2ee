/**
 * The `mcpServers` configuration: both transports, errors that name their
 * path, ignored fields, and the Deno permissions a configuration needs.
 */

import assert from "node:assert/strict";
import { DEFAULT_INHERITED_ENV_VARS } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  denoServeCommand,
  INHERITED_ENV_VARS,
  loadMcpConfig,
  McpConfigError,
  mcpPermissions,
  parseMcpConfig,
} from "../../../src/tools/mcp-config.ts";

function issues(document: unknown): string[] {
  try {
    parseMcpConfig(document, "mcp.json");
  } catch (error) {
    assert.ok(error instanceof McpConfigError);
    assert.match(error.message, /^invalid MCP config mcp\.json:\n/);
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail("expected an McpConfigError");
}

Deno.test("mcp config: stdio and Streamable HTTP servers, as MCP clients write them", () => {
  const config = parseMcpConfig(
    {
      mcpServers: {
        fs: {
          command: "npx",
          args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
          env: { DEBUG: "1" },
          cwd: "servers",
        },
        remote: { url: "http://127.0.0.1:3001/mcp", headers: { Authorization: "Bearer x" } },
        typed: { type: "http", url: "https://example.com/mcp" },
        off: { command: "nope", disabled: true },
        extra: { command: "node", args: ["s.js"], autoApprove: ["x"], alwaysAllow: [] },
      },
      globalShortcut: "Ctrl+Space",
    },
    "mcp.json",
    "/etc/dagstream",
  );
  assert.deepEqual(config.servers.fs, {
    transport: "stdio",
    command: "npx",
    args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
    env: { DEBUG: "1" },
    cwd: "/etc/dagstream/servers",
  });
  assert.deepEqual(config.servers.remote, {
    transport: "http",
    url: "http://127.0.0.1:3001/mcp",
    headers: { Authorization: "Bearer x" },
  });
  assert.equal(config.servers.typed.transport, "http");
  assert.ok(!("off" in config.servers));
  assert.deepEqual(config.warnings, [
    "mcpServers.off: disabled",
    "mcpServers.extra: ignoring autoApprove, alwaysAllow",
  ]);
});

Deno.test("mcp config: every problem is reported with its path", () => {
  assert.deepEqual(issues([]), ["(root): must be a JSON object"]);
  assert.match(issues({ servers: {} })[0], /^mcpServers: is missing/);
  assert.deepEqual(
    issues({
      mcpServers: {
        "a:b": { command: "x" },
        mock: { command: "x" },
        empty: { command: "" },
        args: { command: "x", args: ["ok", 3] },
        env: { command: "x", env: { A: 1 } },
        both: { command: "x", url: "http://h/" },
        neither: { args: [] },
        ftp: { url: "ftp://h/" },
        sse: { type: "sse", url: "http://h/sse" },
        wrongType: { type: "http", command: "x" },
        notObject: "npx server",
      },
    }),
    [
      'mcpServers["a:b"]: a server name may only have letters, digits, _, - and . (at most 64)',
      'mcpServers.mock: "mock" is reserved for the built-in tools',
      "mcpServers.empty.command: must not be empty",
      "mcpServers.args.args[1]: must be a string",
      "mcpServers.env.env.A: must be a string",
      'mcpServers.both: has both "command" and "url": give "command" for a stdio server, or "url" for Streamable HTTP',
      'mcpServers.neither: needs "command" (a stdio server) or "url" (a Streamable HTTP server)',
      "mcpServers.ftp.url: must be an http:// or https:// URL",
      'mcpServers.sse.type: the legacy SSE transport is not supported: use a Streamable HTTP url ("type": "http")',
      'mcpServers.wrongType.type: must be "stdio" for a server with a command',
      "mcpServers.notObject: must be an object",
    ],
  );
});

Deno.test("mcp config: a file that is missing or not JSON says so, naming the file", async () => {
  await assert.rejects(loadMcpConfig("/nonexistent/mcp.json"), (e: Error) => {
    assert.ok(e instanceof McpConfigError);
    assert.equal(
      e.message,
      "invalid MCP config /nonexistent/mcp.json:\n  (root): cannot be read: no such file",
    );
    return true;
  });
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, "{ not json");
    await assert.rejects(loadMcpConfig(path), /\(root\): is not valid JSON/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mcp config: the permissions it needs, and the narrowest command", () => {
  const config = parseMcpConfig({
    mcpServers: {
      a: { command: "npx", args: [] },
      b: { command: "npx" },
      c: { command: "/usr/bin/python3" },
      r: { url: "http://127.0.0.1:3001/mcp" },
    },
  }, "mcp.json");
  const permissions = mcpPermissions(config, "mcp.json");
  assert.deepEqual(permissions, {
    read: ["mcp.json"],
    run: ["npx", "/usr/bin/python3"],
    env: ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"],
    net: ["127.0.0.1:3001"],
  });
  assert.equal(
    denoServeCommand(permissions, ["--mcp-config", "mcp.json"]),
    "deno run --unstable-no-legacy-abort --allow-net '--allow-env=DAGSTREAM_*,HOME,LOGNAME,PATH,SHELL,TERM,USER' " +
      "--ignore-env --allow-read=mcp.json --allow-run=npx,/usr/bin/python3 src/server/main.ts --mcp-config mcp.json",
  );
  const httpOnly = mcpPermissions(
    parseMcpConfig({ mcpServers: { r: { url: "http://h:1/" } } }, "m.json"),
    "m.json",
  );
  assert.deepEqual(httpOnly.run, []);
  assert.deepEqual(httpOnly.env, []);
});

Deno.test("mcp config: the inherited variables are those the SDK passes on", () => {
  assert.deepEqual([...INHERITED_ENV_VARS], DEFAULT_INHERITED_ENV_VARS);
});
