/**
 * Elementwise ops: casts, broadcasting arithmetic, unary maps and activations, comparisons and where.
 * Binary ops broadcast as NumPy/PyTorch; a number operand becomes a 0-d tensor of the other's dtype;
 * float32 with float64 computes in float64; an integer/bool operand beside a float one is cast to it.
 * The gradient of a broadcast operand is summed back to its shape (`sumTo`).
 */
import { Tensor } from '../tensor/tensor.ts';
import type { DType, FloatDType } from '../tensor/dtype.ts';
import { isFloat, promoteFloat } from '../tensor/dtype.ts';
import { broadcastShapes, broadcastStrides, shapeStr, stridesOf } from '../tensor/shape.ts';
import { defineOp } from '../autograd/define.ts';
import { backend } from '../backend/registry.ts';
import type { ArithOp, CompareOp, UnaryOp } from '../../kernels/cpu/elementwise.ts';
import { devIn, deviceFor, emptyFloat, emptyTensor, floatData, fromDevice, requireFloat, scalarTensor } from './util.ts';
import { sumTo } from './reduce.ts';

type Operand = Tensor | number;

// ---------------------------------------------------------------- casts

const castOp = defineOp<[Tensor], { dtype: DType }>('cast', {
  forward: ([x], { dtype }) => {
    // a float32 copy on the device stays there
    const device = dtype === 'float32' ? deviceFor(x) : null;
    if (device && x.size > 0) return fromDevice(device.affine(devIn(x), x.size, 1, 0), x.shape);
    const out = emptyTensor(x.shape, dtype);
    const src = x.data, dst = out.data;
    if (dst instanceof BigInt64Array) {
      for (let i = 0; i < dst.length; i++) dst[i] = src instanceof BigInt64Array ? src[i] : BigInt(Math.trunc(Number(src[i])));
    } else if (src instanceof BigInt64Array) {
      for (let i = 0; i < dst.length; i++) dst[i] = Number(src[i]);
    } else if (dtype === 'bool') {
      for (let i = 0; i < dst.length; i++) dst[i] = src[i] ? 1 : 0;
    } else {
      dst.set(src);
    }
    return out;
  },
  // a cast's gradient is cast back to the input's float type
  backward: (g, { inputs: [x] }) => [isFloat(x.dtype) ? cast(g, x.dtype) : null],
});

/** A copy of x converted to dtype (a differentiable identity between float types). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.requiresGrad && !isFloat(dtype)) throw new Error(`cast: cannot cast a tensor that requires grad to ${dtype}`);
  return castOp([x], { dtype });
}

/** The float type two operands compute in, after checking at least one of them is float. */
function computeDtype(op: string, a: Tensor, b: Tensor): FloatDType {
  if (!isFloat(a.dtype) && !isFloat(b.dtype)) {
    throw new Error(`${op}: needs a float operand, got ${a.dtype} ${shapeStr(a.shape)} and ${b.dtype} ${shapeStr(b.shape)}`);
  }
  if (!isFloat(a.dtype)) return b.dtype as FloatDType;
  if (!isFloat(b.dtype)) return a.dtype as FloatDType;
  return promoteFloat(a.dtype, b.dtype);
}

