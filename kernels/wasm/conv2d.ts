/**
 * 2-D convolution and its two backward passes on the WebAssembly SIMD kernels, with the signatures and the
 * semantics of the fast versions in `kernels/cpu/conv2d.ts` (the `…Ref` loops there are the reference twins):
 *
 *   y[n, k, oh, ow] = Σ_{c ∈ group(k), r, s} w[k, c − c₀(k), r, s] · x[n, c, oh·sH − pH + r·dH, ow·sW − pW + s·dW]
 *
 * Per image n and group g, with the column matrix col[(c·R + r)·S + s, oh·OW + ow] (CgRS × P, P = OH·OW) built by
 * the wasm im2col:
 *   forward          y_g  (Kg × P)     = w_g (Kg × CgRS) · col
 *   backward input   dcol (CgRS × P)   = w_gᵀ · dy_g, then the wasm col2im sums dcol back into dx
 *   backward weight  dw_g (Kg × CgRS) += dy_g · colᵀ
 * each a `gemmPtr` over wasm memory; a 1×1, stride-1, unpadded convolution that keeps the size uses x itself as
 * col. Depthwise convolutions (G = C = K) with stride 1 take direct f32x4 kernels over a zero-bordered plane
 * (`dwCorr`, `dwGrad`); strided depthwise ones go to the JS kernels (rare in the models here: ConvNeXt's 7×7 and
 * the decoder's convs are stride 1).
 * Everything is float32 (sums in float32, as PyTorch's CPU float32 conv); Float64Array arguments (gradient checks)
 * go to the JS kernels, which sum in doubles.
 * 3×3, stride 1, padding 1, one group, at least 16 channels and 4 rows and columns: Winograd F(2×2, 3×3)
 * (winograd.ts).
 * At most 9 output positions per image, at least 8 images and a filter of more than one tap:
 * conv2d_positions.ts, a gemm per output position over the taps inside the image. Few output positions per image
 * (P < 256): conv2d_batched.ts runs chunks of images side by side in one gemm.
 * Threads: with enough images (see imageThreads), images go whole to the threads as tasks (im2col, the packing
 * and the gemm blocks of one image; ThreadPool.runTasks), each thread with its own column and packing buffers, so
 * a thread slowed by other work takes fewer of them; the weight gradient gives each thread a fixed run of images
 * (deterministic sums) and adds the partial sums at the end. Otherwise images run one
 * after another and only the gemm's large macro blocks split over the threads (gemmPtr). Depthwise stays on the
 * calling thread.
 * Left out: bias (an op adds it), other layouts.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import {
  conv2d, conv2dBackwardInput, conv2dBackwardWeight, type Conv2dParams,
} from '../cpu/conv2d.ts';
import { gemmCalls, gemmPtr, gemmScratchAt, gemmScratchFloats, type GemmScratch } from './gemm.ts';
import type { GemmParams } from '../cpu/gemm.ts';
import {
  batchesImages, conv2dBackwardInputBatched, conv2dBackwardWeightBatched, conv2dBatched, type BatchOptions,
} from './conv2d_batched.ts';
import {
  conv2dBackwardInputWinograd, conv2dBackwardWeightWinograd, conv2dWinograd, winogradScheme, type WinogradOptions,
} from './winograd.ts';
import {
  conv2dBackwardInputPositions, conv2dBackwardWeightPositions, conv2dPositions, positionsApply, type PositionsOptions,
} from './conv2d_positions.ts';
import type { ProgramCall } from './pool.ts';
import { getRuntime, type WasmRuntime } from './runtime.ts';

/** How a call picks its threading; tests lower the threshold and pass their own runtime to reach every path. */
export interface ConvOptions extends BatchOptions, WinogradOptions, PositionsOptions {
  /** The runtime (default: the shared one; null forces the JS kernels). */
  runtime?: WasmRuntime | null;
  /** Multiply-adds (N·K·OH·OW·Cg·R·S) from which images are split over the threads. */
  minImageParallelWork?: number;
}

