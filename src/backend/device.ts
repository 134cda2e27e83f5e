/**
 * The device kernels: what a backend that keeps tensors in its own memory (gpu.js textures) offers the ops.
 * Unlike the host kernels (backend.ts), which write into arrays the op allocated, each of these returns a new
 * device copy that the caller owns. Inputs are device copies, or host float32 arrays uploaded for the call;
 * small host-side parameters (index lists, site lists) stay typed arrays. float32 only: an op on float64
 * tensors, or one a device backend lacks, runs on the host kernels (its device inputs come home first).
 * Every kernel here has its reference twin in kernels/cpu and is tested against it.
 */
import type { DeviceData } from '../tensor/tensor.ts';
import type { ArithOp, UnaryOp } from '../../kernels/cpu/elementwise.ts';
import type { ReduceOp } from '../../kernels/cpu/reduce.ts';
import type { Conv2dParams } from '../../kernels/cpu/conv2d.ts';
import type { ChannelShape } from '../../kernels/cpu/norm.ts';
import type { Pool2dParams, AvgPool2dParams, AdaptivePool2dParams } from '../../kernels/cpu/pool.ts';

export type DeviceIn = DeviceData | Float32Array;

/** Matrix product sizes: a (batch, M, K) or (batch, K, M) if transA; b (batch, K, N) or (batch, N, K) if transB. */
export interface BatchedGemm { batch: number; M: number; N: number; K: number; transA: boolean; transB: boolean }

/**
 * LAMB's per-tensor step (src/optim/lamb.ts step 3, spark-spec §8.4), with g already scaled by gradScale:
 *   g ← g·gradScale;  m ← β1·m + β3·g;  v ← β2·v + (1 − β2)·g²;  u = (m/bc1) / (√v/bc2Sqrt + eps) (+ wd·w if wd ≠ 0)
 *   ratio = adapt ? ‖w‖/‖u‖ (1 when either is 0; min(·, 1) with trustClip) : 1;   w ← w − lr·(u·ratio)
 */
export interface LambStep {
  lr: number; beta1: number; beta2: number; beta3: number; eps: number; weightDecay: number;
  /** 1 − β1^t, and √(1 − β2^t) (both 1 when bias correction is off) */
  bc1: number; bc2Sqrt: number;
  /** 1/clip: the global gradient-norm clip factor's inverse (1 when not clipping) */
  gradScale: number;
  /** apply the trust ratio (wd ≠ 0 or alwaysAdapt) */
  adapt: boolean;
  trustClip: boolean;
}

export interface DeviceKernels {
  /** The gpu.js mode running, e.g. 'headlessgl', 'webgl2', 'webasm', 'cpu'. */
  readonly mode: string;
  /** The gpu.js Kernel class the last kernel ran on, e.g. 'HeadlessGLKernel'. */
  kernelClass(): string;
  /** Device textures alive now. */
  liveTextures(): number;
  upload(x: Float32Array): DeviceData;
  fill(n: number, value: number): DeviceData;

  // elementwise (kernels/cpu/elementwise.ts)
  unary(op: UnaryOp, x: DeviceIn, n: number): DeviceData;
  /** a ∘ b over `shape`, a and b read through broadcast strides; the result is contiguous. */
  binary(op: ArithOp, shape: readonly number[], a: DeviceIn, aStrides: readonly number[], b: DeviceIn, bStrides: readonly number[]): DeviceData;
  /** cond ? a : b over `shape`, all three read through broadcast strides; cond nonzero means true. */
  where(shape: readonly number[], cond: DeviceIn, cStrides: readonly number[], a: DeviceIn, aStrides: readonly number[], b: DeviceIn, bStrides: readonly number[]): DeviceData;
  /** x·s + t with scalars: the optimizers' and losses' affine maps in one pass. */
  affine(x: DeviceIn, n: number, scale: number, shift: number): DeviceData;

