/**
 * Active-site convolution on the WebAssembly SIMD kernels: the convolution evaluated only at a list of output
 * sites (flat indices n·OH·OW + oh·OW + ow), zero elsewhere, with the signatures and semantics of
 * `kernels/cpu/active_conv.ts` (its `…Ref` functions, the dense reference restricted to the sites, are the twins).
 *
 * Sites are taken BLOCK at a time. For a block of m sites and group g, the wasm gather copies the receptive fields
 * into rows, cols[v, (c·R + r)·S + s] (m × span, span = Cg·R·S), and the outputs at the sites into dyRows[v, k]
 * (m × Kg); each pass is then one gemm:
 *   forward          yRows (m × Kg)   = cols · w_gᵀ, then scattered to y at the sites
 *   backward input   dcols (m × span) = dyRows · w_g, then added back onto dx at the fields' positions
 *   backward weight  dw_g (Kg × span) += dyRowsᵀ · cols
 * (The gather kernels can also write the transposed layout, span × m, which would let the gemm pack its large
 * operand with vector copies; but a row stride of m floats (2 KiB for m = 512) maps the 576 rows a site writes onto
 * a few L1 sets, and that gather ran 6× slower than the row-by-row one for a gemm no faster.)
 * 3×3 stride-1 convolutions that Winograd takes, with the sites in whole 2×2 tiles (SparK's patch masks), run
 * F(2×2, 3×3) over the active tiles instead (active_winograd.ts).
 * Depthwise convolutions (G = C = K) instead read zero-bordered copies of the planes directly, a filter row at a
 * time in f32x4 (see `depthwiseActive`); those with a column dilation other than 1 go to the JS kernel.
 * Float32 throughout; Float64Array arguments go to the JS kernels.
 * Threads: each block (gather, gemm, scatter) is a task, each thread with its own scratch. Outputs at distinct
 * sites are disjoint, so the forward's blocks go to whichever thread is free; so do dx's images (receptive fields
 * overlap only within an image: one task per image), with the sites in image order; dw (and dx otherwise) is
 * summed per thread over a fixed run of blocks and the copies added at the end, the same sums every run.
 * Left out: bias (the op adds it at the sites).
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import type { Conv2dParams } from '../cpu/conv2d.ts';
import { activeConv2d, activeConv2dBackwardInput, activeConv2dBackwardWeight } from '../cpu/active_conv.ts';
import { gemmCalls, gemmScratchAt, gemmScratchFloats, type GemmScratch } from './gemm.ts';
import type { GemmParams } from '../cpu/gemm.ts';
import type { ProgramCall } from './pool.ts';
import { ACT, ACT_SLOTS } from './module.ts';
import { validRange } from './conv2d.ts';
import { getRuntime, type WasmRuntime } from './runtime.ts';
import {
  activeConv2dBackwardInputWinograd, activeConv2dBackwardWeightWinograd, activeConv2dWinograd, activeWinogradTiles,
} from './active_winograd.ts';
import type { WinogradOptions } from './winograd.ts';

/** Sites per block: bounds the scratch to BLOCK·span floats per thread. */
const BLOCK = 512;

/** Multiply-adds (sites · span · Kg) from which the sites split over the threads (a wake-up costs ~20 µs). */
const PARALLEL_MIN_WORK = 1 << 21;

function isDepthwise(p: Conv2dParams): boolean {
  return p.groups === p.C && p.groups === p.K;
}

/** The runtime for an all-float32 call that the wasm kernels cover; null means: use the JS kernel. */
function runtimeFor(p: Conv2dParams, ...arrays: FloatArray[]): WasmRuntime | null {
  if (isDepthwise(p) && p.dilationW !== 1) return null;
  for (const a of arrays) if (!(a instanceof Float32Array)) return null;
  return getRuntime();
}

/** Allocates and fills the ACT parameter block and the sites; returns their addresses. */
function setup(rt: WasmRuntime, p: Conv2dParams, sites: Int32Array): { prm: number; sitesPtr: number } {
  const prm = rt.alloc(ACT_SLOTS);
  const sitesPtr = rt.alloc(sites.length);
  const v = { ...p, sH: p.strideH, sW: p.strideW, pH: p.padH, pW: p.padW, dH: p.dilationH, dW: p.dilationW,
    Cg: p.C / p.groups, Kg: p.K / p.groups };
  const i32 = rt.i32;
  for (const [name, slot] of Object.entries(ACT)) i32[(prm >>> 2) + slot] = v[name as keyof typeof ACT];
  i32.set(sites, sitesPtr >>> 2);
  return { prm, sitesPtr };
}

