/**
 * Reading PyTorch checkpoints written by `torch.save` in the zip format (the default since PyTorch 1.6): a zip
 * whose single top-level folder (the file's stem, or "archive") holds `data.pkl`, a pickle (protocol 2) of the
 * saved object, and `data/<key>`, one raw little-endian storage per key, plus `version` and, from torch 2.x,
 * `byteorder` ("little" or "big"; both are read) and `.data/serialization_id`.
 *
 * Tensors are pickled as `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata])`, the storage being a persistent id `('storage', torch.FloatStorage, key,
 * location, numel)`. Each tensor is copied out of its storage (strided: transposed, sliced, expanded views all
 * work), so tensors that shared a storage in PyTorch share nothing here. Storage dtypes: Float → float32,
 * Double → float64, Half and BFloat16 → float32 (exact), Long → int64, Int, Short, Char → int32, Byte → uint8,
 * Bool → bool, and UntypedStorage → uint8. requires_grad and backward hooks are read and dropped; the metadata
 * dict of torch 2.x is honoured for its `neg` bit.
 *
 * Nothing from the file is ever executed: the unpickler (pickle.ts) resolves globals only through the allow-list
 * below and refuses everything else with a TorchLoadError naming it. Left out: the legacy (pre-1.6, non-zip)
 * format, TorchScript archives, whole pickled modules, sparse/quantized/complex tensors, and storage types other
 * than those listed. `loadTorch` reads the whole file into memory (no mmap).
 */
