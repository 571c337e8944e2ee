/**
 * The command line reads the same defaults the server uses: `--help` shows
 * each flag's default from `SERVER_DEFAULTS` (and the listen defaults), and
 * a flag left unset leaves the setting to `createApp`'s defaults. Flags win
 * over the environment; values out of range and malformed list entries are
 * usage errors.
 */

import assert from "node:assert/strict";
import { HELP, LISTEN_DEFAULTS, parseCommandLine, UsageError } from "../../../src/server/flags.ts";
import {
  defaultRunLogBytes,
  resolveServerConfig,
  SERVER_DEFAULTS,
} from "../../../src/server/config.ts";
import { MAX_TIMER_MS } from "../../../src/dag/defaults.ts";

const noEnv = () => undefined;

/** The `[default]` the help text shows for `--flag`. */
function shownDefault(flag: string): string | undefined {
  const line = HELP.split("\n").find((l) => l.trimStart().startsWith(`${flag} `));
  assert.ok(line !== undefined, `--help lists ${flag}`);
  return /\[([^\]]*)\]$/.exec(line)?.[1];
}

Deno.test("--help: every default shown is the one in force", () => {
  const settings: Record<string, keyof typeof SERVER_DEFAULTS> = {
    "--task-timeout": "taskTimeout",
    "--scheduling": "scheduling",
    "--max-tasks": "maxTasks",
    "--max-body-bytes": "maxBodyBytes",
    "--max-log-bytes-total": "maxLogBytesTotal",
    "--max-watchers": "maxWatchers",
    "--max-active-runs": "maxActiveRuns",
    "--max-runs": "maxRuns",
    "--run-ttl-seconds": "runTtlSeconds",
    "--heartbeat-ms": "heartbeatMs",
    "--retry-ms": "retryMs",
    "--max-event-payload-bytes": "maxEventPayloadBytes",
    "--max-run-output-bytes": "maxRunOutputBytes",
    "--max-kept-run-bytes": "maxKeptRunBytes",
  };
  const resolved = resolveServerConfig({});
  for (const [flag, setting] of Object.entries(settings)) {
    assert.equal(shownDefault(flag), String(SERVER_DEFAULTS[setting]), flag);
    assert.equal(resolved[setting], SERVER_DEFAULTS[setting], setting);
  }
  const runLog = defaultRunLogBytes(SERVER_DEFAULTS.maxTasks, SERVER_DEFAULTS.maxEventPayloadBytes);
  assert.equal(shownDefault("--max-run-log-bytes"), `a whole run: ${runLog} at the defaults`);
  assert.equal(resolved.maxRunLogBytes, runLog);
  assert.equal(shownDefault("--host"), LISTEN_DEFAULTS.host);
  assert.equal(shownDefault("--port"), String(LISTEN_DEFAULTS.port));
  assert.equal(shownDefault("--max-concurrency"), "unbounded");
  assert.equal(resolved.maxConcurrency, undefined);
});

Deno.test("flags left unset leave every setting to the app's defaults", () => {
  const { host, port, config } = parseCommandLine([], noEnv);
  assert.deepEqual([host, port], [LISTEN_DEFAULTS.host, LISTEN_DEFAULTS.port]);
  const given = Object.entries(config).filter(([, value]) => value !== undefined);
  assert.deepEqual(given, [["loopbackOnly", true]]);
});

Deno.test("a flag wins over its variable; lists come from repeats or commas", () => {
  const env = (name: string) =>
    ({
      DAGSTREAM_TASK_TIMEOUT: "10",
      DAGSTREAM_MAX_RUNS: "7",
      DAGSTREAM_CORS_ORIGIN: "https://a.example, https://b.example",
      DAGSTREAM_ALLOWED_HOSTS: "Dag.Internal",
    } as Record<string, string>)[name];
  const { config } = parseCommandLine(["--task-timeout", "20", "--host", "0.0.0.0"], env);
  assert.equal(config.taskTimeout, 20);
  assert.equal(config.maxRuns, 7);
  assert.deepEqual(config.corsOrigin, ["https://a.example", "https://b.example"]);
  assert.deepEqual(config.allowedHosts, ["dag.internal"]);
  assert.equal(config.loopbackOnly, false);
  const repeated = parseCommandLine(
    ["--cors-origin", "https://c.example", "--cors-origin", "*"],
    env,
  );
  assert.deepEqual(repeated.config.corsOrigin, ["https://c.example", "*"]);
});

Deno.test("values out of range and malformed list entries are usage errors", () => {
  const refused = (args: string[], message: RegExp) =>
    assert.throws(() => parseCommandLine(args, noEnv), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, message);
      return true;
    });
  refused(["--task-timeout", "0"], new RegExp(`from 1 to ${MAX_TIMER_MS}, got "0"`));
  refused(["--heartbeat-ms", String(MAX_TIMER_MS + 1)], /--heartbeat-ms must be a whole number/);
  refused(["--port", "65536"], /--port must be a whole number from 0 to 65535/);
  refused(["--max-event-payload-bytes", "1000"], /from 1024 to/);
  refused(["--allowed-host", "evil.example:80"], /--allowed-host must be a host name/);
  refused(["--cors-origin", "https://app.example/path"], /--cors-origin must be \* or an origin/);
  refused(["--scheduling", "random"], /--scheduling must be "eager" or "layered"/);
  assert.throws(
    () => parseCommandLine(["--nope"], noEnv),
    (e: unknown) => e instanceof UsageError && e.pointAtHelp,
  );
});

Deno.test("--store: memory or a redis:// URL, from the flag or DAGSTREAM_STORE; --help shows memory", () => {
  assert.equal(shownDefault("--store"), SERVER_DEFAULTS.store);
  assert.equal(parseCommandLine([], noEnv).config.store, undefined);
  assert.equal(parseCommandLine(["--store", "memory"], noEnv).config.store, "memory");
  const url = "redis://user:pw@10.0.0.5:6380/2";
  assert.equal(parseCommandLine(["--store", url], noEnv).config.store, url);
  const fromEnv = (name: string) => name === "DAGSTREAM_STORE" ? "rediss://cache:6379" : undefined;
  assert.equal(parseCommandLine([], fromEnv).config.store, "rediss://cache:6379");
  for (const bad of ["redis://", "http://h:1", "redis://h:1/db0", "mem"]) {
    assert.throws(
      () => parseCommandLine(["--store", bad], noEnv),
      (e: unknown) => e instanceof UsageError && /--store must be/.test(e.message),
      bad,
    );
  }
  assert.throws(
    () => parseCommandLine(["--store", "redis:/x:secret@h"], noEnv),
    (e: unknown) => e instanceof UsageError && !e.message.includes("secret"),
  );
  assert.throws(() => resolveServerConfig({ store: "http://x" }), RangeError);
});