/**
 * Runs the sites BLOCK at a time, each block (per group) a task that the threads claim as they come free
 * (runtime.runTasks), or with partial sums a fixed run of blocks per thread, so that the sums do not depend on
 * timing; one thread when the work is too small to be worth waking the workers. Each thread's area
 * holds `sumFloats` floats of its own partial sums first (zeroed here), then its scratch: cols (BLOCK × span),
 * rows (BLOCK × Kg) and the gemm's packing buffers. body names them by the `local` addresses it is given. Returns
 * the byte addresses of the threads' partial sums.
 */
function runBlocks(
  rt: WasmRuntime, count: number, groups: number, span: number, Kg: number, mm: GemmParams, sumFloats: number, sitesPtr: number,
  body: (m: number, at: number, g: number, area: { sums: number; cols: number; rows: number; scratch: GemmScratch }) => ProgramCall[],
  units?: readonly [number, number][],
): number[] {
  const parts = count * span * Kg >= PARALLEL_MIN_WORK ? rt.threads : 1;
  const sumBytes = 4 * Math.ceil(sumFloats / 16) * 16, colBytes = 4 * BLOCK * span, rowBytes = 4 * BLOCK * Kg;
  const areas = rt.threadAreas((sumBytes + colBytes + rowBytes) / 4 + gemmScratchFloats(mm), parts);
  for (const area of areas) rt.zero(area, sumFloats);
  rt.runTasks(areas, (local) => {
    const area = {
      sums: local(0), cols: local(sumBytes), rows: local(sumBytes + colBytes),
      scratch: gemmScratchAt(local(sumBytes + colBytes + rowBytes), mm),
    };
    const tasks: ProgramCall[][] = [];
    for (let g = 0; g < groups; g++) {
      if (units) {
        // one task per unit: its blocks in order, on one thread
        for (const [u0, u1] of units) {
          const calls: ProgramCall[] = [];
          for (let b = u0; b < u1; b += BLOCK) calls.push(...body(Math.min(BLOCK, u1 - b), sitesPtr + b * 4, g, area));
          tasks.push(calls);
        }
      } else {
        for (let b = 0; b < count; b += BLOCK) tasks.push(body(Math.min(BLOCK, count - b), sitesPtr + b * 4, g, area));
      }
    }
    return tasks;
  }, sumFloats > 0);
  return areas;
}

/**
 * The [first, end) ranges of each image's sites (image n = site ÷ positions), or null where the sites are not in
 * image order. Receptive fields of sites in different images never overlap.
 */
function imageRanges(sites: Int32Array, positions: number): [number, number][] | null {
  const out: [number, number][] = [];
  let start = 0;
  for (let v = 1; v <= sites.length; v++) {
    const prev = Math.floor(sites[v - 1] / positions);
    if (v < sites.length && Math.floor(sites[v] / positions) === prev) continue;
    if (v < sites.length && Math.floor(sites[v] / positions) < prev) return null;
    out.push([start, v]);
    start = v;
  }
  return out;
}

export function activeConv2dWasm(x: FloatArray, w: FloatArray, y: FloatArray, p: Conv2dParams, sites: Int32Array, opts: WinogradOptions = {}): void {
  const rt = runtimeFor(p, x, w, y);
  if (!rt) return activeConv2d(x, w, y, p, sites);
  if (isDepthwise(p)) return depthwiseActive(rt, 'fwd', x as Float32Array, w as Float32Array, y as Float32Array, p, sites);
  const active = activeWinogradTiles(p, sites, opts);
  if (active) return activeConv2dWinograd(rt, x as Float32Array, w as Float32Array, y as Float32Array, p, sites, active);
  const Kg = p.K / p.groups, span = (p.C / p.groups) * p.R * p.S;
  const mark = rt.mark();
  const { prm, sitesPtr } = setup(rt, p, sites);
  const xPtr = rt.alloc(x.length), wPtr = rt.place(w as Float32Array), yPtr = rt.alloc(y.length);
  rt.write(xPtr, x as Float32Array);
  rt.zero(yPtr, y.length);
  const mm = (m: number) => ({ M: m, N: Kg, K: span, transA: false, transB: true, accumulate: false });
  // outputs at distinct sites: the blocks write disjoint parts of y
  runBlocks(rt, sites.length, p.groups, span, Kg, mm(BLOCK), 0, sitesPtr, (m, at, g, { cols, rows, scratch }) => [
    ['actGather', [prm, xPtr, at, m, cols, g, span, 1]],
    ...gemmCalls(mm(m), cols, wPtr + g * Kg * span * 4, rows, scratch),
    ['actScatterOut', [prm, yPtr, at, m, rows, g, Kg, 1]],
  ]);
  rt.read(yPtr, y.length, y as Float32Array);
  rt.reset(mark);
}