/**
 * Below this many multiply-adds a convolution keeps its images on the calling thread (each gemm block still
 * splits when large enough): one wake-up and wait of the workers costs ~20 µs, about 2²⁰ multiply-adds.
 */
export const IMAGE_PARALLEL_MIN_WORK = 1 << 20;

/**
 * Output positions per image (P) from which the weight gradient splits images over threads. With few positions
 * the gemm per image is shallow and dw large: the SparK decoder's 768-channel convolutions at 3×3 and 6×6
 * outputs (P = 9, 36; dw of 9.4M and 5.3M floats) ran 1.1–2.6× slower with per-thread copies of dw than with
 * the gemm blocks split, while at P = 144 and 2304 splitting images was as fast or faster (bench machine, N = 8).
 */
const BWD_WEIGHT_MIN_POSITIONS = 64;

/** The runtime, when every array is float32 and wasm SIMD is here; otherwise null (use the JS kernels). */
function float32Runtime(opts: ConvOptions, ...arrays: FloatArray[]): WasmRuntime | null {
  for (const a of arrays) if (!(a instanceof Float32Array)) return null;
  return opts.runtime === undefined ? getRuntime() : opts.runtime;
}

/**
 * Threads to split the images over (1: the serial path, whose gemm blocks split by columns instead). Images go
 * whole to threads when there are enough of them to balance: N a multiple of the thread count, or at least twice it.
 */
function imageThreads(rt: WasmRuntime, p: Conv2dParams, opts: ConvOptions): number {
  const T = rt.threads, N = p.N;
  if (T <= 1 || N < T || (N % T !== 0 && N < 2 * T)) return 1;
  const work = N * p.K * p.OH * p.OW * (p.C / p.groups) * p.R * p.S;
  return work >= (opts.minImageParallelWork ?? IMAGE_PARALLEL_MIN_WORK) ? T : 1;
}

/**
 * One task per image (its calls for each group, from calls(n, g, col, scratch)) handed to whichever thread is
 * free, col (colFloats floats) and the gemm scratch being that thread's own; a thread slowed by other work takes
 * fewer images.
 */
function imageTasks(
  rt: WasmRuntime, p: Conv2dParams, colFloats: number, mm: GemmParams,
  calls: (n: number, g: number, col: number, scratch: GemmScratch) => ProgramCall[],
): void {
  const colBytes = 4 * Math.ceil(colFloats / 16) * 16; // whole 64-byte lines: the scratch after it stays aligned
  rt.runTasks(colBytes / 4 + gemmScratchFloats(mm), (local) => {
    const col = local(0), scratch = gemmScratchAt(local(colBytes), mm);
    return Array.from({ length: p.N }, (_, n) => Array.from({ length: p.groups }, (_, g) => calls(n, g, col, scratch)).flat());
  });
}

function isDepthwise(p: Conv2dParams): boolean {
  return p.groups === p.C && p.K === p.C;
}

function colIsInput(p: Conv2dParams): boolean {
  return p.R === 1 && p.S === 1 && p.strideH === 1 && p.strideW === 1 && p.padH === 0 && p.padW === 0 &&
    p.OH === p.H && p.OW === p.W;
}

/**
 * The outputs o ∈ [0, outSize) whose input position o·stride + offset lies in [0, inSize): one interval [lo, hi),
 * clamped into [0, outSize]. For a filter tap, offset = tap·dilation − pad; outside the interval it reads padding.
 */
export function validRange(offset: number, stride: number, inSize: number, outSize: number): [number, number] {
  const lo = Math.min(outSize, Math.max(0, Math.ceil(-offset / stride)));
  const hi = Math.min(outSize, Math.ceil((inSize - offset) / stride));
  return [lo, Math.max(lo, hi)];
}

