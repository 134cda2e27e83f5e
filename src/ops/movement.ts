/**
 * Movement ops: reshape (shares storage), permute/transpose (copy), expand, slice/narrow, pad, concat, stack,
 * repeat, indexSelect, gather and nearest upsampling. Most are one strided copy (kernels/cpu/copy.ts) in each
 * direction: the backward of a copy into a window is the copy out of that window, and the backward of
 * expand is a sum.
 */
import { Tensor } from '../tensor/tensor.ts';
import type { FloatDType } from '../tensor/dtype.ts';
import { checkShape, normalizeAxis, sameShape, shapeStr, sizeOf, stridesOf } from '../tensor/shape.ts';
import { defineOp } from '../autograd/define.ts';
import { backend } from '../backend/registry.ts';
import { devIn, deviceFor, emptyFloat, emptyTensor, floatData, fromDevice, indexData, requireFloat } from './util.ts';
import { sumTo } from './reduce.ts';

// ---------------------------------------------------------------- reshape family (no copy)

const reshapeOp = defineOp<[Tensor], { shape: number[] }>('reshape', {
  forward: ([x], { shape }) => {
    const device = x.deviceCopy;
    return device ? new Tensor(device.share(), shape, x.dtype) : new Tensor(x.data, shape, x.dtype);
  },
  backward: (g, { inputs: [x] }) => [reshape(g, x.shape)],
});

/** Same storage, new shape; one entry may be −1 and is inferred. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1) throw new Error(`reshape: only one dim may be -1, got ${shapeStr(shape)}`);
  let resolved = [...shape];
  if (unknown === 1) {
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) throw new Error(`reshape: cannot infer -1 in ${shapeStr(shape)} for ${x.size} elements`);
    resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  }
  checkShape('reshape', resolved);
  if (sizeOf(resolved) !== x.size) {
    throw new Error(`reshape: shape ${shapeStr(shape)} is invalid for input of shape ${shapeStr(x.shape)} (${x.size} elements)`);
  }
  if (sameShape(resolved, x.shape)) return x;
  return reshapeOp([x], { shape: resolved });
}

export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normalizeAxis('flatten', start, x.ndim);
  const e = normalizeAxis('flatten', end, x.ndim);
  if (s > e) throw new Error(`flatten: start (${start}) comes after end (${end}) for shape ${shapeStr(x.shape)}`);
  const merged = x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(x, [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)]);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normalizeAxis('squeeze', axis, x.ndim);
  return x.shape[a] === 1 ? reshape(x, x.shape.filter((_, i) => i !== a)) : x;
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis('unsqueeze', axis, x.ndim + 1);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

// ---------------------------------------------------------------- permute

function permuteForward(x: Tensor, axes: readonly number[]): Tensor {
  const shape = axes.map((a) => x.shape[a]);
  const xStrides = stridesOf(x.shape);
  const device = deviceFor(x);
  if (device) return fromDevice(device.stridedCopy(shape, devIn(x), 0, axes.map((a) => xStrides[a])), shape);
  const out = emptyTensor(shape, x.dtype);
  backend().stridedCopy(shape, x.data, 0, axes.map((a) => xStrides[a]), out.data, 0, stridesOf(shape));
  return out;
}

const permuteOp = defineOp<[Tensor], { axes: number[] }>('permute', {
  forward: ([x], { axes }) => permuteForward(x, axes),
  // the inverse permutation takes the gradient back
  backward: (g, { attrs: { axes } }) => {
    const inverse = new Array<number>(axes.length);
    axes.forEach((a, i) => { inverse[a] = i; });
    return [permute(g, inverse)];
  },
});

/** Reorder axes (a copy, as DESIGN §2 fixes). */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  if (axes.length !== x.ndim) throw new Error(`permute: ${axes.length} axes given for a tensor of shape ${shapeStr(x.shape)}`);
  const norm = axes.map((a) => normalizeAxis('permute', a, x.ndim));
  if (new Set(norm).size !== norm.length) throw new Error(`permute: repeated axis in [${axes.join(', ')}]`);
  if (norm.every((a, i) => a === i)) return x;
  return permuteOp([x], { axes: norm });
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  const axes = x.shape.map((_, i) => i);
  const i = normalizeAxis('transpose', a, x.ndim), j = normalizeAxis('transpose', b, x.ndim);
  axes[i] = j;
  axes[j] = i;
  return permute(x, axes);
}

