/**
 * Elementwise kernels on WebAssembly SIMD, with the signatures of `kernels/cpu/elementwise.ts` (whose `unary` and
 * `binary` are the reference twins), float32 only:
 *   unary    neg, abs, sqrt, relu, relu6, reluGrad, relu6Grad
 *   binary   add, sub, mul, div, maximum, minimum where one operand is contiguous in the output's layout and the
 *            other is any operand that, after merging axes, is read as (O, C, L) with strides (sO, sC, 0 or 1):
 *            the same shape, a scalar, a per-channel vector (1, C, 1, 1), a row (…, W), a mask (B, 1, H, W).
 * Both produce exactly the reference's float32 values (module.ts says why). Everything else — float64 (gradient
 * checks), comparisons (uint8 outputs), pow, gelu, the other maps, layouts where both operands broadcast — and
 * calls smaller than `minElements` go to the reference loops.
 *
 * Operands are copied into wasm memory, computed there, and the result copied out: the copies are memcpy speed,
 * a few times faster than a JavaScript loop over the same elements. The kernels can split rows (or, for one long
 * row, its elements) over the runtime's worker threads, but by default they do not: on the 2-core bench machine
 * (bench/pointwise.ts, several runs) splitting made the elementwise passes up to 1.7× slower, and the batch-norm
 * passes anywhere from 1.5× faster to 1.3× slower from run to run, where the calling thread alone gave steady
 * times. The data is copied in and out on the calling thread, so a worker reads and writes cache lines that live
 * in the other core's cache, and waking it costs ~20 µs (milliseconds when another process holds that core).
 * Left out: gelu/geluGrad (need exp and erf in f32x4 to float32 accuracy), in-place variants.
 */
import type { DataArray, FloatArray } from '../../src/tensor/dtype.ts';
import { binary, unary, type BinaryOp, type UnaryOp } from '../cpu/elementwise.ts';
import { collapse } from '../cpu/strided.ts';
import { BINARY_OPS, UNARY_OPS, type WasmBinaryOp, type WasmUnaryOp } from './module.ts';
import { getRuntime, splitRange, type WasmRuntime } from './runtime.ts';

/** How a call picks its path; the defaults are measured (bench/pointwise.ts), tests lower them to reach every path. */
export interface PointwiseOptions {
  /** The runtime (default: the shared one; null forces the reference). */
  runtime?: WasmRuntime | null;
  /**
   * Below this many elements the reference loop runs: the copies, the call and (for binary) the layout planning
   * cost ~0.3–1.3 µs, and measured, wasm overtook the reference between 256 and 1024 elements.
   */
  minElements?: number;
  /** From this many elements the wasm kernel splits over the threads (default: never, see above). */
  minParallel?: number;
}

export const POINTWISE_MIN_ELEMENTS = 512;
export const POINTWISE_MIN_PARALLEL = Infinity;

const isWasmUnary = (op: UnaryOp): op is WasmUnaryOp => (UNARY_OPS as readonly string[]).includes(op);
const isWasmBinary = (op: BinaryOp): op is WasmBinaryOp => (BINARY_OPS as readonly string[]).includes(op);

/** The runtime for a float32 call of `n` elements that the options let through to wasm; null: use the reference. */
export function pointwiseRuntime(n: number, opts: PointwiseOptions, arrays: readonly (DataArray | null)[]): WasmRuntime | null {
  if (n < (opts.minElements ?? POINTWISE_MIN_ELEMENTS)) return null;
  for (const a of arrays) if (a !== null && !(a instanceof Float32Array)) return null;
  return opts.runtime === undefined ? getRuntime() : opts.runtime;
}

/** Threads worth using for n elements of streaming work. */
export function pointwiseThreads(rt: WasmRuntime, n: number, opts: PointwiseOptions): number {
  return n >= (opts.minParallel ?? POINTWISE_MIN_PARALLEL) ? rt.threads : 1;
}

