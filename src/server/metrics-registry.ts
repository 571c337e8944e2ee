/**
 * A tiny metrics registry that writes the Prometheus text format, version
 * 0.0.4: counters, gauges read at scrape time, and histograms with fixed
 * buckets, each family with a fixed list of label names.
 *
 * Hand-written rather than `npm:prom-client`: its registry runs under Deno,
 * but its process metrics read `/proc` (the server has no `--allow-read`:
 * they come out as 0, or prompt on a terminal), and each labelled
 * increment builds a label hash and checks the labels (about 100 ns, and
 * 330 ns per histogram observation, allocating each time). Here a series is
 * looked up once and kept by its caller: counting is a field increment,
 * observing a scan of at most a few dozen bounds, and nothing is allocated.
 * The text is built only when scraped.
 *
 * The format's rules that this module keeps (checked by its tests against a
 * parser): metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
 * `[a-zA-Z_][a-zA-Z0-9_]*` (not starting `__`; `le` is the histograms'
 * own); each family has one `# HELP` (`\` and line feeds escaped) and one
 * `# TYPE` line before its samples; label values escape `\`, `"` and line
 * feeds; a histogram's buckets are cumulative, end with `le="+Inf"` equal
 * to `_count`, then `_sum` and `_count`; no series appears twice.
 *
 * @module
 */

/**
 * The `Content-Type` of the text format.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROMETHEUS_CONTENT_TYPE } from "./metrics-registry.ts";
 * assert.equal(PROMETHEUS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * What names a family: its name, its help text and its label names.
 *
 * @example
 * ```ts
 * import type { FamilyOptions } from "./metrics-registry.ts";
 * const options: FamilyOptions = { name: "jobs_total", help: "Jobs done.", labelNames: ["status"] };
 * ```
 */
export interface FamilyOptions {
  /** The metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`). */
  name: string;
  /** What it means, for `# HELP`. */
  help: string;
  /** The names of its labels, in the order their values are given (default none). */
  labelNames?: readonly string[];
}

/**
 * One counter series: a number that only goes up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricRegistry } from "./metrics-registry.ts";
 * const jobs = new MetricRegistry().counter({ name: "jobs_total", help: "Jobs." }).series();
 * jobs.inc();
 * jobs.inc(2);
 * assert.equal(jobs.value, 3);
 * ```
 */
export class Counter {
  /** The count so far. */
  value = 0;

  /** Adds `by` (default 1; a negative or non-finite amount is ignored). */
  inc(by = 1): void {
    if (by >= 0 && by !== Infinity) this.value += by;
  }
}

/**
 * One histogram series: how many observations fell at or below each bound,
 * their sum and their count.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricRegistry } from "./metrics-registry.ts";
 * const latency = new MetricRegistry()
 *   .histogram({ name: "latency_seconds", help: "Latency.", buckets: [0.1, 1] })
 *   .series();
 * latency.observe(0.05);
 * latency.observe(0.5);
 * latency.observe(7);
 * assert.deepEqual([latency.count, latency.sum], [3, 7.55]);
 * ```
 */
export class Histogram {
  /** Observations in each bucket alone (not cumulative); the last is above every bound. */
  readonly counts: Float64Array;
  /** The sum of the observations. */
  sum = 0;
  /** The number of observations. */
  count = 0;
  readonly #bounds: readonly number[];