// ---------------------------------------------------------------- expand

const expandOp = defineOp<[Tensor], { shape: number[] }>('expand', {
  forward: ([x], { shape }) => {
    const own = stridesOf(x.shape);
    const lead = shape.length - x.ndim;
    const strides = shape.map((_, i) => (i < lead || x.shape[i - lead] === 1 ? 0 : own[i - lead]));
    const device = deviceFor(x);
    if (device) return fromDevice(device.stridedCopy(shape, devIn(x), 0, strides), shape);
    const out = emptyTensor(shape, x.dtype);
    backend().stridedCopy(shape, x.data, 0, strides, out.data, 0, stridesOf(shape));
    return out;
  },
  // each input element was copied to many places; its gradient is their sum
  backward: (g, { inputs: [x] }) => [sumTo(g, x.shape)],
});

/** Broadcast to `shape` (materialised); −1 keeps a dim. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new Error(`expand: target ${shapeStr(shape)} has fewer dims than input ${shapeStr(x.shape)}`);
  const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  target.forEach((d, i) => {
    const own = i < lead ? 1 : x.shape[i - lead];
    if (own !== 1 && own !== d) throw new Error(`expand: cannot expand ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
  });
  checkShape('expand', target);
  if (sameShape(target, x.shape)) return x;
  return expandOp([x], { shape: target });
}

// ---------------------------------------------------------------- slicing and padding

interface Window { start: number[]; step: number[]; shape: number[] }

/** Where a window lies in a contiguous tensor of shape `whole`: its first element and its strides. */
function windowIn(whole: readonly number[], w: Window): { offset: number; winStrides: number[] } {
  const strides = stridesOf(whole);
  return { offset: w.start.reduce((o, s, i) => o + s * strides[i], 0), winStrides: strides.map((s, i) => s * w.step[i]) };
}

/** Copy `src` (contiguous, of window shape) into the window of `dst`, or the window of `src` out into `dst`. */
function copyWindow(direction: 'into' | 'outOf', whole: Tensor, part: Tensor, w: Window): void {
  const { offset, winStrides } = windowIn(whole.shape, w);
  const partStrides = stridesOf(w.shape);
  if (direction === 'into') backend().stridedCopy(w.shape, part.data, 0, partStrides, whole.data, offset, winStrides);
  else backend().stridedCopy(w.shape, whole.data, offset, winStrides, part.data, 0, partStrides);
}

/** On the device: the window of x, as a contiguous tensor. */
function windowOutOfDevice(x: Tensor, w: Window): Tensor | null {
  const device = deviceFor(x);
  if (!device) return null;
  const { offset, winStrides } = windowIn(x.shape, w);
  return fromDevice(device.stridedCopy(w.shape, devIn(x), offset, winStrides), w.shape);
}

/** On the device: a tensor of `shape` filled with `value`, with `parts` written into their windows. */
function windowsIntoDevice(shape: readonly number[], value: number, parts: readonly [Tensor, Window][]): Tensor | null {
  const device = deviceFor(...parts.map(([p]) => p));
  // the device writes sub-boxes (what pad, concat and a unit-step slice make); a stepped slice's gradient goes host
  if (!device || parts.some(([, w]) => w.step.some((st) => st !== 1))) return null;
  const n = sizeOf(shape);
  let whole = device.fill(n, value);
  for (const [part, w] of parts) {
    const { offset, winStrides } = windowIn(shape, w);
    const next = device.writeWindow(whole, n, devIn(part), w.shape, offset, winStrides);
    whole.dispose();
    whole = next;
  }
  return fromDevice(whole, shape);
}

const sliceOp = defineOp<[Tensor], Window>('slice', {
  forward: ([x], w) => {
    const onDevice = windowOutOfDevice(x, w);
    if (onDevice) return onDevice;
    const out = emptyTensor(w.shape, x.dtype);
    copyWindow('outOf', x, out, w);
    return out;
  },
  // the slice's gradient lands in its window of a zero tensor
  backward: (g, { inputs: [x], attrs: w }) => {
    const onDevice = windowsIntoDevice(x.shape, 0, [[g, w]]);
    if (onDevice) return [onDevice];
    const dx = emptyTensor(x.shape, g.dtype);
    copyWindow('into', dx, g, w);
    return [dx];
  },
});

