/**
 * Tensor: a shape, a dtype and contiguous row-major storage, plus what autograd needs (requiresGrad, grad,
 * and the op that produced it). Storage belongs to the garbage collector. The methods are thin aliases of
 * the functions in src/ops, so `x.add(y)` and `add(x, y)` are the same op.
 */
import type { DataArray, DType } from './dtype.ts';
import { isFloat } from './dtype.ts';
import { shapeStr, sizeOf } from './shape.ts';
import { runBackward } from '../autograd/backward.ts';
import * as el from '../ops/elementwise.ts';
import * as red from '../ops/reduce.ts';
import * as mv from '../ops/movement.ts';
import { matmul } from '../ops/matmul.ts';

/** What produced a non-leaf tensor: its op, its inputs and how to send a gradient back to them. */
export interface GradFn {
  readonly op: string;
  inputs: readonly Tensor[];
  /** null once the graph has been released by a backward pass */
  backward: ((g: Tensor) => readonly (Tensor | null)[]) | null;
}

export type NestedArray = number | boolean | readonly NestedArray[];
type Operand = Tensor | number;

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly data: DataArray;
  grad: Tensor | null = null;
  gradFn: GradFn | null = null;
  retainsGrad = false;
  private needsGrad = false;

  constructor(data: DataArray, shape: readonly number[], dtype: DType) {
    if (data.length !== sizeOf(shape)) {
      throw new Error(`Tensor: data has ${data.length} elements but shape ${shapeStr(shape)} needs ${sizeOf(shape)}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
  }

  get requiresGrad(): boolean {
    return this.needsGrad;
  }

  set requiresGrad(value: boolean) {
    if (this.gradFn) throw new Error('requiresGrad can only be set on a leaf tensor; use detach() for a new leaf');
    if (value && !isFloat(this.dtype)) throw new Error(`requiresGrad: only float tensors can require gradients, not ${this.dtype}`);
    this.needsGrad = value;
  }

  /** Called by the tape when this tensor is the result of a recorded op. */
  markRecorded(fn: GradFn): void {
    this.gradFn = fn;
    this.needsGrad = true;
  }

  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return this.data.length;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new Error(`item: tensor of shape ${shapeStr(this.shape)} has ${this.data.length} elements, not 1`);
    return Number(this.data[0]);
  }

  /** Nested arrays of numbers, as torch's tolist(). */
  toArray(): NestedArray {
    const build = (dim: number, offset: number): NestedArray => {
      if (dim === this.shape.length) return Number(this.data[offset]);
      let inner = 1;
      for (let i = dim + 1; i < this.shape.length; i++) inner *= this.shape[i];
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * inner));
    };
    return build(0, 0);
  }

  /** Reverse-mode differentiation from this tensor; `gradient` defaults to 1 for a scalar. */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    runBackward(this, gradient, options.retainGraph ?? false);
  }

  /** Keep .grad on this non-leaf tensor after backward. */
  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  /** Same storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, this.dtype);
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- aliases of src/ops (see there for semantics) ----
  add(o: Operand): Tensor { return el.add(this, o); }
  sub(o: Operand): Tensor { return el.sub(this, o); }
  mul(o: Operand): Tensor { return el.mul(this, o); }
  div(o: Operand): Tensor { return el.div(this, o); }
  pow(o: Operand): Tensor { return el.pow(this, o); }
  maximum(o: Operand): Tensor { return el.maximum(this, o); }
  minimum(o: Operand): Tensor { return el.minimum(this, o); }
  eq(o: Operand): Tensor { return el.eq(this, o); }
  ne(o: Operand): Tensor { return el.ne(this, o); }
  lt(o: Operand): Tensor { return el.lt(this, o); }
  le(o: Operand): Tensor { return el.le(this, o); }
  gt(o: Operand): Tensor { return el.gt(this, o); }
  ge(o: Operand): Tensor { return el.ge(this, o); }
  neg(): Tensor { return el.neg(this); }
  exp(): Tensor { return el.exp(this); }
  log(): Tensor { return el.log(this); }
  sqrt(): Tensor { return el.sqrt(this); }
  rsqrt(): Tensor { return el.rsqrt(this); }
  abs(): Tensor { return el.abs(this); }
  relu(): Tensor { return el.relu(this); }
  sigmoid(): Tensor { return el.sigmoid(this); }
  tanh(): Tensor { return el.tanh(this); }
  sum(axes?: number | number[], keepdim = false): Tensor { return red.sum(this, axes, keepdim); }
  mean(axes?: number | number[], keepdim = false): Tensor { return red.mean(this, axes, keepdim); }
  var(axes?: number | number[], options: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor { return red.variance(this, axes, options); }
  max(axes?: number | number[], keepdim = false): Tensor { return red.max(this, axes, keepdim); }
  min(axes?: number | number[], keepdim = false): Tensor { return red.min(this, axes, keepdim); }
  argmax(axis?: number, keepdim = false): Tensor { return red.argmax(this, axis, keepdim); }
  matmul(o: Tensor): Tensor { return matmul(this, o); }
  reshape(...shape: number[]): Tensor { return mv.reshape(this, shape); }
  permute(...axes: number[]): Tensor { return mv.permute(this, axes); }
  transpose(a: number, b: number): Tensor { return mv.transpose(this, a, b); }
  flatten(start = 0, end = -1): Tensor { return mv.flatten(this, start, end); }
  squeeze(axis?: number): Tensor { return mv.squeeze(this, axis); }
  unsqueeze(axis: number): Tensor { return mv.unsqueeze(this, axis); }
  expand(...shape: number[]): Tensor { return mv.expand(this, shape); }
  narrow(axis: number, start: number, length: number): Tensor { return mv.narrow(this, axis, start, length); }
  to(dtype: DType): Tensor { return el.cast(this, dtype); }
  float(): Tensor { return el.cast(this, 'float32'); }
  double(): Tensor { return el.cast(this, 'float64'); }
  clone(): Tensor { return el.cast(this, this.dtype); }
}
