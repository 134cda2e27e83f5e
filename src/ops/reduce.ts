/**
 * Reductions over any axes with keepdim: sum, mean, var (unbiased by default, as torch.var), max/min
 * (torch.amax semantics: ties share the gradient equally) and argmax (first maximum, int64, no gradient).
 * `sumTo` folds a broadcast gradient back to an operand's shape.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatDType } from '../tensor/dtype.ts';
import { normalizeAxes, normalizeAxis, sameShape, shapeStr } from '../tensor/shape.ts';
import { defineOp } from '../autograd/define.ts';
import { backend } from '../backend/registry.ts';
import { devIn, deviceFor, emptyFloat, emptyTensor, floatData, fromDevice, requireFloat } from './util.ts';
import { cast, div, eq, mul, sub } from './elementwise.ts';
import { expand, reshape } from './movement.ts';

type Axes = number | readonly number[] | undefined;

interface ReduceAttrs { axes: number[]; keepdim: boolean }

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function reducedShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  return keepdim ? keptShape(shape, axes) : shape.filter((_, i) => !axes.includes(i));
}

function reduceForward(op: 'sum' | 'max' | 'min', x: Tensor, { axes, keepdim }: ReduceAttrs): Tensor {
  if (x.size === 0 && op !== 'sum') throw new Error(`${op}: cannot reduce an empty tensor of shape ${shapeStr(x.shape)}`);
  const shape = reducedShape(x.shape, axes, keepdim);
  const device = x.size > 0 ? deviceFor(x) : null;
  if (device) return fromDevice(device.reduce(op, devIn(x), x.shape, axes), shape);
  const { t, data } = emptyFloat(shape, x.dtype as FloatDType);
  backend().reduce(op, floatData(x), x.shape, axes, data);
  return t;
}

/** The output gradient broadcast back over the reduced axes. */
function spread(g: Tensor, x: Tensor, axes: readonly number[]): Tensor {
  return expand(reshape(g, keptShape(x.shape, axes)), x.shape);
}

const sumOp = defineOp<[Tensor], ReduceAttrs>('sum', {
  forward: ([x], attrs) => reduceForward('sum', x, attrs),
  // d Σx = 1 for every summed element
  backward: (g, { inputs: [x], attrs }) => [spread(g, x, attrs.axes)],
});

/** amax/amin: the gradient is split equally between elements that tie for the extreme. */
function extremeRule(op: 'max' | 'min') {
  return defineOp<[Tensor], ReduceAttrs>(op, {
    forward: ([x], attrs) => reduceForward(op, x, attrs),
    backward: (g, { inputs: [x], out, attrs }) => {
      const hits = cast(eq(x, spread(out, x, attrs.axes)), g.dtype);
      const count = reshape(sum(hits, attrs.axes, true), keptShape(x.shape, attrs.axes));
      return [mul(spread(g, x, attrs.axes), div(hits, count))];
    },
  });
}
const maxOp = extremeRule('max');
const minOp = extremeRule('min');

function reduction(op: string, apply: (i: [Tensor], a: ReduceAttrs) => Tensor) {
  return (x: Tensor, axes?: Axes, keepdim = false): Tensor => {
    requireFloat(op, 'input', x);
    return apply([x], { axes: normalizeAxes(op, axes, x.ndim), keepdim });
  };
}

export const sum = reduction('sum', sumOp);
export const max = reduction('max', maxOp);
export const min = reduction('min', minOp);

function countOver(x: Tensor, axes: readonly number[]): number {
  return axes.reduce((n, a) => n * x.shape[a], 1);
}

export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  requireFloat('mean', 'input', x);
  const list = normalizeAxes('mean', axes, x.ndim);
  return div(sum(x, list, keepdim), countOver(x, list));
}

/** Variance over axes: Σ(x − mean)² / (n − 1) when unbiased (the default, as torch.var), else / n. */
export function variance(x: Tensor, axes?: Axes, options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  requireFloat('var', 'input', x);
  const list = normalizeAxes('var', axes, x.ndim);
  const n = countOver(x, list);
  const centered = sub(x, mean(x, list, true));
  const dof = options.unbiased === false ? n : n - 1;
  return div(sum(mul(centered, centered), list, options.keepdim ?? false), dof);
}

/** Index of the first maximum along `axis` (over the flattened tensor when absent), as int64. */
export function argmax(x: Tensor, axis?: number, keepdim = false): Tensor {
  requireFloat('argmax', 'input', x);
  if (axis === undefined) return argmax(reshape(x, [x.size]), 0, false);
  const a = normalizeAxis('argmax', axis, x.ndim);
  if (x.shape[a] === 0) throw new Error(`argmax: axis ${axis} of shape ${shapeStr(x.shape)} is empty`);
  const idx = new Int32Array(x.size / x.shape[a]);
  backend().argmax(floatData(x), x.shape, a, idx);
  const out = emptyTensor(reducedShape(x.shape, [a], keepdim), 'int64');
  const data = out.data as BigInt64Array;
  for (let i = 0; i < idx.length; i++) data[i] = BigInt(idx[i]);
  return out;
}

/** Sum a (broadcast) gradient back down to `shape`: over extra leading axes and axes where shape has 1. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes, true), shape);
}
