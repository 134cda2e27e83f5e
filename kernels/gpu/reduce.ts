/**
 * Reductions on gpu.js: sum, max and min over any set of axes of a contiguous x (reference twin
 * kernels/cpu/reduce.ts), and the mapped sums the normalisation and optimizer kernels build on:
 *   sumSq     Σ a²              sumDot      Σ a·b
 *   sumDev    Σ (a − c_j)       sumDotDev   Σ a·(b − c_j)
 *   sumSqDev  Σ (a − c_j)²      sumSqShift  Σ ((a − c_j) − b_j)²
 * for output j. a, and b but in sumSqShift, are contiguous over the same shape; there b_j is one
 * value per output; c_j = c[j·cStride] (cStride 1 by default; c may be a itself, so that a pivot such as each
 * channel's first value is read in place). argmax stays on the host.
 *
 * Plan. The kept axes and the reduced axes are each merged where contiguous (collapse); the innermost merged
 * reduced axis (L elements, stride sL) is walked by a constant-bound loop, split into P chunks of B ≤ `chunk`
 * elements when L is long. Pass 1 runs one thread per (kept j, outer reduced q, chunk p) over the grid
 * (kept…, outer…, P), finds its first element with stridedOffset and folds B elements; its output, laid out
 * (K, Q·P), is folded along its last axis by the same code (plain sum / max / min) until one value per output
 * is left. So no thread loops more than `chunk` times, and a float32 sum of R terms is the sum of partial sums
 * of at most `chunk` terms each: its error is within (B + Q·P)·u·Σ|terms| for two passes, far inside R·u·Σ|terms|.
 * The plain sums also carry a Kahan compensation term, which gpu.js's WebAssembly and CPU modes keep.
 * max/min: NaN wins, as in the reference (an empty reduction gives −∞ / +∞, a sum 0).
 */
import type { ReduceOp } from '../cpu/reduce.ts';
import { collapse } from '../cpu/strided.ts';
import { stridesOf } from '../../src/tensor/shape.ts';
import { type GpuArray, type GpuIn, type GpuRuntime, type KernelThis, viewConstants } from './runtime.ts';

export type Fold = ReduceOp | 'sumSq' | 'sumDev' | 'sumSqDev' | 'sumSqShift' | 'sumDot' | 'sumDotDev';

/**
 * The longest loop one thread runs by default (elements folded per chunk). Short chunks keep float32 sums
 * accurate where Kahan compensation cannot help: GL compilers fold (t − acc) − y to 0 (measured on llvmpipe:
 * a BN running mean 1.5e-5 off relative to its largest value with 1024-element chunks, 4.6e-6 with 128).
 */
export const CHUNK = 128;

// Pass-1 kernels. Constants: the grid d1…d5 with first-element strides s0…s5 (viewConstants), P chunks of B
// elements along a row of L elements at stride sL, QP = outputs per kept index and cs = c's stride
// (c_j = c[⌊t / QP⌋·cs]). Each takes the same arguments (a, b, c, inf): unused ones get a 1-element dummy.
type Pass1 = (this: KernelThis, a: number[], b: number[], c: number[], inf: number) => number;

const PASS1: Record<Fold, Pass1> = {
  sum: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    // Kahan: comp carries the low-order bits each addition drops
    let acc = 0;
    let comp = 0;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const y = a[base + k * this.constants.sL] - comp;
        const t = acc + y;
        comp = (t - acc) - y;
        acc = t;
      }
    }
    return acc;
  },
  max: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    let acc = -inf;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const v = a[base + k * this.constants.sL];
        // NaN wins: a NaN v is taken and then kept (GL's v > NaN may be true, so acc is tested first)
        if (acc === acc) {
          if (v !== v) {
            acc = v;
          } else if (v > acc) {
            acc = v;
          }
        }
      }
    }
    return acc;
  },
  min: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    let acc = inf;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const v = a[base + k * this.constants.sL];
        if (acc === acc) {
          if (v !== v) {
            acc = v;
          } else if (v < acc) {
            acc = v;
          }
        }
      }
    }
    return acc;
  },
  sumSq: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    let acc = 0;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const v = a[base + k * this.constants.sL];
        acc = acc + v * v;
      }
    }
    return acc;
  },
  sumDev: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    const cj = c[idiv(this.thread.x, this.constants.QP) * this.constants.cs];
    let acc = 0;
    let comp = 0;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const y = (a[base + k * this.constants.sL] - cj) - comp;
        const t = acc + y;
        comp = (t - acc) - y;
        acc = t;
      }
    }
    return acc;
  },
  sumSqDev: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    const cj = c[idiv(this.thread.x, this.constants.QP) * this.constants.cs];
    let acc = 0;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const v = a[base + k * this.constants.sL] - cj;
        acc = acc + v * v;
      }
    }
    return acc;
  },
  sumSqShift: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    const j = idiv(this.thread.x, this.constants.QP);
    const cj = c[j * this.constants.cs];
    const bj = b[j];
    let acc = 0;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const v = (a[base + k * this.constants.sL] - cj) - bj;
        acc = acc + v * v;
      }
    }
    return acc;
  },
  sumDot: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    let acc = 0;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const at = base + k * this.constants.sL;
        acc = acc + a[at] * b[at];
      }
    }
    return acc;
  },
  sumDotDev: function (a, b, c, inf) {
    const base = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.s0, this.constants.s1, this.constants.s2, this.constants.s3, this.constants.s4, this.constants.s5);
    const p = this.thread.x - idiv(this.thread.x, this.constants.P) * this.constants.P;
    const cj = c[idiv(this.thread.x, this.constants.QP) * this.constants.cs];
    let acc = 0;
    for (let k = 0; k < this.constants.B; k++) {
      if (p * this.constants.B + k < this.constants.L) {
        const at = base + k * this.constants.sL;
        acc = acc + a[at] * (b[at] - cj);
      }
    }
    return acc;
  },
};

