/**
 * The page the server serves (`src/page/assets.json`) is the bundle of the
 * page's current sources: a change to `src/page/` or to a module the page
 * imports fails here until `deno task build:page` is run again.
 */

import assert from "node:assert/strict";
import assets from "../../../src/page/assets.json" with { type: "json" };
import { pageSources } from "../../../scripts/page_sources.ts";

Deno.test("the page's bundle is built from its current sources (deno task build:page)", async () => {
  assert.deepEqual(
    await pageSources(),
    assets.sources,
    "src/page/assets.json is older than its sources: run `deno task build:page`",
  );
});

Deno.test("the page's assets are small and fetch nothing from elsewhere", () => {
  const all = assets.assets as Record<string, { body: string; type: string; hash: string }>;
  assert.deepEqual(Object.keys(all).sort(), ["app.css", "app.js", "icon.svg", "index.html"]);
  for (const [name, asset] of Object.entries(all)) {
    // The only absolute URLs are XML namespaces, never something to load.
    const urls = asset.body.match(/https?:\/\/[^\s"'`)]+/g) ?? [];
    assert.deepEqual(urls.filter((url) => !url.startsWith("http://www.w3.org/")), [], name);
  }
  assert.ok(all["app.js"].body.length < 64 * 1024, "app.js stays under 64 KiB before compression");
});
