/**
 * `deno task run <dag.json>`, the real command in a child process, with
 * the permissions its deno.json task grants (read from deno.json, so the
 * test and the task cannot disagree): on a pipe, plain lines and exit
 * statuses; against a real server, with and without a token; Ctrl-C, in
 * process and on a server; and on a pseudo-terminal (util-linux `script`),
 * escape codes, none at all with NO_COLOR.
 *
 * Nothing here waits on a clock: a Ctrl-C is sent once the command has
 * printed that the task it interrupts is blocked (a fixture MCP tool that
 * waits until released, which nothing does).
 */

// These regular expressions are meant to match escape codes.
// deno-lint-ignore-file no-control-regex

import assert from "node:assert/strict";
import { fixtureStdioEntry } from "../fixtures/mcp_fixture.ts";
import { startGatedServer, startServer } from "./_server.ts";

const ROOT = new URL("../../", import.meta.url);
const ENTRY = "src/client/run-command.ts";

/** The `deno run` flags of a deno.json task that runs the command. */
function taskFlags(task: "run" | "run:mcp"): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const words = String(config.tasks[task]).split(/\s+/);
  assert.deepEqual(words.slice(0, 2), ["deno", "run"], config.tasks[task]);
  assert.equal(words[words.length - 1], ENTRY, config.tasks[task]);
  return words.slice(2, -1);
}

/** The test runner's environment without what would change the command's behaviour. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of Object.keys(env)) {
    if (name.startsWith("DAGSTREAM_") || name === "NO_COLOR") delete env[name];
  }
  return { ...env, ...extra };
}

/** The command's arguments for `deno` (`Deno.execPath()`), as the task runs it. */
function commandArgs(args: string[], task: "run" | "run:mcp" = "run"): string[] {
  return ["run", ...taskFlags(task), ENTRY, ...args];
}

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the command to its end on pipes. */
async function runCommand(
  args: string[],
  env: Record<string, string> = {},
  task: "run" | "run:mcp" = "run",
): Promise<Finished> {
  return await finish(
    new Deno.Command(Deno.execPath(), {
      args: commandArgs(args, task),
      cwd: ROOT.pathname,
      stdin: "null",
      clearEnv: true,
      env: cleanEnv(env),
    }),
  );
}

/** Runs `command` to its end and decodes what it printed. */
async function finish(command: Deno.Command): Promise<Finished> {
  const output = await command.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * Starts the command on pipes; `untilStdout` resolves once what it printed
 * so far holds `text` (rejects if stdout ends first); `finished` resolves
 * with the status and everything printed, both pipes read to their end.
 */
function spawnCommand(args: string[], task: "run" | "run:mcp" = "run") {
  const child = new Deno.Command(Deno.execPath(), {
    args: commandArgs(args, task),
    cwd: ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: cleanEnv(),
  }).spawn();
  let stdout = "";
  const waiters = new Set<{ text: string; resolve: () => void }>();
  const stdoutDone = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      stdout += chunk;
      for (const waiter of waiters) {
        if (stdout.includes(waiter.text)) {
          waiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
  })();
  const stderrDone = new Response(child.stderr).text();
  const finished = (async (): Promise<Finished> => {
    const [status, , stderr] = await Promise.all([child.status, stdoutDone, stderrDone]);
    return { code: status.code, stdout, stderr };
  })();
  return {
    untilStdout(text: string): Promise<void> {
      if (stdout.includes(text)) return Promise.resolve();
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      waiters.add({ text, resolve });
      // Stdout ended without it: the command's output says why.
      finished.then((end) =>
        reject(new Error(`stdout ended without "${text}":\n${end.stdout}\n${end.stderr}`))
      );
      return promise;
    },
    kill(signal: Deno.Signal) {
      child.kill(signal);
    },
    finished,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await finished;
    },
  };
}