  // movement (kernels/cpu/copy.ts, gather.ts)
  /** out (contiguous over shape) = x[offset + Σ i_d·strides_d]: permute, narrow, expand. */
  stridedCopy(shape: readonly number[], x: DeviceIn, offset: number, strides: readonly number[]): DeviceData;
  /** A copy of whole (n elements) with part (contiguous over shape) written at offset + Σ i_d·strides_d. */
  writeWindow(whole: DeviceIn, n: number, part: DeviceIn, shape: readonly number[], offset: number, strides: readonly number[]): DeviceData;
  /** x (outer, n, inner) → (outer, index.length, inner) */
  indexSelect(x: DeviceIn, outer: number, n: number, inner: number, index: Int32Array): DeviceData;
  /** dy (outer, index.length, inner) added into zeros (outer, n, inner) at rows index */
  indexAdd(dy: DeviceIn, outer: number, n: number, inner: number, index: Int32Array): DeviceData;

  // reductions (kernels/cpu/reduce.ts)
  /** reduce over `axes` of x (shape); the result has those axes removed (contiguous). */
  reduce(op: ReduceOp, x: DeviceIn, shape: readonly number[], axes: readonly number[]): DeviceData;

  // matrix product (kernels/cpu/gemm.ts, batch by batch)
  gemm(p: BatchedGemm, a: DeviceIn, b: DeviceIn): DeviceData;

  // convolutions (kernels/cpu/conv2d.ts; with sites, kernels/cpu/active_conv.ts: outputs only at those flat
  // positions n·OH·OW + oh·OW + ow, zero elsewhere, and dy read only there)
  conv2d(x: DeviceIn, w: DeviceIn, p: Conv2dParams, sites: Int32Array | null): DeviceData;
  conv2dBackwardInput(dy: DeviceIn, w: DeviceIn, p: Conv2dParams, sites: Int32Array | null): DeviceData;
  conv2dBackwardWeight(x: DeviceIn, dy: DeviceIn, p: Conv2dParams, sites: Int32Array | null): DeviceData;

  // normalisation (kernels/cpu/norm.ts); statistics stay on the device: (C) arrays
  channelStats(x: DeviceIn, s: ChannelShape): { mean: DeviceData; varBiased: DeviceData };
  /** invStd = 1/√(var + eps) */
  invStd(varBiased: DeviceIn, n: number, eps: number): DeviceData;
  channelNormalize(x: DeviceIn, s: ChannelShape, mean: DeviceIn, invStd: DeviceIn, gamma: DeviceIn, beta: DeviceIn): DeviceData;
  /** dx (null when not wanted), dGamma, dBeta; batchStats as in the reference */
  channelNormalizeBackward(g: DeviceIn, x: DeviceIn, s: ChannelShape, mean: DeviceIn, invStd: DeviceIn, gamma: DeviceIn, batchStats: boolean, wantDx: boolean):
    { dx: DeviceData | null; dGamma: DeviceData; dBeta: DeviceData };
  /** y, and the per-row mean and invStd (rows) */
  layerNormForward(x: DeviceIn, rows: number, D: number, eps: number, gamma: DeviceIn, beta: DeviceIn): { y: DeviceData; mean: DeviceData; invStd: DeviceData };
  layerNormBackward(g: DeviceIn, x: DeviceIn, rows: number, D: number, gamma: DeviceIn, mean: DeviceIn, invStd: DeviceIn, wantDx: boolean):
    { dx: DeviceData | null; dGamma: DeviceData; dBeta: DeviceData };

  // pooling (kernels/cpu/pool.ts); argmax as float flat indices within each (n, c) plane
  maxPool2d(x: DeviceIn, p: Pool2dParams): { y: DeviceData; argmax: DeviceData };
  maxPool2dBackward(dy: DeviceIn, argmax: DeviceIn, p: Pool2dParams): DeviceData;
  avgPool2d(x: DeviceIn, p: AvgPool2dParams): DeviceData;
  avgPool2dBackward(dy: DeviceIn, p: AvgPool2dParams): DeviceData;
  adaptiveAvgPool2d(x: DeviceIn, p: AdaptivePool2dParams): DeviceData;
  adaptiveAvgPool2dBackward(dy: DeviceIn, p: AdaptivePool2dParams): DeviceData;

  // optimizer (src/optim/lamb.ts): new weight, exp_avg and exp_avg_sq
  lambStep(w: DeviceIn, g: DeviceIn, m: DeviceIn, v: DeviceIn, n: number, h: LambStep): { w: DeviceData; m: DeviceData; v: DeviceData };
}
