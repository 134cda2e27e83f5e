/**
 * Neural-network functions, composed from the primitive ops (so their gradients come from those ops'
 * rules and are checked the same way): linear, batch and layer norm, dropout and drop path, softmax and
 * log-softmax, cross entropy with label smoothing, and mean squared error.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatArray, FloatDType } from '../tensor/dtype.ts';
import { sameShape, shapeStr } from '../tensor/shape.ts';
import { noGrad } from '../autograd/mode.ts';
import { defaultGenerator, type Generator } from '../tensor/random.ts';
import { isFloat } from '../tensor/dtype.ts';
import { emptyFloat, requireFloat } from './util.ts';
import { add, cast, div, exp, log, mul, ne, rsqrt, sub, where } from './elementwise.ts';
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
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const perChannel = x.shape.map((d, i) => (i === 1 ? d : 1));
  const asChannel = (t: Tensor) => reshape(t, perChannel);
  let centered: Tensor, invStd: Tensor;
  if (training) {
    const n = x.size / C;
    if (n <= 1) throw new Error(`batchNorm: expected more than 1 value per channel when training, got input ${shapeStr(x.shape)}`);
    const mu = mean(x, axes, true);
    centered = sub(x, mu);
    const varBiased = mean(mul(centered, centered), axes, true);
    invStd = rsqrt(add(varBiased, eps));
    noGrad(() => {
      if (runningMean) updateRunning(runningMean, mu, momentum, 1);
      if (runningVar) updateRunning(runningVar, varBiased, momentum, n / (n - 1));
    });
  } else {
    if (!runningMean || !runningVar) throw new Error('batchNorm: eval mode needs runningMean and runningVar');
    centered = sub(x, asChannel(runningMean));
    invStd = asChannel(rsqrt(add(runningVar, eps)));
  }
  let y = mul(centered, invStd);
  if (weight) y = mul(y, asChannel(weight));
  if (bias) y = add(y, asChannel(bias));
  return y;
}

/** r ← (1 − m)·r + m·scale·batch, in place (running statistics are buffers, not graph values). */
function updateRunning(running: Tensor, batch: Tensor, momentum: number, scale: number): void {
  const r = running.data as FloatArray;
  const b = batch.data as FloatArray;
  for (let i = 0; i < r.length; i++) r[i] = (1 - momentum) * r[i] + momentum * scale * b[i];
}

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
  const axes = normalizedShape.map((_, i) => x.ndim - k + i);
  const centered = sub(x, mean(x, axes, true));
  const varBiased = mean(mul(centered, centered), axes, true);
  let y = mul(centered, rsqrt(add(varBiased, eps)));
  if (weight) y = mul(y, weight);
  if (bias) y = add(y, bias);
  return y;
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
