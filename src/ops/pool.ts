/**
 * Pooling over the last two axes of (N, C, H, W): max (the gradient goes to the first maximum of each
 * window in row-major order, as PyTorch on CPU), average (PyTorch's padding and divisor rules) and
 * adaptive average. Max pooling's backward recomputes the argmax, one cheap pass, instead of keeping it.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatDType } from '../tensor/dtype.ts';
import { shapeStr } from '../tensor/shape.ts';
import { defineOp } from '../autograd/define.ts';
import { backend } from '../backend/registry.ts';
import type { Pool2dParams } from '../../kernels/cpu/pool.ts';
import { devIn, deviceFor, fromDevice, emptyFloat, floatData, requireFloat, requireNdim } from './util.ts';
import { pair, type Pair } from './conv.ts';

export interface MaxPool2dOptions { kernelSize: Pair; stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean }
export interface AvgPool2dOptions { kernelSize: Pair; stride?: Pair; padding?: Pair; ceilMode?: boolean; countIncludePad?: boolean; divisorOverride?: number }

/** PyTorch's pooling output size, including the ceil-mode rule that the last window must start inside the input. */
function pooledSize(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = size + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= size + p) out--;
  return out;
}

function poolParams(op: string, x: Tensor, o: MaxPool2dOptions): Pool2dParams {
  requireFloat(op, 'input', x);
  requireNdim(op, 'input', x, 4);
  const [kH, kW] = pair(op, 'kernelSize', o.kernelSize, 1);
  const [strideH, strideW] = pair(op, 'stride', o.stride ?? o.kernelSize, 1);
  const [padH, padW] = pair(op, 'padding', o.padding ?? 0, 0);
  const [dilationH, dilationW] = pair(op, 'dilation', o.dilation ?? 1, 1);
  if (2 * padH > kH || 2 * padW > kW) throw new Error(`${op}: padding (${padH},${padW}) must be at most half the kernel size (${kH},${kW})`);
  const [N, C, H, W] = x.shape;
  const OH = pooledSize(H, kH, strideH, padH, dilationH, o.ceilMode ?? false);
  const OW = pooledSize(W, kW, strideW, padW, dilationW, o.ceilMode ?? false);
  if (OH < 1 || OW < 1) throw new Error(`${op}: kernel ${kH}x${kW} does not fit input ${shapeStr(x.shape)} with padding ${padH},${padW}`);
  return { N, C, H, W, OH, OW, kH, kW, strideH, strideW, padH, padW, dilationH, dilationW };
}

function maxPoolForward(x: Tensor, p: Pool2dParams): { out: Tensor; argmax: Int32Array } {
  const { t, data } = emptyFloat([p.N, p.C, p.OH, p.OW], x.dtype as FloatDType);
  const argmax = new Int32Array(data.length);
  backend().maxPool2d(floatData(x), data, argmax, p);
  return { out: t, argmax };
}

/** The host forward's argmax per output, for its backward (on a device the backward finds them again). */
const hostArgmax = new WeakMap<Tensor, Int32Array>();

const maxPoolOp = defineOp<[Tensor], Pool2dParams>('maxPool2d', {
  forward: ([x], p) => {
    const device = deviceFor(x);
    if (device) {
      const { y, argmax } = device.maxPool2d(devIn(x), p);
      argmax.dispose();
      return fromDevice(y, [p.N, p.C, p.OH, p.OW]);
    }
    const { out, argmax } = maxPoolForward(x, p);
    if (x.requiresGrad) hostArgmax.set(out, argmax);
    return out;
  },
  // each window's gradient goes to its (first) maximum
  backward: (g, { inputs: [x], attrs: p, out }) => {
    const device = deviceFor(x, g);
    if (device) {
      const { y, argmax } = device.maxPool2d(devIn(x), p);
      y.dispose();
      const dx = device.maxPool2dBackward(devIn(g), argmax, p);
      argmax.dispose();
      return [fromDevice(dx, x.shape)];
    }
    const argmax = hostArgmax.get(out) ?? maxPoolForward(x, p).argmax;
    const { t, data } = emptyFloat(x.shape, g.dtype as FloatDType);
    backend().maxPool2dBackward(floatData(g), argmax, data, p);
    return [t];
  },
});

export function maxPool2d(x: Tensor, options: MaxPool2dOptions): Tensor {
  return maxPoolOp([x], poolParams('maxPool2d', x, options));
}

type AvgParams = Pool2dParams & { countIncludePad: boolean; divisorOverride?: number };

const avgPoolOp = defineOp<[Tensor], AvgParams>('avgPool2d', {
  forward: ([x], p) => {
    const device = deviceFor(x);
    if (device) return fromDevice(device.avgPool2d(devIn(x), p), [p.N, p.C, p.OH, p.OW]);
    const { t, data } = emptyFloat([p.N, p.C, p.OH, p.OW], x.dtype as FloatDType);
    backend().avgPool2d(floatData(x), data, p);
    return t;
  },
  // each input pixel receives g/divisor from every window that covers it
  backward: (g, { inputs: [x], attrs: p }) => {
    const device = deviceFor(g);
    if (device) return [fromDevice(device.avgPool2dBackward(devIn(g), p), x.shape)];
    const { t, data } = emptyFloat(x.shape, g.dtype as FloatDType);
    backend().avgPool2dBackward(floatData(g), data, p);
    return [t];
  },
});

export function avgPool2d(x: Tensor, options: AvgPool2dOptions): Tensor {
  const p = poolParams('avgPool2d', x, { ...options, dilation: 1 });
  if (options.divisorOverride !== undefined && !(options.divisorOverride > 0)) {
    throw new Error(`avgPool2d: divisorOverride must be positive, got ${options.divisorOverride}`);
  }
  return avgPoolOp([x], { ...p, countIncludePad: options.countIncludePad ?? true, divisorOverride: options.divisorOverride });
}

type AdaptiveParams = { N: number; C: number; H: number; W: number; OH: number; OW: number };

const adaptiveAvgPoolOp = defineOp<[Tensor], AdaptiveParams>('adaptiveAvgPool2d', {
  forward: ([x], p) => {
    const device = deviceFor(x);
    if (device) return fromDevice(device.adaptiveAvgPool2d(devIn(x), p), [p.N, p.C, p.OH, p.OW]);
    const { t, data } = emptyFloat([p.N, p.C, p.OH, p.OW], x.dtype as FloatDType);
    backend().adaptiveAvgPool2d(floatData(x), data, p);
    return t;
  },
  backward: (g, { inputs: [x], attrs: p }) => {
    const device = deviceFor(g);
    if (device) return [fromDevice(device.adaptiveAvgPool2dBackward(devIn(g), p), x.shape)];
    const { t, data } = emptyFloat(x.shape, g.dtype as FloatDType);
    backend().adaptiveAvgPool2dBackward(floatData(g), data, p);
    return [t];
  },
});

/** Average over adaptive windows: output cell i covers rows floor(i·H/OH) … ceil((i+1)·H/OH) − 1. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  requireFloat('adaptiveAvgPool2d', 'input', x);
  requireNdim('adaptiveAvgPool2d', 'input', x, 4);
  const [OH, OW] = pair('adaptiveAvgPool2d', 'outputSize', outputSize, 1);
  const [N, C, H, W] = x.shape;
  return adaptiveAvgPoolOp([x], { N, C, H, W, OH, OW });
}
