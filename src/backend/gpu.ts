/**
 * The gpu backend: gpu.js kernels (kernels/gpu) behind the DeviceKernels interface, on top of the cpu
 * backend's host kernels for what stays on the host (float64, comparisons, integer work). This module and
 * gpu.js are loaded only by `setBackend('gpu')` (a dynamic import), never by `import 'sparkts'`.
 */
import type { Backend } from './backend.ts';
import type { DeviceKernels } from './device.ts';
import { cpuBackend } from './cpu.ts';
import { createRuntime, type GpuIn, type GpuMode, type GpuRuntime } from '../../kernels/gpu/runtime.ts';
import * as el from '../../kernels/gpu/elementwise.ts';
import * as mv from '../../kernels/gpu/movement.ts';
import * as red from '../../kernels/gpu/reduce.ts';
import { gemm } from '../../kernels/gpu/gemm.ts';
import * as conv from '../../kernels/gpu/conv.ts';
import * as norm from '../../kernels/gpu/norm.ts';
import * as pool from '../../kernels/gpu/pool.ts';
import { lambStep } from '../../kernels/gpu/optim.ts';

/** Device copies handed in by the ops are GpuArrays of this runtime (or host floats). */
type In = GpuIn;

export function deviceKernels(rt: GpuRuntime): DeviceKernels {
  const i = (x: unknown) => x as In;
  return {
    mode: rt.mode,
    kernelClass: () => rt.kernelClass,
    liveTextures: () => rt.liveTextures(),
    upload: (x) => el.affine(rt, x, x.length, 1, 0),
    fill: (n, value) => el.fill(rt, n, value),
    unary: (op, x, n) => el.unary(rt, op, i(x), n),
    binary: (op, shape, a, as, b, bs) => el.binary(rt, op, shape, i(a), as, i(b), bs),
    where: (shape, c, cs, a, as, b, bs) => el.where(rt, shape, i(c), cs, i(a), as, i(b), bs),
    affine: (x, n, scale, shift) => el.affine(rt, i(x), n, scale, shift),
    stridedCopy: (shape, x, offset, strides) => mv.stridedCopy(rt, shape, i(x), offset, strides),
    writeWindow: (whole, n, part, shape, offset, strides) => mv.writeWindow(rt, i(whole), n, i(part), shape, offset, strides),
    indexSelect: (x, outer, n, inner, index) => mv.indexSelect(rt, i(x), outer, n, inner, index),
    indexAdd: (dy, outer, n, inner, index) => mv.indexAdd(rt, i(dy), outer, n, inner, index),
    reduce: (op, x, shape, axes) => red.reduce(rt, op, i(x), shape, axes),
    gemm: (p, a, b) => gemm(rt, p, i(a), i(b)),
    conv2d: (x, w, p, sites) => conv.conv2d(rt, i(x), i(w), p, sites),
    conv2dBackwardInput: (dy, w, p, sites) => conv.conv2dBackwardInput(rt, i(dy), i(w), p, sites),
    conv2dBackwardWeight: (x, dy, p, sites) => conv.conv2dBackwardWeight(rt, i(x), i(dy), p, sites),
    channelStats: (x, s) => norm.channelStats(rt, i(x), s),
    invStd: (v, n, eps) => norm.invStd(rt, i(v), n, eps),
    channelNormalize: (x, s, mean, invStd, gamma, beta) => norm.channelNormalize(rt, i(x), s, i(mean), i(invStd), i(gamma), i(beta)),
    channelNormalizeBackward: (g, x, s, mean, invStd, gamma, batchStats, wantDx) =>
      norm.channelNormalizeBackward(rt, i(g), i(x), s, i(mean), i(invStd), i(gamma), batchStats, wantDx),
    layerNormForward: (x, rows, D, eps, gamma, beta) => norm.layerNormForward(rt, i(x), rows, D, eps, i(gamma), i(beta)),
    layerNormBackward: (g, x, rows, D, gamma, mean, invStd, wantDx) =>
      norm.layerNormBackward(rt, i(g), i(x), rows, D, i(gamma), i(mean), i(invStd), wantDx),
    maxPool2d: (x, p) => pool.maxPool2d(rt, i(x), p),
    maxPool2dBackward: (dy, argmax, p) => pool.maxPool2dBackward(rt, i(dy), i(argmax), p),
    avgPool2d: (x, p) => pool.avgPool2d(rt, i(x), p),
    avgPool2dBackward: (dy, p) => pool.avgPool2dBackward(rt, i(dy), p),
    adaptiveAvgPool2d: (x, p) => pool.adaptiveAvgPool2d(rt, i(x), p),
    adaptiveAvgPool2dBackward: (dy, p) => pool.adaptiveAvgPool2dBackward(rt, i(dy), p),
    lambStep: (w, g, m, v, n, h) => lambStep(rt, i(w), i(g), i(m), i(v), n, h),
  };
}

/** Start gpu.js in `mode` and make the backend ('gpu' picks the best mode present). */
export async function createGpuBackend(mode: GpuMode): Promise<Backend & { device: DeviceKernels; runtime: GpuRuntime }> {
  const rt = await createRuntime(mode);
  return { ...cpuBackend, name: `gpu (gpu.js ${rt.mode}, ${rt.kernelClass})`, device: deviceKernels(rt), runtime: rt };
}