const constantKernel = function (this: KernelThis, value: number): number {
  return value;
};

/** The fold that combines partial results of `f`. */
function combiner(f: Fold): ReduceOp {
  return f === 'max' || f === 'min' ? f : 'sum';
}

const DUMMY = new Float32Array(1);

/**
 * Fold a (and b, c where the fold reads them) over `axes` of `shape`; the result is contiguous over the kept
 * axes in order. a and b are contiguous over shape; c holds one value per output j, at c[j·cStride].
 */
export function fold(
  rt: GpuRuntime, f: Fold, shape: readonly number[], axes: readonly number[],
  a: GpuIn, b: GpuIn | null = null, c: GpuIn | null = null, chunk = CHUNK, cStride = 1,
): GpuArray {
  if (!(chunk >= 1)) throw new Error(`gpu reduce: chunk ${chunk} must be at least 1`);
  for (const ax of axes) {
    if (!(ax >= 0 && ax < shape.length && Number.isInteger(ax))) throw new Error(`gpu reduce: axis ${ax} out of range for ${shape.length} axes`);
  }
  if ((f === 'sumDot' || f === 'sumDotDev' || f === 'sumSqShift') && !b) throw new Error(`gpu reduce ${f}: needs b`);
  if ((f === 'sumDev' || f === 'sumSqDev' || f === 'sumSqShift' || f === 'sumDotDev') && !c) throw new Error(`gpu reduce ${f}: needs c`);
  const xs = stridesOf(shape);
  const red = shape.map((_, i) => axes.includes(i));
  const kept = collapse(shape.filter((_, i) => !red[i]), [xs.filter((_, i) => !red[i])]);
  const K = kept.shape.reduce((x, y) => x * y, 1);
  const R = shape.reduce((x, d, i) => (red[i] ? x * d : x), 1);
  if (K === 0) throw new Error('gpu reduce: empty output');
  if (R === 0) return rt.run('reduce.constant', constantKernel, K, {}, [f === 'max' ? -Infinity : f === 'min' ? Infinity : 0]);
  const rc = collapse(shape.filter((_, i) => red[i]), [xs.filter((_, i) => red[i])]);
  const L = rc.shape[rc.shape.length - 1], sL = rc.strides[0][rc.shape.length - 1];
  const outer = rc.shape.slice(0, -1), outerStrides = rc.strides[0].slice(0, -1);
  const Q = outer.reduce((x, y) => x * y, 1);
  const P = Math.ceil(L / chunk);
  const B = Math.ceil(L / P);
  // grid (kept…, outer…, P) → first element of each chunk
  const grid = collapse([...kept.shape, ...outer, P], [[...kept.strides[0], ...outerStrides, B * sL]]);
  const name = `reduce.${f}`;
  const constants = { ...viewConstants(name, grid.shape, { s: grid.strides[0] }), P, B, L, sL, QP: Q * P, cs: cStride };
  const partial = rt.run(name, PASS1[f], K * Q * P, constants, [a, b ?? DUMMY, c ?? DUMMY, Infinity]);
  if (Q * P === 1) return partial;
  const out = fold(rt, combiner(f), [K, Q * P], [1], partial, null, null, chunk);
  partial.dispose();
  return out;
}

/** reduce over `axes` of x (shape): the result has those axes removed and is contiguous. */
export function reduce(rt: GpuRuntime, op: ReduceOp, x: GpuIn, shape: readonly number[], axes: readonly number[], chunk = CHUNK): GpuArray {
  return fold(rt, op, shape, axes, x, null, null, chunk);
}
