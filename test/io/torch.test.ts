/**
 * Tests of the torch.save reader (src/io/torch.ts, with zip.ts and pickle.ts): every checkpoint under
 * test/fixtures/torch/ (written by gen_torch.py with PyTorch 1.13) against its JSON sidecar, exactly (dtypes,
 * shapes, bit patterns, int64 past 2^53, key order); stateDictFrom on a SparK-shaped checkpoint; the hostile and
 * broken fixtures (refused with a TorchLoadError naming the global or opcode, and nothing executed); hand-built
 * archives for what torch 1.13 cannot write (torch 2.x metadata, byteorder "big", UntypedStorage) and for each
 * refusal of the unpickler; and fuzz tests that corrupt files and pickles and accept only success or
 * TorchLoadError.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { Tensor } from '../../src/tensor/tensor.ts';
import { loadTorch, loadTorchBytes, stateDictFrom, TorchLoadError, type TorchValue } from '../../src/io/torch.ts';
import { readZipEntries, readZipEntry } from '../../src/io/zip.ts';
import { unpickle, PickleError } from '../../src/io/pickle.ts';

const DIR = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'fixtures', 'torch');
const fixture = (name: string): string => join(DIR, `${name}.pth`);
const VALID = ['state_dict', 'spark_like', 'views', 'shared', 'dtypes', 'scalar', 'python_values', 'proto4',
  'archive_prefix', 'deflate', 'zip64'];

// ---------------------------------------------------------------------------------------------------------------
// Comparing against the sidecars (encoding described in gen_torch.py)

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function bitsOf(t: Tensor): (number | string)[] {
  const d = t.data;
  if (d instanceof Float32Array) return Array.from(new Uint32Array(d.buffer, d.byteOffset, d.length));
  if (d instanceof Float64Array) {
    return Array.from(new BigUint64Array(d.buffer, d.byteOffset, d.length), (b) => b.toString(16).padStart(16, '0'));
  }
  if (d instanceof BigInt64Array) return Array.from(d, (b) => b.toString());
  return Array.from(d as Int32Array | Uint8Array);
}

/** The elements of a non-int64 tensor as numbers. */
const nums = (t: Tensor): number[] => Array.from(t.data as Float32Array | Float64Array | Int32Array | Uint8Array);

function compare(actual: TorchValue, expected: Json, at: string): void {
  if (expected === null || typeof expected === 'boolean' || typeof expected === 'string') {
    assert.is(actual, expected, at);
  } else if (typeof expected === 'number') {
    assert.type(actual, 'number', at);
    assert.ok(Object.is(actual, expected), `${at}: ${String(actual)} !== ${expected}`);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${at}: not an array`);
    const a = actual as TorchValue[];
    assert.is(a.length, expected.length, `${at}: length`);
    expected.forEach((e, i) => compare(a[i], e, `${at}[${i}]`));
  } else if ('__tensor__' in expected) {
    assert.ok(actual instanceof Tensor, `${at}: not a Tensor`);
    const t = actual as Tensor;
    assert.is(t.dtype, expected.__tensor__, `${at}: dtype`);
    assert.equal([...t.shape], expected.shape, `${at}: shape`);
    assert.equal(bitsOf(t), expected.data, `${at}: data`);
  } else if ('__int__' in expected) {
    assert.is(actual, BigInt(expected.__int__ as string), at);
  } else if ('__float__' in expected) {
    const want = { inf: Infinity, '-inf': -Infinity, nan: NaN }[expected.__float__ as string];
    assert.ok(Object.is(actual, want), `${at}: ${String(actual)} is not ${String(want)}`);
  } else if ('__bytes__' in expected) {
    assert.ok(actual instanceof Uint8Array, `${at}: not bytes`);
    assert.equal(Array.from(actual as Uint8Array), expected.__bytes__, at);
  } else {
    assert.ok(isDict(actual), `${at}: not a dict`);
    const a = actual as Record<string, TorchValue>;
    assert.equal(Object.keys(a), Object.keys(expected), `${at}: keys (and their order)`);
    for (const k of Object.keys(expected)) compare(a[k], expected[k], `${at}.${k}`);
  }
}

function isDict(v: unknown): v is Record<string, TorchValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Tensor) && !(v instanceof Uint8Array);
}

function throwsTorch(fn: () => unknown, includes: string | RegExp, what = ''): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, TorchLoadError, `${what}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    const msg = (e as Error).message;
    if (typeof includes === 'string') assert.ok(msg.includes(includes), `${what}: message ${JSON.stringify(msg)} lacks ${JSON.stringify(includes)}`);
    else assert.match(msg, includes, what);
    return;
  }
  assert.unreachable(`${what}: did not throw`);
}

