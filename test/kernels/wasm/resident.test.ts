/**
 * Resident arrays (WasmRuntime.residentFloat32): zeros in the runtime's memory below the arena, found in place by
 * addressOf, kept apart from arena allocations, valid across memory growth, refused where they would be unsafe
 * (an unshared memory, an arena in use); and the optimizer kernels that update them in place (SGD's momentum
 * update, bit for bit the JS loop).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { WasmRuntime, getRuntime } from '../../../kernels/wasm/runtime.ts';
import { sgdMomentumUpdate } from '../../../kernels/cpu/optim_updates.ts';
import { sgdMomentumUpdateWasm } from '../../../kernels/wasm/optim.ts';
import { randomF32, seeded, wasmOrSkip } from './helpers.ts';

test('resident arrays: zeros, in place, apart from the arena, valid after the memory grows', () => {
  if (!wasmOrSkip('resident arrays')) return;
  const rt = new WasmRuntime({ threads: 2, initialPages: 4 });
  // the arena has used the memory first: the block must come back zeroed
  const mark = rt.mark();
  rt.f32.fill(7, rt.alloc(1000) >>> 2, (rt.alloc(0) >>> 2));
  rt.reset(mark);
  const a = rt.residentFloat32(1000);
  assert.ok(a, 'allocated');
  assert.ok(a!.every((v) => v === 0), 'zeros');
  assert.is(rt.addressOf(a!), a!.byteOffset);
  assert.is(rt.addressOf(new Float32Array(4)), -1, 'an ordinary array is not in the memory');
  assert.is(rt.used, 0, 'the arena is empty');
  a!.set([1, 2, 3]);
  // an arena allocation never overlaps it, even after a reset below it
  const p = rt.alloc(16);
  assert.ok(p >= a!.byteOffset + 4 * 1000, 'arena above the resident block');
  rt.reset(0);
  assert.ok(rt.alloc(1) >= a!.byteOffset + 4 * 1000, 'a reset stops at the resident blocks');
  rt.reset(0);
  // growing the memory (4 pages → several MB) keeps the array and its address
  const before = rt.memory.buffer.byteLength;
  const big = rt.mark();
  rt.alloc(1 << 21);
  assert.ok(rt.memory.buffer.byteLength > before, 'grew');
  assert.equal([...a!.subarray(0, 4)], [1, 2, 3, 0]);
  assert.is(rt.addressOf(a!), a!.byteOffset);
  rt.reset(big);
  const after = rt.residentFloat32(8);
  assert.ok(after && rt.addressOf(after) === after.byteOffset, 'an array allocated after the growth is found in place too');
  rt.alloc(16);
  rt.f32[(a!.byteOffset >>> 2) + 3] = 9;
  assert.is(a![3], 9, 'the same memory');
  // refused while the arena is in use (a kernel's allocations would be reset over it)
  assert.is(rt.residentFloat32(10), null);
  rt.reset(big);
  assert.ok(rt.residentFloat32(10), 'allowed again');
  rt.pool()?.close();
  // an unshared memory would detach the array when it grows
  assert.is(new WasmRuntime({ threads: 1 }).residentFloat32(10), null);
});

test('wasm SGD momentum update on resident arrays == the JS loop, bit for bit; other arrays take the loop', () => {
  const rt = getRuntime();
  if (!wasmOrSkip('wasm sgd') || !rt?.shared) return;
  fc.assert(fc.property(
    fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 130_000, max: 140_000 })),
    fc.double({ min: 1e-4, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.99, noNaN: true }), fc.constantFrom(0, 0.1), fc.nat(),
    (n, lr, mu, dampening, seed) => {
      const rand = seeded(seed);
      const resident = () => rt.residentFloat32(n)!;
      const w = resident(), g = resident(), buf = resident();
      w.set(randomF32(n, rand));
      buf.set(randomF32(n, rand));
      const w2 = w.slice(), buf2 = buf.slice();
      for (let step = 0; step < 3; step++) {
        g.set(randomF32(n, rand));
        const c = { lr, wd: 0, mu, dampening, nesterov: false, first: false };
        sgdMomentumUpdateWasm(w, g, buf, c, Math.fround);
        sgdMomentumUpdate(w2, g.slice(), buf2, c, Math.fround);
      }
      for (let i = 0; i < n; i++) {
        if (!Object.is(w[i], w2[i]) || !Object.is(buf[i], buf2[i])) assert.unreachable(`[${i}]: wasm ${w[i]}, ${buf[i]} loop ${w2[i]}, ${buf2[i]}`);
      }
    },
  ), { numRuns: 60 });
});

test.run();