/** Elements start, start+step, … < end along `axis` (negative start/end count from the end). */
export function slice(x: Tensor, axis: number, start: number, end: number, step = 1): Tensor {
  const a = normalizeAxis('slice', axis, x.ndim);
  const n = x.shape[a];
  if (!Number.isInteger(step) || step < 1) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const clampIndex = (i: number) => Math.min(n, Math.max(0, i < 0 ? i + n : i));
  const s = clampIndex(start), e = clampIndex(end);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const w: Window = {
    start: x.shape.map((_, i) => (i === a ? s : 0)),
    step: x.shape.map((_, i) => (i === a ? step : 1)),
    shape: x.shape.map((d, i) => (i === a ? len : d)),
  };
  if (sameShape(w.shape, x.shape)) return x;
  return sliceOp([x], w);
}

/** `length` elements from `start` along `axis`, as torch.narrow. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normalizeAxis('narrow', axis, x.ndim);
  const s = start < 0 ? start + x.shape[a] : start;
  if (s < 0 || length < 0 || s + length > x.shape[a]) {
    throw new Error(`narrow: start ${start} with length ${length} is out of range for axis ${axis} of shape ${shapeStr(x.shape)}`);
  }
  return slice(x, a, s, s + length);
}

const padOp = defineOp<[Tensor], { before: number[]; after: number[]; value: number }>('pad', {
  forward: ([x], { before, after, value }) => {
    const shape = x.shape.map((d, i) => d + before[i] + after[i]);
    const onDevice = windowsIntoDevice(shape, value, [[x, { start: before, step: before.map(() => 1), shape: [...x.shape] }]]);
    if (onDevice) return onDevice;
    const { t, data } = emptyFloat(shape, x.dtype as FloatDType);
    data.fill(value);
    copyWindow('into', t, x, { start: before, step: before.map(() => 1), shape: [...x.shape] });
    return t;
  },
  // the gradient of the interior is the interior of the gradient
  backward: (g, { inputs: [x], attrs: { before } }) => {
    const onDevice = windowOutOfDevice(g, { start: before, step: before.map(() => 1), shape: [...x.shape] });
    if (onDevice) return [onDevice];
    const dx = emptyTensor(x.shape, g.dtype);
    copyWindow('outOf', g, dx, { start: before, step: before.map(() => 1), shape: [...x.shape] });
    return [dx];
  },
});

/**
 * Constant padding as F.pad: `pads` lists (before, after) pairs starting from the LAST axis,
 * e.g. [left, right, top, bottom] for an image. Negative padding is rejected.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  requireFloat('pad', 'input', x);
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim) {
    throw new Error(`pad: pads [${pads.join(', ')}] must be (before, after) pairs for at most ${x.ndim} dims of ${shapeStr(x.shape)}`);
  }
  if (pads.some((p) => !Number.isInteger(p) || p < 0)) throw new Error(`pad: padding must be non-negative integers, got [${pads.join(', ')}]`);
  const before = x.shape.map(() => 0), after = x.shape.map(() => 0);
  for (let k = 0; k < pads.length / 2; k++) {
    before[x.ndim - 1 - k] = pads[2 * k];
    after[x.ndim - 1 - k] = pads[2 * k + 1];
  }
  return padOp([x], { before, after, value });
}

function isFloatTensor(t: Tensor): boolean {
  return t.dtype === 'float32' || t.dtype === 'float64';
}

// ---------------------------------------------------------------- concat, stack, repeat

const concatOp = defineOp<Tensor[], { axis: number }>('concat', {
  forward: (xs, { axis }) => {
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
    const starts = xs.map((_, k) => xs.slice(0, k).reduce((s, x) => s + x.shape[axis], 0));
    const windows = xs.map((x, k): [Tensor, Window] => [x, { start: shape.map((_, i) => (i === axis ? starts[k] : 0)), step: shape.map(() => 1), shape: [...x.shape] }]);
    const onDevice = isFloatTensor(xs[0]) ? windowsIntoDevice(shape, 0, windows) : null;
    if (onDevice) return onDevice;
    const out = emptyTensor(shape, xs[0].dtype);
    let at = 0;
    for (const x of xs) {
      copyWindow('into', out, x, { start: shape.map((_, i) => (i === axis ? at : 0)), step: shape.map(() => 1), shape: [...x.shape] });
      at += x.shape[axis];
    }
    return out;
  },
  // each input gets its own span of the gradient
  backward: (g, { inputs, attrs: { axis } }) => {
    let at = 0;
    return inputs.map((x) => {
      const part = x.requiresGrad ? narrow(g, axis, at, x.shape[axis]) : null;
      at += x.shape[axis];
      return part;
    });
  },
});

/** Join tensors along an existing axis; all other dims must agree. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('concat: needs at least one tensor');
  const a = normalizeAxis('concat', axis, xs[0].ndim);
  xs.forEach((x, k) => {
    if (x.dtype !== xs[0].dtype) throw new Error(`concat: tensor ${k} is ${x.dtype} but tensor 0 is ${xs[0].dtype}`);
    if (x.ndim !== xs[0].ndim || x.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new Error(`concat: tensor ${k} of shape ${shapeStr(x.shape)} does not match tensor 0 of shape ${shapeStr(xs[0].shape)} outside axis ${axis}`);
    }
  });
  if (xs.length === 1) return xs[0];
  return concatOp([...xs], { axis: a });
}

/** Join tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('stack: needs at least one tensor');
  xs.forEach((x, k) => {
    if (!sameShape(x.shape, xs[0].shape)) throw new Error(`stack: tensor ${k} has shape ${shapeStr(x.shape)}, tensor 0 has ${shapeStr(xs[0].shape)}`);
  });
  const a = normalizeAxis('stack', axis, xs[0].ndim + 1);
  return concat(xs.map((x) => unsqueeze(x, a)), a);
}

/** Tile the tensor `times[i]` times along each axis, as torch.Tensor.repeat. */
export function repeat(x: Tensor, times: readonly number[]): Tensor {
  if (times.length < x.ndim) throw new Error(`repeat: ${times.length} repeat counts for a tensor of shape ${shapeStr(x.shape)}`);
  const shape = [...new Array<number>(times.length - x.ndim).fill(1), ...x.shape];
  // view each axis d as (1, d), broadcast the 1 to times[i], then merge: (t0, d0, t1, d1, …) → (t0·d0, t1·d1, …)
  const interleaved = shape.flatMap((d) => [1, d]);
  const expanded = shape.flatMap((d, i) => [times[i], d]);
  return reshape(expand(reshape(x, interleaved), expanded), shape.map((d, i) => d * times[i]));
}

