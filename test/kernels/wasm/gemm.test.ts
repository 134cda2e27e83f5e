/**
 * The wasm SIMD gemm against the reference triple loop (`gemmRef`, kernels/cpu) on random shapes: every
 * transpose/accumulate combination, sizes 0 and edge tiles, offsets into the arrays, sizes past every block
 * (MC, KC, NC), the pointer-level entry on a fresh and on a shared memory that must grow, and the relaxed-SIMD
 * (fused) micro-kernel in a child node that has it. Tolerance: see helpers.ts (float32 sums of K products).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gemmRef, type GemmParams } from '../../../kernels/cpu/gemm.ts';
import { gemmPtr, gemmWasm, KC, MC, NC } from '../../../kernels/wasm/gemm.ts';
import { MR, NR } from '../../../kernels/wasm/module.ts';
import { WasmRuntime, detectRelaxedSimd, requireRuntime } from '../../../kernels/wasm/runtime.ts';
import { abs64, assertClose, randomF32, seeded, wasmOrSkip } from './helpers.ts';

/** gemmWasm on arrays with random offsets and guard elements: C matches the reference, nothing else is touched. */
function check(p: GemmParams, offsets: [number, number, number], seed: number): void {
  const rand = seeded(seed);
  const [aOff, bOff, cOff] = offsets;
  const a = randomF32(aOff + p.M * p.K + 3, rand);
  const b = randomF32(bOff + p.K * p.N + 3, rand);
  const c0 = randomF32(cOff + p.M * p.N + 3, rand);
  const got = c0.slice();
  gemmWasm(p, a, aOff, b, bOff, got, cOff);
  // The reference runs on float64 copies (the same values), so that it only ever sees one array type.
  const want = Float64Array.from(c0);
  gemmRef(p, Float64Array.from(a), aOff, Float64Array.from(b), bOff, want, cOff);
  const mag = abs64(c0);
  gemmRef(p, abs64(a), aOff, abs64(b), bOff, mag, cOff);
  for (let i = 0; i < c0.length; i++) {
    if (i < cOff || i >= cOff + p.M * p.N) assert.is(got[i], c0[i], `gemmWasm wrote outside C at ${i}`);
  }
  const end = cOff + p.M * p.N;
  assertClose(`gemm ${JSON.stringify(p)}`, got.subarray(cOff, end), want.subarray(cOff, end), mag.subarray(cOff, end), p.K);
}

const sizeArb = fc.oneof(fc.constantFrom(0, 1, MR - 1, MR, MR + 1, NR - 1, NR, NR + 1), fc.integer({ min: 0, max: 45 }));
const paramsArb = fc.record({
  M: sizeArb, N: sizeArb, K: sizeArb, transA: fc.boolean(), transB: fc.boolean(), accumulate: fc.boolean(),
});
const offsetsArb = fc.tuple(fc.nat(7), fc.nat(7), fc.nat(7));

test('gemmWasm == gemmRef on small random shapes, all modes, with offsets', () => {
  if (!wasmOrSkip('gemmWasm random shapes')) return;
  fc.assert(fc.property(paramsArb, offsetsArb, fc.nat(), (p, offsets, seed) => check(p, offsets, seed)), { numRuns: 200 });
});

test('gemmWasm == gemmRef past the block sizes (M > MC, N > NC, K > KC), every mode', () => {
  if (!wasmOrSkip('gemmWasm block sizes')) return;
  let seed = 1;
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const accumulate of [false, true]) {
        check({ M: 3, N: NC + 21, K: 5, transA, transB, accumulate }, [1, 2, 3], seed++);
        check({ M: MC + 5, N: NR + 3, K: KC + 7, transA, transB, accumulate }, [0, 5, 1], seed++);
      }
    }
  }
});

test('gemmWasm leaves the arena as it found it', () => {
  if (!wasmOrSkip('gemmWasm arena')) return;
  const rt = requireRuntime();
  const before = rt.used;
  check({ M: 9, N: 10, K: 11, transA: false, transB: true, accumulate: true }, [0, 0, 0], 3);
  assert.is(rt.used, before);
});

