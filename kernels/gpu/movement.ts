/**
 * Movement kernels on gpu.js: strided copy (permute, narrow, expand), writing a window of a copy (the adjoint
 * of narrow, and concat one part at a time), and the index-driven row copies indexSelect and its adjoint
 * indexAdd. Reference twins: kernels/cpu/copy.ts (stridedCopy into a contiguous destination) and
 * kernels/cpu/gather.ts. gather/scatterAdd along an axis are not here.
 *
 * writeWindow needs each output thread to know whether it lies in the window and at which part index. It
 * inverts `offset + Σ i_d·strides_d` by successive division, which is exact when the window is a sub-box of
 * a contiguous array (what narrow and cat produce), or more generally when, after merging axes and ordering
 * them by stride, every stride is positive and at least the extent n·w of the axis inside it: then
 * Σ_{inner} i_k·w_k < w_outer, so the digits are unique. Other windows (overlapping, interleaved) are refused.
 */
import { collapse } from '../cpu/strided.ts';
import { type GpuArray, type GpuIn, type GpuRuntime, type KernelThis, MAX_DIMS, viewConstants } from './runtime.ts';

const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

const stridedCopyKernel = function (this: KernelThis, x: number[], offset: number): number {
  return x[offset + stridedOffset(this.thread.x, this.constants.d1, this.constants.d2, this.constants.d3, this.constants.d4, this.constants.d5,
    this.constants.x0, this.constants.x1, this.constants.x2, this.constants.x3, this.constants.x4, this.constants.x5)];
};

/** out (contiguous over shape) = x[offset + Σ i_d·strides_d]. The offset is an argument: one kernel per view shape. */
export function stridedCopy(rt: GpuRuntime, shape: readonly number[], x: GpuIn, offset: number, strides: readonly number[]): GpuArray {
  const v = collapse(shape, [strides]);
  return rt.run('stridedCopy', stridedCopyKernel, size(shape), viewConstants('stridedCopy', v.shape, { x: v.strides[0] }), [x, offset]);
}

const copyKernel = function (this: KernelThis, x: number[]): number {
  return x[this.thread.x];
};

/**
 * Output i of the copy: rel = i − offset is split into digits q_k = ⌊rel / w_k⌋ from the outermost axis in,
 * each one's remainder passed on; i is in the window when rel ≥ 0, every q_k < n_k and the last remainder is 0,
 * and then it reads part[Σ q_k·p_k] (p_k: the part's stride along axis k; axes ordered by w, largest first).
 * Leading padded axes have n = 1 and w = the whole's length, so their digit is 0 for every rel in range.
 */
const writeWindowKernel = function (this: KernelThis, whole: number[], part: number[], offset: number): number {
  let rel = this.thread.x - offset;
  if (rel < 0) { return whole[this.thread.x]; }
  let q = idiv(rel, this.constants.w0);
  if (q >= this.constants.n0) { return whole[this.thread.x]; }
  rel = rel - q * this.constants.w0;
  let at = q * this.constants.p0;
  q = idiv(rel, this.constants.w1);
  if (q >= this.constants.n1) { return whole[this.thread.x]; }
  rel = rel - q * this.constants.w1;
  at = at + q * this.constants.p1;
  q = idiv(rel, this.constants.w2);
  if (q >= this.constants.n2) { return whole[this.thread.x]; }
  rel = rel - q * this.constants.w2;
  at = at + q * this.constants.p2;
  q = idiv(rel, this.constants.w3);
  if (q >= this.constants.n3) { return whole[this.thread.x]; }
  rel = rel - q * this.constants.w3;
  at = at + q * this.constants.p3;
  q = idiv(rel, this.constants.w4);
  if (q >= this.constants.n4) { return whole[this.thread.x]; }
  rel = rel - q * this.constants.w4;
  at = at + q * this.constants.p4;
  q = idiv(rel, this.constants.w5);
  if (q >= this.constants.n5) { return whole[this.thread.x]; }
  rel = rel - q * this.constants.w5;
  at = at + q * this.constants.p5;
  if (rel > 0) { return whole[this.thread.x]; }
  return part[at];
};

/**
 * A copy of whole (n elements) with part (contiguous over shape) written at offset + Σ i_d·strides_d.
 * The window must be a sub-box of a contiguous array (see the file comment) and lie inside whole.
 */
