/**
 * 3×3 convolutions with stride 1, padding 1 and one group (the SparK decoder's and ResNet's main convolutions) by
 * Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, 2015): each 2×2 block of outputs takes 16 multiplies
 * per channel pair instead of 36, so the gemms do 2.25× fewer flops than im2col's.
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
import { gemmCalls, gemmScratch } from './gemm.ts';
import type { ProgramCall } from './pool.ts';
import type { WasmRuntime } from './runtime.ts';

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

/** Tests lower the thresholds to reach Winograd with small shapes (or raise them to Infinity to avoid it). */
export interface WinogradOptions { winogradMinChannels?: number; winogradMinSize?: number }

/** Whether p is a convolution this file computes (3×3, stride 1, padding 1, no dilation, one group, same size). */
export function winogradApplies(p: Conv2dParams, opts: WinogradOptions = {}): boolean {
  return p.groups === 1 && p.R === 3 && p.S === 3 && p.strideH === 1 && p.strideW === 1 && p.padH === 1 && p.padW === 1 &&
    p.dilationH === 1 && p.dilationW === 1 && p.OH === p.H && p.OW === p.W && p.N > 0 &&
    Math.min(p.H, p.W) >= (opts.winogradMinSize ?? WINOGRAD_MIN_SIZE) &&
    Math.min(p.C, p.K) >= (opts.winogradMinChannels ?? WINOGRAD_MIN_CHANNELS);
}

/** Sizes shared by the passes: tiles, their padded planes, the ξ matrices' row length. */
function tiling(p: Conv2dParams) {
  const TH = Math.ceil(p.H / 2), TW = Math.ceil(p.W / 2);
  const T = p.N * TH * TW;
  return {
    TH, TW, T, ldT: Math.ceil(T / 4) * 4,
    // the input padded by 1 on each side, to whole tiles plus the 4×4 patch's reach
    Hp: 2 * TH + 2, Wp: 2 * TW + 2,
    // outputs (and output gradients) rounded up to whole tiles
    Ho: 2 * TH, Wo: 2 * TW,
  };
}

/** The 16 gemms, ξ split over the threads whole; each gets its own packing scratch. */
function sixteenGemms(
  rt: WasmRuntime, mm: { M: number; N: number; K: number; transA: boolean; transB: boolean },
  a: (xi: number) => number, b: (xi: number) => number, c: (xi: number) => number, ld: { a?: number; b?: number; c?: number },
): void {
  const p = { ...mm, accumulate: false };
  rt.runSplit(16, (x0, x1) => {
    const scratch = gemmScratch(rt, p);
    const calls: ProgramCall[] = [];
    for (let xi = x0; xi < x1; xi++) calls.push(...gemmCalls(p, a(xi), b(xi), c(xi), scratch, ld));
    return calls;
  });
}

/** x (N, C, H, W) into a zeroed padded copy (N·C planes of Hp × Wp, image at (1, 1)); returns its address. */
function paddedInput(rt: WasmRuntime, x: Float32Array, p: Conv2dParams, Hp: number, Wp: number): number {
  const { N, C, H, W } = p;
  const xPtr = rt.alloc(N * C * H * W), xp = rt.alloc(N * C * Hp * Wp);
  rt.write(xPtr, x, 0, N * C * H * W);
  rt.f32.fill(0, xp >>> 2, (xp >>> 2) + N * C * Hp * Wp);
  rt.kernels.copyPlanes(xPtr, H * W, W, xp + (Wp + 1) * 4, Hp * Wp, Wp, H, W, N * C);
  return xp;
}

/** V = Bᵀ·d·B of every tile of x: 16 × C × ldT floats. */
function inputTransform(rt: WasmRuntime, x: Float32Array, p: Conv2dParams): number {
  const { TH, TW, T, ldT, Hp, Wp } = tiling(p);
  const xp = paddedInput(rt, x, p, Hp, Wp);
  const V = rt.alloc(16 * p.C * ldT);
  rt.runSplit(p.C, (c0, c1) => [['wgGather_input', [xp, Wp, Hp * Wp, p.C, c0, c1, T, TH, TW, V, ldT]]]);
  return V;
}

/** dM = A·dy·Aᵀ of every tile of dy (zero past an odd edge): 16 × K × ldT floats. */
function outputGradTransform(rt: WasmRuntime, dy: Float32Array, p: Conv2dParams): number {
  const { N, K, H, W } = p;
  const { TH, TW, T, ldT, Ho, Wo } = tiling(p);
  let dyp = rt.alloc(N * K * H * W);
  rt.write(dyp, dy, 0, N * K * H * W);
  if (Ho !== H || Wo !== W) {
    const even = rt.alloc(N * K * Ho * Wo);
    rt.f32.fill(0, even >>> 2, (even >>> 2) + N * K * Ho * Wo);
    rt.kernels.copyPlanes(dyp, H * W, W, even, Ho * Wo, Wo, H, W, N * K);
    dyp = even;
  }
  const dM = rt.alloc(16 * K * ldT);
  rt.runSplit(K, (k0, k1) => [['wgGather_outputGrad', [dyp, Wo, Ho * Wo, K, k0, k1, T, TH, TW, dM, ldT]]]);
  return dM;
}