/** out[i] = op(x[i]); same contract as the reference `unary`. */
export function unaryWasm(op: UnaryOp, x: FloatArray, out: FloatArray, opts: PointwiseOptions = {}): void {
  const n = x.length;
  const rt = isWasmUnary(op) ? pointwiseRuntime(n, opts, [x, out]) : null;
  if (!rt || !isWasmUnary(op)) return unary(op, x, out);
  const mark = rt.mark();
  const xp = rt.alloc(n), yp = rt.alloc(n);
  rt.write(xp, x as Float32Array);
  // pieces start at multiples of 16 floats, so every thread's vectors stay 64-byte aligned
  const shares = splitRange(n, pointwiseThreads(rt, n, opts), 16);
  rt.runShares(`unary_${op}`, shares.map(([s, e]) => [xp + 4 * s, yp + 4 * s, e - s]));
  rt.read(yp, n, out as Float32Array);
  rt.reset(mark);
}

/**
 * The wasm form of a binary call: the contiguous operand `full`, the other read as (O, C, L) with strides
 * (sO, sC, sL), rev when the contiguous operand is the right-hand one. Null when the layout is not covered.
 */
interface BinaryPlan {
  full: Float32Array;
  other: Float32Array;
  rev: 0 | 1;
  O: number; C: number; L: number;
  sO: number; sC: number; sL: number;
  /** floats of `other` the kernel reads: 1 + its largest offset */
  span: number;
}

function planBinary(
  shape: readonly number[], a: Float32Array, aStrides: readonly number[], b: Float32Array, bStrides: readonly number[],
  outStrides: readonly number[],
): BinaryPlan | null {
  const { shape: dims, strides: [as, bs, os] } = collapse(shape, [aStrides, bStrides, outStrides]);
  const nd = dims.length;
  if (nd > 3) return null;
  // out must be contiguous over the merged axes
  for (let i = nd - 1, expect = 1; i >= 0; expect *= dims[i], i--) if (os[i] !== expect) return null;
  const same = (s: readonly number[]) => s.every((v, i) => v === os[i]);
  let full: Float32Array, other: Float32Array, st: readonly number[], rev: 0 | 1;
  if (same(as)) { full = a; other = b; st = bs; rev = 0; } else if (same(bs)) { full = b; other = a; st = as; rev = 1; } else return null;
  const pad = 3 - nd;
  const [O, C, L] = [...new Array<number>(pad).fill(1), ...dims];
  const [sO, sC, sL] = [...new Array<number>(pad).fill(0), ...st];
  if (sL !== 0 && sL !== 1) return null;
  if (sO < 0 || sC < 0) return null;
  const span = (O - 1) * sO + (C - 1) * sC + (L - 1) * sL + 1;
  if (span > other.length || O * C * L > full.length) return null;
  return { full, other, rev, O, C, L, sO, sC, sL, span };
}

/**
 * out = a ∘ b over `shape` with broadcast strides; same contract as the reference `binary` (out contiguous here:
 * a layout with a strided out goes to the reference).
 */
export function binaryWasm(
  op: BinaryOp, shape: readonly number[],
  a: FloatArray, aStrides: readonly number[], b: FloatArray, bStrides: readonly number[],
  out: Exclude<DataArray, BigInt64Array>, outStrides: readonly number[], opts: PointwiseOptions = {},
): void {
  let n = 1;
  for (const d of shape) n *= d;
  if (n === 0) return;
  const rt = isWasmBinary(op) ? pointwiseRuntime(n, opts, [a, b, out]) : null;
  const plan = rt ? planBinary(shape, a as Float32Array, aStrides, b as Float32Array, bStrides, outStrides) : null;
  if (!rt || !plan || !isWasmBinary(op)) return binary(op, shape, a, aStrides, b, bStrides, out, outStrides);
  const { full, other, rev, O, C, L, sO, sC, sL, span } = plan;
  const mark = rt.mark();
  const fp = rt.alloc(n), bp = rt.alloc(span), yp = rt.alloc(n);
  rt.write(fp, full, 0, n);
  rt.write(bp, other, 0, span);
  const threads = pointwiseThreads(rt, n, opts);
  const rows = O * C;
  let shares: number[][];
  if (rows === 1) {
    // one long row (same shape or a scalar): split its elements; a splatted operand stays where it is
    shares = splitRange(L, threads, 16).map(([s, e]) => [rev, fp + 4 * s, bp + 4 * s * sL, yp + 4 * s, 0, 1, 1, e - s, 0, 0, sL]);
  } else {
    shares = splitRange(rows, threads).map(([r0, r1]) => [rev, fp, bp, yp, r0, r1, C, L, sO, sC, sL]);
  }
  rt.runShares(`binary_${op}`, shares);
  rt.read(yp, n, out as Float32Array);
  rt.reset(mark);
}
