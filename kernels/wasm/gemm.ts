/**
 * General matrix multiply on the WebAssembly SIMD kernels: C[M×N] (= or +=) op(A)[M×K] · op(B)[K×N], row-major,
 * exactly the contract of `kernels/cpu/gemm.ts` (its `gemmRef` is the reference twin), computed in float32.
 *
 * GotoBLAS structure: for each NC-wide panel of op(B) and KC-deep slice of K, the slice of op(B) is packed into
 * NR-wide strips (in wasm), then each MC-tall block of op(A) is packed into MR-tall strips and the macro-kernel
 * runs the MR×NR f32x4 micro-kernel over every (strip of A, strip of B) pair. The first K slice stores into C
 * (unless accumulating), later ones add, so C needs no zeroing pass. Sums are float32 in KC-deep runs, as in
 * PyTorch's CPU float32 gemm.
 *
 * `gemmPtr` works on operands already in wasm memory (byte addresses), for conv's im2col buffers: it allocates
 * only its packing buffers. `gemmCalls` lists the same kernel calls for one thread with its own scratch, so that
 * a caller with many independent gemms (conv2d.ts, one per image) can give each thread a whole gemm as a program.
 * `gemmWasm` is the typed-array entry: it copies A, B (unless resident) and C when accumulating in, and C out.
 * Float64 operands (gradient checks) go to the plain-JS gemm, which accumulates in doubles: the fast path is
 * float32.
 * Threads: with the runtime's worker pool, a C narrower than ROW_SPLIT_MAX_N columns splits its rows over the
 * threads (each packing and multiplying its own rows); otherwise each `macro` call is split over its nc columns at multiples of NR:
 * thread t runs macro(mc, js1 − js0, kc, pa, pb + js0·kc·4, pcBlock + js0·4, ldc, acc, its own tmp) on columns
 * [js0, js1) of the same packed block, the calling thread included. Packing stays on the calling thread.
 * Left out: strided operands, alpha/beta other than 0/1.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { gemm, type GemmParams } from '../cpu/gemm.ts';
import { MR, NR } from './module.ts';
import { getRuntime, requireRuntime, splitRange, type WasmRuntime } from './runtime.ts';
import type { ProgramCall } from './pool.ts';

/**
 * Block sizes in floats. A KC-deep NR strip of B (8 KiB) stays in L1 while the packed MC×KC block of A (128 KiB)
 * streams from L2; the KC×NC panel of B (up to 4 MiB) lives in L3.
 */
export const KC = 256;
export const MC = 128; // a multiple of MR
export const NC = 4096; // a multiple of NR

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/**
 * Multiply-adds below which a macro block runs on the calling thread alone: waking a worker and waiting for it
 * costs tens of microseconds, about what 2²² multiply-adds take on one core.
 */
const PARALLEL_MIN_WORK = 1 << 22;

/**
 * Columns of C below which a large gemm splits its rows over the threads (each packing its own rows of A) instead
 * of splitting each packed block's columns: with a narrow C, packing A (on the calling thread) cost as much as the
 * products. ResNet-18's last stage at 64² input (C = 512 × 64 columns, K = 4608) ran at 25 GFLOP/s that way.
 */
const ROW_SPLIT_MAX_N = 256;

/** One thread's gemm scratch (byte addresses): the packed MC×KC block of A, the packed KC×NC panel of B, an MR×NR edge tile. */
export interface GemmScratch { pa: number; pb: number; tmp: number }

/** Allocates a GemmScratch for gemms of at most p's sizes (valid until the enclosing reset). */
export function gemmScratch(rt: WasmRuntime, p: GemmParams): GemmScratch {
  return gemmScratchAt(rt.alloc(gemmScratchFloats(p)), p);
}

/** Floats of the scratch's three parts (packed A, packed B, edge tile), each rounded up to stay 64-byte aligned. */
function scratchParts(p: GemmParams): [number, number, number] {
  const kcMax = Math.min(KC, p.K);
  const part = (n: number) => roundUp(n, 16);
  return [part(Math.min(MC, roundUp(p.M, MR)) * kcMax), part(Math.min(NC, roundUp(p.N, NR)) * kcMax), part(MR * NR)];
}

/** The floats of p's packing scratch (see gemmScratchAt). */
export function gemmScratchFloats(p: GemmParams): number {
  const [pa, pb, tmp] = scratchParts(p);
  return pa + pb + tmp;
}

/** p's packing scratch laid out from byte address `base` (an absolute address, or a pool `local` one). */
export function gemmScratchAt(base: number, p: GemmParams): GemmScratch {
  const [pa, pb] = scratchParts(p);
  return { pa: base, pb: base + 4 * pa, tmp: base + 4 * (pa + pb) };
}

/**
 * Row strides in floats of the stored A, B and C, where they are wider than the matrices (default: contiguous,
 * that is the stored row length: K or M for A, N or K for B, N for C).
 */
export interface LeadingDims { a?: number; b?: number; c?: number }

/**
 * The kernel calls of C (=|+=) op(A)·op(B) on one thread, in order: per NC panel and KC slice, packB, then per MC
 * block packA and macro. The first K slice stores into C (unless accumulating), later ones add. K must be > 0 and
 * the scratch must be sized for p (gemmScratch). A worker can run the list as a program (ThreadPool.runPrograms).
 */