// ---------------------------------------------------------------------------------------------------------------
// The fixtures

for (const name of VALID) {
  test(`fixture ${name}.pth matches what torch.load gives`, () => {
    const expected = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as Json;
    compare(loadTorch(fixture(name)), expected, name);
  });
}

test('state dict: official key order, int64 num_batches_tracked, float32 weights', () => {
  const sd = loadTorch(fixture('state_dict')) as Record<string, Tensor>;
  assert.equal(Object.keys(sd), ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var',
    '1.num_batches_tracked', '5.weight', '5.bias']);
  const nbt = sd['1.num_batches_tracked'];
  assert.is(nbt.dtype, 'int64');
  assert.equal([...nbt.shape], []);
  assert.is((nbt.data as BigInt64Array)[0], 1n);
  assert.is(sd['0.weight'].dtype, 'float32');
  assert.equal([...sd['0.weight'].shape], [3, 2, 3, 3]);
  assert.is(sd['0.weight'].requiresGrad, false);
});

test('dtypes: int64 past 2^53 is exact, int8/int16 widen to int32, half types to float32', () => {
  const d = loadTorch(fixture('dtypes')) as Record<string, Tensor>;
  assert.equal(Array.from(d.i64.data as BigInt64Array),
    [-(2n ** 63n), -(2n ** 53n) - 1n, 2n ** 53n + 1n, 2n ** 62n + 12345n, 2n ** 63n - 1n, 0n]);
  assert.is(d.i8.dtype, 'int32');
  assert.equal(Array.from(d.i8.data as Int32Array), [-128, -1, 0, 1, 127]);
  assert.equal(Array.from(d.i16.data as Int32Array), [-32768, -1, 0, 32767]);
  assert.is(d.f16.dtype, 'float32');
  assert.equal(nums(d.f16).slice(0, 5), [0, -0, 1, -2.5, 65504]);
  assert.is(d.f16.data[6], 2 ** -24 * 1); // 6e-8 rounds to the smallest float16 subnormal
  assert.is(d.bool.dtype, 'bool');
  assert.equal(Array.from(d.bool.data as Uint8Array), [1, 0, 0, 1]);
  assert.is(d.scalar_i64.item(), 2 ** 60 + 7);
  assert.equal([...d.scalar_f32.shape], []);
});

test('views of one storage come back as independent copies', () => {
  const s = loadTorch(fixture('shared')) as Record<string, Tensor>;
  assert.equal(nums(s.window), [3, 4, 5, 6, 7]);
  assert.equal(s.grid.toArray(), [[0, 5], [1, 6], [2, 7], [3, 8], [4, 9]]);
  assert.is.not(s.base.data.buffer, s.window.data.buffer);
  (s.base.data as Float32Array)[3] = 100;
  assert.is(s.window.data[0], 3);
});

test('python values: bigints, bytes, int keys, a __proto__ key that stays a key', () => {
  const v = loadTorch(fixture('python_values')) as Record<string, TorchValue>;
  assert.is(v.huge, 2n ** 70n + 1n);
  assert.is(v.huge_neg, -(2n ** 64n));
  assert.is(v.max_safe, 2 ** 53 - 1);
  assert.ok(Object.hasOwn(v, '__proto__'));
  assert.is(Object.getPrototypeOf(v), Object.prototype);
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  assert.ok(v.param instanceof Tensor);
  assert.equal(v.size, [2, 3]);
});

