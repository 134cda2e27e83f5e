/**
 * Small helpers shared by the op files: argument checks that produce errors naming the op, the argument and
 * its shape, and the allocation of result tensors.
 */
import { Tensor, type DeviceData } from '../tensor/tensor.ts';
import type { DeviceIn, DeviceKernels } from '../backend/device.ts';
import { backend } from '../backend/registry.ts';
import type { DType, FloatArray, FloatDType } from '../tensor/dtype.ts';
import { allocate, allocateFloatUnfilled, isFloat } from '../tensor/dtype.ts';
import { shapeStr, sizeOf } from '../tensor/shape.ts';

export function floatData(t: Tensor): FloatArray {
  return t.data as FloatArray;
}

/**
 * The device kernels, when the backend has them and every given tensor is float32 (the device's one type);
 * null means: run on the host kernels.
 */
export function deviceFor(...ts: readonly (Tensor | null | undefined)[]): DeviceKernels | null {
  const device = backend().device;
  if (!device) return null;
  // gpu.js cannot hand a kernel an empty input: those few ops run on the host
  for (const t of ts) if (t && (t.dtype !== 'float32' || t.size === 0)) return null;
  return device;
}

/** What a device kernel reads for t: its device copy, or its host floats (uploaded for the call). */
export function devIn(t: Tensor): DeviceIn {
  return t.deviceCopy ?? (t.data as Float32Array);
}

/** A float32 result tensor over a device copy it now owns. */
export function fromDevice(d: DeviceData, shape: readonly number[]): Tensor {
  return new Tensor(d, shape, 'float32');
}

export function requireFloat(op: string, arg: string, t: Tensor): void {
  if (!isFloat(t.dtype)) {
    throw new Error(`${op}: ${arg} must be a float tensor, got ${t.dtype} of shape ${shapeStr(t.shape)}`);
  }
}

export function requireNdim(op: string, arg: string, t: Tensor, ndim: number): void {
  if (t.ndim !== ndim) {
    throw new Error(`${op}: ${arg} must have ${ndim} dims, got shape ${shapeStr(t.shape)}`);
  }
}

export function requireTensor(op: string, arg: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new Error(`${op}: ${arg} must be a Tensor, got ${typeof t}`);
}

export function emptyTensor(shape: readonly number[], dtype: DType): Tensor {
  return new Tensor(allocate(dtype, sizeOf(shape)), shape, dtype);
}

/**
 * A float tensor of `shape` and its storage, zeroed, or with `overwritten` of unspecified contents: for outputs
 * that the kernel called next writes whole (every backend kernel's output contract says "overwritten").
 */
export function emptyFloat(shape: readonly number[], dtype: FloatDType, overwritten = false): { t: Tensor; data: FloatArray } {
  if (!overwritten) {
    const t = emptyTensor(shape, dtype);
    return { t, data: t.data as FloatArray };
  }
  const data = allocateFloatUnfilled(dtype, sizeOf(shape));
  return { t: new Tensor(data, shape, dtype), data };
}

/** A number becomes a 0-d tensor of the given float dtype. */
export function scalarTensor(value: number, dtype: FloatDType): Tensor {
  const t = emptyTensor([], dtype);
  (t.data as FloatArray)[0] = value;
  return t;
}

/** Index tensors (int32/int64, or float holding integers) as an Int32Array, range-checked against `bound`. */
export function indexData(op: string, arg: string, t: Tensor, bound: number): Int32Array {
  if (isFloat(t.dtype)) throw new Error(`${op}: ${arg} must be an integer tensor, got ${t.dtype} of shape ${shapeStr(t.shape)}`);
  const out = new Int32Array(t.size);
  for (let i = 0; i < out.length; i++) {
    let v = Number(t.data[i]);
    if (v < 0) v += bound;
    if (!(v >= 0 && v < bound)) throw new Error(`${op}: ${arg} holds ${Number(t.data[i])}, out of range for a dim of size ${bound}`);
    out[i] = v;
  }
  return out;
}