/** Writes im2col's range table (see KernelExports.im2col) into wasm memory and returns its address. */
function rangeTable(rt: WasmRuntime, p: Conv2dParams): number {
  const ptr = rt.alloc(2 * (p.R + p.S));
  const t = rt.i32, at = ptr >>> 2;
  for (let r = 0; r < p.R; r++) {
    [t[at + 2 * r], t[at + 2 * r + 1]] = validRange(r * p.dilationH - p.padH, p.strideH, p.H, p.OH);
  }
  for (let s = 0; s < p.S; s++) {
    [t[at + 2 * (p.R + s)], t[at + 2 * (p.R + s) + 1]] = validRange(s * p.dilationW - p.padW, p.strideW, p.W, p.OW);
  }
  return ptr;
}

/** im2col's parameters after (x, col), as a tuple type for the spread call. */
type Im2colRest = [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];

/**
 * The im2col / col2im call for one image group (x or dx at byte address `image`); the column matrix's rows are
 * `ldcol` floats apart (default OH·OW: one image's matrix alone).
 */
function im2colArgs(p: Conv2dParams, ranges: number, ldcol = p.OH * p.OW): Im2colRest {
  const { C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, groups } = p;
  return [ranges, C / groups, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH, dilationW, ldcol];
}

/** Fast y = conv(x, w); same contract as `conv2dRef`. */
export function conv2dWasm(x: FloatArray, w: FloatArray, y: FloatArray, p: Conv2dParams, opts: ConvOptions = {}): void {
  const rt = float32Runtime(opts, x, w, y);
  if (!rt) return conv2d(x, w, y, p);
  if (isDepthwise(p)) {
    if (p.strideH === 1 && p.strideW === 1) return depthwiseForward(rt, x as Float32Array, w as Float32Array, y as Float32Array, p);
    return conv2d(x, w, y, p);
  }
  const wg = winogradScheme(p, opts);
  if (wg) return conv2dWinograd(rt, wg, x as Float32Array, w as Float32Array, y as Float32Array, p, opts);
  if (positionsApply(p, opts)) return conv2dPositions(rt, x as Float32Array, w as Float32Array, y as Float32Array, p);
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups, Kg = K / groups;
  const P = OH * OW, CRS = Cg * R * S, HW = H * W;
  if (N * K * P === 0) return;
  const mark = rt.mark();
  const direct = colIsInput(p);
  const wPtr = rt.place(w as Float32Array, 0, K * CRS);
  const ranges = rangeTable(rt, p);
  if (batchesImages(p, opts)) {
    conv2dBatched(rt, x as Float32Array, wPtr, y as Float32Array, p, ranges, opts);
    rt.reset(mark);
    return;
  }
  const args = im2colArgs(p, ranges);
  const mm = { M: Kg, N: P, K: CRS, transA: false, transB: false, accumulate: false };
  const threads = imageThreads(rt, p, opts);
  if (threads > 1) {
    // every image in memory; one task per image (im2col and the gemm of each group) on whichever thread is free,
    // with that thread's column and packing scratch
    const xAll = rt.alloc(N * C * HW), yAll = rt.alloc(N * K * P);
    rt.write(xAll, x as Float32Array, 0, N * C * HW);
    imageTasks(rt, p, direct ? 0 : CRS * P, mm, (n, g, col, scratch) => {
      const xg = xAll + (n * C + g * Cg) * HW * 4;
      return [
        ...(direct ? [] : [['im2col', [xg, col, ...args]] as ProgramCall]),
        ...gemmCalls(mm, wPtr + g * Kg * CRS * 4, direct ? xg : col, yAll + (n * K + g * Kg) * P * 4, scratch),
      ];
    });
    rt.read(yAll, N * K * P, y as Float32Array, 0);
    rt.reset(mark);
    return;
  }
  const xPtr = rt.alloc(C * HW), yPtr = rt.alloc(K * P);
  const colPtr = direct ? 0 : rt.alloc(CRS * P);
  for (let n = 0; n < N; n++) {
    rt.write(xPtr, x as Float32Array, n * C * HW, C * HW);
    for (let g = 0; g < groups; g++) {
      const xg = xPtr + g * Cg * HW * 4;
      if (!direct) rt.kernels.im2col(xg, colPtr, ...args);
      gemmPtr(mm, wPtr + g * Kg * CRS * 4, direct ? xg : colPtr, yPtr + g * Kg * P * 4, rt);
    }
    rt.read(yPtr, K * P, y as Float32Array, n * K * P);
  }
  rt.reset(mark);
}