test('stateDictFrom: a SparK-style checkpoint gives module\'s tensors, config as an extra', () => {
  const ckpt = loadTorch(fixture('spark_like')) as Record<string, TorchValue>;
  assert.equal(Object.keys(ckpt), ['args', 'input_size', 'arch', 'epoch', 'performance_desc', 'module', 'optimizer',
    'is_pretrain']);
  assert.is(ckpt.epoch, 3);
  assert.is(ckpt.is_pretrain, true);
  const { tensors, extras } = stateDictFrom(ckpt, 'spark_like.pth');
  const plain = loadTorch(fixture('state_dict')) as Record<string, Tensor>;
  assert.equal(Object.keys(tensors), Object.keys(plain));
  for (const k of Object.keys(plain)) assert.equal(bitsOf(tensors[k]), bitsOf(plain[k]), k);
  assert.equal(Object.keys(extras), ['config']);
  assert.equal(extras.config, { mask_ratio: 0.6, densify_norm_str: 'bn', sbn: false, hierarchy: 4,
    'sparse_encoder.input_size': 224, 'dense_decoder.width': 768 });
  // the optimizer state: int keys become strings, step is a 0-d float tensor in torch 1.13
  const opt = ckpt.optimizer as Record<string, TorchValue>;
  const state0 = (opt.state as Record<string, TorchValue>)['0'] as Record<string, TorchValue>;
  assert.ok(state0.exp_avg instanceof Tensor);
  const group = (opt.param_groups as TorchValue[])[0] as Record<string, TorchValue>;
  assert.equal(group.betas, [0.9, 0.95]);
  assert.equal(group.params, [0, 1, 2, 3, 4, 5]);
  // an explicit key
  const st = stateDictFrom(ckpt, undefined, { key: 'optimizer.state.0' });
  assert.ok(st.tensors.exp_avg_sq instanceof Tensor);
});

test('stateDictFrom: a plain state dict is itself; a bare tensor or a dict without tensors is an error', () => {
  const sd = loadTorch(fixture('state_dict'));
  const { tensors, extras } = stateDictFrom(sd);
  assert.equal(Object.keys(tensors), Object.keys(sd as object));
  assert.equal(extras, {});
  throwsTorch(() => stateDictFrom(loadTorch(fixture('scalar')), 'scalar.pth'), 'scalar.pth: no state dict found: the checkpoint holds a tensor');
  throwsTorch(() => stateDictFrom({ epoch: 3, args: 'x' }), 'no state dict found');
  throwsTorch(() => stateDictFrom(sd, undefined, { key: 'module' }), 'no dict at key "module"');
});

test('hostile and broken files raise TorchLoadError naming the refusal, and nothing runs', () => {
  const { marker, files } = JSON.parse(readFileSync(join(DIR, 'hostile.json'), 'utf8')) as
    { marker: string; files: Record<string, string> };
  rmSync(marker, { force: true });
  assert.ok(Object.keys(files).length >= 8);
  for (const [name, message] of Object.entries(files)) throwsTorch(() => loadTorch(fixture(name)), message, name);
  assert.not.ok(existsSync(marker), `${marker} was created: something in a hostile file ran`);
  throwsTorch(() => loadTorch(join(DIR, 'does-not-exist.pth')), 'cannot read');
});

test('loadTorch prefixes messages with the path', () => {
  throwsTorch(() => loadTorch(fixture('evil_os_system')), /evil_os_system\.pth: .*refusing global posix\.system/);
});

// ---------------------------------------------------------------------------------------------------------------
// Hand-built archives and pickles

const utf8 = (s: string): number[] => Array.from(new TextEncoder().encode(s));
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u16 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff];

