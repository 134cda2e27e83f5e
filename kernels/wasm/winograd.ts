/**
 * 3×3 convolutions with stride 1, padding 1 and one group (the SparK decoder's and ResNet's main convolutions) by
 * Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, 2015): each 2×2 block of outputs takes 16 multiplies
 * per channel pair instead of 36, so the gemms do 2.25× fewer flops than im2col's. On maps of F43_MIN_SIZE and
 * more, F(4×4, 3×3) (the F43 scheme below): 36 multiplies per 4×4 block, 4× fewer than im2col's.
 *
 * With d the 4×4 input patch of a tile (rows 2ty − 1 … 2ty + 2 of the zero-padded image), g a 3×3 filter and
 *   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 −1 −1],
 * the tile's 2×2 outputs are y = Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A, exactly the correlation in exact arithmetic. Summed over
 * input channels, each of the 16 entries ξ of the 4×4 transform is one gemm over all tiles t of all images:
 *   forward          M_ξ (K × T)  = U_ξ (K × C) · V_ξ (C × T),     U = G·g·Gᵀ, V = Bᵀ·d·B, then y = Aᵀ·M·A
 *   backward input   dV_ξ (C × T) = U_ξᵀ · dM_ξ,                   dM = A·dy·Aᵀ, then dx += B·dV·Bᵀ per tile
 *   backward weight  dU_ξ (K × C) = dM_ξ · V_ξᵀ,                   then dw = Gᵀ·dU·G
 * the backward passes being the exact adjoints of the forward's linear maps. The tile transforms run in wasm
 * (winograd_module.ts) with the channels split over the threads; the 16 gemms are split over the threads whole
 * (gemmCalls programs); the filter transforms (wasm too) split the filters. Float32 throughout, like the im2col path; the
 * transforms add a few roundings (|Bᵀ·d·B| ≤ 4·max|d|), so results differ from im2col's in the last bits.
 * conv2d.ts's `…Ref` twins in kernels/cpu are the reference; test/kernels/wasm/winograd.test.ts holds them equal.
 */
import type { Conv2dParams } from '../cpu/conv2d.ts';
import type { GemmParams } from '../cpu/gemm.ts';
import { gemmCalls, gemmScratchAt, gemmScratchFloats, type GemmScratch, type LeadingDims } from './gemm.ts';
import type { ProgramCall } from './pool.ts';
import { splitRange, type WasmRuntime } from './runtime.ts';
import { K4S2, k4s2Applies } from './winograd_k4s2.ts';

/**
 * Where Winograd pays (N16 fwd / bwd input / bwd weight on the bench machine, 2 threads, ms, im2col → Winograd):
 * C48→48 at 96²: 123/110/116 → 75/89/111; C384→384 at 12²: 117/111/78 → 41/40/51; C768→768 at 6²: 123/93/81 →
 * 78/79/58; C128→128 at 8²: 6.0/4.5/5.7 → 2.9/3.1/3.1; but C512→512 at 3²: 19/18/14 → 26/28/25 and at 2²: 11/11/8
 * → 14/15/14, where whole 2×2 tiles cover 16 outputs for 9 (or the 16 gemms are tiny). Below WINOGRAD_MIN_SIZE
 * rows or columns, or WINOGRAD_MIN_CHANNELS channels in or out (tile transforms cost O(C + K) per tile against
 * the gemms' O(C·K)), im2col runs instead.
 */
export const WINOGRAD_MIN_CHANNELS = 16;
export const WINOGRAD_MIN_SIZE = 4;
/**
 * Rows and columns from which F(4×4, 3×3) runs instead of F(2×2, 3×3). Measured (N16, 2 threads, ms fwd / bwd
 * input / bwd weight, F(2×2) → F(4×4); runs on this VM vary by 10–20%): C48→48 at 96² 47/45/50–62 → 40/39/57;
 * C96 at 48² 40/43/48 → 28/28/35; C192 at 24² 39/40/43 → 26/24/28; C384 at 12² 34–39/35–39/38–40 → 27–29/28–29/
 * 24–26; C64 at 16² 2.9–3.5/3.3/3.0–4.0 → 2.3–2.6/2.2–3.1/2.6–3.2; but C128 at 8² 2.3–3.0/2.5/2.2–2.7 →
 * 3.0–3.8/2.8–3.4/2.4–3.1, C768 at 6² 48/48/42 → 61/64/42 and C256 at 4² 2.8/3.3/2.4 → 4.3/4.9/3.2, where tiles of
 * 4 leave 16 to 64 gemm columns per image batch.
 */
