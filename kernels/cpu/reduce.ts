/**
 * Reductions over any set of axes: sum, max, min; and argmax along one axis.
 * The input is walked in memory order and each element lands in out[j] where j ignores the reduced axes
 * (those get output stride 0). Sums accumulate in float64 whatever the output type, so float32 results are the
 * correctly rounded float64 sum, at least as accurate as PyTorch's pairwise float32 sum.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { stridesOf } from '../../src/tensor/shape.ts';
import { forEachRow } from './strided.ts';

export type ReduceOp = 'sum' | 'max' | 'min';

/** Output strides over the input shape: 0 on reduced axes, the kept-dims row-major strides elsewhere. */
function outStridesOver(shape: readonly number[], reduced: readonly boolean[]): number[] {
  const kept = stridesOf(shape.map((d, i) => (reduced[i] ? 1 : d)));
  return kept.map((s, i) => (reduced[i] ? 0 : s));
}

export function reduce(op: ReduceOp, x: FloatArray, shape: readonly number[], axes: readonly number[], out: FloatArray): void {
  const reduced = shape.map((_, i) => axes.includes(i));
  const oStrides = outStridesOver(shape, reduced);
  if (op === 'sum') {
    const acc = new Float64Array(out.length);
    forEachRow(shape, [stridesOf(shape), oStrides], [0, 0], (o, n, inner) => {
      let px = o[0], po = o[1];
      const so = inner[1];
      if (so === 0) {
        let s = 0;
        for (let i = 0; i < n; i++, px++) s += x[px];
        acc[po] += s;
      } else {
        for (let i = 0; i < n; i++, px++, po += so) acc[po] += x[px];
      }
    });
    out.set(acc);
    return;
  }
  const isMax = op === 'max';
  out.fill(isMax ? -Infinity : Infinity);
  forEachRow(shape, [stridesOf(shape), oStrides], [0, 0], (o, n, inner) => {
    let px = o[0], po = o[1];
    const so = inner[1];
    for (let i = 0; i < n; i++, px++, po += so) {
      const v = x[px];
      const m = out[po];
      // NaN wins, as in PyTorch
      if (v !== v || (isMax ? v > m : v < m)) out[po] = v;
      else if (m !== m) out[po] = m;
    }
  });
}

/** Index of the first maximum along `axis` (NaN counts as the maximum). */
export function argmax(x: FloatArray, shape: readonly number[], axis: number, out: Int32Array): void {
  const n = shape[axis];
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  const outer = x.length / Math.max(1, n * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let best = -Infinity, at = 0;
      for (let k = 0; k < n; k++) {
        const v = x[(o * n + k) * inner + j];
        if (v !== v) { at = k; break; }
        if (v > best) { best = v; at = k; }
      }
      out[o * inner + j] = at;
    }
  }
}
