/**
 * Elementwise kernels on gpu.js: unary maps (activations and their derivative maps), broadcasting binary
 * arithmetic read through strides, an affine map with scalar coefficients, and a constant fill.
 * Reference twins: kernels/cpu/elementwise.ts. `where` reads its condition as floats (nonzero = true);
 * comparisons (boolean results) stay on the host.
 * GL returns 0 for log(0) and sqrt(−1): those two kernels spell out −∞ and NaN themselves.
 */
import type { ArithOp, UnaryOp } from '../cpu/elementwise.ts';
import { collapse } from '../cpu/strided.ts';
import { type GpuArray, type GpuIn, type GpuRuntime, type KernelThis, viewConstants } from './runtime.ts';

/** `inf` and `nan` arrive as arguments: gpu.js has no literal for either. */
type Unary = (this: KernelThis, x: number[], inf: number, nan: number) => number;

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32's resolution near 1)
const UNARY: Record<UnaryOp, Unary> = {
  neg: function (x, inf, nan) { return -x[this.thread.x]; },
  exp: function (x, inf, nan) { return Math.exp(x[this.thread.x]); },
  log: function (x, inf, nan) {
    const v = x[this.thread.x];
    if (v === 0) { return -inf; }
    if (v < 0) { return nan; }
    return Math.log(v);
  },
  sqrt: function (x, inf, nan) {
    const v = x[this.thread.x];
    if (v < 0) { return nan; }
    return Math.sqrt(v);
  },
  rsqrt: function (x, inf, nan) {
    const v = x[this.thread.x];
    if (v === 0) { return inf; }
    if (v < 0) { return nan; }
    return 1 / Math.sqrt(v);
  },
  abs: function (x, inf, nan) { return Math.abs(x[this.thread.x]); },
  sign: function (x, inf, nan) { return Math.sign(x[this.thread.x]); },
  relu: function (x, inf, nan) { const v = x[this.thread.x]; if (v < 0) { return 0; } return v; },
  relu6: function (x, inf, nan) { const v = x[this.thread.x]; if (v < 0) { return 0; } if (v > 6) { return 6; } return v; },
  gelu: function (x, inf, nan) {
    const v = x[this.thread.x];
    const z = Math.abs(v) * 0.7071067811865476;
    const t = 1 / (1 + 0.3275911 * z);
    const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let e = 1 - poly * Math.exp(-z * z);
    if (v < 0) { e = -e; }
    return v * 0.5 * (1 + e);
  },
  sigmoid: function (x, inf, nan) {
    const v = x[this.thread.x];
    if (v >= 0) { return 1 / (1 + Math.exp(-v)); }
    const e = Math.exp(v);
    return e / (1 + e);
  },
  tanh: function (x, inf, nan) {
    // tanh = sign·(1 − e^{−2|v|})/(1 + e^{−2|v|}), which never overflows
    const v = x[this.thread.x];
    const e = Math.exp(-2 * Math.abs(v));
    const r = (1 - e) / (1 + e);
    if (v < 0) { return -r; }
    return r;
  },
  erf: function (x, inf, nan) {
    const v = x[this.thread.x];
    const z = Math.abs(v);
    const t = 1 / (1 + 0.3275911 * z);
    const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    const e = 1 - poly * Math.exp(-z * z);
    if (v < 0) { return -e; }
    return e;
  },
  reluGrad: function (x, inf, nan) { if (x[this.thread.x] > 0) { return 1; } return 0; },
  relu6Grad: function (x, inf, nan) { const v = x[this.thread.x]; if (v > 0 && v < 6) { return 1; } return 0; },
  geluGrad: function (x, inf, nan) {
    // Φ(v) + v·φ(v)
    const v = x[this.thread.x];
    const z = Math.abs(v) * 0.7071067811865476;
    const t = 1 / (1 + 0.3275911 * z);
    const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let e = 1 - poly * Math.exp(-z * z);
    if (v < 0) { e = -e; }
    return 0.5 * (1 + e) + v * 0.3989422804014327 * Math.exp(-0.5 * v * v);
  },
};

