/**
 * The files the run page's bundle is made from, with their SHA-256: what
 * `scripts/build_page.ts` records in `src/page/assets.json`, and what the
 * test that keeps that bundle fresh compares with.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);

/** The hex SHA-256 of `text`. */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Every source of the page (the script's local module graph, as `deno info`
 * reports it, and the HTML, style and icon), by path from the project root,
 * with its SHA-256.
 */
export async function pageSources(): Promise<Record<string, string>> {
  const { success, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "src/page/app.js"],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!success) throw new Error("deno info failed on src/page/app.js");
  const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string }[];
  };
  const paths = graph.modules
    .map((module) => module.specifier)
    .filter((specifier) => specifier.startsWith(ROOT.href))
    .map((specifier) => specifier.slice(ROOT.href.length));
  paths.push("src/page/index.html", "src/page/app.css", "src/page/icon.svg");
  paths.sort();
  const sources: Record<string, string> = {};
  for (const path of paths) {
    sources[path] = await sha256(await Deno.readTextFile(new URL(path, ROOT)));
  }
  return sources;
}