/** A little pickle assembler: each helper gives the bytes of one opcode. */
const op = {
  proto: (n: number) => [0x80, n],
  mark: [0x28], stop: [0x2e], none: [0x4e], true: [0x88], false: [0x89],
  int: (n: number) => (n >= 0 && n < 256 ? [0x4b, n] : [0x4a, ...u32(n)]),
  str: (s: string) => { const b = utf8(s); return [0x58, ...u32(b.length), ...b]; },
  global: (m: string, n: string) => [0x63, ...utf8(`${m}\n${n}\n`)],
  tuple: [0x74], tuple1: [0x85], emptyTuple: [0x29], emptyList: [0x5d], emptyDict: [0x7d],
  setitem: [0x73], setitems: [0x75], append: [0x61], appends: [0x65], reduce: [0x52], build: [0x62],
  persid: [0x51], put: (i: number) => [0x71, i], get: (i: number) => [0x68, i],
};
const pkl = (...parts: number[][]): Uint8Array => new Uint8Array(parts.flat());
const tupleOf = (...items: number[][]) => [...op.mark, ...items.flat(), ...op.tuple];

/** _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict()[, meta]) */
function tensorOps(type: string, key: string, numel: number, offset: number, size: number[], stride: number[],
  meta?: number[]): number[] {
  return [
    ...op.global('torch._utils', '_rebuild_tensor_v2'),
    ...op.mark,
    ...tupleOf(op.str('storage'), op.global(type.includes('.') ? type.split('.').slice(0, -1).join('.') : 'torch',
      type.split('.').pop()!), op.str(key), op.str('cpu'), op.int(numel)),
    ...op.persid,
    ...op.int(offset), ...tupleOf(...size.map(op.int)), ...tupleOf(...stride.map(op.int)), ...op.false,
    ...op.global('collections', 'OrderedDict'), ...op.emptyTuple, ...op.reduce,
    ...(meta ?? []),
    ...op.tuple, ...op.reduce,
  ];
}

/** A STORED zip as torch lays it out (folder/data.pkl, folder/data/<key>, ...), with correct CRCs. */
function makeZip(files: [string, Uint8Array][]): Uint8Array {
  const out: number[] = [];
  const central: number[] = [];
  for (const [name, body] of files) {
    const n = utf8(name);
    const crc = u32(zlib.crc32(body) >>> 0);
    const offset = out.length;
    out.push(...u32(0x04034b50), ...u16(20), ...u16(0), ...u16(0), ...u16(0), ...u16(0), ...crc, ...u32(body.length),
      ...u32(body.length), ...u16(n.length), ...u16(0), ...n, ...body);
    central.push(...u32(0x02014b50), ...u16(20), ...u16(20), ...u16(0), ...u16(0), ...u16(0), ...u16(0), ...crc,
      ...u32(body.length), ...u32(body.length), ...u16(n.length), ...u16(0), ...u16(0), ...u16(0), ...u16(0),
      ...u32(0), ...u32(offset), ...n);
  }
  const cdOffset = out.length;
  out.push(...central, ...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(files.length), ...u16(files.length),
    ...u32(central.length), ...u32(cdOffset), ...u16(0));
  return new Uint8Array(out);
}

const f32bytes = (xs: number[]): Uint8Array => new Uint8Array(new Float32Array(xs).buffer);

function checkpoint(data: Uint8Array, storages: Record<string, Uint8Array> = {}, extra: [string, Uint8Array][] = []) {
  return makeZip([['ckpt/data.pkl', data], ...Object.entries(storages).map(([k, b]) => [`ckpt/data/${k}`, b] as
    [string, Uint8Array]), ...extra]);
}

test('torch 2.x form: the 7th metadata argument ({neg: True} negates), UntypedStorage', () => {
  const meta = [...op.emptyDict, ...op.str('neg'), ...op.true, ...op.setitem];
  const data = pkl(op.proto(2), op.emptyDict, op.mark, op.str('n'), tensorOps('FloatStorage', '0', 3, 0, [3], [1], meta),
    op.str('u'), tensorOps('torch.storage.UntypedStorage', '1', 4, 1, [2], [2]), op.setitems, op.stop);
  const v = loadTorchBytes(checkpoint(data, { 0: f32bytes([1, -2, 3]), 1: new Uint8Array([9, 8, 7, 6]) })) as
    Record<string, Tensor>;
  assert.equal(nums(v.n), [-1, 2, -3]);
  assert.is(v.u.dtype, 'uint8');
  assert.equal(nums(v.u), [8, 6]);
});

