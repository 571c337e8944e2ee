/**
 * The metrics' text (Prometheus text format 0.0.4): checked line by line
 * against the format's rules (names, escaping, one HELP and TYPE per family
 * before its samples, cumulative buckets, no series twice), read back with
 * `parse-prometheus-text-format`, and, where `promtool` is installed, with
 * Prometheus' own checker. Also what the server's metrics count: tasks by
 * outcome, durations by tool (bounded), events once per run whoever
 * watches, and requests by route template.
 */

import assert from "node:assert/strict";
import parsePrometheusTextFormat from "npm:parse-prometheus-text-format@1.1.1";
import type { SSEEvent } from "../../../src/dag/events.ts";
import { prepareDAG } from "../../../src/dag/validate.ts";
import { createApp } from "../../../src/server/app.ts";
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  MetricRegistry,
  PROMETHEUS_CONTENT_TYPE,
} from "../../../src/server/metrics-registry.ts";
import {
  REQUEST_DURATION_BUCKETS,
  routeLabel,
  ServerMetrics,
  TASK_DURATION_BUCKETS,
} from "../../../src/server/metrics.ts";
import { findRoute } from "../../../src/server/router.ts";
import { Run } from "../../../src/server/run.ts";

// ---------------------------------------------------------------------------
// A strict reader of the text format, after the rules of Prometheus'
// exposition format documentation (text format 0.0.4).

/** One sample line. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family: its HELP, TYPE and samples. */
interface Family {
  help: string;
  type: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?Inf|NaN|[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** A float as the format writes it. */
function parseFloatText(text: string, line: string): number {
  assert.match(text, FLOAT, `not a float in: ${line}`);
  if (text.endsWith("Inf")) return text.startsWith("-") ? -Infinity : Infinity;
  return text === "NaN" ? NaN : Number(text);
}

/** A HELP text, unescaped (only `\\` and `\n` are escapes). */
function unescapeHelp(text: string, line: string): string {
  return text.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    throw new Error(`a lone backslash in HELP: ${line}`);
  });
}

/** A sample line: `name{a="x",b="y"} value`, strictly (no timestamp: we send none). */
function parseSample(line: string): Sample {
  const name = /^[^{ ]+/.exec(line)?.[0] ?? "";
  assert.match(name, METRIC_NAME, `bad metric name in: ${line}`);
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === "{") {
    at++;
    const pair = /([^=]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\})/y;
    while (true) {
      pair.lastIndex = at;
      const match = pair.exec(line);
      assert.ok(match, `bad labels in: ${line}`);
      const [whole, label, raw, end] = match;
      assert.match(label, LABEL_NAME, `bad label name in: ${line}`);
      assert.ok(!label.startsWith("__"), `reserved label name in: ${line}`);
      assert.ok(!(label in labels), `label ${label} twice in: ${line}`);
      labels[label] = raw.replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
      at += whole.length;
      if (end === "}") break;
    }
  }
  assert.equal(line[at], " ", `no space before the value in: ${line}`);
  const value = line.slice(at + 1);
  assert.doesNotMatch(value, /\s/, `more than a value (a timestamp?) in: ${line}`);
  return { name, labels, value: parseFloatText(value, line) };
}

/** The series key of a sample: its name and its labels, sorted. */
function seriesKey(sample: Sample, without?: string): string {
  const pairs = Object.entries(sample.labels).filter(([k]) => k !== without).sort();
  return `${sample.name}${JSON.stringify(pairs)}`;
}

/**
 * Reads `text` and checks every rule of the format it can: each line a
 * HELP, a TYPE or a sample; names and label names valid; each family's one
 * HELP and one TYPE before its samples, its samples together; sample names
 * of the family's type; no series twice; histograms' buckets increasing and
 * cumulative, ending with `+Inf` equal to `_count`, with a `_sum`. Counters
 * end in `_total` (the naming convention).
 */
function readExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "the text ends with a line feed");
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: string | undefined;
  const familyOf = (name: string): string | undefined => {
    for (const candidate of [name, name.replace(/_(bucket|sum|count)$/, "")]) {
      const family = families.get(candidate);
      if (family === undefined) continue;
      if (candidate === name || family.type === "histogram" || family.type === "summary") {
        return candidate;
      }
    }
    return undefined;
  };
  const enter = (name: string) => {
    if (current !== name) {
      if (current !== undefined) closed.add(current);
      assert.ok(!closed.has(name), `family ${name} appears in two places`);
      current = name;
    }
  };
  for (const line of text.slice(0, -1).split("\n")) {
    assert.notEqual(line, "", "no empty line");
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, keyword, name, rest] = meta;
      assert.match(name, METRIC_NAME, `bad metric name in: ${line}`);
      enter(name);
      const family = families.get(name) ?? { help: "", type: "", samples: [] };
      families.set(name, family);
      assert.equal(family.samples.length, 0, `${keyword} after samples in: ${line}`);
      if (keyword === "HELP") {
        assert.equal(family.help, "", `a second HELP for ${name}`);
        family.help = unescapeHelp(rest, line);
      } else {
        assert.equal(family.type, "", `a second TYPE for ${name}`);
        assert.ok(TYPES.has(rest), `bad type in: ${line}`);
        family.type = rest;
        if (rest === "counter") assert.match(name, /_total$/, `counter ${name} ends in _total`);
      }
      continue;
    }
    assert.ok(!line.startsWith("#"), `an unexpected comment: ${line}`);
    const sample = parseSample(line);
    const name = familyOf(sample.name);
    assert.ok(name !== undefined, `a sample of no declared family: ${line}`);
    enter(name);
    const key = seriesKey(sample);
    assert.ok(!seen.has(key), `a series twice: ${line}`);
    seen.add(key);
    families.get(name)!.samples.push(sample);
  }
  for (const [name, family] of families) {
    assert.notEqual(family.type, "", `${name} has a TYPE`);
    assert.notEqual(family.help, "", `${name} has a HELP`);
    if (family.type === "histogram") checkHistogram(name, family.samples);
  }
  return families;
}

/** Each series of a histogram: increasing `le`, cumulative counts, `+Inf` = `_count`, a `_sum`. */
function checkHistogram(name: string, samples: Sample[]): void {
  const series = new Map<
    string,
    { les: number[]; counts: number[]; sum?: number; count?: number }
  >();
  for (const sample of samples) {
    const key = seriesKey({ ...sample, name }, "le");
    const entry = series.get(key) ?? { les: [], counts: [] };
    series.set(key, entry);
    if (sample.name === `${name}_bucket`) {
      assert.ok("le" in sample.labels, `${name}_bucket has le`);
      entry.les.push(parseFloatText(sample.labels.le, sample.labels.le));
      entry.counts.push(sample.value);
    } else if (sample.name === `${name}_sum`) {
      entry.sum = sample.value;
    } else if (sample.name === `${name}_count`) {
      entry.count = sample.value;
    } else {
      assert.fail(`${sample.name} in histogram ${name}`);
    }
  }
  for (const [key, { les, counts, sum, count }] of series) {
    assert.ok(les.length > 0, `${key}: buckets`);
    assert.equal(les.at(-1), Infinity, `${key}: the last bucket is +Inf`);
    for (let i = 1; i < les.length; i++) {
      assert.ok(les[i] > les[i - 1], `${key}: le increasing`);
      assert.ok(counts[i] >= counts[i - 1], `${key}: buckets cumulative`);
    }
    assert.equal(counts.at(-1), count, `${key}: +Inf bucket = _count`);
    assert.equal(typeof sum, "number", `${key}: _sum`);
  }
}

/** The families `parse-prometheus-text-format` reads, by name. */
// deno-lint-ignore no-explicit-any
function parseWithLibrary(text: string): Map<string, any> {
  // deno-lint-ignore no-explicit-any
  const families: any[] = parsePrometheusTextFormat(text);
  return new Map(families.map((family) => [family.name, family]));
}