/** Nearest-neighbour upsampling of the last two axes by integer factors: each pixel becomes an fh×fw block. */
export function upsampleNearest(x: Tensor, factor: number | readonly [number, number]): Tensor {
  const [fh, fw] = typeof factor === 'number' ? [factor, factor] : factor;
  if (x.ndim < 2) throw new Error(`upsampleNearest: input needs at least 2 dims, got shape ${shapeStr(x.shape)}`);
  if (![fh, fw].every((f) => Number.isInteger(f) && f >= 1)) throw new Error(`upsampleNearest: factors must be positive integers, got ${fh}, ${fw}`);
  const lead = x.shape.slice(0, -2);
  const [h, w] = x.shape.slice(-2);
  // (…, h, 1, w, 1) → (…, h, fh, w, fw) → (…, h·fh, w·fw); the backward sums each block
  const blocks = expand(reshape(x, [...lead, h, 1, w, 1]), [...lead, h, fh, w, fw]);
  return reshape(blocks, [...lead, h * fh, w * fw]);
}

// ---------------------------------------------------------------- indexing

function outerInner(shape: readonly number[], axis: number): [number, number] {
  return [sizeOf(shape.slice(0, axis)), sizeOf(shape.slice(axis + 1))];
}

const indexSelectOp = defineOp<[Tensor, Tensor], { axis: number; index: Int32Array }>('indexSelect', {
  forward: ([x], { axis, index }) => {
    const shape = x.shape.map((d, i) => (i === axis ? index.length : d));
    const [outer, inner] = outerInner(x.shape, axis);
    const device = deviceFor(x);
    if (device) return fromDevice(device.indexSelect(devIn(x), outer, x.shape[axis], inner, index), shape);
    const { t, data } = emptyFloat(shape, x.dtype as FloatDType);
    backend().indexSelect(floatData(x), outer, x.shape[axis], inner, index, data);
    return t;
  },
  // picked rows send their gradient back, summed where a row was picked twice
  backward: (g, { inputs: [x], attrs: { axis, index } }) => {
    const [outer, inner] = outerInner(x.shape, axis);
    const device = deviceFor(g);
    if (device) return [fromDevice(device.indexAdd(devIn(g), outer, x.shape[axis], inner, index), x.shape), null];
    const { t, data } = emptyFloat(x.shape, g.dtype as FloatDType);
    backend().indexAdd(floatData(g), outer, x.shape[axis], inner, index, data);
    return [t, null];
  },
});