export const F43_MIN_SIZE = 12;

/**
 * Tests lower the thresholds to reach Winograd with small shapes (or raise them to Infinity to avoid it), and
 * set the chunk size to reach the chunked passes (or Infinity to avoid them).
 */
export interface WinogradOptions {
  winogradMinChannels?: number; winogradMinSize?: number; winogradChunkTiles?: number;
  /** rows and columns from which F(4×4, 3×3) runs (default F43_MIN_SIZE; Infinity: never) */
  winograd43MinSize?: number;
  /** F(2×2, 3×3)'s input gradient by the adjoint's scatter-add rather than as a forward conv (tests, timing) */
  winogradScatterInputGrad?: boolean;
}

/** Whether p is a convolution this file computes (3×3, stride 1, padding 1, no dilation, one group, same size). */
export function winogradApplies(p: Conv2dParams, opts: WinogradOptions = {}): boolean {
  return p.groups === 1 && p.R === 3 && p.S === 3 && p.strideH === 1 && p.strideW === 1 && p.padH === 1 && p.padW === 1 &&
    p.dilationH === 1 && p.dilationW === 1 && p.OH === p.H && p.OW === p.W && p.N > 0 &&
    Math.min(p.H, p.W) >= (opts.winogradMinSize ?? WINOGRAD_MIN_SIZE) &&
    Math.min(p.C, p.K) >= (opts.winogradMinChannels ?? WINOGRAD_MIN_CHANNELS);
}

/**
 * What differs between the Winograd convolutions: this file's F(2×2, 3×3) and winograd_k4s2.ts's four-phase
 * F(3×3, 2×2). Both transform 4×4 input patches of tiles m outputs apart, so the 16 gemms and the passes below
 * are shared; a scheme says how the input becomes planes of patches and how filters become U.
 */
export interface WinogradScheme {
  /** outputs per tile side */
  m: number;
  /** input patch side, the transform's size: α² ξ entries, each a gemm (4, or 6 for F(4×4, 3×3)) */
  alpha: number;
  /** suffixes of the tile kernels: wgGather_<input>, wgScatter_<output>, wgGather_<outputGrad>, wgScatter_<inputGrad> */
  kernels: { input: string; output: string; outputGrad: string; inputGrad: string };
  /** input channels in the transform domain (U is α² matrices of K × chans) */
  chans(p: Conv2dParams): number;
  /** x (N, C, H, W) at xPtr into the zeroed input planes (N·chans planes of Hp × Wp) at planes */
  toPlanes(rt: WasmRuntime, xPtr: number, planes: number, p: Conv2dParams, t: Tiling): void;
  /** the adjoint read: dx (N, C, H, W) at dxPtr from the input-gradient planes */
  fromPlanes(rt: WasmRuntime, planes: number, dxPtr: number, p: Conv2dParams, t: Tiling): void;
  /** U from the filters at wPtr (the threads split the filters) */
  filter(rt: WasmRuntime, wPtr: number, U: number, p: Conv2dParams): void;
  /** the adjoint: dw at dwPtr from dU */
  filterGrad(rt: WasmRuntime, dU: number, dwPtr: number, p: Conv2dParams): void;
}

export type Tiling = ReturnType<typeof tiling>;

/** Sizes shared by the passes: tiles of m × m outputs, their α × α input planes, the ξ matrices' row length. */
export function tiling(p: Conv2dParams, m: number, alpha = 4) {
  const TH = Math.ceil(p.OH / m), TW = Math.ceil(p.OW / m);
  const T = p.N * TH * TW;
  return {
    TH, TW, T, ldT: Math.ceil(T / 4) * 4,
    // input planes: whole tiles plus the α×α patch's reach
    Hp: m * TH + alpha - m, Wp: m * TW + alpha - m,
    // outputs (and output gradients) rounded up to whole tiles
    Ho: m * TH, Wo: m * TW,
  };
}

