/**
 * The convolution with a 4×4 kernel, stride 2 and padding 1 (whose backward input is the SparK decoder's
 * ConvTranspose2d(k4, s2, p1)) as four phases of Winograd F(3×3, 2×2): 2.25× fewer multiplies than im2col's.
 *
 * Split the input into its four phases x_pq[u, v] = x[2u + p, 2v + q] (p, q ∈ {0, 1}). Output row i reads input
 * rows 2i − 1 … 2i + 2, that is phase-0 rows i, i + 1 (kernel rows 1, 3) and phase-1 rows i − 1, i (kernel rows
 * 0, 2); so
 *   y[k, i, j] = Σ_c Σ_pq Σ_{d,e ∈ {0,1}} x_pq[c, i − p + d, j − q + e] · g_pq[d][e],  g_pq[d][e] = w[k, c, 1 − p + 2d, 1 − q + 2e],
 * four stride-1 correlations with 2×2 filters, each phase plane shifted by (p, q). Laid out as 4C planes (phase
 * (p, q) of channel c is plane (2p + q)·C + c, its data at row p, column q, zero around it), this is one
 * correlation with 4C input channels whose 3×3 output tiles read 4×4 patches of rows 3ty … 3ty + 3, and F(3, 2)
 * (points 0, 1, −1, ∞)
 *   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 −1 0 1],  G = [1 0; ½ ½; ½ −½; 0 1],  Aᵀ = [1 1 1 0; 0 1 −1 0; 0 1 1 1]
 * computes it with 16 multiplies per tile and channel pair instead of 36. winograd.ts runs the passes; its header
 * has the three gemms per ξ, here with U_ξ of K × 4C. The transforms are winograd_k4s2_module.ts's.
 */
import type { Conv2dParams } from '../cpu/conv2d.ts';
import type { WinogradOptions, WinogradPass, WinogradScheme } from './winograd.ts';

/**
 * Where it pays (N16, C→C, output size, fwd / bwd input / bwd weight on the bench machine, 2 threads, ms, im2col →
 * four-phase Winograd; the SparK decoder's transposed convolutions): C48 at 48²: 41/42/41 → 27/29/28; C96 at 24²:
 * 35/36/35 → 21/22/20; C192 at 12²: 42/37/44 → 18/19/17; C384 at 6²: 40/43/40 → 24/28/19; but C768 at 3²:
 * 42/48/46 → 50/77/26, where one tile per image leaves the gemms 16 columns against U's 16 × 768 × 3072 floats
 * (written by the filter transform, then packed); there only the weight gradient, which writes dU instead of
 * packing U, still gains. Below K4S2_MIN_SIZE output rows or columns (K4S2_MIN_SIZE_WEIGHT for the weight
 * gradient), or K4S2_MIN_CHANNELS channels in or out, im2col runs instead.
 */
export const K4S2_MIN_SIZE = 6;
export const K4S2_MIN_SIZE_WEIGHT = 3;
export const K4S2_MIN_CHANNELS = 16;

/**
 * Whether p is a 4×4, stride-2, padding-1 convolution of an even-sized input to half its size, one group, large
 * enough for `pass` to gain.
 */
export function k4s2Applies(p: Conv2dParams, opts: WinogradOptions = {}, pass: WinogradPass = 'forward'): boolean {
  return p.groups === 1 && p.R === 4 && p.S === 4 && p.strideH === 2 && p.strideW === 2 && p.padH === 1 && p.padW === 1 &&
    p.dilationH === 1 && p.dilationW === 1 && p.H === 2 * p.OH && p.W === 2 * p.OW && p.N > 0 &&
    Math.min(p.OH, p.OW) >= (opts.winogradMinSize ?? (pass === 'weight' ? K4S2_MIN_SIZE_WEIGHT : K4S2_MIN_SIZE)) &&
    Math.min(p.C, p.K) >= Math.max(4, opts.winogradMinChannels ?? K4S2_MIN_CHANNELS);
}

export const K4S2: WinogradScheme = {
  m: 3,
  alpha: 4,
  kernels: { input: 'phaseInput', output: 'phaseOutput', outputGrad: 'phaseOutputGrad', inputGrad: 'phaseInputGrad' },
  chans: (p) => 4 * p.C,
  toPlanes(rt, xPtr, planes, p, t) {
    rt.runPieces(p.N * p.C, (a, b) => [['phaseSplit', [xPtr, p.H, p.W, planes, t.Hp, t.Wp, p.C, a, b]]]);
  },
  fromPlanes(rt, planes, dxPtr, p, t) {
    rt.runPieces(p.N * p.C, (a, b) => [['phaseMerge', [planes, p.H, p.W, dxPtr, t.Hp, t.Wp, p.C, a, b]]]);
  },
  filter(rt, wPtr, U, p) {
    rt.runPieces(p.K, (a, b) => [['wgPhaseFilter', [wPtr, a, b, p.K, p.C, U]]]);
  },
  filterGrad(rt, dU, dwPtr, p) {
    rt.runPieces(p.K, (a, b) => [['wgPhaseFilterGrad', [dU, a, b, p.K, p.C, dwPtr]]]);
  },
};