/** Rows `index` (1-D, int) along `axis`, as torch.index_select. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  requireFloat('indexSelect', 'input', x);
  const a = normalizeAxis('indexSelect', axis, x.ndim);
  if (index.ndim !== 1) throw new Error(`indexSelect: index must be 1-D, got shape ${shapeStr(index.shape)}`);
  return indexSelectOp([x, index], { axis: a, index: indexData('indexSelect', 'index', index, x.shape[a]) });
}

const indexScatterOp = defineOp<[Tensor, Tensor], { axis: number; index: Int32Array; size: number }>('indexScatter', {
  forward: ([x], { axis, index, size }) => {
    const shape = x.shape.map((d, i) => (i === axis ? size : d));
    const [outer, inner] = outerInner(shape, axis);
    const device = deviceFor(x);
    if (device) return fromDevice(device.indexAdd(devIn(x), outer, size, inner, index), shape);
    const { t, data } = emptyFloat(shape, x.dtype as FloatDType);
    backend().indexAdd(floatData(x), outer, size, inner, index, data);
    return t;
  },
  // the adjoint of indexSelect: each row reads its gradient back from where it was put
  backward: (g, { attrs: { axis, index } }) => [indexSelect(g, axis, tensorOfIndex(index)), null],
});

function tensorOfIndex(index: Int32Array): Tensor {
  return new Tensor(index, [index.length], 'int32');
}

/**
 * The adjoint of indexSelect: a tensor of `size` along `axis`, zero except row index[i], which holds x's row i
 * (rows named twice are summed). With distinct indices this scatters gathered rows back into place.
 */
export function indexScatter(x: Tensor, axis: number, index: Tensor, size: number): Tensor {
  requireFloat('indexScatter', 'input', x);
  const a = normalizeAxis('indexScatter', axis, x.ndim);
  if (index.ndim !== 1 || index.shape[0] !== x.shape[a]) {
    throw new Error(`indexScatter: index of shape ${shapeStr(index.shape)} must list one target for each of the ${x.shape[a]} rows of input ${shapeStr(x.shape)} along axis ${axis}`);
  }
  return indexScatterOp([x, index], { axis: a, index: indexData('indexScatter', 'index', index, size), size });
}

const gatherOp = defineOp<[Tensor, Tensor], { axis: number; index: Int32Array }>('gather', {
  forward: ([x, idx], { axis, index }) => {
    const { t, data } = emptyFloat(idx.shape, x.dtype as FloatDType);
    backend().gather(floatData(x), x.shape, axis, index, idx.shape, data);
    return t;
  },
  backward: (g, { inputs: [x, idx], attrs: { axis, index } }) => {
    const { t, data } = emptyFloat(x.shape, g.dtype as FloatDType);
    backend().scatterAdd(floatData(g), x.shape, axis, index, idx.shape, data);
    return [t, null];
  },
});

/** out[…i…] = x[…index[…i…]…] along `axis`, as torch.gather; index.shape[d] ≤ x.shape[d] off the axis. */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  requireFloat('gather', 'input', x);
  const a = normalizeAxis('gather', axis, x.ndim);
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== a && d > x.shape[i])) {
    throw new Error(`gather: index of shape ${shapeStr(index.shape)} does not fit input of shape ${shapeStr(x.shape)} along axis ${axis}`);
  }
  return gatherOp([x, index], { axis: a, index: indexData('gather', 'index', index, x.shape[a]) });
}