/** Fast dx = transposed conv of dy with w; same contract as `conv2dBackwardInputRef`. */
export function conv2dBackwardInputWasm(dy: FloatArray, w: FloatArray, dx: FloatArray, p: Conv2dParams, opts: ConvOptions = {}): void {
  const rt = float32Runtime(opts, dy, w, dx);
  if (!rt) return conv2dBackwardInput(dy, w, dx, p);
  if (isDepthwise(p)) {
    if (p.strideH === 1 && p.strideW === 1) return depthwiseBackwardInput(rt, dy as Float32Array, w as Float32Array, dx as Float32Array, p);
    return conv2dBackwardInput(dy, w, dx, p);
  }
  const wg = winogradScheme(p, opts, 'input');
  if (wg) return conv2dBackwardInputWinograd(rt, wg, dy as Float32Array, w as Float32Array, dx as Float32Array, p, opts);
  if (positionsApply(p, opts)) return conv2dBackwardInputPositions(rt, dy as Float32Array, w as Float32Array, dx as Float32Array, p);
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups, Kg = K / groups;
  const P = OH * OW, CRS = Cg * R * S, HW = H * W;
  if (N * C * HW === 0) return;
  const mark = rt.mark();
  const direct = colIsInput(p);
  const wPtr = rt.place(w as Float32Array, 0, K * CRS);
  const ranges = rangeTable(rt, p);
  if (batchesImages(p, opts)) {
    conv2dBackwardInputBatched(rt, dy as Float32Array, wPtr, dx as Float32Array, p, ranges, opts);
    rt.reset(mark);
    return;
  }
  const args = im2colArgs(p, ranges);
  const mm = { M: CRS, N: P, K: Kg, transA: true, transB: false, accumulate: false };
  const threads = imageThreads(rt, p, opts);
  if (threads > 1) {
    // one task per image: per group, dcol = w_gᵀ·dy_g into the running thread's scratch, then col2im into dx
    // (disjoint per image)
    const dyAll = rt.alloc(N * K * P), dxAll = rt.alloc(N * C * HW);
    rt.write(dyAll, dy as Float32Array, 0, N * K * P);
    imageTasks(rt, p, direct ? 0 : CRS * P, mm, (n, g, dcol, scratch) => {
      const dxg = dxAll + (n * C + g * Cg) * HW * 4;
      return [
        ...gemmCalls(mm, wPtr + g * Kg * CRS * 4, dyAll + (n * K + g * Kg) * P * 4, direct ? dxg : dcol, scratch),
        ...(direct ? [] : [['col2im', [dcol, dxg, ...args]] as ProgramCall]),
      ];
    });
    rt.read(dxAll, N * C * HW, dx as Float32Array, 0);
    rt.reset(mark);
    return;
  }
  const dyPtr = rt.alloc(K * P), dxPtr = rt.alloc(C * HW);
  const dcolPtr = direct ? 0 : rt.alloc(CRS * P);
  for (let n = 0; n < N; n++) {
    rt.write(dyPtr, dy as Float32Array, n * K * P, K * P);
    for (let g = 0; g < groups; g++) {
      const dxg = dxPtr + g * Cg * HW * 4;
      if (direct) {
        gemmPtr(mm, wPtr + g * Kg * CRS * 4, dyPtr + g * Kg * P * 4, dxg, rt);
      } else {
        // With P = 0 the gemm writes nothing and col2im only zeroes dx_g, which is the answer.
        gemmPtr(mm, wPtr + g * Kg * CRS * 4, dyPtr + g * Kg * P * 4, dcolPtr, rt);
        rt.kernels.col2im(dcolPtr, dxg, ...args);
      }
    }
    rt.read(dxPtr, C * HW, dx as Float32Array, n * C * HW);
  }
  rt.reset(mark);
}