  /** A series with these upper bounds (increasing, without `+Inf`). */
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one observation (`NaN` is ignored). */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/**
 * One series of a family, with its label pairs already written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricRegistry, type Series, type Counter } from "./metrics-registry.ts";
 * const jobs = new MetricRegistry().counter({ name: "jobs_total", help: "Jobs.", labelNames: ["status"] });
 * jobs.series("done");
 * const [first]: Series<Counter>[] = [...jobs.entries()];
 * assert.equal(first.labels, 'status="done"');
 * ```
 */
export interface Series<S> {
  /** `a="x",b="y"`, or empty without labels. */
  labels: string;
  /** Its value holder. */
  value: S;
}

/**
 * A family of series: one per set of label values, created on first use.
 * Keep what {@linkcode Family.series} returns rather than looking it up
 * each time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricRegistry } from "./metrics-registry.ts";
 * const jobs = new MetricRegistry().counter({
 *   name: "jobs_total",
 *   help: "Jobs.",
 *   labelNames: ["status"],
 * });
 * assert.equal(jobs.series("done"), jobs.series("done"));
 * assert.throws(() => jobs.series(), /1 label value/);
 * ```
 */
export class Family<S> {
  /** The metric name. */
  readonly name: string;
  /** The help text. */
  readonly help: string;
  /** `counter` or `histogram`. */
  readonly type: "counter" | "histogram";
  /** The label names. */
  readonly labelNames: readonly string[];
  readonly #create: () => S;
  readonly #series = new Map<string, Series<S>>();

  /** A family; use {@linkcode MetricRegistry} to make one. */
  constructor(
    options: FamilyOptions,
    type: "counter" | "histogram",
    create: () => S,
  ) {
    this.name = options.name;
    this.help = options.help;
    this.type = type;
    this.labelNames = options.labelNames ?? [];
    this.#create = create;
  }

  /** The series of these label values (one per label name, in order), created if new. */
  series(...labelValues: string[]): S {
    if (labelValues.length !== this.labelNames.length) {
      throw new TypeError(
        `${this.name} takes ${this.labelNames.length} label value(s), got ${labelValues.length}`,
      );
    }
    const key = labelValues.join("\u0000");
    let found = this.#series.get(key);
    if (found === undefined) {
      const labels = this.labelNames
        .map((name, i) => `${name}="${escapeLabelValue(labelValues[i])}"`)
        .join(",");
      found = { labels, value: this.#create() };
      this.#series.set(key, found);
    }
    return found.value;
  }

  /** Every series, in the order they were created. */
  entries(): IterableIterator<Series<S>> {
    return this.#series.values();
  }
}

/**
 * A counter or gauge without labels, read when scraped.
 *
 * @example
 * ```ts
 * import type { ReadOptions } from "./metrics-registry.ts";
 * const options: ReadOptions = { name: "up_seconds", help: "Uptime.", type: "gauge", read: () => 1 };
 * ```
 */
export interface ReadOptions {
  /** The metric name. */
  name: string;
  /** What it means, for `# HELP`. */
  help: string;
  /** `counter` (a total that only goes up) or `gauge`. */
  type: "counter" | "gauge";
  /** Gives its value now. */
  read: () => number;
}

/** Any family of a registry. */
type AnyFamily =
  | { kind: "counter"; family: Family<Counter> }
  | { kind: "histogram"; family: Family<Histogram>; les: string[] }
  | { kind: "read"; family: ReadOptions };

/**
 * The metrics of one process, and their text for a scrape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricRegistry } from "./metrics-registry.ts";
 * const registry = new MetricRegistry();
 * const jobs = registry.counter({ name: "jobs_total", help: "Jobs.", labelNames: ["status"] });
 * jobs.series("done").inc();
 * registry.read({ name: "queue_length", help: "Waiting jobs.", type: "gauge", read: () => 4 });
 * const latency = registry.histogram({ name: "job_seconds", help: "Job time.", buckets: [1] });
 * latency.series().observe(0.5);
 * assert.equal(
 *   registry.render(),
 *   [
 *     "# HELP jobs_total Jobs.",
 *     "# TYPE jobs_total counter",
 *     'jobs_total{status="done"} 1',
 *     "# HELP queue_length Waiting jobs.",
 *     "# TYPE queue_length gauge",
 *     "queue_length 4",
 *     "# HELP job_seconds Job time.",
 *     "# TYPE job_seconds histogram",
 *     'job_seconds_bucket{le="1"} 1',
 *     'job_seconds_bucket{le="+Inf"} 1',
 *     "job_seconds_sum 0.5",
 *     "job_seconds_count 1",
 *     "",
 *   ].join("\n"),
 * );
 * ```
 */
export class MetricRegistry {
  readonly #families: AnyFamily[] = [];
  readonly #names = new Set<string>();