/**
 * A filter transform (or its adjoint) run by kernel `name` over the K·C filters of a 3×3 bank, src → dst, the
 * filters split over the threads in pieces.
 */
function perFilter(name: string): (rt: WasmRuntime, src: number, dst: number, p: Conv2dParams) => void {
  return (rt, src, dst, p) => {
    const KC = p.K * p.C;
    rt.runPieces(KC, (a, b) => [[name, [src, a, b, KC, dst]]]);
  };
}

/** F(2×2, 3×3): the input padded by 1 on each side; U = G·g·Gᵀ per filter. */
export const SAME_3X3: WinogradScheme = {
  m: 2,
  alpha: 4,
  kernels: { input: 'input', output: 'output', outputGrad: 'outputGrad', inputGrad: 'inputGrad' },
  chans: (p) => p.C,
  toPlanes(rt, xPtr, planes, p, t) {
    rt.copyPlanes(xPtr, p.H * p.W, p.W, planes + (t.Wp + 1) * 4, t.Hp * t.Wp, t.Wp, p.H, p.W, p.N * p.C);
  },
  fromPlanes(rt, planes, dxPtr, p, t) {
    rt.copyPlanes(planes + (t.Wp + 1) * 4, t.Hp * t.Wp, t.Wp, dxPtr, p.H * p.W, p.W, p.H, p.W, p.N * p.C);
  },
  filter: perFilter('wgFilter'),
  filterGrad: perFilter('wgFilterGrad'),
};

/**
 * F(4×4, 3×3) (winograd43_module.ts has the matrices): the same convolution as SAME_3X3 with 6×6 patches of
 * tiles 4 apart, 36 gemms of a quarter of the tiles each (9/16 of F(2×2, 3×3)'s gemm flops), for maps large
 * enough that its tiles are not mostly padding (see F43_MIN_SIZE). Its input gradient always runs as a forward
 * convolution with the flipped filters (inputGradAsForward43): there is no scatter-add kernel for it, hence no
 * inputGrad suffix.
 */
export const F43: WinogradScheme = {
  m: 4,
  alpha: 6,
  kernels: { input: 'input43', output: 'output43', outputGrad: 'outputGrad43', inputGrad: '' },
  chans: (p) => p.C,
  toPlanes: SAME_3X3.toPlanes,
  fromPlanes: SAME_3X3.fromPlanes,
  filter: perFilter('wgFilter43'),
  filterGrad: perFilter('wgFilterGrad43'),
};

export type WinogradPass = 'forward' | 'input' | 'weight';

/**
 * The scheme for pass `pass` of p (F(2×2, 3×3), F(4×4, 3×3) from F43_MIN_SIZE, or the four-phase k4 s2 one), or
 * null where none applies.
 */
export function winogradScheme(p: Conv2dParams, opts: WinogradOptions = {}, pass: WinogradPass = 'forward'): WinogradScheme | null {
  if (winogradApplies(p, opts)) return Math.min(p.H, p.W) >= (opts.winograd43MinSize ?? F43_MIN_SIZE) ? F43 : SAME_3X3;
  if (k4s2Applies(p, opts, pass)) return K4S2;
  return null;
}

/**
 * Two ways to run a pass. With many tiles (large maps, few channels: V and M would be tens of MB, and each
 * stage would stream them through memory), each thread takes whole images and runs gather → 16 gemms → scatter
 * on chunks of about CHUNK_TILES tiles, so a chunk's ξ matrices stay in cache and the threads never wait on each
 * other between stages; images are disjoint, so the input gradient's overlapping tiles add without races. With
 * few tiles (deep layers: big filters, small maps), every stage runs over all tiles and the 16 gemms are split
 * over the threads whole. Measured (N16 at 96², 2 threads, ms fwd / bwd input / bwd weight, whole-tensor stages →
 * chunks of 1024 tiles): C48→48 61/73/102 → 47/60/79, C48→24 39/47/59 → 29/42/48. Chunks of 128–256 tiles were
 * slower than whole stages (forward 98 and 71 ms against 58: 16 gemms of a few calls each per chunk add up), and
 * at 48² and below (C96, and the k4 s2 scheme's C48 at 48²) chunks changed nothing measurable.
 */
