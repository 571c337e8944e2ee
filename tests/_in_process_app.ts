/**
 * Serves a dagstream app in the test's own process on 127.0.0.1:0, and
 * collects the requests that failed inside it ("internal error" log
 * records). `await using` stops the app and the server.
 *
 * @module
 */

import { createApp, type DagstreamApp, type ServerConfig } from "../src/server/mod.ts";

/** A running in-process app. */
export interface InProcessApp extends AsyncDisposable {
  /** The app. */
  app: DagstreamApp;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** Log records of requests that failed inside the server. */
  internalErrors: Record<string, unknown>[];
}

/** Creates the app with `config` (its `log` is replaced) and serves it. */
export function serveApp(config: ServerConfig = {}): InProcessApp {
  const internalErrors: Record<string, unknown>[] = [];
  const app = createApp({
    ...config,
    log: (record) => {
      if (record.msg === "internal error") internalErrors.push(record);
    },
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => app.handle(request),
  );
  return {
    app,
    base: `http://127.0.0.1:${server.addr.port}`,
    internalErrors,
    async [Symbol.asyncDispose]() {
      await app.shutdown();
      await server.shutdown();
    },
  };
}
