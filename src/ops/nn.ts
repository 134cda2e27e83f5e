/**
 * Neural-network functions: batch and layer norm as fused ops (statistics and normalisation in two passes,
 * backward by the closed-form three-term rule); linear, dropout and drop path, softmax and log-softmax, cross
 * entropy with label smoothing and mean squared error composed from the primitive ops.
 */
import { Tensor } from '../tensor/tensor.ts';
import type { FloatArray, FloatDType } from '../tensor/dtype.ts';
import { defineOp } from '../autograd/define.ts';
import type { ChannelShape } from '../../kernels/cpu/norm.ts';
import { backend } from '../backend/registry.ts';
import { sameShape, shapeStr } from '../tensor/shape.ts';
import { noGrad } from '../autograd/mode.ts';
import { defaultGenerator, type Generator } from '../tensor/random.ts';
import { isFloat } from '../tensor/dtype.ts';
import { devIn, deviceFor, emptyFloat, floatData, fromDevice, requireFloat } from './util.ts';
import { add, cast, div, exp, log, mul, ne, sub, where } from './elementwise.ts';
import { max, mean, sum } from './reduce.ts';
import { bmm } from './matmul.ts';
import { flatten, gather, permute, reshape, unsqueeze } from './movement.ts';

/** F.linear: x (…, in) · wᵀ + b, with w (out, in) as PyTorch stores it (no transpose is copied). */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  requireFloat('linear', 'input', x);
  requireFloat('linear', 'weight', w);
  if (w.ndim !== 2) throw new Error(`linear: weight must be 2-D (out, in), got ${shapeStr(w.shape)}`);
  const inF = x.shape[x.ndim - 1];
  if (x.ndim === 0 || inF !== w.shape[1]) {
    throw new Error(`linear: input ${shapeStr(x.shape)} has ${inF} features but weight ${shapeStr(w.shape)} expects ${w.shape[1]}`);
  }
  if (b && (b.ndim !== 1 || b.shape[0] !== w.shape[0])) throw new Error(`linear: bias ${shapeStr(b.shape)} does not match ${w.shape[0]} outputs`);
  const rows = x.size / inF;
  const y = bmm(reshape(x, [1, rows, inF]), reshape(w, [1, w.shape[0], inF]), false, true);
  const out = reshape(y, [...x.shape.slice(0, -1), w.shape[0]]);
  return b ? add(out, b) : out;
}

export interface BatchNormOptions { training?: boolean; momentum?: number; eps?: number }

interface BatchNormAttrs {
  shape: ChannelShape;
  eps: number;
  /** 'batch': statistics from x (filled in by forward); 'running': the given constants */
  stats: 'batch' | 'running';
  mean: Float64Array;
  varBiased: Float64Array;
  invStd: Float64Array;
  /** On a device backend the statistics stay there, as (C) tensors: given for 'running', filled in for 'batch'. */
  onDevice?: { mean?: Tensor; varBiased?: Tensor; invStd?: Tensor };
}

/** The device forward of batchNormOp: statistics (for 'batch') and normalisation, all on the device. */
function batchNormDevice(x: Tensor, gamma: Tensor, beta: Tensor, a: BatchNormAttrs): Tensor | null {
  const device = deviceFor(x, gamma, beta);
  if (!device || !a.onDevice) return null;
  const d = a.onDevice;
  if (a.stats === 'batch') {
    const { mean, varBiased } = device.channelStats(devIn(x), a.shape);
    d.mean = fromDevice(mean, [a.shape.C]);
    d.varBiased = fromDevice(varBiased, [a.shape.C]);
    d.invStd = fromDevice(device.invStd(varBiased, a.shape.C, a.eps), [a.shape.C]);
  }
  return fromDevice(device.channelNormalize(devIn(x), a.shape, devIn(d.mean!), devIn(d.invStd!), devIn(gamma), devIn(beta)), x.shape);
}