export const CHUNK_TILES = 1024;

/**
 * Runs of chunks the chunked weight gradient sums separately (fewer with fewer chunks): the threads take runs as
 * they come free, and the sums do not depend on which thread took which. With one fixed run per thread instead,
 * the caller waited ~60 ms per SparK step for a slower worker.
 */
const WEIGHT_GRAD_RUNS = 8;

/** Floats past dU that wgFilterGrad43 may read (it loads four filters at a time; see winograd43_module.ts). */
const FILTER_GRAD_SLACK = 4;

/** A chunk: tile rows [ty0, ty0 + TH) of image n, or (ty0 = 0, TH the image's tile rows) T / (TH·TW) whole images from n. */
interface Chunk { n: number; ty0: number; TH: number; T: number }

/**
 * The chunks, in groups that touch disjoint images (a group: one image's row chunks, or one chunk of whole
 * images), or null where the pass should run whole-tensor stages instead (see CHUNK_TILES).
 */
function chunkPlan(rt: WasmRuntime, p: Conv2dParams, t: Tiling, opts: WinogradOptions): Chunk[][] | null {
  const threads = rt.threads, perImage = t.TH * t.TW, chunkTiles = opts.winogradChunkTiles ?? CHUNK_TILES;
  // at least a chunk per thread, and whole images to go round when a group is an image
  if (t.T < chunkTiles * threads || (perImage >= chunkTiles && p.N < threads)) return null;
  const groups: Chunk[][] = [];
  if (perImage >= chunkTiles) {
    const rows = Math.max(1, Math.floor(chunkTiles / t.TW));
    for (let n = 0; n < p.N; n++) {
      const group: Chunk[] = [];
      for (let ty0 = 0; ty0 < t.TH; ty0 += rows) {
        const TH = Math.min(rows, t.TH - ty0);
        group.push({ n, ty0, TH, T: TH * t.TW });
      }
      groups.push(group);
    }
  } else {
    const images = Math.floor(chunkTiles / perImage);
    for (let n = 0; n < p.N; n += images) groups.push([{ n, ty0: 0, TH: t.TH, T: Math.min(images, p.N - n) * perImage }]);
  }
  return groups;
}

/** The ξ-matrix row length that holds any chunk of the plan. */
function chunkLd(plan: Chunk[][]): number {
  return Math.ceil(Math.max(...plan.flat().map((c) => c.T)) / 4) * 4;
}

/** Byte address of chunk c's first tile row in planes of `chans` channels, Hp × Wp floats, tiles m apart. */
function chunkPlanes(base: number, c: Chunk, chans: number, Hp: number, Wp: number, m: number): number {
  return base + (c.n * chans * Hp * Wp + c.ty0 * m * Wp) * 4;
}

/**
 * The `count` gemms of the ξ entries, one task each, handed out to the threads as they come free; each thread
 * packs into its own scratch.
 */
export function xiGemms(
  rt: WasmRuntime, count: number, mm: { M: number; N: number; K: number; transA: boolean; transB: boolean },
  a: (xi: number) => number, b: (xi: number) => number, c: (xi: number) => number, ld: { a?: number; b?: number; c?: number },
): void {
  const p = { ...mm, accumulate: false };
  rt.runTasks(gemmScratchFloats(p), (local) => {
    const scratch = gemmScratchAt(local(0), p);
    return Array.from({ length: count }, (_, xi) => gemmCalls(p, a(xi), b(xi), c(xi), scratch, ld));
  });
}

/** The `count` gemms of one chunk (program calls), the ξ matrices at a(ξ), b(ξ), c(ξ). */
function chunkGemms(
  count: number, p: GemmParams, a: (xi: number) => number, b: (xi: number) => number, c: (xi: number) => number,
  scratch: GemmScratch, ld: LeadingDims,
): ProgramCall[] {
  const calls: ProgramCall[] = [];
  for (let xi = 0; xi < count; xi++) calls.push(...gemmCalls(p, a(xi), b(xi), c(xi), scratch, ld));
  return calls;
}