/** Fast dw = ∂⟨y, dy⟩/∂w; same contract as `conv2dBackwardWeightRef`. */
export function conv2dBackwardWeightWasm(x: FloatArray, dy: FloatArray, dw: FloatArray, p: Conv2dParams, opts: ConvOptions = {}): void {
  const rt = float32Runtime(opts, x, dy, dw);
  if (!rt) return conv2dBackwardWeight(x, dy, dw, p);
  if (isDepthwise(p)) {
    if (p.strideH === 1 && p.strideW === 1) return depthwiseBackwardWeight(rt, x as Float32Array, dy as Float32Array, dw as Float32Array, p);
    return conv2dBackwardWeight(x, dy, dw, p);
  }
  const wg = winogradScheme(p, opts, 'weight');
  if (wg) return conv2dBackwardWeightWinograd(rt, wg, x as Float32Array, dy as Float32Array, dw as Float32Array, p, opts);
  if (positionsApply(p, opts)) return conv2dBackwardWeightPositions(rt, x as Float32Array, dy as Float32Array, dw as Float32Array, p);
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups, Kg = K / groups;
  const P = OH * OW, CRS = Cg * R * S, HW = H * W;
  const mark = rt.mark();
  const direct = colIsInput(p);
  const dwPtr = rt.alloc(K * CRS);
  const ranges = rangeTable(rt, p);
  rt.zero(dwPtr, K * CRS);
  if (batchesImages(p, opts)) {
    conv2dBackwardWeightBatched(rt, x as Float32Array, dy as Float32Array, dwPtr, p, ranges, opts);
    rt.read(dwPtr, K * CRS, dw as Float32Array, 0);
    rt.reset(mark);
    return;
  }
  const args = im2colArgs(p, ranges);
  const mm = { M: Kg, N: CRS, K: P, transA: false, transB: true, accumulate: true };
  // Split images only when each image's gemm is deep enough (P ≥ BWD_WEIGHT_MIN_POSITIONS) that the per-thread
  // copies of dw, zeroed before and added after, cost little beside it; otherwise the gemm blocks split.
  const threads = P >= BWD_WEIGHT_MIN_POSITIONS ? imageThreads(rt, p, opts) : 1;
  if (threads > 1) {
    // each thread sums a fixed run of images into the dw of its own area; the partial sums are added at the end
    const xAll = rt.alloc(N * C * HW), dyAll = rt.alloc(N * K * P);
    rt.write(xAll, x as Float32Array, 0, N * C * HW);
    rt.write(dyAll, dy as Float32Array, 0, N * K * P);
    const dwBytes = 4 * Math.ceil((K * CRS) / 16) * 16, colBytes = direct ? 0 : 4 * CRS * P;
    const areas = rt.threadAreas((dwBytes + colBytes) / 4 + gemmScratchFloats(mm), threads);
    for (const area of areas) rt.zero(area, K * CRS);
    rt.runTasks(areas, (local) => {
      const part = local(0), col = local(dwBytes), scratch = gemmScratchAt(local(dwBytes + colBytes), mm);
      return Array.from({ length: N }, (_, n) => Array.from({ length: groups }, (_, g): ProgramCall[] => {
        const xg = xAll + (n * C + g * Cg) * HW * 4;
        return [
          ...(direct ? [] : [['im2col', [xg, col, ...args]] as ProgramCall]),
          ...gemmCalls(mm, dyAll + (n * K + g * Kg) * P * 4, direct ? xg : col, part + g * Kg * CRS * 4, scratch),
        ];
      }).flat());
    }, true);
    rt.addInto(areas[0], areas.slice(1), K * CRS);
    rt.read(areas[0], K * CRS, dw as Float32Array, 0);
    rt.reset(mark);
    return;
  }
  if (P > 0) {
    const xPtr = rt.alloc(C * HW), dyPtr = rt.alloc(K * P);
    const colPtr = direct ? 0 : rt.alloc(CRS * P);
    for (let n = 0; n < N; n++) {
      rt.write(xPtr, x as Float32Array, n * C * HW, C * HW);
      rt.write(dyPtr, dy as Float32Array, n * K * P, K * P);
      for (let g = 0; g < groups; g++) {
        const xg = xPtr + g * Cg * HW * 4;
        if (!direct) rt.kernels.im2col(xg, colPtr, ...args);
        gemmPtr(mm, dyPtr + g * Kg * P * 4, direct ? xg : colPtr, dwPtr + g * Kg * CRS * 4, rt);
      }
    }
  }
  rt.read(dwPtr, K * CRS, dw as Float32Array, 0);
  rt.reset(mark);
}

