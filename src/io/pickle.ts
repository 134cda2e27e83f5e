/**
 * A restricted unpickler, pure over bytes: it understands the part of the pickle format that a PyTorch state dict
 * (or a training checkpoint dict around one) uses, and nothing else. It never runs anything named by the file:
 * a GLOBAL resolves only through a fixed allow-list (the generic entries here: `collections.OrderedDict()`,
 * and `_codecs.encode(str, 'latin1')` and `bytes()`, the forms protocol 2 uses for bytes; plus whatever the
 * caller's `findGlobal` grants, which for torch.ts is a handful of `torch._utils` rebuild functions, `torch.Size`
 * and the storage types), and REDUCE calls only what that list returns, with checked arguments. Anything
 * else (another global, another opcode, BUILD on something that is not a dict, APPEND to a tuple, ...) raises a
 * PickleError that names the global or opcode and the byte offset.
 *
 * Opcodes: PROTO, FRAME (skipped), STOP; MARK, POP, POP_MARK, DUP; NONE, NEWTRUE, NEWFALSE; BININT, BININT1,
 * BININT2, LONG1; BINFLOAT; BINUNICODE, SHORT_BINUNICODE, BINUNICODE8; BINBYTES, SHORT_BINBYTES, BINBYTES8;
 * EMPTY_TUPLE, TUPLE, TUPLE1-3; EMPTY_LIST, APPEND, APPENDS; EMPTY_DICT, SETITEM, SETITEMS; BINPUT, LONG_BINPUT,
 * MEMOIZE, BINGET, LONG_BINGET; GLOBAL, STACK_GLOBAL; REDUCE; BUILD (only on an OrderedDict, state ignored);
 * BINPERSID (through the caller's `persistentLoad`). Left out on purpose: the protocol-0 text opcodes, INST,
 * OBJ, NEWOBJ(_EX), EXT*, sets, LONG4, PERSID (text), BYTEARRAY8 and out-of-band buffers.
 *
 * Values: None → null, bool → boolean, int → number (a bigint beyond ±2^53), float → number, str → string,
 * bytes → Uint8Array, list and tuple → array, dict and OrderedDict → a plain object in insertion order (int keys
 * become their decimal strings, as does a float key with an integral value; other keys are refused; JS objects
 * list integer-like keys first, ascending, whatever the insertion order). Objects returned by the caller's
 * callables (tensors) pass through, checked by the caller's `leaf` hook; a bare global in the result is refused.
 * Shared references stay shared (and cycles cycles); nesting deeper than 1000 containers is refused.
 */

export class PickleError extends Error {
  override name = 'PickleError';
}

/** A value as `unpickle` returns it; `T` is the caller's own objects (what its callables returned). */
export type PickleValue<T = never> =
  | null | boolean | number | bigint | string | Uint8Array | T
  | PickleValue<T>[] | { [key: string]: PickleValue<T> };

/**
 * What the caller's callables and `persistentLoad` receive: the same plain values, but globals (GlobalRef) and
 * the caller's own objects may appear anywhere in them, so they are typed as unknown and must be checked.
 */
export type PickleArg = unknown;

/**
 * A resolved GLOBAL: a module and a name, and, if the allow-list lets it be called by REDUCE, the function that
 * stands in for it (it receives the argument tuple, already converted to plain values).
 */
export class GlobalRef {
  constructor(
    readonly module: string,
    readonly qualname: string,
    readonly call?: (args: PickleArg[]) => unknown,
  ) {}
  get fullName(): string {
    return `${this.module}.${this.qualname}`;
  }
}

export interface UnpickleOptions<T> {
  /** Grants a global beyond the generic ones; undefined refuses it. */
  findGlobal?: (module: string, qualname: string) => GlobalRef | undefined;
  /** Resolves a persistent id (BINPERSID); without it BINPERSID is refused. */
  persistentLoad?: (pid: PickleArg) => unknown;
  /** Checks or converts each caller object that reaches the result; without it they pass through as they are. */
  leaf?: (value: object) => T;
}

// ------------------------------------------------------------------------------------------------------------
// Internal, mutable Python containers; converted to plain values on the way out.

class PyList { constructor(readonly items: unknown[] = []) {} }
class PyTuple { constructor(readonly items: readonly unknown[]) {} }
class PyDict {
  readonly map = new Map<string, unknown>();
  constructor(readonly ordered: boolean) {}
}
/** Containers nested deeper than this are refused (Python's own recursion limit is about 1000). */
const MAX_DEPTH = 1000;

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID',
  0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE',
  0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT',
  0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST',
  0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT', 0x73: 'SETITEM',
  0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT', 0x80: 'PROTO', 0x81: 'NEWOBJ',
  0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x88: 'NEWTRUE',
  0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS',
  0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

function opcodeName(op: number): string {
  const hex = `0x${op.toString(16).padStart(2, '0')}`;
  const ch = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : '';
  return `${hex}${ch} (${OPCODE_NAMES[op] ?? 'not a pickle opcode'})`;
}