/** One fused op: statistics, normalisation and affine in two passes; its backward is the three-term formula. */
const batchNormOp = defineOp<[Tensor, Tensor, Tensor], BatchNormAttrs>('batchNorm', {
  forward: ([x, gamma, beta], a) => {
    const onDevice = batchNormDevice(x, gamma, beta, a);
    if (onDevice) return onDevice;
    if (a.stats === 'batch') {
      backend().channelStats(floatData(x), a.shape, a.mean, a.varBiased);
      for (let c = 0; c < a.mean.length; c++) a.invStd[c] = 1 / Math.sqrt(a.varBiased[c] + a.eps);
    }
    const { t, data } = emptyFloat(x.shape, x.dtype as FloatDType, true);
    backend().channelNormalize(floatData(x), a.shape, a.mean, a.invStd, floatData(gamma), floatData(beta), data);
    return t;
  },
  // dβ = Σg, dγ = Σg·x̂, dx = γ·s/M·(M·g − Σg − x̂·Σg·x̂) with batch statistics, γ·s·g with running ones
  backward: (g, { inputs: [x, gamma, beta], attrs: a }) => {
    const device = a.onDevice?.invStd ? deviceFor(g, x, gamma) : null;
    if (device) {
      const d = a.onDevice!;
      const r = device.channelNormalizeBackward(devIn(g), devIn(x), a.shape, devIn(d.mean!), devIn(d.invStd!), devIn(gamma), a.stats === 'batch', x.requiresGrad);
      const keep = (t: Tensor, data: typeof r.dGamma) => (t.requiresGrad ? fromDevice(data, t.shape) : (data.dispose(), null));
      return [r.dx ? fromDevice(r.dx, x.shape) : null, keep(gamma, r.dGamma), keep(beta, r.dBeta)];
    }
    const dx = x.requiresGrad ? emptyFloat(x.shape, g.dtype as FloatDType, true) : null;
    const dGamma = gamma.requiresGrad ? emptyFloat(gamma.shape, g.dtype as FloatDType) : null;
    const dBeta = beta.requiresGrad ? emptyFloat(beta.shape, g.dtype as FloatDType) : null;
    backend().channelNormalizeBackward(floatData(g), floatData(x), a.shape, a.mean, a.invStd, floatData(gamma), a.stats === 'batch',
      dx?.data ?? null, dGamma?.data ?? null, dBeta?.data ?? null);
    return [dx?.t ?? null, dGamma?.t ?? null, dBeta?.t ?? null];
  },
});

/**
 * F.batchNorm over x (N, C, …): statistics per channel over every other axis.
 * training: normalise with the batch mean and *biased* variance, and update runningMean/runningVar in place
 * with the *unbiased* variance: r ← (1−momentum)·r + momentum·batch. eval: use the running statistics.
 */
export function batchNorm(
  x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null, bias: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  const { training = false, momentum = 0.1, eps = 1e-5 } = options;
  requireFloat('batchNorm', 'input', x);
  if (x.ndim < 2) throw new Error(`batchNorm: input must be (N, C, …), got ${shapeStr(x.shape)}`);
  const C = x.shape[1];
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== C)) throw new Error(`batchNorm: ${name} of shape ${shapeStr(t.shape)} does not match ${C} channels of input ${shapeStr(x.shape)}`);
  }
  const dtype = x.dtype as FloatDType;
  const n = x.size / C;
  const a: BatchNormAttrs = {
    shape: { outer: x.shape[0], C, inner: n / Math.max(1, x.shape[0]) }, eps, stats: training ? 'batch' : 'running',
    mean: new Float64Array(C), varBiased: new Float64Array(C), invStd: new Float64Array(C),
  };
  const device = deviceFor(x, weight, bias, runningMean, runningVar);
  if (device) {
    a.onDevice = {};
    if (!training) {
      if (!runningMean || !runningVar) throw new Error('batchNorm: eval mode needs runningMean and runningVar');
      a.onDevice.mean = runningMean;
      a.onDevice.invStd = fromDevice(device.invStd(devIn(runningVar), C, eps), [C]);
    } else if (n <= 1) {
      throw new Error(`batchNorm: expected more than 1 value per channel when training, got input ${shapeStr(x.shape)}`);
    }
    const y = batchNormOp([x, affine(weight, C, dtype, 1), affine(bias, C, dtype, 0)], a);
    if (training) {
      if (runningMean) updateRunningOnDevice(runningMean, a.onDevice.mean!, momentum, 1);
      if (runningVar) updateRunningOnDevice(runningVar, a.onDevice.varBiased!, momentum, n / (n - 1));
    }
    return y;
  }
  if (training) {
    if (n <= 1) throw new Error(`batchNorm: expected more than 1 value per channel when training, got input ${shapeStr(x.shape)}`);
  } else {
    if (!runningMean || !runningVar) throw new Error('batchNorm: eval mode needs runningMean and runningVar');
    for (let c = 0; c < C; c++) {
      a.mean[c] = Number(runningMean.data[c]);
      a.invStd[c] = 1 / Math.sqrt(Number(runningVar.data[c]) + eps);
    }
  }
  const y = batchNormOp([x, affine(weight, C, dtype, 1), affine(bias, C, dtype, 0)], a);
  if (training) {
    // r ← (1 − m)·r + m·batch, with the unbiased variance
    if (runningMean) updateRunning(runningMean, a.mean, momentum, 1);
    if (runningVar) updateRunning(runningVar, a.varBiased, momentum, n / (n - 1));
  }
  return y;
}