// ---------------------------------------------------------------------------------------------------------------
// Depthwise, stride 1. Each (image, channel) plane is copied into a zero-bordered plane in wasm memory, wide
// enough that every f32x4 load of a row (outputs rounded up to whole vectors, plus the filter's reach) stays
// inside it, so the kernels need no bounds tests:
//   forward          y[oh, ow]  = Σ w[r, s] · xPad[oh + r·dH, ow + s·dW],         xPad = x placed at (pH, pW)
//   backward input   dx[ih, iw] = Σ w[R−1−r, S−1−s] · dyPad[ih + r·dH, iw + s·dW], dyPad = dy placed at
//                    ((R−1)·dH − pH, (S−1)·dW − pW): the transposed correlation is a correlation with the flipped
//                    filter
//   backward weight  dw[r, s]   = Σ_{n, oh, ow} dy[oh, ow] · xPad[oh + r·dH, ow + s·dW]
// ---------------------------------------------------------------------------------------------------------------

const roundUp4 = (x: number) => Math.ceil(x / 4) * 4;

/**
 * Where a srcH × srcW plane lands in a zero-bordered planeH × planeW plane when placed at (offH, offW): the rows
 * [iLo, iHi) and columns [jLo, jHi) of the source that fall inside. Every (image, channel) plane lands on the same
 * positions, so a plane buffer is zeroed once per call and only those positions are overwritten after that.
 */
function placement(srcH: number, srcW: number, planeH: number, planeW: number, offH: number, offW: number) {
  const [iLo, iHi] = validRange(offH, 1, planeH, srcH);
  const [jLo, jHi] = validRange(offW, 1, planeW, srcW);
  return { iLo, iHi, jLo, jHi };
}

/** Copies the placed part of source plane `src` (byte address) into `plane`, see `placement`. */
function embed(
  rt: WasmRuntime, src: number, srcW: number, plane: number, planeW: number, offH: number, offW: number,
  at: ReturnType<typeof placement>,
): void {
  const { iLo, iHi, jLo, jHi } = at;
  if (iLo >= iHi || jLo >= jHi) return;
  rt.kernels.copyRows(src + (iLo * srcW + jLo) * 4, srcW, plane + ((offH + iLo) * planeW + offW + jLo) * 4, planeW,
    iHi - iLo, jHi - jLo);
}