export function activeConv2dBackwardInputWasm(dy: FloatArray, w: FloatArray, dx: FloatArray, p: Conv2dParams, sites: Int32Array, opts: WinogradOptions = {}): void {
  const rt = runtimeFor(p, dy, w, dx);
  if (!rt) return activeConv2dBackwardInput(dy, w, dx, p, sites);
  if (isDepthwise(p)) return depthwiseActive(rt, 'in', dy as Float32Array, w as Float32Array, dx as Float32Array, p, sites);
  const active = activeWinogradTiles(p, sites, opts);
  if (active) return activeConv2dBackwardInputWinograd(rt, dy as Float32Array, w as Float32Array, dx as Float32Array, p, sites, active);
  const Kg = p.K / p.groups, span = (p.C / p.groups) * p.R * p.S;
  const mark = rt.mark();
  const { prm, sitesPtr } = setup(rt, p, sites);
  const dyPtr = rt.alloc(dy.length), wPtr = rt.place(w as Float32Array);
  rt.write(dyPtr, dy as Float32Array);
  const mm = (m: number) => ({ M: m, N: span, K: Kg, transA: false, transB: false, accumulate: false });
  const images = imageRanges(sites, p.OH * p.OW);
  if (images) {
    // Receptive fields overlap only within an image: one task per image (and group) adds into the one dx, any
    // thread may take it, and every element's sum runs in the same order.
    const dxPtr = rt.alloc(dx.length);
    rt.zero(dxPtr, dx.length);
    runBlocks(rt, sites.length, p.groups, span, Kg, mm(BLOCK), 0, sitesPtr, (m, at, g, { cols, rows, scratch }) => [
      ['actGatherOut', [prm, dyPtr, at, m, rows, g, Kg, 1]],
      ...gemmCalls(mm(m), rows, wPtr + g * Kg * span * 4, cols, scratch),
      ['actScatter', [prm, dxPtr, at, m, cols, g, span, 1]],
    ], images);
    rt.read(dxPtr, dx.length, dx as Float32Array);
    rt.reset(mark);
    return;
  }
  // sites out of image order: each thread adds a fixed run of blocks into its own copy of dx
  const dxs = runBlocks(rt, sites.length, p.groups, span, Kg, mm(BLOCK), dx.length, sitesPtr, (m, at, g, { sums, cols, rows, scratch }) => [
    ['actGatherOut', [prm, dyPtr, at, m, rows, g, Kg, 1]],
    ...gemmCalls(mm(m), rows, wPtr + g * Kg * span * 4, cols, scratch),
    ['actScatter', [prm, sums, at, m, cols, g, span, 1]],
  ]);
  rt.addInto(dxs[0], dxs.slice(1), dx.length);
  rt.read(dxs[0], dx.length, dx as Float32Array);
  rt.reset(mark);
}

export function activeConv2dBackwardWeightWasm(x: FloatArray, dy: FloatArray, dw: FloatArray, p: Conv2dParams, sites: Int32Array, opts: WinogradOptions = {}): void {
  const rt = runtimeFor(p, x, dy, dw);
  if (!rt) return activeConv2dBackwardWeight(x, dy, dw, p, sites);
  if (isDepthwise(p)) return depthwiseActive(rt, 'w', x as Float32Array, dy as Float32Array, dw as Float32Array, p, sites);
  const active = activeWinogradTiles(p, sites, opts);
  if (active) return activeConv2dBackwardWeightWinograd(rt, x as Float32Array, dy as Float32Array, dw as Float32Array, p, sites, active);
  const Kg = p.K / p.groups, span = (p.C / p.groups) * p.R * p.S;
  const mark = rt.mark();
  const { prm, sitesPtr } = setup(rt, p, sites);
  const xPtr = rt.alloc(x.length), dyPtr = rt.alloc(dy.length);
  rt.write(xPtr, x as Float32Array);
  rt.write(dyPtr, dy as Float32Array);
  const mm = (m: number) => ({ M: Kg, N: span, K: m, transA: true, transB: false, accumulate: true });
  // each thread sums its blocks' products into its own dw
  const dws = runBlocks(rt, sites.length, p.groups, span, Kg, mm(BLOCK), dw.length, sitesPtr, (m, at, g, { sums, cols, rows, scratch }) => [
    ['actGather', [prm, xPtr, at, m, cols, g, span, 1]],
    ['actGatherOut', [prm, dyPtr, at, m, rows, g, Kg, 1]],
    ...gemmCalls(mm(m), rows, cols, sums + g * Kg * span * 4, scratch),
  ]);
  rt.addInto(dws[0], dws.slice(1), dw.length);
  rt.read(dws[0], dw.length, dw as Float32Array);
  rt.reset(mark);
}