test('byteorder "big" is honoured', () => {
  const be = new Uint8Array(8);
  new DataView(be.buffer).setFloat32(0, 1.5, false);
  new DataView(be.buffer).setFloat32(4, -2, false);
  const bytes = checkpoint(pkl(op.proto(2), tensorOps('FloatStorage', '0', 2, 0, [2], [1]), op.stop), { 0: be },
    [['ckpt/byteorder', new Uint8Array(utf8('big'))]]);
  assert.equal(nums(loadTorchBytes(bytes) as Tensor), [1.5, -2]);
  const le = checkpoint(pkl(op.proto(2), tensorOps('FloatStorage', '0', 2, 0, [2], [1]), op.stop), { 0: f32bytes([1.5, -2]) },
    [['ckpt/byteorder', new Uint8Array(utf8('little'))]]);
  assert.equal(nums(loadTorchBytes(le) as Tensor), [1.5, -2]);
});

test('refusals of the unpickler and the tensor rebuild', () => {
  const s4 = { 0: f32bytes([1, 2, 3, 4]) };
  const cases: [string, Uint8Array, string][] = [
    ['view past the storage', pkl(op.proto(2), tensorOps('FloatStorage', '0', 4, 2, [3], [1]), op.stop),
      'reach element 4 of storage 0, which has 4'],
    ['numel larger than the record', pkl(op.proto(2), tensorOps('FloatStorage', '0', 5, 0, [5], [1]), op.stop),
      'need 20 bytes'],
    ['missing storage record', pkl(op.proto(2), tensorOps('FloatStorage', '7', 4, 0, [4], [1]), op.stop),
      'no ckpt/data/7'],
    ['size/stride length mismatch', pkl(op.proto(2), tensorOps('FloatStorage', '0', 4, 0, [2, 2], [1]), op.stop),
      'differ in length'],
    ['unsupported storage type', pkl(op.proto(2), tensorOps('ComplexFloatStorage', '0', 2, 0, [2], [1]), op.stop),
      'refusing global torch.ComplexFloatStorage'],
    ['calling a storage type', pkl(op.proto(2), op.global('torch', 'FloatStorage'), op.emptyTuple, op.reduce, op.stop),
      'refusing to call torch.FloatStorage'],
    ['a global as a value', pkl(op.proto(2), op.global('collections', 'OrderedDict'), op.stop),
      'global collections.OrderedDict appears as a value'],
    ['a bare storage as a value', pkl(op.proto(2), tupleOf(op.str('storage'), op.global('torch', 'FloatStorage'),
      op.str('0'), op.str('cpu'), op.int(4)), op.persid, op.stop), 'a bare storage'],
    ['a bad persistent id', pkl(op.proto(2), op.str('nope'), op.persid, op.stop), 'unsupported persistent id'],
    ['BUILD on a list', pkl(op.proto(2), op.emptyList, op.emptyDict, op.build, op.stop), 'BUILD on a list'],
    ['BUILD on a plain dict', pkl(op.proto(2), op.emptyDict, op.emptyDict, op.build, op.stop), 'only an OrderedDict'],
    ['APPEND to a tuple', pkl(op.proto(2), op.emptyTuple, op.none, op.append, op.stop), 'APPEND to a tuple'],
    ['SETITEM on a list', pkl(op.proto(2), op.emptyList, op.str('k'), op.none, op.setitem, op.stop), 'not a dict'],
    ['REDUCE on a str', pkl(op.proto(2), op.str('os.system'), op.emptyTuple, op.reduce, op.stop), 'not a global'],
    ['a float dict key', pkl(op.proto(2), op.emptyDict, [0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], op.none, op.setitem, op.stop),
      'is not a str or an int'],
    ['a None dict key', pkl(op.proto(2), op.emptyDict, op.none, op.none, op.setitem, op.stop), 'dict key None'],
    ['memo miss', pkl(op.proto(2), op.get(3), op.stop), 'memo key 3 was never stored'],
    ['stack underflow', pkl(op.proto(2), op.mark, op.tuple1, op.stop), 'stack underflow'],
    ['no MARK', pkl(op.proto(2), op.none, op.tuple, op.stop), 'no MARK'],
    ['truncated string', pkl(op.proto(2), [0x58, 100, 0, 0, 0, 65], op.stop), 'truncated'],
    ['no STOP', pkl(op.proto(2), op.none), 'truncated'],
    ['protocol 6', pkl(op.proto(6), op.none, op.stop), 'unsupported pickle protocol 6'],
    ['NEWOBJ', pkl(op.proto(2), [0x81], op.stop), '0x81 (NEWOBJ)'],
    ['PERSID (text)', pkl(op.proto(2), [0x50], op.stop), "0x50 'P' (PERSID)"],
    ['EXT1', pkl(op.proto(2), [0x82, 1], op.stop), 'EXT1'],
    ['builtins.getattr', pkl(op.proto(2), op.global('builtins', 'getattr'), op.stop), 'refusing global builtins.getattr'],
    ['torch.load', pkl(op.proto(2), op.global('torch', 'load'), op.stop), 'refusing global torch.load'],
    ['_codecs.encode misused', pkl(op.proto(2), op.global('_codecs', 'encode'), op.str('x'), op.str('rot13'),
      [0x86], op.reduce, op.stop), "encode(str, 'latin1')"],
    ['OrderedDict with arguments', pkl(op.proto(2), op.global('collections', 'OrderedDict'), op.emptyList, op.tuple1,
      op.reduce, op.stop), 'only supported with no arguments'],
  ];
  for (const [what, data, message] of cases) throwsTorch(() => loadTorchBytes(checkpoint(data, s4)), message, what);
});