/** U = G·g·Gᵀ of every filter: 16 × K × C floats (the filters split over the threads). */
function filterTransformIn(rt: WasmRuntime, w: Float32Array, p: Conv2dParams): number {
  const KC = p.K * p.C;
  const wPtr = rt.alloc(9 * KC), U = rt.alloc(16 * KC);
  rt.write(wPtr, w, 0, 9 * KC);
  rt.runSplit(KC, (a, b) => [['wgFilter', [wPtr, a, b, KC, U]]]);
  return U;
}

/** y = conv(x, w) for p with winogradApplies(p). */
export function conv2dWinograd(rt: WasmRuntime, x: Float32Array, w: Float32Array, y: Float32Array, p: Conv2dParams): void {
  const { N, C, K, H, W } = p;
  const { TH, TW, T, ldT, Ho, Wo } = tiling(p);
  const mark = rt.mark();
  const V = inputTransform(rt, x, p);
  const U = filterTransformIn(rt, w, p);
  const M = rt.alloc(16 * K * ldT);
  sixteenGemms(rt, { M: K, N: T, K: C, transA: false, transB: false },
    (xi) => U + xi * K * C * 4, (xi) => V + xi * C * ldT * 4, (xi) => M + xi * K * ldT * 4, { b: ldT, c: ldT });
  const yp = rt.alloc(N * K * Ho * Wo);
  rt.runSplit(K, (k0, k1) => [['wgScatter_output', [M, ldT, K, k0, k1, T, TH, TW, yp, Wo, Ho * Wo]]]);
  if (Ho === H && Wo === W) {
    rt.read(yp, N * K * H * W, y, 0);
  } else {
    const yPtr = rt.alloc(N * K * H * W);
    rt.kernels.copyPlanes(yp, Ho * Wo, Wo, yPtr, H * W, W, H, W, N * K);
    rt.read(yPtr, N * K * H * W, y, 0);
  }
  rt.reset(mark);
}

/** dx = ∂⟨conv(x, w), dy⟩/∂x for p with winogradApplies(p). */
export function conv2dBackwardInputWinograd(rt: WasmRuntime, dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams): void {
  const { N, C, K, H, W } = p;
  const { TH, TW, T, ldT, Hp, Wp } = tiling(p);
  const mark = rt.mark();
  const dM = outputGradTransform(rt, dy, p);
  const U = filterTransformIn(rt, w, p);
  const dV = rt.alloc(16 * C * ldT);
  sixteenGemms(rt, { M: C, N: T, K, transA: true, transB: false },
    (xi) => U + xi * K * C * 4, (xi) => dM + xi * K * ldT * 4, (xi) => dV + xi * C * ldT * 4, { b: ldT, c: ldT });
  const dxp = rt.alloc(N * C * Hp * Wp);
  rt.f32.fill(0, dxp >>> 2, (dxp >>> 2) + N * C * Hp * Wp);
  rt.runSplit(C, (c0, c1) => [['wgScatter_inputGrad', [dV, ldT, C, c0, c1, T, TH, TW, dxp, Wp, Hp * Wp]]]);
  const dxPtr = rt.alloc(N * C * H * W);
  rt.kernels.copyPlanes(dxp + (Wp + 1) * 4, Hp * Wp, Wp, dxPtr, H * W, W, H, W, N * C);
  rt.read(dxPtr, N * C * H * W, dx, 0);
  rt.reset(mark);
}

/** dw = ∂⟨conv(x, w), dy⟩/∂w for p with winogradApplies(p). */
export function conv2dBackwardWeightWinograd(rt: WasmRuntime, x: Float32Array, dy: Float32Array, dw: Float32Array, p: Conv2dParams): void {
  const { C, K } = p;
  const { T, ldT } = tiling(p);
  const mark = rt.mark();
  const V = inputTransform(rt, x, p);
  const dM = outputGradTransform(rt, dy, p);
  const dU = rt.alloc(16 * K * C);
  sixteenGemms(rt, { M: K, N: C, K: T, transA: false, transB: true },
    (xi) => dM + xi * K * ldT * 4, (xi) => V + xi * C * ldT * 4, (xi) => dU + xi * K * C * 4, { a: ldT, b: ldT });
  const dwPtr = rt.alloc(9 * K * C);
  rt.runSplit(K * C, (a, b) => [['wgFilterGrad', [dU, a, b, K * C, dwPtr]]]);
  rt.read(dwPtr, 9 * K * C, dw, 0);
  rt.reset(mark);
}