/** x's input planes (N·chans planes of Hp × Wp, zero outside the data, one float of slack). */
export function inputPlanes(rt: WasmRuntime, s: WinogradScheme, x: Float32Array, p: Conv2dParams, t: Tiling): number {
  const { N, C, H, W } = p;
  const chans = s.chans(p);
  const xPtr = rt.alloc(N * C * H * W), planes = rt.alloc(N * chans * t.Hp * t.Wp + 4);
  rt.write(xPtr, x, 0, N * C * H * W);
  rt.zero(planes, N * chans * t.Hp * t.Wp);
  s.toPlanes(rt, xPtr, planes, p, t);
  return planes;
}

/** dy's planes rounded up to whole tiles (N·K planes of Ho × Wo, zero past the data, one float of slack). */
function outputGradPlanes(rt: WasmRuntime, dy: Float32Array, p: Conv2dParams, t: Tiling): number {
  const { N, K, OH, OW } = p;
  const { Ho, Wo } = t;
  // the slack: 3-wide patches are read as 4 floats
  const dyp = rt.alloc(N * K * OH * OW + 4);
  rt.write(dyp, dy, 0, N * K * OH * OW);
  if (Ho === OH && Wo === OW) return dyp;
  const whole = rt.alloc(N * K * Ho * Wo + 4);
  rt.zero(whole, N * K * Ho * Wo);
  rt.copyPlanes(dyp, OH * OW, OW, whole, Ho * Wo, Wo, OH, OW, N * K);
  return whole;
}

/** V = Bᵀ·d·B of every tile of the input planes: α² × chans × ldT floats (whole-tensor stage). */
function inputTransform(rt: WasmRuntime, s: WinogradScheme, planes: number, p: Conv2dParams, t: Tiling): number {
  const chans = s.chans(p);
  const V = rt.alloc(s.alpha ** 2 * chans * t.ldT);
  rt.runPieces(chans, (c0, c1) => [[`wgGather_${s.kernels.input}`, [planes, t.Wp, t.Hp * t.Wp, chans, c0, c1, t.T, t.TH, t.TW, V, t.ldT]]]);
  return V;
}

/** dM = A·dy·Aᵀ of every tile of dy's planes: α² × K × ldT floats (whole-tensor stage). */
function outputGradTransform(rt: WasmRuntime, s: WinogradScheme, dyp: number, p: Conv2dParams, t: Tiling): number {
  const { K } = p;
  const dM = rt.alloc(s.alpha ** 2 * K * t.ldT);
  rt.runPieces(K, (k0, k1) => [[`wgGather_${s.kernels.outputGrad}`, [dyp, t.Wo, t.Ho * t.Wo, K, k0, k1, t.T, t.TH, t.TW, dM, t.ldT]]]);
  return dM;
}

/** U of every filter: α² × K × chans floats. */
export function filterTransform(rt: WasmRuntime, s: WinogradScheme, w: Float32Array, p: Conv2dParams): number {
  const size = p.K * p.C * p.R * p.S;
  const wPtr = rt.place(w, 0, size), U = rt.alloc(s.alpha ** 2 * p.K * s.chans(p));
  s.filter(rt, wPtr, U, p);
  return U;
}

/** y = conv(x, w) for p with a scheme s. */
export function conv2dWinograd(rt: WasmRuntime, s: WinogradScheme, x: Float32Array, w: Float32Array, y: Float32Array, p: Conv2dParams, opts: WinogradOptions = {}): void {
  const mark = rt.mark();
  const U = filterTransform(rt, s, w, p);
  const chans = s.chans(p);
  forwardPasses(rt, s, x, y, p, opts, { at: (xi) => U + xi * p.K * chans * 4, transposed: false });
  rt.reset(mark);
}