export function writeWindow(
  rt: GpuRuntime, whole: GpuIn, n: number, part: GpuIn, shape: readonly number[], offset: number, strides: readonly number[],
): GpuArray {
  const name = 'writeWindow';
  if (size(shape) === 0) return rt.run('movement.copy', copyKernel, n, {}, [whole]);
  const v = collapse(shape, [strides]);
  const nd = v.shape.length;
  if (nd > MAX_DIMS) throw new Error(`gpu kernel ${name}: ${nd} axes after merging; at most ${MAX_DIMS} are supported`);
  // merged axes with their window stride w and their stride p in the contiguous part, outermost (largest w) first
  const pStrides: number[] = [];
  for (let k = nd - 1, s = 1; k >= 0; k--) { pStrides[k] = s; s *= v.shape[k]; }
  // (a single element collapses to one axis of stride 0: any positive stride serves)
  const axes = v.shape.map((len, k) => ({ len, w: len === 1 ? 1 : v.strides[0][k], p: pStrides[k] })).sort((a, b) => b.w - a.w);
  let last = offset;
  for (let k = 0; k < nd; k++) {
    const ax = axes[k];
    const ok = ax.w > 0 && Number.isInteger(ax.w) && (k === nd - 1 || ax.w >= axes[k + 1].len * axes[k + 1].w);
    if (!ok) {
      throw new Error(`gpu kernel ${name}: the window ${JSON.stringify(shape)} at strides ${JSON.stringify(strides)} is not a sub-box of a contiguous array`);
    }
    last += (ax.len - 1) * ax.w;
  }
  if (!(Number.isInteger(offset) && offset >= 0 && last < n)) {
    throw new Error(`gpu kernel ${name}: the window reaches outside the ${n} elements of whole`);
  }
  const c: Record<string, number> = {};
  const pad = MAX_DIMS - nd;
  for (let k = 0; k < MAX_DIMS; k++) {
    const ax = k < pad ? { len: 1, w: n, p: 0 } : axes[k - pad];
    c[`n${k}`] = ax.len;
    c[`w${k}`] = ax.w;
    c[`p${k}`] = ax.p;
  }
  return rt.run(name, writeWindowKernel, n, c, [whole, part, offset]);
}

/** out[o, i, j] = x[o, index[i], j]: thread (o, i, j) of (outer, m, inner) reads row index[i]. */
const indexSelectKernel = function (this: KernelThis, x: number[], index: number[]): number {
  const oi = idiv(this.thread.x, this.constants.inner);
  const j = this.thread.x - oi * this.constants.inner;
  const o = idiv(oi, this.constants.m);
  const i = oi - o * this.constants.m;
  return x[(o * this.constants.n + index[i]) * this.constants.inner + j];
};

/** x (outer, n, inner) → (outer, index.length, inner). Indices are checked by the op layer. */
export function indexSelect(rt: GpuRuntime, x: GpuIn, outer: number, n: number, inner: number, index: Int32Array): GpuArray {
  const m = index.length;
  return rt.run('indexSelect', indexSelectKernel, outer * m * inner, { n, m, inner }, [x, Float32Array.from(index)]);
}

/**
 * indexAdd without repeats: dx[o, r, j] = dy[o, inv[r], j], or 0 where no index points at r (inv[r] = −1).
 * The inverse map is built on the host.
 */
const indexAddUniqueKernel = function (this: KernelThis, dy: number[], inv: number[]): number {
  const orow = idiv(this.thread.x, this.constants.inner);
  const j = this.thread.x - orow * this.constants.inner;
  const o = idiv(orow, this.constants.n);
  const r = orow - o * this.constants.n;
  const i = inv[r];
  if (i < 0) { return 0; }
  return dy[(o * this.constants.m + i) * this.constants.inner + j];
};

/**
 * indexAdd with repeats (no atomics on GL): dx[o, r, j] = Σ_{i: index[i] = r} dy[o, i, j], each output looping
 * over all m indices in order, so the float32 sum is the reference's, term for term.
 */
const indexAddLoopKernel = function (this: KernelThis, dy: number[], index: number[]): number {
  const orow = idiv(this.thread.x, this.constants.inner);
  const j = this.thread.x - orow * this.constants.inner;
  const o = idiv(orow, this.constants.n);
  const r = orow - o * this.constants.n;
  let acc = 0;
  for (let i = 0; i < this.constants.m; i++) {
    if (index[i] === r) {
      acc = acc + dy[(o * this.constants.m + i) * this.constants.inner + j];
    }
  }
  return acc;
};

const zerosKernel = function (this: KernelThis): number {
  return 0;
};

/** dy (outer, index.length, inner) added into zeros (outer, n, inner) at rows index. */
export function indexAdd(rt: GpuRuntime, dy: GpuIn, outer: number, n: number, inner: number, index: Int32Array): GpuArray {
  const m = index.length;
  const total = outer * n * inner;
  if (m === 0) return rt.run('movement.zeros', zerosKernel, total, {}, []);
  const inv = new Float32Array(n).fill(-1);
  let repeats = false;
  for (let i = 0; i < m; i++) {
    if (inv[index[i]] >= 0) { repeats = true; break; }
    inv[index[i]] = i;
  }
  if (!repeats) return rt.run('indexAdd.unique', indexAddUniqueKernel, total, { n, m, inner }, [dy, inv]);
  return rt.run('indexAdd.loop', indexAddLoopKernel, total, { n, m, inner }, [dy, Float32Array.from(index)]);
}

