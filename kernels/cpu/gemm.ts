/**
 * General matrix multiply over typed arrays: C[M×N] (= or +=) op(A)[M×K] · op(B)[K×N], row-major, where
 * op(X) is X or Xᵀ. `gemmRef` is the plain triple loop (the readable twin); `gemm` is the fast version:
 * cache blocking and packed panels in the GotoBLAS layout, with a 4×4 register-tiled micro-kernel.
 * Both accept Float32Array or Float64Array for any operand and accumulate in doubles (the fast one adds each
 * KC-deep partial sum into C, so a float32 C is rounded once per KC terms rather than once).
 * Left out: strided (non-contiguous) operands, alpha/beta scaling other than 0/1, threads, SIMD.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';

export interface GemmParams {
  M: number;
  N: number;
  K: number;
  /** A is stored K×M (so op(A) = Aᵀ) instead of M×K. */
  transA: boolean;
  /** B is stored N×K (so op(B) = Bᵀ) instead of K×N. */
  transB: boolean;
  /** C += op(A)·op(B) instead of C = op(A)·op(B). */
  accumulate: boolean;
}

/** Cᵢⱼ (=|+=) Σₖ op(A)ᵢₖ · op(B)ₖⱼ by the definition. */
export function gemmRef(
  p: GemmParams, a: FloatArray, aOff: number, b: FloatArray, bOff: number, c: FloatArray, cOff: number,
): void {
  const { M, N, K, transA, transB, accumulate } = p;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const aik = transA ? a[aOff + k * M + i] : a[aOff + i * K + k];
        const bkj = transB ? b[bOff + j * K + k] : b[bOff + k * N + j];
        sum += aik * bkj;
      }
      c[cOff + i * N + j] = accumulate ? c[cOff + i * N + j] + sum : sum;
    }
  }
}

/** Micro-tile: MR rows of op(A) times NR columns of op(B) are held in 16 local accumulators. */
const MR = 4;
const NR = 4;
/**
 * Block sizes. A KC-deep MR strip of A and NR strip of B (8 KiB each as doubles) stay in L1 while the
 * micro-kernel streams over them; the packed MC×KC block of A (128 KiB) stays in L2 while every B strip
 * of the KC×NC panel passes by it.
 */
const KC = 256;
const MC = 64; // a multiple of MR
const NC = 2048;

/**
 * Packing buffers and the micro-kernel's output tile, kept between calls only as a cache of scratch memory: they
 * hold nothing from one call to the next (packedB grows to the widest panel seen, at most KC×NC). Packing into
 * Float64Array also means the micro-kernel sees one array type whatever the callers' types, so V8 keeps it
 * monomorphic.
 */
const packedA = new Float64Array(MC * KC);
let packedB = new Float64Array(0);
const tile = new Float64Array(MR * NR);

/** Fast C (=|+=) op(A)·op(B); same contract as `gemmRef`. */
export function gemm(
  p: GemmParams, a: FloatArray, aOff: number, b: FloatArray, bOff: number, c: FloatArray, cOff: number,
): void {
  const { M, N, K, transA, transB } = p;
  if (M === 0 || N === 0) return;
  if (!p.accumulate) c.fill(0, cOff, cOff + M * N);
  if (K === 0) return;

  for (let j0 = 0; j0 < N; j0 += NC) {
    const nc = Math.min(NC, N - j0);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = Math.min(KC, K - k0);
      const bStrips = Math.ceil(nc / NR);
      if (packedB.length < bStrips * NR * kc) packedB = new Float64Array(bStrips * NR * kc);
      packB(b, bOff, transB, N, K, k0, kc, j0, nc, packedB);
      for (let i0 = 0; i0 < M; i0 += MC) {
        const mc = Math.min(MC, M - i0);
        const aStrips = Math.ceil(mc / MR);
        packA(a, aOff, transA, M, K, i0, mc, k0, kc, packedA);
        for (let js = 0; js < bStrips; js++) {
          const j = j0 + js * NR;
          const nValid = Math.min(NR, N - j);
          for (let is = 0; is < aStrips; is++) {
            const i = i0 + is * MR;
            microKernel(kc, packedA, is * MR * kc, packedB, js * NR * kc, tile);
            addTile(tile, Math.min(MR, M - i), nValid, c, cOff + i * N + j, N);
          }
        }
      }
    }
  }
}