/** A free port on 127.0.0.1 that nothing listens on (its listener is closed). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Writes an MCP configuration with the fixture MCP server as `gate`; removed when disposed. */
async function gateConfig(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempFile({ prefix: "dagstream-run-mcp-", suffix: ".json" });
  await Deno.writeTextFile(path, JSON.stringify({ mcpServers: { gate: fixtureStdioEntry() } }));
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

/** Writes `dag` to a temporary JSON file; removed when disposed. */
async function dagFile(dag: unknown): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempFile({ prefix: "dagstream-run-", suffix: ".json" });
  await Deno.writeTextFile(path, typeof dag === "string" ? dag : JSON.stringify(dag));
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

const ESC = "\x1b";

/** The lines of `text` for task `id` (its id is the third word). */
function linesOf(text: string, id: string): string[] {
  return text.split("\n").filter((line) => line.split(/\s+/)[2] === id);
}

function assertDiamondSucceeded(result: Finished) {
  assert.equal(result.code, 0, result.stderr);
  for (const id of ["fetch", "left", "right", "join"]) {
    assert.ok(
      linesOf(result.stdout, id).some((line) => line.startsWith("✓ success")),
      `${id} succeeded:\n${result.stdout}`,
    );
  }
  const lines = result.stdout.trimEnd().split("\n");
  assert.match(lines[lines.length - 1], /^succeeded: 4 tasks \(4 success\) in \d/);
  assert.ok(!result.stdout.includes(ESC), "no escape code on a pipe");
  assert.equal(result.stderr, "");
}

Deno.test("run, pipe: examples/diamond.json succeeds, a line per start and end, then the summary", async () => {
  const result = await runCommand(["examples/diamond.json"]);
  assertDiamondSucceeded(result);
  for (const id of ["fetch", "left", "right", "join"]) {
    assert.match(linesOf(result.stdout, id)[0], /^▶ running/, `${id} starts first`);
  }
  assert.match(
    linesOf(result.stdout, "join")[1],
    /→ \{"left":"left","right":\{"waitedMs":300\}\}$/,
  );
});

Deno.test("run, pipe: examples/failing-branch.json exits 1, with the error and the skipped task", async () => {
  const result = await runCommand(["examples/failing-branch.json"]);
  assert.equal(result.code, 1, result.stderr);
  assert.ok(!result.stdout.includes(ESC));
  assert.ok(
    linesOf(result.stdout, "broken").some((line) =>
      /^✗ error .* upstream API returned 500$/.test(line)
    ),
    result.stdout,
  );
  assert.ok(
    linesOf(result.stdout, "after_broken").some((line) =>
      /^↷ skipped .* Dependency broken failed$/.test(line)
    ),
    result.stdout,
  );
  assert.match(
    result.stdout,
    /\nfailed: 4 tasks \(2 success, 1 error, 1 skipped\) in \d[^\n]*\n$/,
  );
});

Deno.test("run: an invalid DAG file exits 2 with each problem's path; so do files that cannot be used", async () => {
  await using dag = await dagFile({
    tasks: [{ id: "a", tool: "mock:nope" }, { id: "b", tool: "mock:echo", dependsOn: ["zz"] }],
  });
  const invalid = await runCommand([dag.path]);
  assert.equal(invalid.code, 2);
  assert.equal(invalid.stdout, "");
  const lines = invalid.stderr.trimEnd().split("\n");
  assert.equal(lines[0], `error: ${dag.path}: the DAG is invalid (2 problems)`);
  assert.ok(
    lines.some((line) => line.trim().startsWith("tasks[0].tool: unknown tool")),
    invalid.stderr,
  );
  assert.ok(lines.some((line) => line.trim() === 'tasks[1].dependsOn[0]: unknown task "zz"'));

  await using notJson = await dagFile("{ tasks: ");
  const unparsable = await runCommand([notJson.path]);
  assert.equal(unparsable.code, 2);
  assert.match(unparsable.stderr, new RegExp(`^error: ${notJson.path} is not valid JSON: .*\\n$`));

  const missing = await runCommand(["no/such/dag.json"]);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, "error: cannot read no/such/dag.json: no such file\n");
});

Deno.test("run: usage errors exit 2; --help prints the usage", async () => {
  const unknown = await runCommand(["--nope", "examples/diamond.json"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, "error: unknown flag --nope (run with --help to see the flags)\n");
  const none = await runCommand([]);
  assert.equal(none.code, 2);
  const help = await runCommand(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task run /);
});

Deno.test("run --server: a server that cannot be reached is one line, exit 2", async () => {
  const port = closedPort();
  const result = await runCommand([
    "--server",
    `http://127.0.0.1:${port}`,
    "examples/diamond.json",
  ]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.equal(
    result.stderr,
    `error: cannot reach http://127.0.0.1:${port}/ (connection refused)\n`,
  );
});

Deno.test("run --server: the run executes on the server and reads as in process", async () => {
  await using server = await startServer();
  assertDiamondSucceeded(await runCommand(["--server", server.url, "examples/diamond.json"]));
  await using dag = await dagFile({ tasks: [{ id: "a", tool: "mock:nope" }] });
  const invalid = await runCommand(["--server", server.url, dag.path]);
  assert.equal(invalid.code, 2);
  assert.equal(
    invalid.stderr,
    "error: the server refused the run (422): the DAG is invalid (1 problem)\n" +
      '  tasks[0].tool: unknown tool "mock:nope": the mock:* tools are mock:delay, mock:echo, mock:fail, mock:flaky\n',
  );
});

Deno.test("run --server: with the server's token, from --token or DAGSTREAM_TOKEN", async () => {
  await using server = await startServer(["--token", "s3cret"]);
  const args = ["--server", server.url, "examples/diamond.json"];
  assertDiamondSucceeded(await runCommand(["--token", "s3cret", ...args]));
  assertDiamondSucceeded(await runCommand(args, { DAGSTREAM_TOKEN: "s3cret" }));
  const refused = await runCommand(args);
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /^error: the server refused the run \(401\): .*DAGSTREAM_TOKEN\)\n$/,
  );
});

/** A DAG whose task `hold` blocks (the fixture's gate:wait) until released, and one after it. */
const HOLD = {
  tasks: [
    { id: "hold", tool: "gate:wait", arguments: { key: "never" } },
    { id: "after", tool: "mock:echo", dependsOn: ["hold"] },
  ],
};