test('gemmWasm on Float64Array operands falls back to the JS gemm (double sums)', () => {
  const rand = seeded(11);
  const p = { M: 7, N: 9, K: 13, transA: true, transB: false, accumulate: true };
  const a = Float64Array.from(randomF32(p.M * p.K, rand)), b = Float64Array.from(randomF32(p.K * p.N, rand));
  const c = Float64Array.from(randomF32(p.M * p.N, rand)), want = c.slice();
  gemmWasm(p, a, 0, b, 0, c, 0);
  gemmRef(p, a, 0, b, 0, want, 0);
  for (let i = 0; i < c.length; i++) assert.ok(Math.abs(c[i] - want[i]) <= 1e-13 * (1 + Math.abs(want[i])));
});

/** gemmPtr on a given runtime, operands written into its memory; compared with gemmRef. */
function checkPtr(rt: WasmRuntime, p: GemmParams, seed: number): void {
  const rand = seeded(seed);
  const a = randomF32(p.M * p.K, rand), b = randomF32(p.K * p.N, rand), c0 = randomF32(p.M * p.N, rand);
  const mark = rt.mark();
  const ap = rt.alloc(a.length), bp = rt.alloc(b.length), cp = rt.alloc(c0.length);
  rt.write(ap, a);
  rt.write(bp, b);
  rt.write(cp, c0);
  gemmPtr(p, ap, bp, cp, rt);
  const got = rt.f32.slice(cp >>> 2, (cp >>> 2) + c0.length);
  rt.reset(mark);
  const want = Float64Array.from(c0), mag = abs64(c0);
  gemmRef(p, Float64Array.from(a), 0, Float64Array.from(b), 0, want, 0);
  gemmRef(p, abs64(a), 0, abs64(b), 0, mag, 0);
  assertClose(`gemmPtr ${rt.description} ${JSON.stringify(p)}`, got, want, mag, p.K);
}

test('gemmPtr on a one-page memory that must grow, plain and shared (the layout a worker pool will use)', () => {
  if (!wasmOrSkip('gemmPtr growth')) return;
  for (const rt of [new WasmRuntime({ initialPages: 1 }), new WasmRuntime({ shared: true, initialPages: 1, maximumPages: 256 })]) {
    let seed = 100;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        checkPtr(rt, { M: 70, N: 90, K: 300, transA, transB, accumulate: seed % 2 === 0 }, seed++);
      }
    }
    assert.ok(rt.memory.buffer.byteLength > 65536, 'the memory grew');
  }
});

test('gemmPtr on 2 and 3 threads: a narrow C splits its rows, a wide one each block\'s columns; every mode', () => {
  if (!wasmOrSkip('gemmPtr threads')) return;
  let seed = 300;
  for (const threads of [2, 3]) {
    const rt = new WasmRuntime({ threads });
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        // rows: N < 256, M ≥ 2·MC, M·N·K ≥ 2²²; rows not a multiple of the threads, K past one KC slice
        checkPtr(rt, { M: 301, N: 47, K: 300, transA, transB, accumulate: seed % 2 === 0 }, seed++);
        // columns: N ≥ 256, each macro block large enough to split
        checkPtr(rt, { M: 130, N: 300, K: 270, transA, transB, accumulate: seed % 2 === 0 }, seed++);
      }
    }
    rt.pool()?.close();
  }
});

test('relaxed SIMD (fused multiply-add) gemm == gemmRef, in this process or in a child node that has it', () => {
  if (!wasmOrSkip('relaxed SIMD gemm')) return;
  if (detectRelaxedSimd()) {
    const rt = new WasmRuntime({ relaxed: true, initialPages: 1 });
    let seed = 200;
    for (const transA of [false, true]) for (const transB of [false, true]) {
      checkPtr(rt, { M: 37, N: 70, K: 300, transA, transB, accumulate: transA }, seed++);
    }
    return;
  }
  const child = fileURLToPath(new URL('./relaxed_child.ts', import.meta.url));
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const res = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--import', 'tsx', child], {
    cwd: root, encoding: 'utf8', timeout: 60_000,
  });
  const last = res.stdout.trim().split('\n').pop() ?? '';
  if (res.status !== 0 || !last.startsWith('{')) {
    console.log(`SKIPPED relaxed SIMD gemm: child node failed (${res.status}): ${res.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return;
  }
  const out = JSON.parse(last) as { relaxed: boolean; description?: string; failures?: string[] };
  if (!out.relaxed) {
    console.log('SKIPPED relaxed SIMD gemm: not available even under --experimental-wasm-relaxed-simd');
    return;
  }
  assert.is(out.description, 'wasm-relaxed-simd, 1 thread');
  assert.equal(out.failures, []);
});

test.run();
