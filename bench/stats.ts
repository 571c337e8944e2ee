/**
 * Small statistics and formatting functions shared by the benchmark scripts:
 * medians with their spread (min–max), the machine's load average.
 *
 * @module
 */

/** Median, spread and size of a set of samples. */
export interface Spread {
  /** Median (the mean of the two middle values for an even count). */
  median: number;
  /** Least sample. */
  min: number;
  /** Greatest sample. */
  max: number;
  /** Arithmetic mean. */
  mean: number;
  /** Number of samples. */
  n: number;
}

/** The median of `values` (NaN when there are none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median, min, max, mean and count of `values`. */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN, mean: NaN, n: 0 };
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    n: values.length,
  };
}

/** `a[i] / b[i]` for each i: ratios of samples taken in the same round. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new RangeError(`${a.length} samples against ${b.length}`);
  return a.map((x, i) => x / b[i]);
}

/** `median (min–max)` with `digits` decimals. */
export function formatSpread(s: Spread, digits = 2): string {
  if (s.n === 0) return "–";
  if (s.n === 1) return s.median.toFixed(digits);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/** A number with thousands separators. */
export function formatNumber(x: number, digits = 0): string {
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The 1, 5 and 15 minute load averages, or an empty list without `--allow-sys=loadavg`. */
export function loadAverage(): number[] {
  try {
    return Deno.loadavg();
  } catch {
    return [];
  }
}

/** Load averages as text, e.g. `0.52 0.61 0.70`. */
export function formatLoad(load: readonly number[]): string {
  return load.length === 0
    ? "unknown (needs --allow-sys=loadavg)"
    : load.map((x) => x.toFixed(2)).join(" ");
}