const utf8 = new TextDecoder('utf-8');
const MAX_PROTOCOL = 5;

/** The generic globals: those a pickle of plain Python data needs, whatever the caller allows on top. */
function genericGlobal(module: string, qualname: string): GlobalRef | undefined {
  const full = `${module}.${qualname}`;
  switch (full) {
    // OrderedDict() with no arguments; the items follow through SETITEMS.
    case 'collections.OrderedDict':
      return new GlobalRef(module, qualname, (args) => {
        if (args.length !== 0) throw new PickleError(`${full} is only supported with no arguments, got ${args.length}`);
        return new PyDict(true);
      });
    // Protocol 2 writes bytes b as _codecs.encode(b.decode('latin1'), 'latin1').
    case '_codecs.encode':
      return new GlobalRef(module, qualname, (args) => {
        const [s, enc] = args;
        if (args.length !== 2 || typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) {
          throw new PickleError(`${full} is only supported as encode(str, 'latin1'), the form pickle uses for bytes`);
        }
        const out = new Uint8Array(s.length);
        for (let i = 0; i < s.length; i++) {
          const c = s.charCodeAt(i);
          if (c > 0xff) throw new PickleError(`${full}: character U+${c.toString(16)} has no latin1 byte`);
          out[i] = c;
        }
        return out;
      });
    // ... and empty bytes as bytes() (module __builtin__ under protocol 2's Python-2 name mapping).
    case 'builtins.bytes': case '__builtin__.bytes':
      return new GlobalRef(module, qualname, (args) => {
        if (args.length !== 0) throw new PickleError(`${full} is only supported with no arguments (empty bytes)`);
        return new Uint8Array(0);
      });
  }
  return undefined;
}

/**
 * Unpickles `bytes`. Errors from the caller's callbacks pass through unchanged; every other failure is a
 * PickleError. Trailing bytes after STOP are ignored, as Python does.
 */
export function unpickle<T = never>(bytes: Uint8Array, options: UnpickleOptions<T> = {}): PickleValue<T> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let opAt = 0;

  const fail = (message: string): never => {
    throw new PickleError(`pickle byte ${opAt}: ${message}`);
  };
  const need = (n: number): number => {
    if (pos + n > bytes.length) fail(`truncated: needs ${n} more bytes, ${bytes.length - pos} left`);
    const at = pos;
    pos += n;
    return at;
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail('stack underflow');
    return stack[stack.length - 1];
  };
  /** The items pushed since the last MARK, removed from the stack. */
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK to pop to');
    return stack.splice(m!);
  };
  const readLine = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: line without a newline');
    const s = utf8.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const readString = (n: number): string => utf8.decode(bytes.subarray(need(n), pos));
  const readBytes = (n: number): Uint8Array => Uint8Array.prototype.slice.call(bytes.subarray(need(n), pos));
  const len64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(bytes.length)) fail(`length ${v} is larger than the whole pickle`);
    return Number(v);
  };
  const resolve = (module: string, qualname: string): GlobalRef => {
    const g = genericGlobal(module, qualname) ?? options.findGlobal?.(module, qualname);
    if (!g) fail(`refusing global ${module}.${qualname}: it is not on the allow-list of a state-dict loader`);
    return g!;
  };
  const setItem = (dict: unknown, key: unknown, value: unknown): void => {
    if (!(dict instanceof PyDict)) fail(`SETITEM(S) on ${describe(dict)}, not a dict`);
    (dict as PyDict).map.set(dictKey(key, fail), value);
  };

  for (;;) {
    opAt = pos;
    const op = bytes[need(1)];
    switch (op) {
      case 0x80: { // PROTO
        const p = bytes[need(1)];
        if (p > MAX_PROTOCOL) fail(`unsupported pickle protocol ${p}`);
        break;
      }
      case 0x95: need(8); break; // FRAME: a length hint; frames are transparent to the reader
      case 0x2e: { // STOP
        const result = pop();
        return convert(result, true, options.leaf) as PickleValue<T>;
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop(); else pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP

      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(bytes[need(1)]); break; // BININT1
      case 0x4d: stack.push(view.getUint16(need(2), true)); break; // BININT2
      case 0x8a: { // LONG1: n bytes of little-endian two's complement
        const n = bytes[need(1)];
        stack.push(decodeLong(bytes.subarray(need(n), pos)));
        break;
      }
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(readString(view.getUint32(need(4), true))); break; // BINUNICODE
      case 0x8c: stack.push(readString(bytes[need(1)])); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(readString(len64())); break; // BINUNICODE8
      case 0x42: stack.push(readBytes(view.getUint32(need(4), true))); break; // BINBYTES
      case 0x43: stack.push(readBytes(bytes[need(1)])); break; // SHORT_BINBYTES
      case 0x8e: stack.push(readBytes(len64())); break; // BINBYTES8

      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: { const a = pop(); stack.push(new PyTuple([a])); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x5d: stack.push(new PyList()); break; // EMPTY_LIST
      case 0x61: { // APPEND
        const v = pop();
        const list = top();
        if (!(list instanceof PyList)) fail(`APPEND to ${describe(list)}, not a list`);
        (list as PyList).items.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (!(list instanceof PyList)) fail(`APPENDS to ${describe(list)}, not a list`);
        for (const v of items) (list as PyList).items.push(v);
        break;
      }
      case 0x7d: stack.push(new PyDict(false)); break; // EMPTY_DICT
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
        const dict = top();
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i], items[i + 1]);
        break;
      }

      case 0x71: memo.set(bytes[need(1)], top()); break; // BINPUT
      case 0x72: memo.set(view.getUint32(need(4), true), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const k = op === 0x68 ? bytes[need(1)] : view.getUint32(need(4), true);
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k));
        break;
      }

      case 0x63: { // GLOBAL: "module\nname\n"
        const module = readLine();
        const qualname = readLine();
        stack.push(resolve(module, qualname));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const qualname = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof qualname !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolve(module as string, qualname as string));
        break;
      }
      case 0x52: { // REDUCE: callable(*args)
        const args = pop();
        const fn = pop();
        if (!(fn instanceof GlobalRef)) fail(`REDUCE calls ${describe(fn)}, which is not a global`);
        const g = fn as GlobalRef;
        if (!g.call) fail(`refusing to call ${g.fullName}: it is allowed only as a value`);
        if (!(args instanceof PyTuple)) fail(`REDUCE of ${g.fullName} with ${describe(args)} as arguments, not a tuple`);
        const plain = (args as PyTuple).items.map((a) => convert(a, false, undefined));
        let result: unknown;
        try {
          result = g.call!(plain);
        } catch (e) {
          if (e instanceof PickleError) fail(e.message);
          throw e;
        }
        stack.push(result);
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state); only the attributes torch sets on an OrderedDict state dict
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyDict) || !(obj as PyDict).ordered) fail(`BUILD on ${describe(obj)}: only an OrderedDict may be built`);
        if (state !== null && !(state instanceof PyDict)) {
          fail(`BUILD of an OrderedDict with ${describe(state)} as state (expected None or a dict of attributes)`);
        }
        break; // attributes such as `_metadata` (per-module versions) carry no tensor data: ignored
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('persistent ids are not supported here');
        stack.push(options.persistentLoad!(convert(pid, false, undefined)));
        break;
      }
      default:
        fail(`unsupported pickle opcode ${opcodeName(op)}`);
    }
  }
}