/**
 * The forward's stages (input transform, 16 gemms, output transform) for p, with U_ξ (K × chans) at u.at(ξ), or
 * stored transposed (chans × K, u.transposed) for the input gradient's use below.
 */
function forwardPasses(
  rt: WasmRuntime, s: WinogradScheme, x: Float32Array, y: Float32Array, p: Conv2dParams, opts: WinogradOptions,
  u: { at: (xi: number) => number; transposed: boolean },
): void {
  const { N, K, OH, OW } = p;
  const t = tiling(p, s.m, s.alpha);
  const { TH, TW, T, ldT, Ho, Wo, Hp, Wp } = t;
  const chans = s.chans(p), xis = s.alpha ** 2;
  const mark = rt.mark();
  const planes = inputPlanes(rt, s, x, p, t);
  const yp = rt.alloc(N * K * Ho * Wo);
  const plan = chunkPlan(rt, p, t, opts);
  if (plan) {
    // one task per chunk; each thread's area holds its V, M and packing scratch
    const ld = chunkLd(plan);
    const mm = { M: K, N: ld, K: chans, transA: u.transposed, transB: false, accumulate: false };
    const vF = xis * chans * ld, mF = xis * K * ld;
    rt.runTasks(vF + mF + gemmScratchFloats(mm), (local) => {
      const V = local(0), M = local(4 * vF), scratch = gemmScratchAt(local(4 * (vF + mF)), mm);
      return plan.flat().map((c): ProgramCall[] => [
        [`wgGather_${s.kernels.input}`, [chunkPlanes(planes, c, chans, Hp, Wp, s.m), Wp, Hp * Wp, chans, 0, chans, c.T, c.TH, TW, V, ld]],
        ...chunkGemms(xis, { ...mm, N: c.T }, u.at, (xi) => V + xi * chans * ld * 4, (xi) => M + xi * K * ld * 4, scratch, { b: ld, c: ld }),
        [`wgScatter_${s.kernels.output}`, [M, ld, K, 0, K, c.T, c.TH, TW, chunkPlanes(yp, c, K, Ho, Wo, s.m), Wo, Ho * Wo]],
      ]);
    });
  } else {
    const V = inputTransform(rt, s, planes, p, t);
    const M = rt.alloc(xis * K * ldT);
    xiGemms(rt, xis, { M: K, N: T, K: chans, transA: u.transposed, transB: false },
      u.at, (xi) => V + xi * chans * ldT * 4, (xi) => M + xi * K * ldT * 4, { b: ldT, c: ldT });
    rt.runPieces(K, (k0, k1) => [[`wgScatter_${s.kernels.output}`, [M, ldT, K, k0, k1, T, TH, TW, yp, Wo, Ho * Wo]]]);
  }
  if (Ho === OH && Wo === OW) {
    rt.read(yp, N * K * OH * OW, y, 0);
  } else {
    const yPtr = rt.alloc(N * K * OH * OW);
    rt.copyPlanes(yp, Ho * Wo, Wo, yPtr, OH * OW, OW, OH, OW, N * K);
    rt.read(yPtr, N * K * OH * OW, y, 0);
  }
  rt.reset(mark);
}

/**
 * F(2×2, 3×3)'s input gradient as a forward convolution: dx = conv(dy, w̃) with w̃[c, k, r, s] = w[k, c, 2 − r,
 * 2 − s] (stride 1, padding 1), whose tiles are stored, not added onto their overlapping neighbours. Its U needs no
 * transform of its own: G·flip(g) is G·g with entries 0 and 3 swapped, so Ũ_ξ = (U_π(ξ))ᵀ, π(4i + j) = 4q(i) +
 * q(j), q = (3, 1, 2, 0), and the gemm reads U transposed. Measured (N16, 2 threads, ms, scatter-add → as a forward):
 * C48→48 at 96² 57 → 44, C48→24 at 96² 39 → 25, C96 at 48² 45 → 39, C192 at 24² 41 → 38, C64 at 16² 2.8 → 2.4;
 * equal from C384 at 12² down.
 */
