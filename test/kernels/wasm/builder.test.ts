/**
 * The WebAssembly emitter: LEB128 against the spec's examples, small modules that validate and compute what they
 * say (control flow, labels, scalar and SIMD memory ops), and the kernel module in every configuration this
 * runtime can compile. Also prints which SIMD flavour was detected.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModuleBuilder, sleb, uleb } from '../../../kernels/wasm/builder.ts';
import { buildKernelModule } from '../../../kernels/wasm/module.ts';
import {
  WasmRuntime, detectRelaxedSimd, detectSimd, validateWasm, wasmDescription,
} from '../../../kernels/wasm/runtime.ts';

/** The slice of the WebAssembly API the tests use (no lib.dom types here). */
const WA = (globalThis as unknown as {
  WebAssembly: {
    Memory: new (d: { initial: number }) => { buffer: ArrayBuffer };
    Module: new (b: Uint8Array) => object;
    Instance: new (m: object, i: object) => { exports: Record<string, (...a: number[]) => number> };
  };
}).WebAssembly;

test('LEB128: unsigned and signed encodings from the spec and the edges of i32', () => {
  assert.equal(uleb(0), [0x00]);
  assert.equal(uleb(127), [0x7f]);
  assert.equal(uleb(128), [0x80, 0x01]);
  assert.equal(uleb(624485), [0xe5, 0x8e, 0x26]);
  assert.equal(uleb(2 ** 32 - 1), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.equal(sleb(0), [0x00]);
  assert.equal(sleb(-1), [0x7f]);
  assert.equal(sleb(63), [0x3f]);
  assert.equal(sleb(64), [0xc0, 0x00]);
  assert.equal(sleb(-64), [0x40]);
  assert.equal(sleb(-65), [0xbf, 0x7f]);
  assert.equal(sleb(-123456), [0xc0, 0xbb, 0x78]);
  assert.equal(sleb(2 ** 31 - 1), [0xff, 0xff, 0xff, 0xff, 0x07]);
  assert.equal(sleb(-(2 ** 31)), [0x80, 0x80, 0x80, 0x80, 0x78]);
  assert.throws(() => uleb(-1));
  assert.throws(() => sleb(2 ** 31));
});

test('a scalar module validates and runs: loops, br_if, labels, i32 arithmetic', () => {
  const m = new ModuleBuilder();
  // sum(n) = Σ_{i<n} i·i, skipping multiples of 3 (a br to the inner block's end), exercising nested labels.
  m.func('sum', [['n', 'i32']], ['i32'], (f) => {
    f.local('i32', 'i');
    f.local('i32', 'acc');
    f.block((done) => {
      f.get('n').i32Eqz().brIf(done);
      f.loop((top) => {
        f.block((skip) => {
          f.get('i').i32Const(3).i32RemS().i32Eqz().brIf(skip);
          f.get('acc').get('i').get('i').i32Mul().i32Add().set('acc');
        });
        f.get('i').i32Const(1).i32Add().tee('i').get('n').i32LtS().brIf(top);
      });
    });
    f.get('acc');
  });
  m.func('sign', [['x', 'i32']], ['i32'], (f) => {
    f.local('i32', 'r');
    f.get('x').i32Const(0).i32LtS().if(() => f.i32Const(-1).set('r'), () => f.i32Const(1).set('r'));
    f.get('r');
  });
  const bytes = m.build();
  assert.ok(validateWasm(bytes));
  const { exports } = new WA.Instance(new WA.Module(bytes), {});
  let want = 0;
  for (let i = 0; i < 10; i++) if (i % 3 !== 0) want += i * i;
  assert.is(exports.sum(10), want);
  assert.is(exports.sum(0), 0);
  assert.is(exports.sign(-5), -1);
  assert.is(exports.sign(7), 1);
});

test('SIMD detection, and a SIMD module over an imported memory computes a·x + y in f32x4 lanes', () => {
  console.log(`  wasm kernels: ${wasmDescription()} (SIMD ${detectSimd()}, relaxed SIMD ${detectRelaxedSimd()})`);
  if (!detectSimd()) {
    console.log('SKIPPED SIMD module test: this runtime does not validate WebAssembly SIMD');
    return;
  }
  const m = new ModuleBuilder();
  m.importMemory('env', 'memory', { initial: 1 });
  // y[0..4) = a·x[0..4) + y[0..4) with x at byte 0, y at byte 16, a at byte 32; returns lane 2 of the result.
  m.func('axpy', [], ['f32'], (f) => {
    const v = f.local('v128');
    f.i32Const(16);
    f.i32Const(0).v128Load().i32Const(32).v128Load32Splat().f32x4Mul();
    f.i32Const(16).v128Load().f32x4Add().tee(v);
    f.v128Store();
    f.get(v).f32x4ExtractLane(2);
  });
  const bytes = m.build();
  assert.ok(validateWasm(bytes));
  const memory = new WA.Memory({ initial: 1 });
  const f32 = new Float32Array(memory.buffer);
  f32.set([1, 2, 3, 4, 10, 20, 30, 40, 0.5]);
  const { exports } = new WA.Instance(new WA.Module(bytes), { env: { memory } });
  assert.is(exports.axpy(), 31.5);
  assert.equal(Array.from(f32.subarray(4, 8)), [10.5, 21, 31.5, 42]);
});

test('the kernel module validates in every configuration this runtime supports, and instantiates', () => {
  if (!detectSimd()) {
    console.log('SKIPPED kernel module validation: no WebAssembly SIMD here');
    return;
  }
  assert.ok(validateWasm(buildKernelModule({ relaxed: false, shared: false })), 'plain SIMD');
  assert.ok(validateWasm(buildKernelModule({ relaxed: false, shared: true, maximumPages: 1024 })), 'shared memory');
  if (detectRelaxedSimd()) {
    assert.ok(validateWasm(buildKernelModule({ relaxed: true, shared: false })), 'relaxed SIMD');
  } else {
    console.log('  (relaxed SIMD not available in this process: its module is checked in gemm.test.ts, in a child node)');
  }
  const shared = new WasmRuntime({ shared: true, initialPages: 1, maximumPages: 64 });
  assert.is(shared.description, 'wasm-simd128, 1 thread');
  assert.is(new WasmRuntime({ threads: 2, initialPages: 1, maximumPages: 64 }).description, 'wasm-simd128, 2 threads');
  assert.ok(shared.memory.buffer instanceof SharedArrayBuffer);
});

test('the arena: 64-byte aligned addresses, mark/reset, growth keeps earlier contents', () => {
  if (!detectSimd()) {
    console.log('SKIPPED arena test: no WebAssembly SIMD here');
    return;
  }
  const rt = new WasmRuntime({ initialPages: 1 });
  const mark = rt.mark();
  const a = rt.alloc(3);
  const b = rt.alloc(1);
  assert.is(a % 64, 0);
  assert.is(b % 64, 0);
  assert.ok(b >= a + 12);
  rt.f32[a >>> 2] = 42;
  const big = rt.alloc(100_000); // past the first page: the memory grows and the views are refreshed
  assert.ok(rt.f32.length * 4 >= big + 400_000);
  assert.is(rt.f32[a >>> 2], 42);
  rt.reset(mark);
  assert.is(rt.alloc(1), a);
});

test.run();