/** LONG1 payload: little-endian two's complement; a number when exact, a bigint beyond 2^53. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** A dict key as an object key: strings as they are, ints as their decimal form; anything else is refused. */
function dictKey(key: unknown, fail: (m: string) => never): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'bigint') return key.toString();
  if (typeof key === 'number' && Number.isInteger(key)) return String(key);
  return fail(`dict key ${describe(key)} is not a str or an int`);
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof GlobalRef) return `global ${v.fullName}`;
  if (v instanceof PyList) return 'a list';
  if (v instanceof PyTuple) return 'a tuple';
  if (v instanceof PyDict) return v.ordered ? 'an OrderedDict' : 'a dict';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'string') return `the str ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'object') return `a ${v!.constructor?.name ?? 'object'}`;
  return `the ${typeof v} ${String(v)}`;
}

/**
 * Internal containers → plain values. Shared references stay shared and cycles are kept (each container is
 * converted once); keys are defined as own properties, so "__proto__" is just a key. In the final result
 * (`final`) a bare global is refused: only what a call returned may be a value.
 */
function convert<T>(root: unknown, final: boolean, leaf: ((value: object) => T) | undefined): unknown {
  const done = new Map<object, unknown>();
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > MAX_DEPTH) throw new PickleError(`containers nested deeper than ${MAX_DEPTH} levels`);
    if (v instanceof GlobalRef) {
      if (final) throw new PickleError(`global ${v.fullName} appears as a value in the result; only its calls are supported`);
      return v;
    }
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
    const seen = done.get(v);
    if (seen !== undefined) return seen;
    if (v instanceof PyList || v instanceof PyTuple) {
      const out: unknown[] = [];
      done.set(v, out);
      for (const item of v.items) out.push(walk(item, depth + 1));
      return out;
    }
    if (v instanceof PyDict) {
      const out: Record<string, unknown> = {};
      done.set(v, out);
      for (const [k, item] of v.map) {
        Object.defineProperty(out, k, { value: walk(item, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    // a plain array returned by a callable (torch.Size): an immutable tuple of plain values
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      done.set(v, out);
      for (const item of v) out.push(walk(item, depth + 1));
      return out;
    }
    const out = leaf ? leaf(v) : v;
    done.set(v, out);
    return out;
  };
  return walk(root, 0);
}