import { halfToFloatBits, bfloat16ToFloatBits } from './half.ts';
import { readFileSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.ts';
import type { DType, DataArray } from '../tensor/dtype.ts';
import { readZipEntries, readZipEntry, ZipError, type ZipEntry } from './zip.ts';
import { unpickle, GlobalRef, PickleError, type PickleArg, type PickleValue } from './pickle.ts';

export class TorchLoadError extends Error {
  override name = 'TorchLoadError';
}

/** What `loadTorch` returns: tuples are arrays, dicts plain objects in insertion order, ints past 2^53 bigints. */
export type TorchValue =
  | Tensor | number | bigint | string | boolean | null | Uint8Array | TorchValue[] | { [key: string]: TorchValue };

function fail(message: string): never {
  throw new TorchLoadError(message);
}

// ------------------------------------------------------------------------------------------------------------
// Storage types

type Elem = 'f32' | 'f64' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

interface StorageSpec { elem: Elem; size: number; dtype: DType }

const STORAGES: Record<string, StorageSpec> = {
  FloatStorage: { elem: 'f32', size: 4, dtype: 'float32' },
  DoubleStorage: { elem: 'f64', size: 8, dtype: 'float64' },
  HalfStorage: { elem: 'f16', size: 2, dtype: 'float32' },
  BFloat16Storage: { elem: 'bf16', size: 2, dtype: 'float32' },
  LongStorage: { elem: 'i64', size: 8, dtype: 'int64' },
  IntStorage: { elem: 'i32', size: 4, dtype: 'int32' },
  ShortStorage: { elem: 'i16', size: 2, dtype: 'int32' },
  CharStorage: { elem: 'i8', size: 1, dtype: 'int32' },
  ByteStorage: { elem: 'u8', size: 1, dtype: 'uint8' },
  BoolStorage: { elem: 'bool', size: 1, dtype: 'bool' },
};
/** torch 2.x names a storage saved on its own `torch.UntypedStorage` (bytes); tensors always name a typed one. */
const UNTYPED: StorageSpec = { elem: 'u8', size: 1, dtype: 'uint8' };

/** A storage as the persistent id names it; its bytes are read from the zip on first use. */
class StorageRef {
  private cached: Uint8Array | undefined;
  constructor(
    readonly spec: StorageSpec,
    readonly key: string,
    readonly numel: number,
    private readonly read: () => Uint8Array,
  ) {}
  bytes(): Uint8Array {
    this.cached ??= this.read();
    return this.cached;
  }
}

// ------------------------------------------------------------------------------------------------------------
// Loading

/** Reads a `torch.save` checkpoint. */
export function loadTorch(path: string): TorchValue {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    fail(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return loadTorchBytes(bytes);
  } catch (e) {
    if (e instanceof TorchLoadError) throw new TorchLoadError(`${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Reads a `torch.save` checkpoint held in memory. Every failure on a malformed or hostile file is a TorchLoadError. */
export function loadTorchBytes(bytes: Uint8Array): TorchValue {
  if (!(bytes instanceof Uint8Array)) fail('input is not a Uint8Array');
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
    fail('this is the legacy torch.save format (before PyTorch 1.6, or _use_new_zipfile_serialization=False), ' +
      'which is not supported; re-save it with a current PyTorch');
  }
  try {
    return load(bytes);
  } catch (e) {
    if (e instanceof ZipError || e instanceof PickleError) throw new TorchLoadError(e.message, { cause: e });
    throw e;
  }
}

function load(bytes: Uint8Array): TorchValue {
  const entries = new Map<string, ZipEntry>();
  for (const e of readZipEntries(bytes)) entries.set(e.name, e);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length === 0) {
    if (entries.has('constants.pkl') || [...entries.keys()].some((n) => n.endsWith('/constants.pkl'))) {
      fail('no data.pkl: this looks like a TorchScript archive (torch.jit.save), not a torch.save checkpoint');
    }
    fail('no <folder>/data.pkl in the zip: not a torch.save checkpoint');
  }
  if (pkls.length > 1) fail(`several pickles in one archive (${pkls.join(', ')}): ambiguous`);
  const prefix = pkls[0].slice(0, -'data.pkl'.length);

  let littleEndian = true;
  const order = entries.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(readZipEntry(bytes, order)).trim();
    if (text !== 'little' && text !== 'big') fail(`byteorder record says ${JSON.stringify(text)}, not "little" or "big"`);
    littleEndian = text === 'little';
  }

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: PickleArg): StorageRef => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      fail(`unsupported persistent id ${brief(pid)} (expected ('storage', type, key, location, numel))`);
    }
    const [, type, key, , numel] = pid as unknown[];
    if (!(type instanceof GlobalRef)) fail(`persistent id names ${brief(type)} as its storage type`);
    const spec = storageSpec(type as GlobalRef);
    if (!spec) fail(`${(type as GlobalRef).fullName} is not a storage type`);
    if (typeof key !== 'string') fail(`storage key ${brief(key)} is not a string`);
    if (!isSize(numel)) fail(`storage ${key}: element count ${brief(numel)} is not a non-negative integer`);
    const id = `${key}\u0000${(type as GlobalRef).fullName}`;
    let ref = storages.get(id);
    if (!ref) {
      const name = `${prefix}data/${key}`;
      const entry = entries.get(name);
      if (!entry) fail(`storage ${key}: the archive has no ${name}`);
      const need = (numel as number) * spec!.size;
      ref = new StorageRef(spec!, key as string, numel as number, () => {
        const data = readZipEntry(bytes, entry!);
        if (data.length < need) {
          fail(`storage ${key}: ${numel} elements of ${spec!.size} bytes need ${need} bytes, ${name} holds ${data.length}`);
        }
        return data;
      });
      storages.set(id, ref);
    }
    return ref;
  };

  const value = unpickle<Tensor>(readZipEntry(bytes, entries.get(pkls[0])!), {
    findGlobal: (module, qualname) => torchGlobal(module, qualname, littleEndian),
    persistentLoad,
    leaf: (v) => {
      if (v instanceof Tensor) return v;
      if (v instanceof StorageRef) fail(`a bare storage (key ${v.key}) is in the result; only tensors are supported`);
      return fail(`unexpected ${v.constructor?.name ?? 'object'} in the result`);
    },
  });
  return value as PickleValue<Tensor> as TorchValue;
}

function storageSpec(g: GlobalRef): StorageSpec | undefined {
  if (g.module === 'torch' && Object.hasOwn(STORAGES, g.qualname)) return STORAGES[g.qualname];
  if ((g.module === 'torch' || g.module === 'torch.storage') && g.qualname === 'UntypedStorage') return UNTYPED;
  return undefined;
}

/** The torch part of the allow-list; pickle.ts adds collections.OrderedDict and _codecs.encode. */
function torchGlobal(module: string, qualname: string, littleEndian: boolean): GlobalRef | undefined {
  const full = `${module}.${qualname}`;
  switch (full) {
    case 'torch._utils._rebuild_tensor_v2':
      return new GlobalRef(module, qualname, (args) => rebuildTensor(args, littleEndian));
    case 'torch._utils._rebuild_parameter':
      return new GlobalRef(module, qualname, (args) => {
        if (args.length !== 3 || !(args[0] instanceof Tensor)) fail(`${full} expects (tensor, requires_grad, hooks)`);
        return args[0];
      });
    case 'torch.Size':
      return new GlobalRef(module, qualname, (args) => {
        const dims = args.length === 0 ? [] : args[0];
        if (args.length > 1 || !Array.isArray(dims) || !dims.every(isSize)) fail(`${full} expects one tuple of sizes`);
        return (dims as number[]).slice();
      });
  }
  // Storage types are values inside persistent ids, never called.
  const g = new GlobalRef(module, qualname);
  return storageSpec(g) ? g : undefined;
}

function isSize(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function brief(v: unknown): string {
  if (v instanceof GlobalRef) return v.fullName;
  try {
    const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
    if (s !== undefined) return s.length > 80 ? `${s.slice(0, 80)}...` : s;
  } catch { /* cycles and the like: fall through */ }
  return String(v);
}

/** Python ints reach us as number or bigint; sizes, strides and offsets must be exact non-negative numbers. */
function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every(isSize)) fail(`_rebuild_tensor_v2: ${what} ${brief(v)} is not a tuple of non-negative ints`);
  return v as number[];
}

/** Tensors past this many elements are refused before allocating (a stride-0 expand can claim any size). */
const MAX_NUMEL = 2 ** 31 - 1;

/**
 * _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]):
 * element (i0, ..., ik) of the tensor is storage[offset + Σ ij·stride_j]. Every index the view reaches must lie
 * inside the storage; the reached range is decoded, then gathered in C order.
 */
function rebuildTensor(args: PickleArg[], littleEndian: boolean): Tensor {
  if (args.length !== 6 && args.length !== 7) fail(`_rebuild_tensor_v2 expects 6 or 7 arguments, got ${args.length}`);
  const [storage, offset, sizeArg, strideArg, requiresGrad, , metadata] = args;
  if (!(storage instanceof StorageRef)) fail(`_rebuild_tensor_v2: ${brief(storage)} is not a storage`);
  const st = storage as StorageRef;
  if (!isSize(offset)) fail(`_rebuild_tensor_v2: storage offset ${brief(offset)} is not a non-negative int`);
  const shape = intList(sizeArg, 'size');
  const stride = intList(strideArg, 'stride');
  if (shape.length !== stride.length) fail(`_rebuild_tensor_v2: size ${brief(shape)} and stride ${brief(stride)} differ in length`);
  if (typeof requiresGrad !== 'boolean') fail('_rebuild_tensor_v2: requires_grad is not a bool');
  let negate = false;
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== 'object' || Array.isArray(metadata)) fail('_rebuild_tensor_v2: metadata is not a dict');
    for (const [k, v] of Object.entries(metadata as Record<string, unknown>)) {
      if (k === 'neg') negate = v === true;
      else if (k === 'conj') { /* the conjugate of a real tensor is itself */ } else if (v !== false) {
        fail(`_rebuild_tensor_v2: unsupported tensor metadata ${JSON.stringify(k)}`);
      }
    }
  }

  let numel = 1;
  for (const d of shape) numel *= d;
  if (numel > MAX_NUMEL) fail(`_rebuild_tensor_v2: size ${brief(shape)} has ${numel} elements, more than ${MAX_NUMEL}`);
  const { spec } = st;
  let data: DataArray;
  if (numel === 0) {
    data = decode(spec, new Uint8Array(0), littleEndian);
  } else {
    let last = offset as number;
    for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
    if (last >= st.numel) {
      fail(`_rebuild_tensor_v2: size ${brief(shape)}, stride ${brief(stride)} and offset ${offset} reach element ` +
        `${last} of storage ${st.key}, which has ${st.numel}`);
    }
    const first = offset as number;
    const src = decode(spec, st.bytes().subarray(first * spec.size, (last + 1) * spec.size), littleEndian);
    data = isContiguous(shape, stride) ? src : gather(src, shape, stride, numel);
  }
  if (negate) negateInPlace(data, spec.dtype);
  return new Tensor(data, shape, spec.dtype);
}

/** C-contiguous: stride_j = Π_{i>j} size_i, ignoring dimensions of size 1 (their stride is irrelevant). */
function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** out[C-order index of (i0..ik)] = src[Σ ij·stride_j]; `src` starts at the storage offset. */
function gather(src: DataArray, shape: number[], stride: number[], numel: number): DataArray {
  const out = new (src.constructor as new (n: number) => DataArray)(numel);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const inner = shape[nd - 1];
  const innerStride = stride[nd - 1];
  const a = src as unknown as ArrayLike<number> & { [i: number]: number };
  const o = out as unknown as { [i: number]: number };
  let base = 0;
  for (let at = 0; at < numel; at += inner) {
    for (let j = 0, s = base; j < inner; j++, s += innerStride) o[at + j] = a[s];
    // odometer over the outer dimensions
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

function negateInPlace(data: DataArray, dtype: DType): void {
  if (dtype === 'bool') fail('_rebuild_tensor_v2: the neg bit on a bool tensor');
  if (data instanceof BigInt64Array) { for (let i = 0; i < data.length; i++) data[i] = -data[i]; return; }
  if (data instanceof Uint8Array) { for (let i = 0; i < data.length; i++) data[i] = -data[i]; return; }
  const d = data as Float32Array | Float64Array | Int32Array;
  for (let i = 0; i < d.length; i++) d[i] = -d[i];
}

/** A constant of the platform: typed arrays use the host byte order. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A fresh copy (Uint8Array.prototype.slice copies even for a Node Buffer, whose own slice() shares memory). */
function copyBytes(src: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(src);
}

/** The elements in `src` (whole elements, any alignment) as a fresh array of the storage's DType. */
function decode(spec: StorageSpec, src: Uint8Array, le: boolean): DataArray {
  const n = src.length / spec.size;
  switch (spec.elem) {
    case 'u8': return copyBytes(src);
    case 'bool': { const out = new Uint8Array(n); for (let i = 0; i < n; i++) out[i] = src[i] !== 0 ? 1 : 0; return out; }
    case 'i8': { const out = new Int32Array(n); for (let i = 0; i < n; i++) out[i] = (src[i] << 24) >> 24; return out; }
  }
  if (le === HOST_IS_LITTLE_ENDIAN) {
    switch (spec.elem) {
      case 'f32': return new Float32Array(copyBytes(src).buffer);
      case 'f64': return new Float64Array(copyBytes(src).buffer);
      case 'i64': return new BigInt64Array(copyBytes(src).buffer);
      case 'i32': return new Int32Array(copyBytes(src).buffer);
    }
  }
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (spec.elem) {
    case 'f32': { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = v.getFloat32(4 * i, le); return a; }
    case 'f64': { const a = new Float64Array(n); for (let i = 0; i < n; i++) a[i] = v.getFloat64(8 * i, le); return a; }
    case 'i64': { const a = new BigInt64Array(n); for (let i = 0; i < n; i++) a[i] = v.getBigInt64(8 * i, le); return a; }
    case 'i32': { const a = new Int32Array(n); for (let i = 0; i < n; i++) a[i] = v.getInt32(4 * i, le); return a; }
    case 'i16': { const a = new Int32Array(n); for (let i = 0; i < n; i++) a[i] = v.getInt16(2 * i, le); return a; }
    case 'f16': case 'bf16': {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) {
        const h = v.getUint16(2 * i, le);
        bits[i] = spec.elem === 'f16' ? halfToFloatBits(h) : bfloat16ToFloatBits(h);
      }
      return out;
    }
  }
}


// ------------------------------------------------------------------------------------------------------------
// State dicts

const WRAPPER_KEYS = ['module', 'state_dict', 'model'];

function isDict(v: TorchValue | undefined): v is { [key: string]: TorchValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Tensor) && !(v instanceof Uint8Array);
}

/**
 * The state dict inside a loaded checkpoint: the value itself if it is a dict holding tensors, else the first of
 * its `module`, `state_dict`, `model` entries that is (the official SparK `*_withdecoder_*.pth` is
 * `{module: state_dict, epoch, args, optimizer, ...}`), or the entry `options.key` names (dotted for nesting).
 * `tensors` has the dict's tensors in order; `extras` its other entries (SparK keeps a `config` dict in
 * `module`). `path` only names the file in error messages.
 */
export function stateDictFrom(
  value: TorchValue,
  path?: string,
  options: { key?: string } = {},
): { tensors: Record<string, Tensor>; extras: Record<string, TorchValue> } {
  const where = path === undefined ? 'checkpoint' : path;
  const hasTensor = (d: { [key: string]: TorchValue }) => Object.values(d).some((x) => x instanceof Tensor);
  let dict: { [key: string]: TorchValue } | undefined;
  if (options.key !== undefined) {
    let v: TorchValue | undefined = value;
    for (const part of options.key.split('.')) v = isDict(v) && Object.hasOwn(v, part) ? v[part] : undefined;
    if (!isDict(v)) fail(`${where}: no dict at key ${JSON.stringify(options.key)}`);
    dict = v;
  } else if (isDict(value)) {
    if (hasTensor(value)) dict = value;
    else {
      for (const k of WRAPPER_KEYS) {
        const inner = Object.hasOwn(value, k) ? value[k] : undefined;
        if (isDict(inner) && hasTensor(inner)) { dict = inner; break; }
      }
    }
    if (!dict) {
      fail(`${where}: no state dict found: the top-level dict holds no tensors and no ${WRAPPER_KEYS.join('/')} ` +
        `entry that does (keys: ${Object.keys(value).slice(0, 20).join(', ')})`);
    }
  } else {
    const kind = value === null ? 'None' : Array.isArray(value) ? 'a list' : value instanceof Tensor ? 'a tensor' : typeof value;
    fail(`${where}: no state dict found: the checkpoint holds ${kind}, not a dict`);
  }
  const tensors: Record<string, Tensor> = {};
  const extras: Record<string, TorchValue> = {};
  for (const [k, v] of Object.entries(dict!)) {
    Object.defineProperty(v instanceof Tensor ? tensors : extras, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return { tensors, extras };
}
