// Shared helpers for benchmarks: the row shape and order statistics.

export interface BenchRow {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  note?: string;
}

/** Median and percentiles of a list of numbers. */
export function stats(values: number[]): { median: number; p99: number; min: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p99: at(0.99), min: s[0]!, max: s[s.length - 1]! };
}