/**
 * Depthwise at the sites. Each (image, channel) plane is copied into a zero-bordered plane (x placed at (pH, pW)),
 * large enough for every tap of every output: planeH = (OH−1)·sH + (R−1)·dH + 1 rows, planeW = (OW−1)·sW + S4
 * columns, S4 = S rounded up to 4. Filter row r is read as S4/4 f32x4 "vector taps" (columns 4j … 4j+3, zero past
 * S), padded with zero taps to a multiple of 4 vector taps; the wasm kernels (dwaFwd, dwaIn, dwaW) then need no
 * bounds tests. Needs dilationW = 1 (the 4 columns of a vector tap are adjacent).
 *   'fwd': a = x, b = w, out = y      'in': a = dy, b = w, out = dx      'w': a = x, b = dy, out = dw
 */
function depthwiseActive(
  rt: WasmRuntime, pass: 'fwd' | 'in' | 'w', a: Float32Array, b: Float32Array, out: Float32Array, p: Conv2dParams,
  sites: Int32Array,
): void {
  const { N, C, H, W, R, S, OH, OW, strideH, strideW, padH, padW, dilationH } = p;
  const P = OH * OW;
  const S4 = Math.ceil(S / 4) * 4, Sv = S4 / 4, T = R * Sv, T4 = Math.ceil(T / 4) * 4;
  const planeH = (OH - 1) * strideH + (R - 1) * dilationH + 1, planeW = (OW - 1) * strideW + S4;
  const planeSz = planeH * planeW;
  const [iLo, iHi] = validRange(padH, 1, planeH, H);
  const [jLo, jHi] = validRange(padW, 1, planeW, W);
  const mark = rt.mark();
  const tapOff = rt.alloc(T4), wv = rt.alloc(C * T4 * 4);
  const siteX = rt.alloc(sites.length), siteY = rt.alloc(sites.length);
  const planes = rt.alloc(N * C * planeSz), image = rt.alloc(N * C * H * W), outs = rt.alloc(N * C * P);
  const i32 = rt.i32, f32 = rt.f32;
  for (let t = 0; t < T4; t++) {
    const r = Math.floor(t / Sv), j = t % Sv;
    i32[(tapOff >>> 2) + t] = t < T ? (r * dilationH * planeW + 4 * j) * 4 : 0;
  }
  for (let v = 0; v < sites.length; v++) {
    const n = Math.floor(sites[v] / P), pos = sites[v] - n * P, oh = Math.floor(pos / OW), ow = pos - oh * OW;
    i32[(siteX >>> 2) + v] = (n * C * planeSz + oh * strideH * planeW + ow * strideW) * 4;
    i32[(siteY >>> 2) + v] = (n * C * P + pos) * 4;
  }
  // Filter vectors (or zeroed gradient sums): wv[c][t][l] = w[c, r, 4j + l] for vector tap t = r·Sv + j.
  rt.zero(wv, C * T4 * 4);
  if (pass !== 'w') {
    for (let c = 0; c < C; c++) {
      for (let r = 0; r < R; r++) {
        for (let s = 0; s < S; s++) f32[(wv >>> 2) + (c * T4 + r * Sv) * 4 + s] = b[(c * R + r) * S + s];
      }
    }
  }
  rt.zero(planes, N * C * planeSz);
  const k = rt.kernels;
  /** Copies image planes into the bordered planes (toPlanes) or the placed part back out of them. */
  const place = (toPlanes: boolean) => {
    if (iLo >= iHi || jLo >= jHi) return;
    for (let nc = 0; nc < N * C; nc++) {
      const img = image + (nc * H * W + iLo * W + jLo) * 4;
      const pl = planes + (nc * planeSz + (padH + iLo) * planeW + padW + jLo) * 4;
      if (toPlanes) k.copyRows(img, W, pl, planeW, iHi - iLo, jHi - jLo);
      else k.copyRows(pl, planeW, img, W, iHi - iLo, jHi - jLo);
    }
  };
  const args = [tapOff, T4, siteX, siteY, sites.length, C, planeSz * 4, P * 4, outs] as const;
  if (pass === 'fwd') {
    rt.write(image, a);
    place(true);
    rt.zero(outs, N * C * P);
    k.dwaFwd(planes, wv, ...args);
    rt.read(outs, N * C * P, out);
  } else if (pass === 'in') {
    rt.write(outs, a);
    k.dwaIn(planes, wv, ...args);
    rt.zero(image, N * C * H * W); // positions no tap reaches get 0
    place(false);
    rt.read(image, N * C * H * W, out);
  } else {
    rt.write(image, a);
    rt.write(outs, b);
    place(true);
    k.dwaW(planes, wv, ...args);
    for (let c = 0; c < C; c++) {
      for (let r = 0; r < R; r++) {
        for (let s = 0; s < S; s++) out[(c * R + r) * S + s] = f32[(wv >>> 2) + (c * T4 + r * Sv) * 4 + s];
      }
    }
  }
  rt.reset(mark);
}
