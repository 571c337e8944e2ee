/**
 * Top self-time functions of V8 CPU profiles (`--cpu-prof`): a flat,
 * flame-graph-style summary that says where a benchmark's time goes.
 *
 * ```sh
 * deno run --allow-read bench/self_time.ts /tmp/prof/*.cpuprofile [--top 15]
 * ```
 *
 * Self time is summed per function (name + file + line) over every sample of
 * every profile given; `(idle)` and `(program)` are left out of the
 * percentages, `(garbage collector)` is kept.
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of the busy time. */
export interface SelfTimeRow {
  /** `name (file:line)`. */
  fn: string;
  /** Self time in milliseconds. */
  ms: number;
  /** Share of the busy (non-idle) time, 0–1. */
  share: number;
}

const IDLE = new Set(["(idle)", "(program)"]);

/** Sums self time per function over `profiles`, largest first. */
export function selfTime(profiles: readonly CpuProfile[]): { busyMs: number; rows: SelfTimeRow[] } {
  const byFn = new Map<string, number>();
  let busy = 0;
  for (const profile of profiles) {
    const nameOf = new Map<number, string>();
    for (const node of profile.nodes) {
      const { functionName, url, lineNumber } = node.callFrame;
      const file = url.replace(/^.*\/(src|bench|tests|node_modules)\//, "$1/").replace(
        /^file:\/\/.*\//,
        "",
      );
      const name = functionName || "(anonymous)";
      nameOf.set(node.id, url ? `${name} (${file}:${lineNumber + 1})` : name);
    }
    for (let k = 0; k < profile.samples.length; k++) {
      const fn = nameOf.get(profile.samples[k]) ?? "?";
      const us = profile.timeDeltas[k] ?? 0;
      if (IDLE.has(fn)) continue;
      busy += us;
      byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    }
  }
  const rows = [...byFn].map(([fn, us]) => ({ fn, ms: us / 1000, share: busy ? us / busy : 0 }))
    .sort((a, b) => b.ms - a.ms);
  return { busyMs: busy / 1000, rows };
}

/** A Markdown table of the top `top` rows. */
export function selfTimeTable(profiles: readonly CpuProfile[], top = 12): string {
  const { busyMs, rows } = selfTime(profiles);
  const lines = [
    `busy ${busyMs.toFixed(0)} ms (idle left out)`,
    "",
    "| function (file:line) | self ms | share |",
    "| --- | ---: | ---: |",
  ];
  for (const row of rows.slice(0, top)) {
    lines.push(`| ${row.fn} | ${row.ms.toFixed(1)} | ${(row.share * 100).toFixed(1)}% |`);
  }
  return lines.join("\n");
}

/** Reads every `.cpuprofile` file named (or found in a named directory). */
export async function readProfiles(paths: readonly string[]): Promise<CpuProfile[]> {
  const profiles: CpuProfile[] = [];
  for (const path of paths) {
    const info = await Deno.stat(path);
    const files = info.isDirectory
      ? [...Deno.readDirSync(path)].filter((e) => e.name.endsWith(".cpuprofile")).map((e) =>
        `${path}/${e.name}`
      )
      : [path];
    for (const file of files) profiles.push(JSON.parse(await Deno.readTextFile(file)));
  }
  return profiles;
}

if (import.meta.main) {
  const args = [...Deno.args];
  let top = 15;
  const at = args.indexOf("--top");
  if (at >= 0) {
    top = Number(args[at + 1]);
    args.splice(at, 2);
  }
  console.log(selfTimeTable(await readProfiles(args), top));
}