/** Whether Prometheus' `promtool` is on the PATH. */
async function hasPromtool(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("promtool", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** `promtool check metrics` of `text`: its exit status and what it said. */
async function promtoolCheck(text: string): Promise<{ success: boolean; said: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { success, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { success, said: decoder.decode(stdout) + decoder.decode(stderr) };
}

const PROMTOOL = await hasPromtool();

// ---------------------------------------------------------------------------
// Events and a server's metrics to read.

const timestamp = "2026-01-01T00:00:00.000Z";

function complete(
  tool: string,
  status: "success" | "error",
  executionTimeMs: number,
  error?: string,
): SSEEvent {
  return {
    type: "task_complete",
    data: {
      taskId: "t",
      tool,
      status,
      executionTimeMs,
      timestamp,
      // A skipped task never ran: no attempts.
      ...(error?.startsWith("Dependency ") ? {} : { attempts: 1 }),
      ...(error ? { error } : {}),
    },
  };
}

/** An event by type name, for types newer than the union this test was written against. */
function eventOf(type: string, data: Record<string, unknown>): SSEEvent {
  return { type, data: { timestamp, ...data } } as unknown as SSEEvent;
}

const TOOLS = new Set(["mock:delay", "mock:echo", "mock:fail", 'we"ird\\tool\nname']);

function serverMetrics(maxToolLabels?: number): ServerMetrics {
  return new ServerMetrics({
    tools: { has: (name) => TOOLS.has(name) },
    activeRuns: () => 2,
    watchers: () => 3,
    maxToolLabels,
  });
}

/** The value of the one sample of `family` whose labels are `labels`. */
function valueOf(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
  sampleName = name,
): number | undefined {
  const key = seriesKey({ name: sampleName, labels, value: 0 });
  return families.get(name)?.samples.find((s) => seriesKey(s) === key)?.value;
}

// ---------------------------------------------------------------------------

Deno.test("the strict reader refuses text that breaks the format's rules", () => {
  const head = "# HELP a_total A.\n# TYPE a_total counter\n";
  const hist = "# HELP h H.\n# TYPE h histogram\n";
  const broken: [string, RegExp][] = [
    [`${head}a_total 1`, /ends with a line feed/],
    [`${head}a_total 1\n# TYPE a_total counter\n`, /TYPE after samples/],
    [`# HELP a_total A.\n# HELP a_total B.\n`, /second HELP/],
    [`${head}a_total{x="1"} 1\na_total{x="1"} 2\n`, /series twice/],
    [`${head}a_total{x="\\q"} 1\n`, /bad labels/],
    [`${head}a_total{x="1} 1\n`, /bad labels/],
    [`${head}a_total{1x="1"} 1\n`, /bad label name/],
    [`${head}a_total{__x="1"} 1\n`, /reserved label name/],
    [`${head}a_total 1 1700000000\n`, /timestamp/],
    [`${head}a_total one\n`, /not a float/],
    [`${head}b_total 1\n`, /no declared family/],
    [`# HELP 1a_total A.\n`, /bad metric name/],
    [`# HELP c C.\n# TYPE c counter\n`, /ends in _total/],
    [`${head}# HELP g G.\n# TYPE g gauge\na_total 1\n`, /two places/],
    [`${hist}h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n`, /cumulative/],
    [`${hist}h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n`, /= _count/],
    [`${hist}h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n`, /\+Inf/],
    [`${hist}h_bucket{le="+Inf"} 1\nh_count 1\n`, /_sum/],
    [
      `${hist}h_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n`,
      /increasing/,
    ],
  ];
  for (const [text, error] of broken) {
    assert.throws(() => readExposition(text), error, JSON.stringify(text));
  }
});

Deno.test("registry: escaping of label values and HELP, and the parsers read them back", () => {
  const registry = new MetricRegistry();
  const help = 'Back\\slash, "quotes" and a\nline feed.';
  const odd = 'a\\b"c\nd é ✓ {x="y"}';
  registry.counter({ name: "odd_total", help, labelNames: ["value", "empty"] }).series(odd, "")
    .inc(2);
  const text = registry.render();
  assert.equal(
    text,
    '# HELP odd_total Back\\\\slash, "quotes" and a\\nline feed.\n' +
      "# TYPE odd_total counter\n" +
      'odd_total{value="a\\\\b\\"c\\nd é ✓ {x=\\"y\\"}",empty=""} 2\n',
  );
  const families = readExposition(text);
  assert.equal(families.get("odd_total")?.help, help);
  assert.deepEqual(families.get("odd_total")?.samples, [
    { name: "odd_total", labels: { value: odd, empty: "" }, value: 2 },
  ]);
  const parsed = parseWithLibrary(text).get("odd_total");
  assert.equal(parsed.type, "COUNTER");
  assert.equal(parsed.help, help);
  assert.deepEqual(parsed.metrics, [{ value: "2", labels: { value: odd, empty: "" } }]);
  // The helpers alone.
  assert.equal(escapeLabelValue('\\\n"'), '\\\\\\n\\"');
  assert.equal(escapeHelp('\\\n"'), '\\\\\\n"');
  assert.deepEqual([0, 1.5, 1e21, 1e-7].map(formatValue), ["0", "1.5", "1e+21", "1e-7"]);
  for (const v of ["1e+21", "1e-7", "+Inf", "-Inf", "NaN"]) assert.match(v, FLOAT);
});

Deno.test("registry: a histogram's buckets are cumulative, `le` inclusive, then +Inf, _sum and _count", () => {
  const registry = new MetricRegistry();
  const latency = registry.histogram({
    name: "latency_seconds",
    help: "Latency.",
    buckets: [0.1, 1, 5],
  });
  const series = latency.series();
  for (const v of [0.05, 0.1, 0.5, 1, 7, 100]) series.observe(v);
  series.observe(NaN); // ignored
  const text = registry.render();
  assert.equal(
    text,
    [
      "# HELP latency_seconds Latency.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{le="0.1"} 2',
      'latency_seconds_bucket{le="1"} 4',
      'latency_seconds_bucket{le="5"} 4',
      'latency_seconds_bucket{le="+Inf"} 6',
      "latency_seconds_sum 108.65",
      "latency_seconds_count 6",
      "",
    ].join("\n"),
  );
  readExposition(text);
  // The library reads an unlabelled histogram whole.
  const parsed = parseWithLibrary(text).get("latency_seconds");
  assert.equal(parsed.type, "HISTOGRAM");
  assert.deepEqual(parsed.metrics, [{
    buckets: { "0.1": "2", "1": "4", "5": "4", "+Inf": "6" },
    sum: "108.65",
    count: "6",
  }]);
  // Labelled: the labels come first, then le.
  const byTool = registry.histogram({
    name: "task_seconds",
    help: "Tasks.",
    labelNames: ["tool"],
    buckets: [1],
  });
  byTool.series("a").observe(2);
  assert.match(
    registry.render(),
    /^task_seconds_bucket\{tool="a",le="1"\} 0\ntask_seconds_bucket\{tool="a",le="\+Inf"\} 1\ntask_seconds_sum\{tool="a"\} 2\ntask_seconds_count\{tool="a"\} 1\n/m,
  );
});

Deno.test("registry: refuses what the format does not allow", () => {
  const registry = new MetricRegistry();
  const counter = (name: string, labelNames?: string[]) => () =>
    registry.counter({ name, help: "x", labelNames });
  assert.throws(counter("9lives_total"), /invalid metric name/);
  assert.throws(counter("has-dash_total"), /invalid metric name/);
  assert.throws(counter("ok_total", ["__reserved"]), /invalid label name/);
  assert.throws(counter("ok_total", ["bad-label"]), /invalid label name/);
  assert.throws(counter("ok_total", ["a", "a"]), /twice/);
  registry.counter({ name: "ok_total", help: "x" });
  assert.throws(counter("ok_total"), /already registered/);
  const histogram = (buckets: number[], labelNames?: string[]) => () =>
    registry.histogram({ name: `h${buckets.length}_seconds`, help: "x", buckets, labelNames });
  assert.throws(histogram([1, 1]), /increasing/);
  assert.throws(histogram([2, 1]), /increasing/);
  assert.throws(histogram([1, Infinity]), /finite/);
  assert.throws(histogram([1], ["le"]), /"le"/);
  const labelled = registry.counter({ name: "l_total", help: "x", labelNames: ["a", "b"] });
  assert.throws(() => labelled.series("x"), /2 label value/);
  // A counter only goes up.
  const series = labelled.series("x", "y");
  series.inc(-1);
  series.inc(Infinity);
  series.inc(NaN);
  assert.equal(series.value, 0);
});

Deno.test("ServerMetrics: every family, read by the strict reader and by the library", () => {
  const metrics = serverMetrics();
  metrics.countEvent(eventOf("task_start", { taskId: "t", tool: "mock:delay" }));
  metrics.countEvent(complete("mock:delay", "success", 250));
  metrics.countEvent(complete("mock:delay", "success", 500));
  metrics.countEvent(complete("mock:fail", "error", 1, "boom"));
  metrics.countEvent(complete("mock:echo", "error", 0, "Dependency a failed"));
  metrics.countEvent(complete("mock:echo", "error", 0, "Dependency task with spaces failed"));
  metrics.countEvent(complete('we"ird\\tool\nname', "success", 4_000));
  metrics.countEvent(eventOf("task_retry", { taskId: "t", tool: "mock:fail", attempt: 2 }));
  metrics.countEvent(eventOf("task_retry", { taskId: "t", tool: "mock:fail", attempt: 3 }));
  metrics.countEvent(eventOf("execution_complete", {}));
  metrics.runEnded("succeeded");
  metrics.runEnded("failed");
  metrics.runEnded("failed");
  metrics.runEnded("running"); // not an end: ignored
  metrics.countRequest("/runs/{id}", 200, 0.003);
  metrics.countRequest("/runs/{id}", 200, 0.02);
  metrics.countRequest("/runs/{id}", 404, 0.001);
  metrics.countRequest("unmatched", 404, 0.0005);
  const text = metrics.render();
  const families = readExposition(text);

  const expected: Record<string, string> = {
    dagstream_runs_total: "counter",
    dagstream_runs_active: "gauge",
    dagstream_tasks_total: "counter",
    dagstream_task_duration_seconds: "histogram",
    dagstream_task_retries_total: "counter",
    dagstream_sse_watchers: "gauge",
    dagstream_events_total: "counter",
    dagstream_http_requests_total: "counter",
    dagstream_http_request_duration_seconds: "histogram",
    process_cpu_seconds_total: "counter",
    process_resident_memory_bytes: "gauge",
    process_start_time_seconds: "gauge",
    deno_heap_used_bytes: "gauge",
    deno_heap_total_bytes: "gauge",
    deno_external_memory_bytes: "gauge",
  };
  assert.deepEqual(
    Object.fromEntries([...families].map(([name, family]) => [name, family.type])),
    expected,
  );
  const runs = (status: string) => valueOf(families, "dagstream_runs_total", { status });
  assert.deepEqual([runs("succeeded"), runs("failed"), runs("cancelled")], [1, 2, 0]);
  const tasks = (status: string) => valueOf(families, "dagstream_tasks_total", { status });
  assert.deepEqual([tasks("success"), tasks("error"), tasks("skipped")], [3, 1, 2]);
  assert.equal(valueOf(families, "dagstream_runs_active"), 2);
  assert.equal(valueOf(families, "dagstream_sse_watchers"), 3);
  assert.equal(valueOf(families, "dagstream_task_retries_total"), 2);
  assert.equal(valueOf(families, "dagstream_events_total"), 10);

  // Durations: skipped tasks are not observed; the sum is in seconds.
  const duration = (tool: string, suffix: string, labels: Record<string, string> = {}) =>
    valueOf(
      families,
      "dagstream_task_duration_seconds",
      { tool, ...labels },
      `dagstream_task_duration_seconds${suffix}`,
    );
  assert.equal(duration("mock:delay", "_count"), 2);
  assert.equal(duration("mock:delay", "_sum"), 0.75);
  assert.equal(duration("mock:delay", "_bucket", { le: "0.1" }), 0);
  assert.equal(duration("mock:delay", "_bucket", { le: "0.25" }), 1);
  assert.equal(duration("mock:delay", "_bucket", { le: "0.5" }), 2);
  assert.equal(duration("mock:fail", "_count"), 1);
  assert.equal(duration("mock:echo", "_count"), undefined);
  assert.equal(duration('we"ird\\tool\nname', "_bucket", { le: "5" }), 1);
  assert.equal(duration('we"ird\\tool\nname', "_bucket", { le: "2.5" }), 0);
  const les = families.get("dagstream_task_duration_seconds")!.samples
    .filter((s) => s.name.endsWith("_bucket") && s.labels.tool === "mock:delay")
    .map((s) => s.labels.le);
  assert.deepEqual(les, [...TASK_DURATION_BUCKETS.map(String), "+Inf"]);

  // Requests by route template and status.
  const requests = (route: string, status: string) =>
    valueOf(families, "dagstream_http_requests_total", { route, status });
  assert.equal(requests("/runs/{id}", "200"), 2);
  assert.equal(requests("/runs/{id}", "404"), 1);
  assert.equal(requests("unmatched", "404"), 1);
  const requestCount = (route: string) =>
    valueOf(
      families,
      "dagstream_http_request_duration_seconds",
      { route },
      "dagstream_http_request_duration_seconds_count",
    );
  assert.equal(requestCount("/runs/{id}"), 3);
  const requestLes = families.get("dagstream_http_request_duration_seconds")!.samples
    .filter((s) => s.name.endsWith("_bucket") && s.labels.route === "unmatched")
    .map((s) => s.labels.le);
  assert.deepEqual(requestLes, [...REQUEST_DURATION_BUCKETS.map(String), "+Inf"]);

  // Process metrics: real numbers.
  assert.ok(valueOf(families, "process_resident_memory_bytes")! > 0);
  assert.ok(valueOf(families, "deno_heap_used_bytes")! > 0);
  assert.ok(valueOf(families, "process_cpu_seconds_total")! > 0);
  const started = valueOf(families, "process_start_time_seconds")!;
  assert.ok(Math.abs(started - performance.timeOrigin / 1000) < 1);

  // The library reads every family, with its type and help, and every
  // counter and gauge sample with its labels and value.
  const parsed = parseWithLibrary(text);
  assert.deepEqual([...parsed.keys()], [...families.keys()]);
  for (const [name, family] of families) {
    const read = parsed.get(name);
    assert.equal(read.type, family.type.toUpperCase(), name);
    assert.equal(read.help, family.help, name);
    if (family.type === "histogram") continue; // the library merges labelled histograms
    assert.deepEqual(
      read.metrics.map((m: { labels?: Record<string, string>; value: string }) => ({
        labels: m.labels ?? {},
        value: Number(m.value),
      })),
      family.samples.map(({ labels, value }) => ({ labels, value })),
      name,
    );
  }
});

Deno.test({
  name: "ServerMetrics: promtool check metrics accepts the text (where promtool is installed)",
  ignore: !PROMTOOL,
  async fn() {
    const metrics = serverMetrics();
    metrics.countEvent(complete("mock:delay", "success", 20));
    metrics.countEvent(complete('we"ird\\tool\nname', "error", 3, "boom"));
    metrics.runEnded("cancelled");
    metrics.countRequest("/metrics", 200, 0.001);
    const { success, said } = await promtoolCheck(metrics.render());
    assert.ok(success, said);
    assert.equal(said, "", "no lint remark");
  },
});

Deno.test("ServerMetrics: the tool label takes the server's tools only, at most maxToolLabels", () => {
  const metrics = serverMetrics(2);
  for (const tool of ["mock:delay", "mock:echo", "mock:fail", "not:a-tool", "other"]) {
    metrics.countEvent(complete(tool, "success", 1));
  }
  metrics.countEvent(complete("mock:delay", "success", 1));
  const families = readExposition(metrics.render());
  const counts = Object.fromEntries(
    families.get("dagstream_task_duration_seconds")!.samples
      .filter((s) => s.name.endsWith("_count"))
      .map((s) => [s.labels.tool, s.value]),
  );
  // Two tools by name; the third tool, a name the server does not have,
  // and a name "other" all count as other.
  assert.deepEqual(counts, { "mock:delay": 2, "mock:echo": 1, other: 3 });
});

Deno.test("routeLabel: the matching route's template, first match wins, else unmatched", () => {
  const routes = [
    { pattern: /^\/runs\/([^/]+)$/, template: "/runs/{id}", methods: {} },
    { pattern: /^\/runs\/([^/]+)\/events$/, template: "/runs/{id}/events", methods: {} },
    { pattern: /^\/runs\/x$/, template: "/runs/x", methods: {} },
    { pattern: /^\/untemplated$/, methods: {} },
  ];
  const label = (path: string) => routeLabel(findRoute(routes, path));
  assert.equal(label("/runs/x"), "/runs/{id}");
  assert.equal(label("/runs/abc/events"), "/runs/{id}/events");
  assert.equal(label("/untemplated"), "other");
  assert.equal(label("/runs/abc/nope"), "unmatched");
  assert.equal(routeLabel(undefined), "unmatched");
});

Deno.test("createApp: every route is counted by its template, never by the path", async () => {
  const app = createApp({ log: () => {} });
  try {
    const paths: [string, string][] = [
      ["/", "/"],
      ["/ui/app.js", "/ui/{asset}"],
      ["/ui/NOT-AN-ASSET", "unmatched"],
      ["/execute", "/execute"],
      ["/runs", "/runs"],
      ["/runs/run-id-1", "/runs/{id}"],
      ["/runs/run-id-2/events", "/runs/{id}/events"],
      ["/tools", "/tools"],
      ["/health", "/health"],
      ["/metrics", "/metrics"],
      ["/nope", "unmatched"],
      ["/runs/run-id-3/events/more", "unmatched"],
    ];
    for (const [path] of paths) {
      const response = await app.handle(new Request(`http://127.0.0.1${path}`));
      await response.body?.cancel();
    }
    const response = await app.handle(new Request("http://127.0.0.1/metrics"));
    assert.equal(response.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    const text = await response.text();
    const families = readExposition(text);
    const routes = new Set(
      families.get("dagstream_http_requests_total")!.samples.map((s) => s.labels.route),
    );
    assert.deepEqual(routes, new Set(paths.map(([, route]) => route)));
    assert.doesNotMatch(text, /run-id-/);
  } finally {
    await app.shutdown();
  }
});

Deno.test("Run: onEvent sees each logged event once, a failure's error event too", async () => {
  const seen: string[] = [];
  const gate = Promise.withResolvers<void>();
  const run = new Run(
    prepareDAG({
      tasks: [
        { id: "a", tool: "echo" },
        { id: "b", tool: "wait", dependsOn: ["a"] },
      ],
    }),
    async (tool, args, ctx) => {
      if (tool === "wait") {
        ctx.signal.addEventListener("abort", () => gate.resolve(), { once: true });
        await gate.promise;
        throw ctx.signal.reason;
      }
      return args;
    },
    {
      executor: {},
      maxRunLogBytes: 1 << 20,
      maxEventPayloadBytes: 65_536,
      onEvent: (event) => {
        seen.push(event.type);
        // b has started: fail the run as a whole.
        if (event.type === "task_start" && event.data.taskId === "b") {
          queueMicrotask(() => run.fail("the store is gone", "store_unavailable"));
        }
      },
    },
  );
  await run.done;
  assert.equal(run.status, "failed");
  assert.equal(seen.length, run.log.lastSeq, `${seen}`);
  assert.equal(seen.filter((t) => t === "error").length, 1);
  assert.equal(seen.filter((t) => t === "task_complete").length, 2);
});