export function unary(rt: GpuRuntime, op: UnaryOp, x: GpuIn, n: number): GpuArray {
  return rt.run(`unary.${op}`, UNARY[op], n, {}, [x, Infinity, NaN]);
}

/** The arithmetic ops by number: `op` is a kernel constant, so each compiled kernel keeps one branch. */
const ARITH_CODE: Record<ArithOp, number> = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, pow: 6 };

/** a ∘ b at this thread's position, a and b read through their strides (prefixes a, b). */
const binaryKernel = function (this: KernelThis, a: number[], b: number[], nan: number): number {
  const ia = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
    this.constants.a0, this.constants.a1, this.constants.a2, this.constants.a3, this.constants.a4, this.constants.a5);
  const ib = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
    this.constants.b0, this.constants.b1, this.constants.b2, this.constants.b3, this.constants.b4, this.constants.b5);
  const x = a[ia];
  const y = b[ib];
  if (this.constants.op === 0) { return x + y; }
  if (this.constants.op === 1) { return x - y; }
  if (this.constants.op === 2) { return x * y; }
  if (this.constants.op === 3) { return x / y; }
  if (this.constants.op === 4) { return Math.max(x, y); }
  if (this.constants.op === 5) { return Math.min(x, y); }
  // pow: GL's pow is undefined for x < 0, so odd and even integer exponents are spelled out
  if (x < 0) {
    const r = Math.pow(-x, y);
    if (Math.floor(y) !== y) { return nan; }
    if (Math.floor(y * 0.5) * 2 === y) { return r; }
    return -r;
  }
  if (x === 0 && y === 0) { return 1; }
  return Math.pow(x, y);
};

export function binary(
  rt: GpuRuntime, op: ArithOp, shape: readonly number[],
  a: GpuIn, aStrides: readonly number[], b: GpuIn, bStrides: readonly number[],
): GpuArray {
  const n = shape.reduce((x, y) => x * y, 1);
  const v = collapse(shape, [aStrides, bStrides]);
  const constants = { ...viewConstants(`binary.${op}`, v.shape, { a: v.strides[0], b: v.strides[1] }), op: ARITH_CODE[op] };
  return rt.run('binary', binaryKernel, n, constants, [a, b, NaN]);
}

/** cond ? a : b at this thread's position, all three read through their strides (prefixes c, a, b). */
const whereKernel = function (this: KernelThis, cond: number[], a: number[], b: number[]): number {
  const ic = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
    this.constants.c0, this.constants.c1, this.constants.c2, this.constants.c3, this.constants.c4, this.constants.c5);
  if (cond[ic] !== 0) {
    const ia = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
      this.constants.a0, this.constants.a1, this.constants.a2, this.constants.a3, this.constants.a4, this.constants.a5);
    return a[ia];
  }
  const ib = stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
    this.constants.b0, this.constants.b1, this.constants.b2, this.constants.b3, this.constants.b4, this.constants.b5);
  return b[ib];
};

export function where(
  rt: GpuRuntime, shape: readonly number[],
  cond: GpuIn, cStrides: readonly number[], a: GpuIn, aStrides: readonly number[], b: GpuIn, bStrides: readonly number[],
): GpuArray {
  const n = shape.reduce((x, y) => x * y, 1);
  const v = collapse(shape, [cStrides, aStrides, bStrides]);
  return rt.run('where', whereKernel, n, viewConstants('where', v.shape, { c: v.strides[0], a: v.strides[1], b: v.strides[2] }), [cond, a, b]);
}

const affineKernel = function (this: KernelThis, x: number[], scale: number, shift: number): number {
  return x[this.thread.x] * scale + shift;
};

/** x·scale + shift (scalars are arguments, so one compiled kernel serves every step of a schedule). */
export function affine(rt: GpuRuntime, x: GpuIn, n: number, scale: number, shift: number): GpuArray {
  return rt.run('affine', affineKernel, n, {}, [x, scale, shift]);
}

const fillKernel = function (this: KernelThis, value: number): number {
  return value;
};

export function fill(rt: GpuRuntime, n: number, value: number): GpuArray {
  return rt.run('fill', fillKernel, n, {}, [value]);
}