test('cycles and sharing through the memo, deep nesting refused', () => {
  // l = []; l.append(l)
  const v = loadTorchBytes(checkpoint(pkl(op.proto(2), op.emptyList, op.put(0), op.get(0), op.append, op.stop))) as TorchValue[];
  assert.is(v[0], v);
  const shared = loadTorchBytes(checkpoint(pkl(op.proto(2), op.mark, op.emptyDict, op.put(1), op.get(1), op.tuple,
    op.stop))) as TorchValue[];
  assert.is(shared[0], shared[1]);
  const deep = pkl(op.proto(2), Array(2000).fill(op.emptyList).flat(), Array(1999).fill(op.append).flat(), op.stop);
  throwsTorch(() => loadTorchBytes(checkpoint(deep)), 'nested deeper than 1000');
});

test('unpickle alone: the generic allow-list and an unknown caller object', () => {
  assert.equal(unpickle(pkl(op.proto(2), op.global('__builtin__', 'bytes'), op.emptyTuple, op.reduce, op.stop)), new Uint8Array(0));
  try {
    unpickle(pkl(op.proto(2), op.global('torch._utils', '_rebuild_tensor_v2'), op.stop));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, PickleError);
    assert.match((e as Error).message, 'refusing global torch._utils._rebuild_tensor_v2');
  }
});