/**
 * Packs op(A)[i0..i0+mc, k0..k0+kc] as strips of MR rows: dst[s·MR·kc + k·MR + r] = op(A)[i0 + s·MR + r, k0 + k].
 * Rows past M are zero, so the micro-kernel never needs an edge case.
 */
function packA(
  a: FloatArray, aOff: number, transA: boolean, M: number, K: number,
  i0: number, mc: number, k0: number, kc: number, dst: Float64Array,
): void {
  // op(A)[i, k] sits at a[aOff + i·rowStride + k·colStride].
  const rowStride = transA ? 1 : K;
  const colStride = transA ? M : 1;
  let d = 0;
  for (let is = 0; is < mc; is += MR) {
    const rows = Math.min(MR, mc - is);
    for (let k = 0; k < kc; k++) {
      const base = aOff + (i0 + is) * rowStride + (k0 + k) * colStride;
      for (let r = 0; r < MR; r++) dst[d++] = r < rows ? a[base + r * rowStride] : 0;
    }
  }
}

/**
 * Packs op(B)[k0..k0+kc, j0..j0+nc] as strips of NR columns: dst[s·NR·kc + k·NR + c] = op(B)[k0 + k, j0 + s·NR + c].
 * Columns past N are zero.
 */
function packB(
  b: FloatArray, bOff: number, transB: boolean, N: number, K: number,
  k0: number, kc: number, j0: number, nc: number, dst: Float64Array,
): void {
  // op(B)[k, j] sits at b[bOff + k·rowStride + j·colStride].
  const rowStride = transB ? 1 : N;
  const colStride = transB ? K : 1;
  let d = 0;
  for (let js = 0; js < nc; js += NR) {
    const cols = Math.min(NR, nc - js);
    for (let k = 0; k < kc; k++) {
      const base = bOff + (k0 + k) * rowStride + (j0 + js) * colStride;
      for (let col = 0; col < NR; col++) dst[d++] = col < cols ? b[base + col * colStride] : 0;
    }
  }
}

/** tile[r·NR + c] = Σₖ pa[aStart + k·MR + r] · pb[bStart + k·NR + c], with the 4×4 sums held in locals. */
function microKernel(
  kc: number, pa: Float64Array, aStart: number, pb: Float64Array, bStart: number, out: Float64Array,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  let ia = aStart;
  let ib = bStart;
  for (let k = 0; k < kc; k++, ia += MR, ib += NR) {
    const a0 = pa[ia], a1 = pa[ia + 1], a2 = pa[ia + 2], a3 = pa[ia + 3];
    const b0 = pb[ib], b1 = pb[ib + 1], b2 = pb[ib + 2], b3 = pb[ib + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  out[0] = c00; out[1] = c01; out[2] = c02; out[3] = c03;
  out[4] = c10; out[5] = c11; out[6] = c12; out[7] = c13;
  out[8] = c20; out[9] = c21; out[10] = c22; out[11] = c23;
  out[12] = c30; out[13] = c31; out[14] = c32; out[15] = c33;
}

/** C[r, col] += tile[r, col] for the rows × cols corner that lies inside C (row stride ldc). */
function addTile(t: Float64Array, rows: number, cols: number, c: FloatArray, cStart: number, ldc: number): void {
  for (let r = 0; r < rows; r++) {
    const row = cStart + r * ldc;
    for (let col = 0; col < cols; col++) c[row + col] += t[r * NR + col];
  }
}