/** γ or β, or a constant stand-in when the norm has none. */
function affine(t: Tensor | null, n: number, dtype: FloatDType, value: number): Tensor {
  if (t) return t.dtype === dtype ? t : cast(t, dtype);
  const { t: c, data } = emptyFloat([n], dtype);
  data.fill(value);
  return c;
}

/** updateRunning on a device: the buffer takes the new values' device copy (it moves to the device). */
function updateRunningOnDevice(running: Tensor, batch: Tensor, momentum: number, scale: number): void {
  noGrad(() => {
    const next = add(mul(running, 1 - momentum), mul(batch, momentum * scale));
    running.adoptDevice(next.deviceCopy!.share());
    next.dispose();
  });
}

/** r ← (1 − m)·r + m·scale·batch, in place (running statistics are buffers, not graph values). */
function updateRunning(running: Tensor, batch: Float64Array, momentum: number, scale: number): void {
  const r = running.data as FloatArray;
  for (let i = 0; i < r.length; i++) r[i] = (1 - momentum) * r[i] + momentum * scale * batch[i];
}

interface LayerNormAttrs {
  rows: number; D: number; eps: number; mean: Float64Array; invStd: Float64Array;
  /** on a device backend: the per-row statistics, filled in by forward */
  onDevice?: { mean: Tensor; invStd: Tensor };
}

const layerNormOp = defineOp<[Tensor, Tensor, Tensor], LayerNormAttrs>('layerNorm', {
  forward: ([x, gamma, beta], a) => {
    const device = deviceFor(x, gamma, beta);
    if (device) {
      const r = device.layerNormForward(devIn(x), a.rows, a.D, a.eps, devIn(gamma), devIn(beta));
      a.onDevice = { mean: fromDevice(r.mean, [a.rows]), invStd: fromDevice(r.invStd, [a.rows]) };
      return fromDevice(r.y, x.shape);
    }
    const { t, data } = emptyFloat(x.shape, x.dtype as FloatDType);
    backend().layerNormForward(floatData(x), a.rows, a.D, a.eps, floatData(gamma), floatData(beta), data, a.mean, a.invStd);
    return t;
  },
  // dx = s/D·(D·gγ − Σgγ − x̂·Σgγ·x̂), dγ = Σ_rows g·x̂, dβ = Σ_rows g
  backward: (g, { inputs: [x, gamma, beta], attrs: a }) => {
    const device = a.onDevice ? deviceFor(g, x, gamma) : null;
    if (device) {
      const d = a.onDevice!;
      const r = device.layerNormBackward(devIn(g), devIn(x), a.rows, a.D, devIn(gamma), devIn(d.mean), devIn(d.invStd), x.requiresGrad);
      const keep = (t: Tensor, data: typeof r.dGamma) => (t.requiresGrad ? fromDevice(data, t.shape) : (data.dispose(), null));
      return [r.dx ? fromDevice(r.dx, x.shape) : null, keep(gamma, r.dGamma), keep(beta, r.dBeta)];
    }
    const dx = x.requiresGrad ? emptyFloat(x.shape, g.dtype as FloatDType) : null;
    const dGamma = gamma.requiresGrad ? new Float64Array(a.D) : null;
    const dBeta = beta.requiresGrad ? new Float64Array(a.D) : null;
    backend().layerNormBackward(floatData(g), floatData(x), a.rows, a.D, floatData(gamma), a.mean, a.invStd, dx?.data ?? null, dGamma, dBeta);
    const asTensor = (d: Float64Array | null, like: Tensor) => {
      if (!d) return null;
      const { t, data } = emptyFloat(like.shape, g.dtype as FloatDType);
      data.set(d);
      return t;
    };
    return [dx?.t ?? null, asTensor(dGamma, gamma), asTensor(dBeta, beta)];
  },
});

