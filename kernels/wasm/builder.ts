/**
 * A small WebAssembly binary emitter, so that the SIMD kernels are written (and reviewed) as TypeScript and the
 * module is produced at load time: no external toolchain and no committed `.wasm`.
 *
 * It covers what the kernels use and nothing more: one imported memory (optionally shared, for worker threads),
 * functions with i32/f32/v128 locals, structured control (block/loop/if, br/br_if with labels that know their
 * own depth), i32 arithmetic and comparisons, scalar f32/f64 loads/stores, arithmetic and conversions, and the
 * 128-bit SIMD subset (v128 load/store/const and bitwise and/andnot/bitselect; f32x4 splat, arithmetic, min/max,
 * comparisons, extract_lane, load32_splat; f64x2 splat/add/sub/mul/extract_lane and the f32x4 ↔ f64x2
 * promote/demote) plus `f32x4.relaxed_madd` from relaxed SIMD, which a caller emits only where the runtime
 * validated it.
 * Opcode numbers are the WebAssembly spec's (core 2.0 §5.4; SIMD instructions are the prefix 0xFD followed by
 * the sub-opcode as an unsigned LEB128, relaxed SIMD's sub-opcodes start at 0x100).
 * Also a "name" section, so that profiles and stack traces name the functions.
 * Left out: tables, globals, data segments, multi-value results, i64 beyond its value-type code.
 *
 *   const m = new ModuleBuilder();
 *   m.importMemory('env', 'memory', { initial: 1 });
 *   m.func('add1', [['p', 'i32']], [], (f) => {
 *     f.get('p').get('p').f32Load().f32Const(1).f32Add().f32Store();   // *p = *p + 1
 *   });
 *   const bytes = m.build();
 */

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128';

const VALTYPE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/** Unsigned LEB128 (sizes, indices, SIMD sub-opcodes). */
export function uleb(value: number): number[] {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`uleb: ${value} is not a non-negative integer`);
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** Signed LEB128 (i32.const immediates). */
export function sleb(value: number): number[] {
  if (!Number.isInteger(value)) throw new RangeError(`sleb: ${value} is not an integer`);
  const out: number[] = [];
  let v = value | 0;
  if (v !== value) throw new RangeError(`sleb: ${value} does not fit in i32`);
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function utf8(s: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(s));
  return [...uleb(bytes.length), ...bytes];
}

/** A vector in the binary format: its length, then its items. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** A branch target. `depth` is the number of enclosing labels when it was opened; br computes the relative index. */
export interface Label { readonly depth: number }

/** Where a local lives: a name given to `local()` or a parameter, or its index. */
type LocalRef = string | number;

/**
 * Builds one function body. Every instruction method appends its bytes and returns `this`, so a sequence reads
 * in stack order: `f.get('a').get('b').i32Add().set('c')` is c = a + b.
 */
export class FunctionBuilder {
  private readonly code: number[] = [];
  private readonly names = new Map<string, number>();
  private readonly localTypes: ValType[] = [];
  private depth = 0;

  constructor(readonly params: readonly ValType[], paramNames: readonly string[]) {
    paramNames.forEach((n, i) => this.names.set(n, i));
  }

  /** Declares a local (zero-initialized, as in every wasm function) and returns its index. */
  local(type: ValType, name?: string): number {
    const index = this.params.length + this.localTypes.length;
    this.localTypes.push(type);
    if (name !== undefined) {
      if (this.names.has(name)) throw new Error(`local ${name} declared twice`);
      this.names.set(name, index);
    }
    return index;
  }

  private index(ref: LocalRef): number {
    if (typeof ref === 'number') return ref;
    const i = this.names.get(ref);
    if (i === undefined) throw new Error(`unknown local ${ref}`);
    return i;
  }