Deno.test("run:mcp, Ctrl-C: the run is cancelled, its final state printed, exit 130", async () => {
  await using config = await gateConfig();
  await using dag = await dagFile(HOLD);
  await using command = spawnCommand(["--mcp-config", config.path, dag.path], "run:mcp");
  // The tool reports progress once it is blocked: a progress line on the pipe.
  await command.untilStdout("waiting for never");
  command.kill("SIGINT");
  const result = await command.finished;
  assert.equal(result.code, 130, result.stderr);
  assert.match(linesOf(result.stdout, "hold").at(-2)!, /\[----------\] 0% waiting for never$/);
  assert.match(linesOf(result.stdout, "hold").at(-1)!, /^⊘ cancelled .* aborted: interrupted$/);
  assert.match(linesOf(result.stdout, "after").at(-1)!, /^⊘ cancelled .* aborted: interrupted$/);
  assert.match(result.stdout, /\ninterrupted: 2 tasks \(2 cancelled\) in \d[^\n]*\n$/);
  assert.equal(result.stderr, "");
});

Deno.test("run --server, Ctrl-C: DELETE /runs/<id> cancels the run on the server, exit 130", async () => {
  await using gated = await startGatedServer();
  const { server } = gated;
  await using dag = await dagFile(HOLD);
  await using command = spawnCommand(["--server", server.url, dag.path]);
  await command.untilStdout("waiting for never");
  command.kill("SIGINT");
  const result = await command.finished;
  assert.equal(result.code, 130, result.stderr);
  assert.match(linesOf(result.stdout, "hold").at(-1)!, /^⊘ cancelled /);
  assert.match(result.stdout, /\ninterrupted: 2 tasks \(2 cancelled\)/);
  const { runs } = await (await fetch(server.at("/runs"))).json();
  assert.deepEqual(runs.map((run: { status: string }) => run.status), ["cancelled"]);
});

/** The shell words of a command, quoted for `script -c`. */
function shellCommand(words: string[]): string {
  return words.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
}

/** Runs the command on a pseudo-terminal (util-linux `script`); undefined when `script` is absent. */
async function runOnTerminal(
  args: string[],
  env: Record<string, string> = {},
): Promise<Finished | undefined> {
  try {
    await Deno.stat("/usr/bin/script");
  } catch {
    return undefined;
  }
  const command = shellCommand([Deno.execPath(), ...commandArgs(args)]);
  return await finish(
    new Deno.Command("/usr/bin/script", {
      args: ["-qfec", command, "/dev/null"],
      cwd: ROOT.pathname,
      stdin: "null",
      clearEnv: true,
      env: cleanEnv(env),
    }),
  );
}

Deno.test("run, terminal: the block is redrawn in place (cursor up, clear line), in colour", async () => {
  const result = await runOnTerminal(["examples/diamond.json"]);
  if (result === undefined) {
    console.warn("skipped: /usr/bin/script (util-linux) is not installed");
    return;
  }
  assert.equal(result.code, 0, result.stdout);
  assert.match(result.stdout, /\x1b\[\d+A\r/, "cursor up to the block's first line");
  assert.ok(result.stdout.includes("\x1b[2K"), "clear line");
  assert.ok(result.stdout.includes("\x1b[32m✓ success"), "success in green");
  assert.match(result.stdout, /\x1b\[32msucceeded:\x1b\[0m 4 tasks \(4 success\)/);
});

Deno.test("run, terminal with NO_COLOR: not one escape byte", async () => {
  const result = await runOnTerminal(["examples/failing-branch.json"], { NO_COLOR: "1" });
  if (result === undefined) {
    console.warn("skipped: /usr/bin/script (util-linux) is not installed");
    return;
  }
  assert.equal(result.code, 1, result.stdout);
  assert.ok(!result.stdout.includes(ESC), JSON.stringify(result.stdout));
  assert.match(result.stdout, /failed: 4 tasks \(2 success, 1 error, 1 skipped\)/);
});

Deno.test("run --allow-http: http:request in this process, only to the hosts given", async () => {
  const seen: string[] = [];
  await using api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    seen.push(new URL(request.url).pathname);
    return Response.json({ ok: true });
  });
  const host = `127.0.0.1:${api.addr.port}`;
  await using file = await dagFile({
    tasks: [{ id: "get", tool: "http:request", arguments: { url: `http://${host}/ping` } }],
  });
  const allowed = await runCommand(["--allow-http", host, file.path]);
  assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
  assert.match(linesOf(allowed.stdout, "get").at(-1)!, /success .*\{"status":200/);
  assert.deepEqual(seen, ["/ping"]);

  // Without --allow-http there is no such tool: the DAG is refused before anything runs.
  const off = await runCommand([file.path]);
  assert.equal(off.code, 2);
  assert.match(off.stderr, /tasks\[0\]\.tool: unknown tool "http:request": the HTTP tool is off/);
  const bad = await runCommand(["--allow-http", "http://x/", file.path]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--allow-http takes HOST or HOST:PORT/);
  assert.deepEqual(seen, ["/ping"]);
});
