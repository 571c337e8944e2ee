/**
 * A real redis-server (Debian's package) for one test: on 127.0.0.1 and a
 * free port, without persistence, stopped by the test. Tests that need it
 * are skipped where redis-server is not installed (`.ci/run` installs it).
 */

/** Where Debian puts redis-server, if it is installed. */
const REDIS_SERVER = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/** Whether these tests can run here. */
export const HAS_REDIS: boolean = REDIS_SERVER !== undefined;

/** A redis-server process of a test. */
export interface RedisProcess extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stops it (its data is gone: there is no persistence). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** A port nothing listens on right now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts a redis-server and resolves once it accepts connections. */
export async function startRedis(): Promise<RedisProcess> {
  if (REDIS_SERVER === undefined) throw new Error("redis-server is not installed");
  const port = freePort();
  let child: Deno.ChildProcess | undefined;
  let output: Promise<string> | undefined;

  const start = async () => {
    child = new Deno.Command(REDIS_SERVER, {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("Ready to accept connections")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`redis-server exited before it was ready:\n${text}`);
      text += value;
    }
    // Keep draining its output so that it never blocks on a full pipe.
    output = (async () => {
      for (;;) {
        const { done } = await reader.read();
        if (done) return text;
      }
    })();
  };

  const stop = async () => {
    if (child === undefined) return;
    const running = child;
    child = undefined;
    try {
      running.kill("SIGTERM");
    } catch {
      // already gone
    }
    await running.status;
    await output;
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Resolves once `check` holds, asking again every 100 ms: for state another
 * process reaches in the background (a Redis connection, a copy written to
 * Redis). Fails, saying what it waited for, after 30 s.
 */
export async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const giveUp = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > giveUp) throw new Error(`still not so after 30 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until a server's /health says its shared store is up (it connects in the background). */
export function untilStoreUp(server: { at(path: string): string }): Promise<void> {
  return eventually(async () => {
    const response = await fetch(server.at("/health"));
    return (await response.json()).store?.status === "up";
  }, "the store is up");
}
