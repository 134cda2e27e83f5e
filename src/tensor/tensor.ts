/**
 * Tensor: a shape, a dtype and contiguous row-major storage, plus what autograd needs (requiresGrad, grad,
 * and the op that produced it). The methods are thin aliases of the functions in src/ops, so `x.add(y)` and
 * `add(x, y)` are the same op.
 *
 * Storage lives in one place at a time: host memory (a typed array, the garbage collector's) or a device
 * (a gpu backend's texture, see DeviceData). Ops on the gpu backend leave their results on the device;
 * reading `t.data` brings a tensor home (one download, the device copy freed), so host code that writes
 * into `t.data` is never shadowed by a stale device copy. `item()` and `toArray()` only peek.
 */
import type { DataArray, DType } from './dtype.ts';
import { isFloat } from './dtype.ts';
import { shapeStr, sizeOf } from './shape.ts';
import { runBackward } from '../autograd/backward.ts';
import * as el from '../ops/elementwise.ts';
import * as red from '../ops/reduce.ts';
import * as mv from '../ops/movement.ts';
import { matmul } from '../ops/matmul.ts';
import { backend } from '../backend/registry.ts';
import { trackDeviceTensor } from './scope.ts';

/** What produced a non-leaf tensor: its op, its inputs and how to send a gradient back to them. */
export interface GradFn {
  readonly op: string;
  inputs: readonly Tensor[];
  /** null once the graph has been released by a backward pass */
  backward: ((g: Tensor) => readonly (Tensor | null)[]) | null;
}

/**
 * A backend's on-device copy of a float32 tensor. Views (reshape, detach) share it: `share()` adds an owner,
 * `dispose()` drops one, and the memory is freed with the last owner.
 */
export interface DeviceData {
  readonly length: number;
  /** Download the elements (the device copy stays). */
  read(): Float32Array;
  share(): DeviceData;
  dispose(): void;
}

/** Device copies of tensors the garbage collector took before anyone disposed them. */
const orphans = new FinalizationRegistry<DeviceData>((d) => d.dispose());

export type NestedArray = number | boolean | readonly NestedArray[];
type Operand = Tensor | number;

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  private host: DataArray | null;
  private device: DeviceData | null = null;
  private disposed = false;
  grad: Tensor | null = null;
  gradFn: GradFn | null = null;
  retainsGrad = false;
  private needsGrad = false;

  /** `data` is host memory, or a device copy (float32 only) that the tensor then owns: one share of it. */
  constructor(data: DataArray | DeviceData, shape: readonly number[], dtype: DType) {
    if (data.length !== sizeOf(shape)) {
      throw new Error(`Tensor: data has ${data.length} elements but shape ${shapeStr(shape)} needs ${sizeOf(shape)}`);
    }
    this.size = data.length;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    if (ArrayBuffer.isView(data)) {
      this.host = data;
    } else {
      this.host = null;
      this.adoptDevice(data);
      trackDeviceTensor(this);
    }
  }

  /**
   * On a device backend, move a float32 tensor's elements to the device (its host array is let go, so keep
   * using the tensor, not an array read from it before); elsewhere, or for other dtypes, a no-op.
   */
  toDevice(): this {
    const device = backend().device;
    if (!device || this.disposed || this.device || this.dtype !== 'float32' || this.size === 0) return this;
    this.adoptDevice(device.upload(this.host as Float32Array));
    return this;
  }

  /**
   * Move a float32 host tensor's elements into the backend's resident memory (Backend.resident), where kernels
   * use them in place: parameters, kept gradients. Arrays read from `data` before are no longer the tensor's (as
   * with toDevice). A no-op for other dtypes, on a device, or where the backend has none (or no room).
   */
  makeResident(): this {
    const resident = backend().resident;
    if (!resident || this.disposed || this.device || this.dtype !== 'float32' || this.size === 0) return this;
    this.host = resident.adopt(this.host as Float32Array) ?? this.host;
    return this;
  }

  get isOnDevice(): boolean {
    return this.device !== null;
  }

  /**
   * The elements in host memory, writable. A tensor on a device is brought home first (downloaded, its
   * device copy released), so what is written here is what the next op reads.
   */
  get data(): DataArray {
    if (this.host === null) {
      const device = this.deviceData();
      this.host = device.read();
      this.releaseDevice();
    }
    return this.host;
  }

  /** The device copy, or null for a tensor in host memory. Throws on a disposed tensor. */
  get deviceCopy(): DeviceData | null {
    if (this.disposed) throw new Error(`${this.toString()}: used after dispose()`);
    return this.device;
  }

  /** Replace the storage by a device copy the tensor now owns (an optimizer writing a parameter on the gpu). */
  adoptDevice(device: DeviceData): void {
    if (device.length !== this.size) throw new Error(`${this.toString()}: device data has ${device.length} elements`);
    if (this.dtype !== 'float32') throw new Error(`${this.toString()}: only float32 tensors live on a device`);
    this.releaseDevice();
    this.host = null;
    this.disposed = false;
    this.device = device;
    orphans.register(this, device, this);
  }

  /** Free the device copy now instead of when the garbage collector finds the tensor. */
  dispose(): void {
    this.releaseDevice();
    if (this.host === null) this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private deviceData(): DeviceData {
    if (this.disposed || this.device === null) throw new Error(`${this.toString()}: used after dispose()`);
    return this.device;
  }

  private releaseDevice(): void {
    if (this.device === null) return;
    orphans.unregister(this);
    this.device.dispose();
    this.device = null;
  }

  /** The elements for reading only: a tensor on a device is downloaded and stays there. */
  private peek(): DataArray {
    return this.host ?? this.deviceData().read();
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

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor of shape ${shapeStr(this.shape)} has ${this.size} elements, not 1`);
    return Number(this.peek()[0]);
  }

  /** Nested arrays of numbers, as torch's tolist(). */
  toArray(): NestedArray {
    const data = this.peek();
    const build = (dim: number, offset: number): NestedArray => {
      if (dim === this.shape.length) return Number(data[offset]);
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
    const device = this.deviceCopy;
    return device ? new Tensor(device.share(), this.shape, this.dtype) : new Tensor(this.data, this.shape, this.dtype);
  }

  toString(): string {
    const where = this.disposed ? ', disposed' : this.device ? ', on device' : '';
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${where}${this.requiresGrad ? ', requiresGrad' : ''})`;
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
