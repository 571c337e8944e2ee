/**
 * Takes the screenshots of the run page in `docs/` (`run-page-light.png`,
 * `run-page-dark.png`: the diamond example, finished, its `join` task
 * selected) with the system's Chromium, against a fresh server:
 *
 *   deno run -A scripts/page_screenshots.ts [out dir] [--extra]
 *
 * `--extra` also shoots the other examples and two 200-task DAGs (a
 * random one and a staged pipeline) into the out dir, to judge the layout.
 *
 * @module
 */

import { randomDag } from "../bench/random_dag.ts";

const ROOT = new URL("../", import.meta.url);
const outDir = Deno.args.find((a) => !a.startsWith("--")) ?? new URL("docs", ROOT).pathname;
const extra = Deno.args.includes("--extra");

const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-net", "--allow-env=DAGSTREAM_*", "src/server/main.ts", "--port", "0"],
  cwd: ROOT.pathname,
  stdout: "piped",
  stderr: "null",
}).spawn();
const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
let seen = "";
let base: string | undefined;
while (base === undefined) {
  const { value, done } = await reader.read();
  if (done) throw new Error("the server exited before listening");
  seen += value;
  base = /Listening on (http:\/\/\S+\/)/.exec(seen)?.[1];
}

const dags: Record<string, unknown> = {};
if (extra) {
  for (const name of ["fan-out-fan-in", "failing-branch"]) {
    dags[name] = JSON.parse(await Deno.readTextFile(new URL(`examples/${name}.json`, ROOT)));
  }
  const random = randomDag(200, 7, 2, "mock:delay");
  for (const task of random.tasks) task.arguments = { ms: 10 };
  dags["random-200"] = random;
  // Ten stages of twenty tasks, each reading one or two tasks of the stage before.
  const tasks = [];
  for (let stage = 0; stage < 10; stage++) {
    for (let k = 0; k < 20; k++) {
      const before = stage === 0 ? [] : [`s${stage - 1}_${k}`, `s${stage - 1}_${(k * 7 + 3) % 20}`];
      tasks.push({
        id: `s${stage}_${k}`,
        tool: "mock:delay",
        arguments: { ms: 10 },
        dependsOn: [...new Set(before)].slice(0, 1 + (k % 2)),
      });
    }
  }
  dags["pipeline-200"] = { tasks };
}

try {
  const driver = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "tests/integration/_page_driver.ts",
      "screenshots",
      JSON.stringify({ base, api: base, keyPrefix: "shots", outDir }),
    ],
    cwd: ROOT.pathname,
    env: { EXTRA_DAGS: JSON.stringify(dags) },
  }).output();
  const out = new TextDecoder().decode(driver.stdout);
  const report = JSON.parse(out.slice(out.indexOf("PAGE_REPORT ") + 12));
  if (report.error) throw new Error(report.error);
  console.log(`screenshots in ${outDir}`);
} finally {
  server.kill("SIGTERM");
  await server.status;
  await reader.cancel();
}
