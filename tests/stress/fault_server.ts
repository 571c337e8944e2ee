/**
 * A test-only server: the bundled server's flags and shutdown, with the
 * faulty tools of `tests/faults/_faulty_tools.ts` (`bad:*`) added to the
 * built-in ones. Never part of the product; the stress scripts start it
 * through `startServer(flags, env, { entry })`.
 *
 * ```sh
 * deno run --unstable-no-legacy-abort --allow-net --allow-env=DAGSTREAM_* \
 *   tests/stress/fault_server.ts --port 0
 * ```
 *
 * Tools that ignore their signal finish by themselves 2 s after they
 * started, so no work lingers long after a run.
 *
 * @module
 */

import { createApp } from "../../src/server/app.ts";
import { parseCommandLine } from "../../src/server/flags.ts";
import { createToolRegistry } from "../../src/tools/registry.ts";
import { builtinTools } from "../../src/tools/builtin.ts";
import { faultyTools, LateWork } from "../faults/_faulty_tools.ts";

const commandLine = parseCommandLine(Deno.args, (name) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
});
const app = createApp({
  ...commandLine.config,
  tools: createToolRegistry({ ...builtinTools, ...faultyTools(new LateWork(), 2000) }),
});
let stopping = false;
const stop = async (signal: Deno.Signal) => {
  if (stopping) return;
  stopping = true;
  console.error(JSON.stringify({ time: new Date().toISOString(), msg: "shutdown", signal }));
  const deadline = setTimeout(() => Deno.exit(0), 5000);
  await app.shutdown();
  await server.shutdown();
  clearTimeout(deadline);
  Deno.exit(0);
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => void stop(signal));
}
const server = Deno.serve({
  hostname: commandLine.host,
  port: commandLine.port,
  onListen({ hostname, port }) {
    console.log(`Listening on http://${hostname}:${port}/`);
  },
}, (request) => app.handle(request));
await server.finished;