/** F.layerNorm: normalise over the trailing `normalizedShape` axes with the biased variance. */
export function layerNorm(x: Tensor, normalizedShape: readonly number[], weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  requireFloat('layerNorm', 'input', x);
  const k = normalizedShape.length;
  if (k === 0 || k > x.ndim || !sameShape(x.shape.slice(x.ndim - k), normalizedShape)) {
    throw new Error(`layerNorm: normalizedShape ${shapeStr(normalizedShape)} does not match the trailing dims of input ${shapeStr(x.shape)}`);
  }
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t && !sameShape(t.shape, normalizedShape)) throw new Error(`layerNorm: ${name} of shape ${shapeStr(t.shape)} does not match normalizedShape ${shapeStr(normalizedShape)}`);
  }
  const D = normalizedShape.reduce((p, d) => p * d, 1);
  const rows = x.size / Math.max(1, D);
  const dtype = x.dtype as FloatDType;
  const flat = (t: Tensor | null, v: number) => affine(t ? reshape(t, [D]) : null, D, dtype, v);
  const a: LayerNormAttrs = { rows, D, eps, mean: new Float64Array(rows), invStd: new Float64Array(rows) };
  return layerNormOp([x, flat(weight, 1), flat(bias, 0)], a);
}

/** A {0, 1/keep} mask of the given shape: Bernoulli(keep) scaled so the expectation is unchanged. */
function keepMask(shape: readonly number[], dtype: FloatDType, keep: number, generator: Generator): Tensor {
  const { t, data } = emptyFloat(shape, dtype);
  const scale = keep > 0 ? 1 / keep : 0;
  for (let i = 0; i < data.length; i++) data[i] = generator.uniform() < keep ? scale : 0;
  return t;
}

function checkProbability(op: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`${op}: probability p must be in [0, 1], got ${p}`);
}

/** F.dropout: zero each element with probability p and scale the rest by 1/(1−p); identity when not training. */
export function dropout(x: Tensor, p = 0.5, training = true, generator: Generator = defaultGenerator): Tensor {
  requireFloat('dropout', 'input', x);
  checkProbability('dropout', p);
  if (!training || p === 0) return x;
  return mul(x, keepMask(x.shape, x.dtype as FloatDType, 1 - p, generator));
}

/**
 * Stochastic depth (timm drop_path): drop each *sample* of the batch with probability p and scale kept
 * samples by 1/(1−p); identity when not training.
 */
export function dropPath(x: Tensor, p = 0, training = true, generator: Generator = defaultGenerator): Tensor {
  requireFloat('dropPath', 'input', x);
  checkProbability('dropPath', p);
  if (!training || p === 0) return x;
  const perSample = x.shape.map((d, i) => (i === 0 ? d : 1));
  return mul(x, keepMask(perSample, x.dtype as FloatDType, 1 - p, generator));
}