function toOperands(op: string, a: Operand, b: Operand): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: at least one operand must be a Tensor`);
  const like = (a instanceof Tensor ? a : b) as Tensor;
  const dtype: FloatDType = isFloat(like.dtype) ? like.dtype : 'float32';
  const ta = typeof a === 'number' ? scalarTensor(a, dtype) : a;
  const tb = typeof b === 'number' ? scalarTensor(b, dtype) : b;
  const dt = computeDtype(op, ta, tb);
  return [ta.dtype === dt ? ta : cast(ta, dt), tb.dtype === dt ? tb : cast(tb, dt)];
}

// ---------------------------------------------------------------- broadcasting arithmetic

function binaryForward(op: ArithOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(op, a.shape, b.shape);
  const device = deviceFor(a, b);
  if (device) return fromDevice(device.binary(op, shape, devIn(a), broadcastStrides(a.shape, shape), devIn(b), broadcastStrides(b.shape, shape)), shape);
  const { t, data } = emptyFloat(shape, a.dtype as FloatDType, true);
  backend().binary(op, shape, floatData(a), broadcastStrides(a.shape, shape), floatData(b), broadcastStrides(b.shape, shape), data, stridesOf(shape));
  return t;
}

/** Only compute a gradient that an input needs. */
function need(t: Tensor, grad: () => Tensor): Tensor | null {
  return t.requiresGrad ? grad() : null;
}

const addOp = defineOp<[Tensor, Tensor]>('add', {
  forward: ([a, b]) => binaryForward('add', a, b),
  // d(a+b) = da + db
  backward: (g, { inputs: [a, b] }) => [need(a, () => sumTo(g, a.shape)), need(b, () => sumTo(g, b.shape))],
});

const subOp = defineOp<[Tensor, Tensor]>('sub', {
  forward: ([a, b]) => binaryForward('sub', a, b),
  // d(a−b) = da − db
  backward: (g, { inputs: [a, b] }) => [need(a, () => sumTo(g, a.shape)), need(b, () => sumTo(neg(g), b.shape))],
});

const mulOp = defineOp<[Tensor, Tensor]>('mul', {
  forward: ([a, b]) => binaryForward('mul', a, b),
  // d(ab) = b·da + a·db
  backward: (g, { inputs: [a, b] }) => [need(a, () => sumTo(mul(g, b), a.shape)), need(b, () => sumTo(mul(g, a), b.shape))],
});

const divOp = defineOp<[Tensor, Tensor]>('div', {
  forward: ([a, b]) => binaryForward('div', a, b),
  // d(a/b) = da/b − (a/b²)·db = da/b − (out/b)·db
  backward: (g, { inputs: [a, b], out }) => [
    need(a, () => sumTo(div(g, b), a.shape)),
    need(b, () => sumTo(neg(div(mul(g, out), b)), b.shape)),
  ],
});

const powOp = defineOp<[Tensor, Tensor]>('pow', {
  forward: ([a, b]) => binaryForward('pow', a, b),
  // d(aᵇ) = b·a^(b−1)·da + aᵇ·ln(a)·db. As PyTorch: the first term is 0 where b = 0 and the second
  // is 0 where a = 0 and b ≥ 0 (the limits, instead of 0·∞ = NaN).
  backward: (g, { inputs: [a, b], out }) => [
    need(a, () => sumTo(where(eq(b, 0), 0, mul(g, mul(b, pow(a, sub(b, 1))))), a.shape)),
    need(b, () => sumTo(where(logicalAnd(eq(a, 0), ge(b, 0)), 0, mul(g, mul(out, log(a)))), b.shape)),
  ],
});

/** The share of the gradient each side of max/min gets: 1 where it wins, ½ on ties (PyTorch's rule). */
function winnerShare(wins: Tensor, ties: Tensor, dtype: FloatDType): Tensor {
  return add(cast(wins, dtype), mul(cast(ties, dtype), 0.5));
}

const maximumOp = defineOp<[Tensor, Tensor]>('maximum', {
  forward: ([a, b]) => binaryForward('maximum', a, b),
  backward: (g, { inputs: [a, b] }) => [
    need(a, () => sumTo(mul(g, winnerShare(gt(a, b), eq(a, b), g.dtype as FloatDType)), a.shape)),
    need(b, () => sumTo(mul(g, winnerShare(lt(a, b), eq(a, b), g.dtype as FloatDType)), b.shape)),
  ],
});

const minimumOp = defineOp<[Tensor, Tensor]>('minimum', {
  forward: ([a, b]) => binaryForward('minimum', a, b),
  backward: (g, { inputs: [a, b] }) => [
    need(a, () => sumTo(mul(g, winnerShare(lt(a, b), eq(a, b), g.dtype as FloatDType)), a.shape)),
    need(b, () => sumTo(mul(g, winnerShare(gt(a, b), eq(a, b), g.dtype as FloatDType)), b.shape)),
  ],
});

export const add = (a: Operand, b: Operand): Tensor => addOp(toOperands('add', a, b), undefined);
export const sub = (a: Operand, b: Operand): Tensor => subOp(toOperands('sub', a, b), undefined);
export const mul = (a: Operand, b: Operand): Tensor => mulOp(toOperands('mul', a, b), undefined);
export const div = (a: Operand, b: Operand): Tensor => divOp(toOperands('div', a, b), undefined);
export const pow = (a: Operand, b: Operand): Tensor => powOp(toOperands('pow', a, b), undefined);
export const maximum = (a: Operand, b: Operand): Tensor => maximumOp(toOperands('maximum', a, b), undefined);
export const minimum = (a: Operand, b: Operand): Tensor => minimumOp(toOperands('minimum', a, b), undefined);

// ---------------------------------------------------------------- unary maps

/** Apply a unary kernel to a float tensor, unrecorded (for forwards and derivative maps). */
function mapUnary(op: UnaryOp, x: Tensor): Tensor {
  requireFloat(op, 'input', x);
  const device = deviceFor(x);
  if (device) return fromDevice(device.unary(op, devIn(x), x.size), x.shape);
  const { t, data } = emptyFloat(x.shape, x.dtype as FloatDType, true);
  backend().unary(op, floatData(x), data);
  return t;
}

function unaryOp(op: UnaryOp, backward: (g: Tensor, x: Tensor, out: Tensor) => Tensor): (x: Tensor) => Tensor {
  const apply = defineOp<[Tensor]>(op, {
    forward: ([x]) => mapUnary(op, x),
    backward: (g, { inputs: [x], out }) => [backward(g, x, out)],
  });
  return (x) => {
    requireFloat(op, 'input', x);
    return apply([x], undefined);
  };
}

const TWO_OVER_SQRT_PI = 1.1283791670955126;

// d(−x) = −1
export const neg = unaryOp('neg', (g) => neg(g));
// d eˣ = eˣ
export const exp = unaryOp('exp', (g, _x, out) => mul(g, out));
// d ln x = 1/x
export const log = unaryOp('log', (g, x) => div(g, x));
// d √x = 1/(2√x)
export const sqrt = unaryOp('sqrt', (g, _x, out) => div(g, mul(out, 2)));
// d x^(−½) = −½·x^(−3/2) = −½·out³
export const rsqrt = unaryOp('rsqrt', (g, _x, out) => mul(g, mul(pow(out, 3), -0.5)));
// d|x| = sign(x) (0 at 0, as PyTorch)
export const abs = unaryOp('abs', (g, x) => mul(g, mapUnary('sign', x)));
// d relu = [x > 0]
export const relu = unaryOp('relu', (g, x) => mul(g, mapUnary('reluGrad', x)));
// d relu6 = [0 < x < 6]
export const relu6 = unaryOp('relu6', (g, x) => mul(g, mapUnary('relu6Grad', x)));
// d x·Φ(x) = Φ(x) + x·φ(x) (exact GELU, not the tanh approximation)
export const gelu = unaryOp('gelu', (g, x) => mul(g, mapUnary('geluGrad', x)));
// d σ = σ(1−σ)
export const sigmoid = unaryOp('sigmoid', (g, _x, out) => mul(g, mul(out, sub(1, out))));
// d tanh = 1 − tanh²
export const tanh = unaryOp('tanh', (g, _x, out) => mul(g, sub(1, mul(out, out))));
// d erf = (2/√π)·e^(−x²)
export const erf = unaryOp('erf', (g, x) => mul(g, mul(exp(neg(mul(x, x))), TWO_OVER_SQRT_PI)));

/** −1, 0 or +1 elementwise; not differentiable (its derivative is 0 almost everywhere), so never recorded. */
export function sign(x: Tensor): Tensor {
  return mapUnary('sign', x);
}

const clampOp = defineOp<[Tensor], { min: number; max: number }>('clamp', {
  forward: ([x], { min, max }) => {
    const { t, data } = emptyFloat(x.shape, x.dtype as FloatDType);
    const xs = floatData(x);
    for (let i = 0; i < xs.length; i++) { const v = xs[i]; data[i] = v < min ? min : v > max ? max : v; }
    return t;
  },
  // the gradient passes where min ≤ x ≤ max (bounds included, as PyTorch)
  backward: (g, { inputs: [x], attrs: { min, max } }) => [mul(g, cast(logicalAnd(ge(x, min), le(x, max)), g.dtype))],
});

export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  requireFloat('clamp', 'input', x);
  if (min > max) throw new Error(`clamp: min (${min}) is greater than max (${max})`);
  return clampOp([x], { min, max });
}

// ---------------------------------------------------------------- comparisons and where (not differentiable in the condition)

function compare(op: CompareOp, a: Operand, b: Operand): Tensor {
  const [ta, tb] = toOperands(op, a, b);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  const out = emptyTensor(shape, 'bool');
  backend().binary(op, shape, floatData(ta), broadcastStrides(ta.shape, shape), floatData(tb), broadcastStrides(tb.shape, shape), out.data as Uint8Array, stridesOf(shape));
  return out;
}

export const eq = (a: Operand, b: Operand): Tensor => compare('eq', a, b);
export const ne = (a: Operand, b: Operand): Tensor => compare('ne', a, b);
export const lt = (a: Operand, b: Operand): Tensor => compare('lt', a, b);
export const le = (a: Operand, b: Operand): Tensor => compare('le', a, b);
export const gt = (a: Operand, b: Operand): Tensor => compare('gt', a, b);
export const ge = (a: Operand, b: Operand): Tensor => compare('ge', a, b);

/** Elementwise AND of two boolean (or 0/1) tensors, broadcasting. */
export function logicalAnd(a: Tensor, b: Tensor): Tensor {
  return compare('eq', add(cast(a, 'float32'), cast(b, 'float32')), 2);
}

/** Elementwise NOT of a boolean (or 0/1) tensor. */
export function logicalNot(a: Tensor): Tensor {
  return compare('eq', cast(a, 'float32'), 0);
}

const whereOp = defineOp<[Tensor, Tensor, Tensor]>('where', {
  forward: ([c, a, b]) => {
    const shape = broadcastShapes('where', broadcastShapes('where', c.shape, a.shape), b.shape);
    const device = c.size > 0 ? deviceFor(a, b) : null;
    if (device) {
      // the condition goes up as floats (0/1) unless it is a float32 tensor on the device already
      const cond = c.deviceCopy ?? Float32Array.from(c.data as ArrayLike<number | bigint>, (v) => (v ? 1 : 0));
      const cs = broadcastStrides(c.shape, shape), as = broadcastStrides(a.shape, shape), bs = broadcastStrides(b.shape, shape);
      return fromDevice(device.where(shape, cond, cs, devIn(a), as, devIn(b), bs), shape);
    }
    const { t, data } = emptyFloat(shape, a.dtype as FloatDType, true);
    const cond = c.data instanceof BigInt64Array ? Uint8Array.from(c.data, (v) => (v !== 0n ? 1 : 0)) : c.data;
    backend().where(shape, cond, broadcastStrides(c.shape, shape), floatData(a), broadcastStrides(a.shape, shape), floatData(b), broadcastStrides(b.shape, shape), data, stridesOf(shape));
    return t;
  },
  // the gradient goes to whichever side was chosen
  backward: (g, { inputs: [c, a, b] }) => [
    null,
    need(a, () => sumTo(where(c, g, 0), a.shape)),
    need(b, () => sumTo(where(c, 0, g), b.shape)),
  ],
});

/** cond ? a : b, broadcasting all three; cond is any tensor, nonzero meaning true. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const [ta, tb] = toOperands('where', a, b);
  if (cond.requiresGrad) cond = cond.detach();
  return whereOp([cond, ta, tb], undefined);
}