  private op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  /** A SIMD instruction: 0xFD then the sub-opcode as LEB128. */
  private simd(sub: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(sub), ...imm);
  }

  /** memarg: alignment exponent, then byte offset. Offsets are unsigned constants folded into the address. */
  private mem(opcode: number[], alignLog2: number, offset: number): this {
    return this.op(...opcode, ...uleb(alignLog2), ...uleb(offset));
  }

  // ---- variables
  get(ref: LocalRef): this { return this.op(0x20, ...uleb(this.index(ref))); }
  set(ref: LocalRef): this { return this.op(0x21, ...uleb(this.index(ref))); }
  tee(ref: LocalRef): this { return this.op(0x22, ...uleb(this.index(ref))); }

  // ---- control. A block's label is taken by br at its end; a loop's label is taken at its start.
  block(body: (label: Label) => void): this {
    this.op(0x02, 0x40);
    const label = { depth: this.depth++ };
    body(label);
    this.depth--;
    return this.op(0x0b);
  }
  loop(body: (label: Label) => void): this {
    this.op(0x03, 0x40);
    const label = { depth: this.depth++ };
    body(label);
    this.depth--;
    return this.op(0x0b);
  }
  /** Pops an i32 condition; runs `then` when it is non-zero, else `otherwise`. */
  if(then: (label: Label) => void, otherwise?: (label: Label) => void): this {
    this.op(0x04, 0x40);
    const label = { depth: this.depth++ };
    then(label);
    if (otherwise) {
      this.op(0x05);
      otherwise(label);
    }
    this.depth--;
    return this.op(0x0b);
  }
  br(label: Label): this { return this.op(0x0c, ...uleb(this.depth - 1 - label.depth)); }
  brIf(label: Label): this { return this.op(0x0d, ...uleb(this.depth - 1 - label.depth)); }
  return(): this { return this.op(0x0f); }
  call(func: FuncRef): this { return this.op(0x10, ...uleb(func.index)); }
  drop(): this { return this.op(0x1a); }
  /** Pops c, b, a; pushes c ? a : b (both numeric of one type). */
  select(): this { return this.op(0x1b); }

  // ---- i32
  i32Const(v: number): this { return this.op(0x41, ...sleb(v)); }
  i32Load(offset = 0): this { return this.mem([0x28], 2, offset); }
  i32Store(offset = 0): this { return this.mem([0x36], 2, offset); }
  i32Eqz(): this { return this.op(0x45); }
  i32Eq(): this { return this.op(0x46); }
  i32Ne(): this { return this.op(0x47); }
  i32LtS(): this { return this.op(0x48); }
  i32LtU(): this { return this.op(0x49); }
  i32GtS(): this { return this.op(0x4a); }
  i32GtU(): this { return this.op(0x4b); }
  i32LeS(): this { return this.op(0x4c); }
  i32LeU(): this { return this.op(0x4d); }
  i32GeS(): this { return this.op(0x4e); }
  i32GeU(): this { return this.op(0x4f); }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Mul(): this { return this.op(0x6c); }
  i32DivS(): this { return this.op(0x6d); }
  i32DivU(): this { return this.op(0x6e); }
  i32RemS(): this { return this.op(0x6f); }
  i32And(): this { return this.op(0x71); }
  i32Or(): this { return this.op(0x72); }
  i32Shl(): this { return this.op(0x74); }
  i32ShrS(): this { return this.op(0x75); }
  i32ShrU(): this { return this.op(0x76); }

  // ---- f32 (loads/stores take the address from the stack and add the constant offset)
  /** The immediate is the IEEE-754 bits, little-endian (a Float32Array's bytes on every platform Node runs on). */
  f32Const(v: number): this {
    const bytes = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(0x43, ...bytes);
  }
  f32Load(offset = 0): this { return this.mem([0x2a], 2, offset); }
  f32Store(offset = 0): this { return this.mem([0x38], 2, offset); }
  f32Add(): this { return this.op(0x92); }
  f32Sub(): this { return this.op(0x93); }
  f32Mul(): this { return this.op(0x94); }
  f32Div(): this { return this.op(0x95); }
  f32Min(): this { return this.op(0x96); }
  f32Max(): this { return this.op(0x97); }
  f32Neg(): this { return this.op(0x8c); }
  f32Abs(): this { return this.op(0x8b); }
  f32Sqrt(): this { return this.op(0x91); }
  /** f32 comparisons push an i32 (1 true, 0 false; false whenever an operand is NaN, except ne). */
  f32Lt(): this { return this.op(0x5d); }
  f32Gt(): this { return this.op(0x5e); }
  f32Ne(): this { return this.op(0x5c); }
  f32DemoteF64(): this { return this.op(0xb6); }

  // ---- f64
  f64Const(v: number): this {
    const bytes = new Uint8Array(new Float64Array([v]).buffer);
    return this.op(0x44, ...bytes);
  }
  f64Load(offset = 0): this { return this.mem([0x2b], 3, offset); }
  f64Store(offset = 0): this { return this.mem([0x39], 3, offset); }
  f64Add(): this { return this.op(0xa0); }
  f64Sub(): this { return this.op(0xa1); }
  f64Mul(): this { return this.op(0xa2); }
  f64Div(): this { return this.op(0xa3); }
  f64PromoteF32(): this { return this.op(0xbb); }
  f64ConvertI32U(): this { return this.op(0xb8); }

  // ---- bulk memory (0xFC prefix): memory.fill(dst, byte value, length in bytes)
  memoryFill(): this { return this.op(0xfc, ...uleb(11), 0x00); }

  // ---- v128 (alignment hints are 16 bytes; unaligned addresses are still correct in wasm)
  v128Load(offset = 0): this { return this.simd(0x00).op(...uleb(4), ...uleb(offset)); }
  /** Loads one f32 and splats it to the four lanes. */
  v128Load32Splat(offset = 0): this { return this.simd(0x09).op(...uleb(2), ...uleb(offset)); }
  v128Store(offset = 0): this { return this.simd(0x0b).op(...uleb(4), ...uleb(offset)); }
  /** Loads two f32 (8 bytes) into lanes 0–1, lanes 2–3 zero. */
  v128Load64Zero(offset = 0): this { return this.simd(0x5d).op(...uleb(3), ...uleb(offset)); }
  /** Stores 64-bit lane `lane` (f32 lanes 2·lane and 2·lane + 1) of the vector popped after the address. */
  v128Store64Lane(lane: number, offset = 0): this { return this.simd(0x5b).op(...uleb(3), ...uleb(offset), lane); }
  /** v128.const with four f32 lanes. */
  v128ConstF32(lanes: [number, number, number, number]): this {
    return this.simd(0x0c, ...new Uint8Array(new Float32Array(lanes).buffer));
  }
  /** i8x16.shuffle picking f32 lanes: lanes[i] ∈ 0..7 selects lane i of the result from (a, b) popped as a, b. */
  i32x4Shuffle(lanes: readonly number[]): this {
    const bytes = lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
    return this.simd(0x0d, ...bytes);
  }
  f32x4Splat(): this { return this.simd(0x13); }
  f32x4ExtractLane(lane: number): this { return this.simd(0x1f, lane); }
  /** Pops a vector and an f32; pushes the vector with lane `lane` replaced. */
  f32x4ReplaceLane(lane: number): this { return this.simd(0x20, lane); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Sub(): this { return this.simd(0xe5); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f32x4Div(): this { return this.simd(0xe7); }
  /** min/max propagate NaN and order −0 below +0, as Math.min/Math.max do (not the x86 minps/maxps rules). */
  f32x4Min(): this { return this.simd(0xe8); }
  f32x4Max(): this { return this.simd(0xe9); }
  f32x4Abs(): this { return this.simd(0xe0); }
  f32x4Neg(): this { return this.simd(0xe1); }
  f32x4Sqrt(): this { return this.simd(0xe3); }
  /** Lane-wise comparisons: all-ones lanes where true, zero where false (NaN compares false). */
  f32x4Lt(): this { return this.simd(0x43); }
  f32x4Gt(): this { return this.simd(0x44); }
  v128And(): this { return this.simd(0x4e); }
  /** Pops a, b; pushes a & ~b. */
  v128Andnot(): this { return this.simd(0x4f); }
  /** Pops a, b, mask; pushes (a & mask) | (b & ~mask). */
  v128Bitselect(): this { return this.simd(0x52); }
  f64x2Splat(): this { return this.simd(0x14); }
  f64x2ExtractLane(lane: number): this { return this.simd(0x21, lane); }
  f64x2Add(): this { return this.simd(0xf0); }
  f64x2Sub(): this { return this.simd(0xf1); }
  f64x2Mul(): this { return this.simd(0xf2); }
  f64x2Div(): this { return this.simd(0xf3); }
  f64x2Sqrt(): this { return this.simd(0xef); }
  /** f32 lanes 0, 1 widened to an f64x2 (exact). */
  f64x2PromoteLowF32x4(): this { return this.simd(0x5f); }
  /** The two f64 lanes rounded to f32 lanes 0, 1 (round to nearest even); lanes 2, 3 are zero. */
  f32x4DemoteF64x2Zero(): this { return this.simd(0x5e); }
  /** Relaxed SIMD: pops a, b, c and pushes a·b + c, fused or not (the runtime's choice). */
  f32x4RelaxedMadd(): this { return this.simd(0x105); }

  /** The function's code entry: locals (run-length encoded by type), the body, `end`. */
  encode(): number[] {
    const groups: number[][] = [];
    for (let i = 0; i < this.localTypes.length;) {
      let j = i;
      while (j < this.localTypes.length && this.localTypes[j] === this.localTypes[i]) j++;
      groups.push([...uleb(j - i), VALTYPE[this.localTypes[i]]]);
      i = j;
    }
    if (this.depth !== 0) throw new Error('unbalanced control');
    const body = [...vec(groups), ...this.code, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

/** A function of the module, for `call` and for exports. */
export interface FuncRef { readonly index: number; readonly name: string }

export interface MemoryImport {
  /** Pages of 64 KiB the imported memory must have at least. */
  initial: number;
  /** Required for a shared memory. */
  maximum?: number;
  /** A shared memory (threads proposal): the same memory can be imported by instances in several workers. */
  shared?: boolean;
}

interface FuncDef {
  name: string;
  type: number;
  body: FunctionBuilder;
  exported: boolean;
}

/** Collects types, the memory import, functions and exports, and writes the binary. */
export class ModuleBuilder {
  private readonly types: number[][] = [];
  private readonly funcs: FuncDef[] = [];
  private memory: { module: string; name: string; limits: MemoryImport } | null = null;

  importMemory(module: string, name: string, limits: MemoryImport): void {
    if (limits.shared && limits.maximum === undefined) throw new Error('a shared memory needs a maximum');
    this.memory = { module, name, limits };
  }

  private typeIndex(params: readonly ValType[], results: readonly ValType[]): number {
    const enc = [0x60, ...vec(params.map((t) => [VALTYPE[t]])), ...vec(results.map((t) => [VALTYPE[t]]))];
    const key = enc.join(',');
    const found = this.types.findIndex((t) => t.join(',') === key);
    if (found >= 0) return found;
    this.types.push(enc);
    return this.types.length - 1;
  }

  /**
   * Adds a function (exported under `name` unless `exported` is false) and returns its reference. A function
   * can call those added before it.
   */
  func(
    name: string, params: readonly (readonly [string, ValType])[], results: readonly ValType[],
    body: (f: FunctionBuilder) => void, exported = true,
  ): FuncRef {
    const f = new FunctionBuilder(params.map((p) => p[1]), params.map((p) => p[0]));
    body(f);
    this.funcs.push({ name, type: this.typeIndex(params.map((p) => p[1]), results), body: f, exported });
    return { index: this.funcs.length - 1, name };
  }

  build(): Uint8Array {
    const section = (id: number, content: number[]) => [id, ...uleb(content.length), ...content];
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]; // "\0asm", version 1
    out.push(...section(1, vec(this.types)));
    if (this.memory) {
      const { module, name, limits } = this.memory;
      const flags = (limits.maximum !== undefined ? 1 : 0) | (limits.shared ? 2 : 0);
      const lim = [flags, ...uleb(limits.initial), ...(limits.maximum !== undefined ? uleb(limits.maximum) : [])];
      out.push(...section(2, vec([[...utf8(module), ...utf8(name), 0x02, ...lim]])));
    }
    out.push(...section(3, vec(this.funcs.map((f) => uleb(f.type)))));
    const exports = this.funcs.map((f, i) => ({ f, i })).filter(({ f }) => f.exported);
    out.push(...section(7, vec(exports.map(({ f, i }) => [...utf8(f.name), 0x00, ...uleb(i)]))));
    out.push(...section(10, vec(this.funcs.map((f) => f.body.encode()))));
    // Custom "name" section, function-names subsection (1): profilers and stack traces then show the names.
    const names = vec(this.funcs.map((f, i) => [...uleb(i), ...utf8(f.name)]));
    out.push(...section(0, [...utf8('name'), 1, ...uleb(names.length), ...names]));
    return Uint8Array.from(out);
  }
}