  /** Adds a counter family. */
  counter(options: FamilyOptions): Family<Counter> {
    this.#claim(options.name, options.labelNames);
    const family = new Family(options, "counter", () => new Counter());
    this.#families.push({ kind: "counter", family });
    return family;
  }

  /**
   * Adds a histogram family with these bucket upper bounds (finite and
   * increasing; `+Inf` is added).
   */
  histogram(options: FamilyOptions & { buckets: readonly number[] }): Family<Histogram> {
    const { buckets } = options;
    if (options.labelNames?.includes("le")) {
      throw new TypeError(`${options.name}: "le" is the histograms' own label`);
    }
    if (!buckets.every((b, i) => Number.isFinite(b) && (i === 0 || b > buckets[i - 1]))) {
      throw new TypeError(`${options.name}: buckets must be finite and increasing`);
    }
    this.#claim(options.name, options.labelNames);
    const bounds = [...buckets];
    const family = new Family(options, "histogram", () => new Histogram(bounds));
    this.#families.push({ kind: "histogram", family, les: [...bounds.map(formatValue), "+Inf"] });
    return family;
  }

  /** Adds a counter or gauge without labels whose value `read` gives at each scrape. */
  read(options: ReadOptions): void {
    this.#claim(options.name, []);
    const { name, help, type, read } = options;
    this.#families.push({ kind: "read", family: { name, help, type, read } });
  }

  /** The text of every family, in the order they were added. */
  render(): string {
    let text = "";
    for (const entry of this.#families) {
      const { family } = entry;
      const name = family.name;
      text += `# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${family.type}\n`;
      if (entry.kind === "read") {
        text += `${name} ${formatValue(entry.family.read())}\n`;
      } else if (entry.kind === "counter") {
        for (const { labels, value } of entry.family.entries()) {
          text += `${name}${labels === "" ? "" : `{${labels}}`} ${formatValue(value.value)}\n`;
        }
      } else {
        for (const { labels, value } of entry.family.entries()) {
          const prefix = labels === "" ? "" : `${labels},`;
          let cumulative = 0;
          for (let i = 0; i < entry.les.length; i++) {
            cumulative += value.counts[i];
            text += `${name}_bucket{${prefix}le="${entry.les[i]}"} ${formatValue(cumulative)}\n`;
          }
          const braced = labels === "" ? "" : `{${labels}}`;
          text += `${name}_sum${braced} ${formatValue(value.sum)}\n`;
          text += `${name}_count${braced} ${formatValue(value.count)}\n`;
        }
      }
    }
    return text;
  }

  /** Checks a new family's name and label names, and that the name is free. */
  #claim(name: string, labelNames: readonly string[] = []): void {
    if (!METRIC_NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new TypeError(`${name}: invalid label name ${JSON.stringify(label)}`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new TypeError(`${name}: a label name appears twice`);
    }
    if (this.#names.has(name)) throw new TypeError(`metric ${name} is already registered`);
    this.#names.add(name);
  }
}

/**
 * A label value as the text format writes it between quotes: `\`, `"` and
 * line feeds escaped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeLabelValue } from "./metrics-registry.ts";
 * assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/**
 * A help text as `# HELP` writes it: `\` and line feeds escaped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeHelp } from "./metrics-registry.ts";
 * assert.equal(escapeHelp('a\\b"c\nd'), 'a\\\\b"c\\nd');
 * ```
 */
export function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/**
 * A sample value as the text format writes it (`+Inf`, `-Inf`, `NaN`, or
 * the number).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatValue } from "./metrics-registry.ts";
 * assert.deepEqual([1, 0.25, Infinity, -Infinity, NaN].map(formatValue), ["1", "0.25", "+Inf", "-Inf", "NaN"]);
 * ```
 */
export function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}
