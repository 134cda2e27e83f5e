/**
 * What every benchmark shares: a result row, random inputs, and best-of-N timing.
 */
export type Row = { name: string; shape: string; gflops: number; ms: number };

export function randomFloat32(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.random() * 2 - 1;
  return out;
}

/**
 * Fastest wall time of `run` in ms over `runs` timed calls, after at least `warmup` untimed ones and 300 ms: V8
 * compiles the optimized code of a hot (wasm or JS) function on a background thread, and a call only uses it once
 * it is there, so a fixed count of short warm-up calls can still be timing the baseline code. On a shared machine
 * the fastest run is the one least disturbed by other work.
 */
export function bestMs(run: () => void, warmup = 2, runs = 7): number {
  const start = performance.now();
  for (let i = 0; i < warmup || performance.now() - start < 300; i++) run();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    run();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

export function row(name: string, shape: string, flops: number, ms: number): Row {
  return { name, shape, gflops: flops / ms / 1e6, ms };
}