function inputGradAsForward(rt: WasmRuntime, dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams, opts: WinogradOptions): void {
  const mark = rt.mark();
  const U = filterTransform(rt, SAME_3X3, w, p);
  const q = [3, 1, 2, 0];
  const pi = (xi: number) => 4 * q[xi >> 2] + q[xi & 3];
  forwardPasses(rt, SAME_3X3, dy, dx, { ...p, C: p.K, K: p.C }, opts, { at: (xi) => U + pi(xi) * p.K * p.C * 4, transposed: true });
  rt.reset(mark);
}

/**
 * F(4×4, 3×3)'s input gradient, dx = conv(dy, w̃) as above. Flipping a filter maps its points a to 1/a, which
 * 0, ±1, ±2, ∞ do not close under, so w̃ (C × K × 3 × 3) is written out (wgFlipFilters) and transformed itself.
 */
function inputGradAsForward43(rt: WasmRuntime, dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams, opts: WinogradOptions): void {
  const { K, C } = p;
  const mark = rt.mark();
  const wPtr = rt.place(w, 0, K * C * 9), flipped = rt.alloc(K * C * 9), U = rt.alloc(F43.alpha ** 2 * K * C);
  rt.runPieces(K, (k0, k1) => [['wgFlipFilters', [wPtr, K, C, k0, k1, flipped]]]);
  const q = { ...p, C: K, K: C };
  F43.filter(rt, flipped, U, q);
  forwardPasses(rt, F43, dy, dx, q, opts, { at: (xi) => U + xi * K * C * 4, transposed: false });
  rt.reset(mark);
}

/** dx = ∂⟨conv(x, w), dy⟩/∂x for p with a scheme s. */
export function conv2dBackwardInputWinograd(rt: WasmRuntime, s: WinogradScheme, dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams, opts: WinogradOptions = {}): void {
  if (s === F43) return inputGradAsForward43(rt, dy, w, dx, p, opts);
  if (s === SAME_3X3 && !opts.winogradScatterInputGrad) return inputGradAsForward(rt, dy, w, dx, p, opts);
  const { N, C, K, H, W } = p;
  const t = tiling(p, s.m, s.alpha);
  const { TH, TW, T, ldT, Hp, Wp, Ho, Wo } = t;
  const chans = s.chans(p), xis = s.alpha ** 2;
  const mark = rt.mark();
  const dyp = outputGradPlanes(rt, dy, p, t);
  const U = filterTransform(rt, s, w, p);
  const dxp = rt.alloc(N * chans * Hp * Wp);
  rt.zero(dxp, N * chans * Hp * Wp);
  const plan = chunkPlan(rt, p, t, opts);
  if (plan) {
    // one task per group of chunks: a thread adds its tiles' overlaps into images no other thread touches
    const ld = chunkLd(plan);
    const mm = { M: chans, N: ld, K, transA: true, transB: false, accumulate: false };
    const mF = xis * K * ld, vF = xis * chans * ld;
    rt.runTasks(mF + vF + gemmScratchFloats(mm), (local) => {
      const dM = local(0), dV = local(4 * mF), scratch = gemmScratchAt(local(4 * (mF + vF)), mm);
      return plan.map((chunks) => chunks.flatMap((c): ProgramCall[] => [
        [`wgGather_${s.kernels.outputGrad}`, [chunkPlanes(dyp, c, K, Ho, Wo, s.m), Wo, Ho * Wo, K, 0, K, c.T, c.TH, TW, dM, ld]],
        ...chunkGemms(xis, { ...mm, N: c.T }, (xi) => U + xi * K * chans * 4, (xi) => dM + xi * K * ld * 4, (xi) => dV + xi * chans * ld * 4,
          scratch, { b: ld, c: ld }),
        [`wgScatter_${s.kernels.inputGrad}`, [dV, ld, chans, 0, chans, c.T, c.TH, TW, chunkPlanes(dxp, c, chans, Hp, Wp, s.m), Wp, Hp * Wp]],
      ]));
    });
  } else {
    const dM = outputGradTransform(rt, s, dyp, p, t);
    const dV = rt.alloc(xis * chans * ldT);
    xiGemms(rt, xis, { M: chans, N: T, K, transA: true, transB: false },
      (xi) => U + xi * K * chans * 4, (xi) => dM + xi * K * ldT * 4, (xi) => dV + xi * chans * ldT * 4, { b: ldT, c: ldT });
    rt.runPieces(chans, (c0, c1) => [[`wgScatter_${s.kernels.inputGrad}`, [dV, ldT, chans, c0, c1, T, TH, TW, dxp, Wp, Hp * Wp]]]);
  }
  const dxPtr = rt.alloc(N * C * H * W);
  s.fromPlanes(rt, dxp, dxPtr, p, t);
  rt.read(dxPtr, N * C * H * W, dx, 0);
  rt.reset(mark);
}