/** The max along `axis`, as a constant: softmax is shift-invariant, so it needs no gradient. */
function stableShift(x: Tensor, axis: number): Tensor {
  return noGrad(() => max(x, axis, true));
}

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('softmax', 'input', x);
  const e = exp(sub(x, stableShift(x, axis)));
  return div(e, sum(e, axis, true));
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('logSoftmax', 'input', x);
  const shifted = sub(x, stableShift(x, axis));
  return sub(shifted, log(sum(exp(shifted), axis, true)));
}

export type Reduction = 'mean' | 'sum' | 'none';

function reduceLoss(perItem: Tensor, reduction: Reduction, count?: Tensor | number): Tensor {
  if (reduction === 'none') return perItem;
  const total = sum(perItem);
  if (reduction === 'sum') return total;
  return count === undefined ? mean(perItem) : mul(total, 1 / (typeof count === 'number' ? count : count.item()));
}

export interface CrossEntropyOptions { labelSmoothing?: number; reduction?: Reduction; ignoreIndex?: number }

/**
 * F.crossEntropy: logits (N, C) or (N, C, d1, …); target class indices (N, d1, …) as an integer tensor, or
 * class probabilities shaped like the logits. With label smoothing ε the target becomes (1−ε)·onehot + ε/C:
 * loss = (1−ε)·(−log p_target) + ε·mean_c(−log p_c). 'mean' averages over targets not equal to ignoreIndex.
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const { labelSmoothing = 0, reduction = 'mean', ignoreIndex = -100 } = options;
  requireFloat('crossEntropy', 'input', logits);
  if (logits.ndim < 2) throw new Error(`crossEntropy: input must be (N, C, …), got ${shapeStr(logits.shape)}`);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  const C = logits.shape[1];
  // move classes last and flatten the rest: (M, C)
  const order = [0, ...logits.shape.map((_, i) => i).slice(2), 1];
  const logp = reshape(logSoftmax(permute(logits, order), -1), [-1, C]);
  if (isFloat(target.dtype)) {
    if (!sameShape(target.shape, logits.shape)) throw new Error(`crossEntropy: probability target ${shapeStr(target.shape)} must match input ${shapeStr(logits.shape)}`);
    let probs = reshape(permute(target, order), [-1, C]);
    if (labelSmoothing > 0) probs = add(mul(probs, 1 - labelSmoothing), labelSmoothing / C);
    const perItem = mul(sum(mul(probs, logp), -1), -1);
    return reduceLoss(perItem, reduction);
  }
  const expected = [logits.shape[0], ...logits.shape.slice(2)];
  if (!sameShape(target.shape, expected)) throw new Error(`crossEntropy: class target ${shapeStr(target.shape)} must have shape ${shapeStr(expected)} for input ${shapeStr(logits.shape)}`);
  const flatTarget = flatten(target);
  const valid = cast(ne(cast(flatTarget, 'float64'), ignoreIndex), logp.dtype);
  // ignored targets gather class 0 and are then masked out
  const safeIdx = where(cast(valid, 'bool'), cast(flatTarget, 'float64'), 0);
  const picked = reshape(gather(logp, 1, unsqueeze(cast(safeIdx, 'int64'), 1)), [-1]);
  let perItem = mul(picked, -1);
  if (labelSmoothing > 0) {
    const smooth = mul(mean(logp, -1), -1);
    perItem = add(mul(perItem, 1 - labelSmoothing), mul(smooth, labelSmoothing));
  }
  perItem = mul(perItem, valid);
  if (reduction === 'none') return reshape(perItem, expected);
  return reduceLoss(perItem, reduction, sum(valid));
}

/** F.mseLoss: mean (or sum) of (a − b)²; shapes must match. */
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  requireFloat('mseLoss', 'input', input);
  requireFloat('mseLoss', 'target', target);
  if (!sameShape(input.shape, target.shape)) throw new Error(`mseLoss: input ${shapeStr(input.shape)} and target ${shapeStr(target.shape)} differ in shape`);
  const d = sub(input, target);
  return reduceLoss(mul(d, d), reduction);
}