/** Shared driver of the forward and backward-input correlations (one plane per (image, channel)). */
function depthwiseCorrelate(
  rt: WasmRuntime, src: Float32Array, srcH: number, srcW: number, w: Float32Array, out: Float32Array,
  p: Conv2dParams, outH: number, outW: number, offH: number, offW: number, flipped: boolean,
): void {
  const { N, C, R, S, dilationH, dilationW } = p;
  if (N * C * outH * outW === 0) return;
  const planeH = outH + (R - 1) * dilationH;
  const planeW = roundUp4(outW) + (S - 1) * dilationW;
  const at = placement(srcH, srcW, planeH, planeW, offH, offW);
  const mark = rt.mark();
  const srcPtr = rt.alloc(src.length), taps = rt.alloc(C * R * S), outPtr = rt.alloc(N * C * outH * outW);
  const plane = rt.alloc(planeH * planeW);
  rt.write(srcPtr, src);
  const f32 = rt.f32, t = taps >>> 2;
  f32.fill(0, plane >>> 2, (plane >>> 2) + planeH * planeW);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < R * S; i++) f32[t + c * R * S + i] = w[c * R * S + (flipped ? R * S - 1 - i : i)];
  }
  for (let c = 0; c < C; c++) {
    for (let n = 0; n < N; n++) {
      const nc = n * C + c;
      embed(rt, srcPtr + nc * srcH * srcW * 4, srcW, plane, planeW, offH, offW, at);
      rt.kernels.dwCorr(plane, planeW, taps + c * R * S * 4, R, S, dilationH, dilationW, outH, outW, outPtr + nc * outH * outW * 4);
    }
  }
  rt.read(outPtr, N * C * outH * outW, out, 0);
  rt.reset(mark);
}

function depthwiseForward(rt: WasmRuntime, x: Float32Array, w: Float32Array, y: Float32Array, p: Conv2dParams): void {
  depthwiseCorrelate(rt, x, p.H, p.W, w, y, p, p.OH, p.OW, p.padH, p.padW, false);
}

function depthwiseBackwardInput(rt: WasmRuntime, dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams): void {
  const offH = (p.R - 1) * p.dilationH - p.padH, offW = (p.S - 1) * p.dilationW - p.padW;
  depthwiseCorrelate(rt, dy, p.OH, p.OW, w, dx, p, p.H, p.W, offH, offW, true);
}

function depthwiseBackwardWeight(rt: WasmRuntime, x: Float32Array, dy: Float32Array, dw: Float32Array, p: Conv2dParams): void {
  const { N, C, H, W, R, S, OH, OW, padH, padW, dilationH, dilationW } = p;
  const planeH = OH + (R - 1) * dilationH;
  const planeW = roundUp4(OW) + (S - 1) * dilationW;
  const dyW = roundUp4(OW);
  const at = placement(H, W, planeH, planeW, padH, padW);
  const mark = rt.mark();
  const sums = rt.alloc(C * R * S);
  rt.f32.fill(0, sums >>> 2, (sums >>> 2) + C * R * S);
  if (OH * OW > 0) {
    const xPtr = rt.alloc(x.length), dyPtr = rt.alloc(dy.length);
    const plane = rt.alloc(planeH * planeW), dyPad = rt.alloc(OH * dyW);
    rt.write(xPtr, x);
    rt.write(dyPtr, dy);
    rt.f32.fill(0, plane >>> 2, (plane >>> 2) + planeH * planeW);
    rt.f32.fill(0, dyPad >>> 2, (dyPad >>> 2) + OH * dyW); // the lanes past OW stay 0
    for (let c = 0; c < C; c++) {
      for (let n = 0; n < N; n++) {
        const nc = n * C + c;
        embed(rt, xPtr + nc * H * W * 4, W, plane, planeW, padH, padW, at);
        rt.kernels.copyRows(dyPtr + nc * OH * OW * 4, OW, dyPad, dyW, OH, OW);
        rt.kernels.dwGrad(plane, planeW, dyPad, dyW, R, S, dilationH, dilationW, OH, OW, sums + c * R * S * 4);
      }
    }
  }
  rt.read(sums, C * R * S, dw, 0);
  rt.reset(mark);
}
