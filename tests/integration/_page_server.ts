/**
 * Serves a browser test's page on an origin of its own: 127.0.0.1 with a port
 * of its own, so another origin than the dagstream server's and CORS is really
 * checked by the browser. Used by `browser_eventsource_test.ts` and
 * `browser_cross_site_test.ts`, which add their own same-origin routes for
 * the page to report to.
 *
 * @module
 */

/** A test page's server, as the test sees it. */
export interface PageServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`: the page's origin. */
  readonly origin: string;
  /** The page's URL (`<origin>/`). */
  readonly url: string;
  /** The page to serve at `/` (empty until the test sets it). */
  html: string;
}

/**
 * The test's own routes: given each request and its parsed URL before the
 * page server looks at it, a `Response` answers the request, `undefined`
 * leaves it to the page server.
 */
export type PageRoutes = (
  request: Request,
  url: URL,
) => Response | undefined | Promise<Response | undefined>;

/**
 * Serves {@linkcode PageServer.html} at `/` (no caching) on 127.0.0.1, port 0,
 * and answers 204 to any other path (the favicon: a 404 would show in the
 * page's console), after `routes`, if given, has declined the request.
 * Disposing shuts the server down.
 */
export function servePage(routes?: PageRoutes): PageServer {
  const state = { html: "" };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const own = await routes?.(request, url);
      if (own !== undefined) return own;
      if (url.pathname !== "/") return new Response(null, { status: 204 });
      return new Response(state.html, {
        headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" },
      });
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    origin,
    url: `${origin}/`,
    get html() {
      return state.html;
    },
    set html(value: string) {
      state.html = value;
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/**
 * A page that runs `script`, in strict mode, after one `const` per entry of
 * `constants`, declared with that name and its value as JSON (`<` escaped, so
 * that no value can end the script element). `title` is HTML as it is.
 */
export function scriptPage(
  title: string,
  constants: Record<string, unknown>,
  script: string,
): string {
  const declarations = Object.entries(constants).map(([name, value]) =>
    `const ${name} = ${JSON.stringify(value).replaceAll("<", "\\u003c")};\n`
  ).join("");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title></head>
<body><script>
"use strict";
${declarations}${script}
</script></body></html>
`;
}