test('zip: archives with no data.pkl or two, TorchScript-like, encrypted, bad method, duplicate names', () => {
  throwsTorch(() => loadTorchBytes(makeZip([['a/version', new Uint8Array(utf8('3'))]])), 'no <folder>/data.pkl');
  throwsTorch(() => loadTorchBytes(makeZip([['a/constants.pkl', pkl(op.proto(2), op.none, op.stop)]])), 'TorchScript');
  const p = pkl(op.proto(2), op.none, op.stop);
  throwsTorch(() => loadTorchBytes(makeZip([['a/data.pkl', p], ['b/data.pkl', p]])), 'ambiguous');
  throwsTorch(() => loadTorchBytes(makeZip([['a/data.pkl', p], ['a/data.pkl', p]])), 'appears twice');
  const zip = makeZip([['a/data.pkl', p]]);
  const cd = zip.length - 22 - (46 + 'a/data.pkl'.length);
  const enc = zip.slice(); enc[cd + 8] |= 1;
  throwsTorch(() => loadTorchBytes(enc), 'encrypted');
  const bz = zip.slice(); bz[cd + 10] = 12;
  throwsTorch(() => loadTorchBytes(bz), 'compression method 12');
  const badCrc = zip.slice(); badCrc[30 + 'a/data.pkl'.length + 2] ^= 1;
  throwsTorch(() => loadTorchBytes(badCrc), 'CRC-32 mismatch');
  assert.is(loadTorchBytes(zip), null);
  throwsTorch(() => loadTorchBytes(new Uint8Array(10)), 'too short');
  throwsTorch(() => loadTorchBytes(new Uint8Array(100)), 'no end-of-central-directory record');
});

test('zip: the DEFLATE and ZIP64 fixtures are what they claim to be', () => {
  const deflate = readZipEntries(readFileSync(fixture('deflate')));
  assert.ok(deflate.some((e) => e.method === 8));
  const z64 = readFileSync(fixture('zip64'));
  assert.ok(Buffer.from(z64).includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'ZIP64 end record');
  const entries = readZipEntries(z64);
  assert.ok(entries.length > 3);
  const plain = readZipEntries(readFileSync(fixture('archive_prefix')));
  assert.equal(entries.map((e) => e.name), plain.map((e) => e.name));
  for (const e of entries) {
    const twin = plain.find((x) => x.name === e.name)!;
    assert.equal(readZipEntry(z64, e), readZipEntry(readFileSync(fixture('archive_prefix')), twin), e.name);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Fuzz: corruption never escapes as anything but TorchLoadError

function onlyTorchErrors(bytes: Uint8Array): void {
  try {
    loadTorchBytes(bytes);
  } catch (e) {
    if (!(e instanceof TorchLoadError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

test('fuzz: corrupted, truncated and extended checkpoint files', () => {
  const files = ['state_dict', 'views', 'dtypes', 'python_values', 'deflate', 'zip64', 'proto4'].map((n) =>
    new Uint8Array(readFileSync(fixture(n))));
  fc.assert(fc.property(
    fc.nat(files.length - 1),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
    fc.nat(),
    fc.integer({ min: 0, max: 2 }),
    (which, edits, cut, mode) => {
      let b = files[which].slice();
      for (const [at, v] of edits) b[at % b.length] = v;
      if (mode === 1) b = b.subarray(0, cut % b.length);
      if (mode === 2) b = b.subarray(cut % b.length);
      onlyTorchErrors(b);
    },
  ), { numRuns: 1500, seed: 1 });
});

test('fuzz: corrupted pickles inside an otherwise valid archive (CRCs recomputed)', () => {
  const sources = ['state_dict', 'views', 'python_values', 'proto4', 'spark_like'].map((n) => {
    const bytes = readFileSync(fixture(n));
    const entries = readZipEntries(bytes);
    return entries.map((e) => [e.name, Uint8Array.prototype.slice.call(readZipEntry(bytes, e))] as [string, Uint8Array]);
  });
  fc.assert(fc.property(
    fc.nat(sources.length - 1),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    fc.option(fc.nat(), { nil: undefined }),
    (which, edits, cut) => {
      const files = sources[which].map(([n, b]) => [n, b.slice()] as [string, Uint8Array]);
      const pklEntry = files.find(([n]) => n.endsWith('/data.pkl'))!;
      for (const [at, v] of edits) pklEntry[1][at % pklEntry[1].length] = v;
      if (cut !== undefined) pklEntry[1] = pklEntry[1].subarray(0, cut % pklEntry[1].length);
      onlyTorchErrors(makeZip(files));
    },
  ), { numRuns: 1500, seed: 2 });
});

test.run();