/** dw = ∂⟨conv(x, w), dy⟩/∂w for p with a scheme s. */
export function conv2dBackwardWeightWinograd(rt: WasmRuntime, s: WinogradScheme, x: Float32Array, dy: Float32Array, dw: Float32Array, p: Conv2dParams, opts: WinogradOptions = {}): void {
  const { C, K, R, S } = p;
  const t = tiling(p, s.m, s.alpha);
  const { T, ldT, TW, Hp, Wp, Ho, Wo } = t;
  const chans = s.chans(p), xis = s.alpha ** 2;
  const mark = rt.mark();
  const planes = inputPlanes(rt, s, x, p, t);
  const dyp = outputGradPlanes(rt, dy, p, t);
  let dU: number;
  const plan = chunkPlan(rt, p, t, opts);
  if (plan) {
    // Fixed runs of consecutive chunks, each a task that sums its chunks' dM·Vᵀ into a dU of its own; the runs'
    // sums are added in order at the end. Whichever thread takes a run, the sums and their order are the same.
    const ld = chunkLd(plan);
    const mm = { M: K, N: chans, K: ld, transA: false, transB: true, accumulate: true };
    const uF = xis * K * chans, vF = xis * chans * ld, mF = xis * K * ld;
    const chunks = plan.flat();
    const runs = splitRange(chunks.length, WEIGHT_GRAD_RUNS);
    const sums = rt.alloc(runs.length * uF + FILTER_GRAD_SLACK);
    rt.zero(sums, runs.length * uF);
    rt.runTasks(vF + mF + gemmScratchFloats(mm), (local) => {
      const V = local(0), dM = local(4 * vF), scratch = gemmScratchAt(local(4 * (vF + mF)), mm);
      return runs.map(([c0, c1], r) => chunks.slice(c0, c1).flatMap((c): ProgramCall[] => [
        [`wgGather_${s.kernels.input}`, [chunkPlanes(planes, c, chans, Hp, Wp, s.m), Wp, Hp * Wp, chans, 0, chans, c.T, c.TH, TW, V, ld]],
        [`wgGather_${s.kernels.outputGrad}`, [chunkPlanes(dyp, c, K, Ho, Wo, s.m), Wo, Ho * Wo, K, 0, K, c.T, c.TH, TW, dM, ld]],
        ...chunkGemms(xis, { ...mm, K: c.T }, (xi) => dM + xi * K * ld * 4, (xi) => V + xi * chans * ld * 4,
          (xi) => sums + (r * uF + xi * K * chans) * 4, scratch, { a: ld, b: ld }),
      ]));
    });
    rt.addInto(sums, runs.slice(1).map((_, r) => sums + (r + 1) * uF * 4), uF);
    dU = sums;
  } else {
    const V = inputTransform(rt, s, planes, p, t);
    const dM = outputGradTransform(rt, s, dyp, p, t);
    const whole = rt.alloc(xis * K * chans + FILTER_GRAD_SLACK);
    xiGemms(rt, xis, { M: K, N: chans, K: T, transA: false, transB: true },
      (xi) => dM + xi * K * ldT * 4, (xi) => V + xi * chans * ldT * 4, (xi) => whole + xi * K * chans * 4, { a: ldT, b: ldT });
    dU = whole;
  }
  const dwPtr = rt.alloc(K * C * R * S);
  s.filterGrad(rt, dU, dwPtr, p);
  rt.read(dwPtr, K * C * R * S, dw, 0);
  rt.reset(mark);
}
