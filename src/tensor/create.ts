/**
 * Tensor constructors: from data (nested arrays or a typed array), constant fills, ranges and random draws.
 * Random draws come from the default generator unless a `generator` is given.
 */
import type { DataArray, DType, FloatDType } from './dtype.ts';
import { allocate, isFloat } from './dtype.ts';
import { checkShape, shapeStr, sizeOf } from './shape.ts';
import { Tensor, type NestedArray } from './tensor.ts';
import { defaultGenerator, type Generator } from './random.ts';

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}
export interface RandomOptions {
  dtype?: FloatDType;
  requiresGrad?: boolean;
  generator?: Generator;
}

function finish(t: Tensor, requiresGrad?: boolean): Tensor {
  if (requiresGrad) t.requiresGrad = true;
  return t;
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as NestedArray;
  }
  return shape;
}

function flattenInto(data: NestedArray, shape: readonly number[], dim: number, out: number[]): void {
  if (dim === shape.length) {
    if (Array.isArray(data)) throw new Error('tensor: ragged nested array (too deep)');
    out.push(Number(data));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new Error(`tensor: ragged nested array: expected ${shape[dim]} entries at depth ${dim}`);
  }
  for (const d of data) flattenInto(d, shape, dim + 1, out);
}

function fillFrom(dtype: DType, values: ArrayLike<number>): DataArray {
  const arr = allocate(dtype, values.length);
  if (arr instanceof BigInt64Array) {
    for (let i = 0; i < values.length; i++) arr[i] = BigInt(Math.trunc(values[i]));
  } else if (dtype === 'bool') {
    for (let i = 0; i < values.length; i++) arr[i] = values[i] ? 1 : 0;
  } else {
    arr.set(values);
  }
  return arr;
}

/**
 * tensor(data, shape?, { dtype, requiresGrad }). A typed array of the matching kind is used as storage
 * without a copy; anything else is copied. Without a shape, nested arrays give their own.
 */
export function tensor(data: NestedArray | DataArray, shape?: readonly number[], options: CreateOptions = {}): Tensor {
  const dtype = options.dtype ?? defaultDtypeOf(data);
  let values: DataArray;
  let finalShape: readonly number[];
  if (ArrayBuffer.isView(data)) {
    finalShape = shape ?? [data.length];
    const sameKind = allocate(dtype, 0).constructor === data.constructor;
    if (sameKind) values = data;
    else if (data instanceof BigInt64Array) values = fillFrom(dtype, Array.from(data, Number));
    else values = fillFrom(dtype, data as ArrayLike<number>);
  } else {
    const inferred = inferShape(data);
    const flat: number[] = [];
    flattenInto(data, inferred, 0, flat);
    finalShape = shape ?? inferred;
    values = fillFrom(dtype, flat);
  }
  checkShape('tensor', finalShape);
  if (values.length !== sizeOf(finalShape)) {
    throw new Error(`tensor: ${values.length} values do not fill shape ${shapeStr(finalShape)}`);
  }
  return finish(new Tensor(values, finalShape, dtype), options.requiresGrad);
}

function defaultDtypeOf(data: NestedArray | DataArray): DType {
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  return 'float32';
}

export function full(shape: readonly number[], value: number, options: CreateOptions = {}): Tensor {
  checkShape('full', shape);
  const dtype = options.dtype ?? 'float32';
  const data = allocate(dtype, sizeOf(shape));
  if (data instanceof BigInt64Array) data.fill(BigInt(Math.trunc(value)));
  else data.fill(value);
  return finish(new Tensor(data, shape, dtype), options.requiresGrad);
}

export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return full(shape, 0, options);
}

export function ones(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

export function zerosLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, ...options });
}

export function onesLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, ...options });
}

/** [start, end) in steps of `step`, as torch.arange. */
export function arange(start: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  if (end === undefined) { end = start; start = 0; }
  if (step === 0) throw new Error('arange: step must be nonzero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  return tensor(Array.from({ length: n }, (_, i) => start + i * step), [n], options);
}

function randomFill(shape: readonly number[], options: RandomOptions, draw: (g: Generator) => number, op: string): Tensor {
  checkShape(op, shape);
  const dtype = options.dtype ?? 'float32';
  if (!isFloat(dtype)) throw new Error(`${op}: dtype must be float32 or float64, got ${dtype}`);
  const g = options.generator ?? defaultGenerator;
  const data = allocate(dtype, sizeOf(shape)) as Float32Array | Float64Array;
  for (let i = 0; i < data.length; i++) data[i] = draw(g);
  return finish(new Tensor(data, shape, dtype), options.requiresGrad);
}

/** Uniform on [0, 1). */
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return randomFill(shape, options, (g) => g.uniform(), 'rand');
}

/** Standard normal. */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return randomFill(shape, options, (g) => g.normal(), 'randn');
}

/** Uniform integers in [low, high), int64 like torch.randint. */
export function randint(low: number, high: number, shape: readonly number[], options: { generator?: Generator } = {}): Tensor {
  checkShape('randint', shape);
  if (!(high > low)) throw new Error(`randint: high (${high}) must exceed low (${low})`);
  const g = options.generator ?? defaultGenerator;
  const data = new BigInt64Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = BigInt(low + g.int(high - low));
  return new Tensor(data, shape, 'int64');
}
