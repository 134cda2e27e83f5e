/**
 * Parameter initialisers, in place, drawing from the default generator (or one passed in), with PyTorch's
 * fan conventions: for a weight (out, in, kH, kW) fan_in = in·kH·kW and fan_out = out·kH·kW
 * (so for a ConvTranspose2d weight (Cin, Cout/groups, kH, kW), fan_in = Cout/groups·kH·kW).
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatArray } from '../tensor/dtype.ts';
import { isFloat } from '../tensor/dtype.ts';
import { shapeStr } from '../tensor/shape.ts';
import { defaultGenerator, type Generator } from '../tensor/random.ts';

function floatsOf(op: string, t: Tensor): FloatArray {
  if (!isFloat(t.dtype)) throw new Error(`init.${op}: tensor must be float, got ${t.dtype}`);
  return t.data as FloatArray;
}

export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new Error(`init: fan in/out need a tensor with at least 2 dims, got ${shapeStr(t.shape)}`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

export function constant(t: Tensor, value: number): Tensor {
  floatsOf('constant', t).fill(value);
  return t;
}

export const zeros = (t: Tensor): Tensor => constant(t, 0);
export const ones = (t: Tensor): Tensor => constant(t, 1);

export function uniform(t: Tensor, low: number, high: number, generator: Generator = defaultGenerator): Tensor {
  const d = floatsOf('uniform', t);
  for (let i = 0; i < d.length; i++) d[i] = low + (high - low) * generator.uniform();
  return t;
}

export function normal(t: Tensor, mean = 0, std = 1, generator: Generator = defaultGenerator): Tensor {
  const d = floatsOf('normal', t);
  for (let i = 0; i < d.length; i++) d[i] = mean + std * generator.normal();
  return t;
}

/**
 * Normal(mean, std) restricted to [a, b] (absolute bounds, as torch/timm trunc_normal_; timm's defaults are
 * a = −2, b = 2). Drawn by rejection, so the distribution is exact.
 */
export function truncNormal(t: Tensor, options: { mean?: number; std?: number; a?: number; b?: number } = {}, generator: Generator = defaultGenerator): Tensor {
  const { mean = 0, std = 1, a = -2, b = 2 } = options;
  if (!(a < b)) throw new Error(`init.truncNormal: need a < b, got a=${a}, b=${b}`);
  const d = floatsOf('truncNormal', t);
  for (let i = 0; i < d.length; i++) {
    let v: number;
    do v = mean + std * generator.normal(); while (v < a || v > b);
    d[i] = v;
  }
  return t;
}

export type Nonlinearity = 'relu' | 'linear' | 'leakyRelu';

function gain(nonlinearity: Nonlinearity, negativeSlope: number): number {
  if (nonlinearity === 'relu') return Math.SQRT2;
  if (nonlinearity === 'leakyRelu') return Math.sqrt(2 / (1 + negativeSlope * negativeSlope));
  return 1;
}

export interface KaimingOptions { mode?: 'fanIn' | 'fanOut'; nonlinearity?: Nonlinearity; a?: number }

/** He normal: std = gain / √fan (timm ResNet convs: mode fanOut, relu). */
export function kaimingNormal(t: Tensor, options: KaimingOptions = {}, generator: Generator = defaultGenerator): Tensor {
  const { mode = 'fanIn', nonlinearity = 'leakyRelu', a = 0 } = options;
  const f = fans(t);
  const std = gain(nonlinearity, a) / Math.sqrt(mode === 'fanIn' ? f.fanIn : f.fanOut);
  return normal(t, 0, std, generator);
}

/** He uniform: bound = gain·√(3 / fan). PyTorch's default Conv/Linear init is this with a = √5, i.e. bound 1/√fan_in. */
export function kaimingUniform(t: Tensor, options: KaimingOptions = {}, generator: Generator = defaultGenerator): Tensor {
  const { mode = 'fanIn', nonlinearity = 'leakyRelu', a = 0 } = options;
  const f = fans(t);
  const bound = gain(nonlinearity, a) * Math.sqrt(3 / (mode === 'fanIn' ? f.fanIn : f.fanOut));
  return uniform(t, -bound, bound, generator);
}

/** PyTorch's reset_parameters for Conv/ConvTranspose/Linear: weight kaiming_uniform(a=√5), bias U(±1/√fan_in). */
export function torchDefault(weight: Tensor, bias: Tensor | null, generator: Generator = defaultGenerator): void {
  kaimingUniform(weight, { a: Math.sqrt(5) }, generator);
  if (bias) {
    const { fanIn } = fans(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform(bias, -bound, bound, generator);
  }
}