export function gemmCalls(p: GemmParams, aPtr: number, bPtr: number, cPtr: number, s: GemmScratch, ld: LeadingDims = {}): ProgramCall[] {
  const { M, N, K, transA, transB, accumulate } = p;
  if (K <= 0) throw new Error('gemmCalls: K must be positive');
  const calls: ProgramCall[] = [];
  // op(A)[i, k] is at a + (i·aI + k·aK)·4, op(B)[k, j] at b + (k·bK + j·bJ)·4, C[i, j] at c + (i·ldc + j)·4.
  const lda = ld.a ?? (transA ? M : K), ldb = ld.b ?? (transB ? K : N), ldc = ld.c ?? N;
  const aI = transA ? 1 : lda, aK = transA ? lda : 1;
  const bK = transB ? 1 : ldb, bJ = transB ? ldb : 1;
  for (let j0 = 0; j0 < N; j0 += NC) {
    const nc = Math.min(NC, N - j0);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kc = Math.min(KC, K - k0);
      calls.push(['packB', [bPtr + (k0 * bK + j0 * bJ) * 4, bJ, bK, nc, kc, s.pb]]);
      const acc = accumulate || k0 > 0 ? 1 : 0;
      for (let i0 = 0; i0 < M; i0 += MC) {
        const mc = Math.min(MC, M - i0);
        calls.push(['packA', [aPtr + (i0 * aI + k0 * aK) * 4, aI, aK, mc, kc, s.pa]]);
        calls.push(['macro', [mc, nc, kc, s.pa, s.pb, cPtr + (i0 * ldc + j0) * 4, ldc * 4, acc, s.tmp]]);
      }
    }
  }
  return calls;
}

/**
 * C (=|+=) op(A)·op(B) with A, B, C in the runtime's memory at byte addresses aPtr, bPtr, cPtr, laid out as
 * GemmParams says (A: M×K or K×M, B: K×N or N×K, C: M×N, all contiguous row-major): gemmCalls run here, each
 * large enough macro call split over the pool's threads by columns.
 */
export function gemmPtr(p: GemmParams, aPtr: number, bPtr: number, cPtr: number, rt: WasmRuntime = requireRuntime()): void {
  const { M, N, K, accumulate } = p;
  if (M === 0 || N === 0) return;
  if (K === 0) {
    if (!accumulate) rt.f32.fill(0, cPtr >>> 2, (cPtr >>> 2) + M * N);
    return;
  }
  const mark = rt.mark();
  const pool = rt.pool();
  const threads = pool ? pool.threads : 1;
  if (pool && N < ROW_SPLIT_MAX_N && M >= 2 * MC && M * N * K >= PARALLEL_MIN_WORK) {
    // Narrow C: packing A costs as much as the products, so each thread packs and multiplies its own rows.
    const lda = p.transA ? M : K;
    rt.runPrograms(splitRange(M, threads, MR).map(([i0, i1]) => {
      const sub = { ...p, M: i1 - i0 };
      const a = aPtr + (p.transA ? i0 : i0 * lda) * 4;
      return gemmCalls(sub, a, bPtr, cPtr + i0 * N * 4, gemmScratch(rt, sub), { a: lda });
    }));
    rt.reset(mark);
    return;
  }
  const scratch = gemmScratch(rt, p);
  const tmps = [scratch.tmp, ...Array.from({ length: threads - 1 }, () => rt.alloc(MR * NR))];
  const kern = rt.kernels as unknown as Record<string, (...args: number[]) => void>;
  for (const [name, args] of gemmCalls(p, aPtr, bPtr, cPtr, scratch)) {
    if (name === 'macro' && pool) {
      const [mc, nc, kc, pa, pb, pc, ldc, acc] = args;
      if (nc >= 2 * NR && mc * nc * kc >= PARALLEL_MIN_WORK) {
        pool.run('macro', columnShares(nc, threads).map(([js0, js1], t) => [mc, js1 - js0, kc, pa, pb + js0 * kc * 4, pc + js0 * 4, ldc, acc, tmps[t]]));
        continue;
      }
    }
    kern[name](...args);
  }
  rt.reset(mark);
}

/** Split nc columns into up to `threads` runs, each a multiple of NR wide (the last takes the rest). */
function columnShares(nc: number, threads: number): [number, number][] {
  const width = roundUp(Math.ceil(nc / threads), NR);
  const shares: [number, number][] = [];
  for (let js0 = 0; js0 < nc; js0 += width) shares.push([js0, Math.min(nc, js0 + width)]);
  return shares;
}

/** C (=|+=) op(A)·op(B) over typed arrays; same contract as `gemmRef`. Float64 operands use the JS gemm. */
export function gemmWasm(
  p: GemmParams, a: FloatArray, aOff: number, b: FloatArray, bOff: number, c: FloatArray, cOff: number,
): void {
  const rt = getRuntime();
  if (!rt || !(a instanceof Float32Array && b instanceof Float32Array && c instanceof Float32Array)) {
    gemm(p, a, aOff, b, bOff, c, cOff);
    return;
  }
  const { M, N, K } = p;
  if (M === 0 || N === 0) return;
  const mark = rt.mark();
  const aPtr = rt.place(a, aOff, M * K), bPtr = rt.place(b, bOff, K * N), cPtr = rt.alloc(M * N);
  if (p.accumulate) rt.write(cPtr, c, cOff, M * N);
  gemmPtr(p, aPtr, bPtr, cPtr, rt);
  rt.read(cPtr, M * N, c, cOff);
  rt.reset(mark);
}
