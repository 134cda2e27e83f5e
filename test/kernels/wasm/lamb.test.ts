/**
 * LAMB's per-parameter update on the wasm kernels (kernels/wasm/lamb.ts) against its reference (kernels/cpu/lamb.ts)
 * on random sizes (odd and even, below and above the thread split) and constants (clipping on and off, weight decay
 * on and off, a trust-ratio rule that depends on the norms): g, m, v equal bit for bit; ‖w‖² and ‖u‖² within
 * 1e-12 relative (summed in another order); w equal when given the same ratio, and within 2⁻²³ relative otherwise.
 * And in place on resident arrays, equal to the copying path.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { lambUpdate, type LambConstants } from '../../../kernels/cpu/lamb.ts';
import { lambUpdateWasm } from '../../../kernels/wasm/lamb.ts';
import { getRuntime } from '../../../kernels/wasm/runtime.ts';
import { randomF32, seeded, wasmOrSkip } from './helpers.ts';

function same(what: string, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.unreachable(`${what}[${i}]: wasm ${a[i]} reference ${b[i]}`);
}

test('wasm LAMB update == reference', () => {
  if (!wasmOrSkip('wasm lamb')) return;
  const arb = fc.record({
    n: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 130_000, max: 140_000 })),
    clip: fc.constantFrom(1, 1.7), wd: fc.constantFrom(0, 0.05), step: fc.integer({ min: 1, max: 5 }),
  });
  fc.assert(fc.property(arb, fc.nat(), ({ n, clip, wd, step }, seed) => {
    const rand = seeded(seed);
    const w = randomF32(n, rand), g = randomF32(n, rand);
    const m = randomF32(n, rand).map((x) => 0.1 * x), v = randomF32(n, rand).map((x) => 0.01 * x * x);
    const c: LambConstants = {
      clip, beta1: 0.9, beta2: 0.95, beta3: 0.1, bc1: 1 - 0.9 ** step, bc2Sqrt: Math.sqrt(1 - 0.95 ** step), eps: 1e-6, wd, lr: 1e-3,
    };
    const copies = () => [w, g, m, v].map((a) => a.slice());
    const [w1, g1, m1, v1] = copies(), [w2, g2, m2, v2] = copies();
    const norms: number[][] = [];
    const rule = (wn: number, un: number) => { norms.push([wn, un]); return Math.fround(Math.sqrt(wn) / Math.sqrt(un)); };
    lambUpdateWasm(w1, g1, m1, v1, new Float32Array(n), c, rule);
    lambUpdate(w2, g2, m2, v2, new Float32Array(n), c, rule);
    same('g', g1, g2);
    same('m', m1, m2);
    same('v', v1, v2);
    for (const k of [0, 1]) assert.ok(Math.abs(norms[0][k] - norms[1][k]) <= 1e-12 * norms[1][k], `norm ${k}`);
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(w1[i] - w2[i]) <= 2 ** -23 * Math.abs(w2[i]) + 1e-30, `w[${i}]: wasm ${w1[i]} reference ${w2[i]}`);
    }
    // with one fixed ratio the update is bit for bit
    const [w3, g3, m3, v3] = copies(), [w4, g4, m4, v4] = copies();
    lambUpdateWasm(w3, g3, m3, v3, new Float32Array(n), c, () => 0.75);
    lambUpdate(w4, g4, m4, v4, new Float32Array(n), c, () => 0.75);
    same('w (fixed ratio)', w3, w4);
  }), { numRuns: 60 });
});

/**
 * w, g, m, v resident (in the runtime's memory, updated in place, nothing copied), or some of them: the same
 * values as the copying path, bit for bit with a fixed ratio.
 */
test('wasm LAMB update in place on resident arrays == the copying path', () => {
  const rt = getRuntime();
  if (!wasmOrSkip('wasm lamb resident') || !rt?.shared) return;
  fc.assert(fc.property(fc.integer({ min: 1, max: 140_000 }), fc.nat(), fc.integer({ min: 0, max: 15 }), (n, seed, which) => {
    const rand = seeded(seed);
    const c: LambConstants = { clip: 1.3, beta1: 0.9, beta2: 0.95, beta3: 0.1, bc1: 0.19, bc2Sqrt: 0.3, eps: 1e-6, wd: 0.05, lr: 1e-3 };
    const plain = [randomF32(n, rand), randomF32(n, rand), randomF32(n, rand).map((x) => 0.1 * x), randomF32(n, rand).map((x) => 0.01 * x * x)];
    const placed = plain.map((a, k) => {
      if (!(which & (1 << k))) return a.slice();
      const r = rt.residentFloat32(n);
      assert.ok(r && rt.addressOf(r) >= 0, 'a resident array');
      r.set(a);
      return r;
    });
    lambUpdateWasm(placed[0], placed[1], placed[2], placed[3], new Float32Array(n), c, () => 0.75);
    lambUpdateWasm(plain[0], plain[1], plain[2], plain[3], new Float32Array(n), c, () => 0.75);
    ['w', 'g', 'm', 'v'].forEach((name, k) => same(name, placed[k], plain[k]));
  }), { numRuns: 40 });
});

test('float64 parameters take the reference', () => {
  const w = new Float64Array([1, 2]), g = new Float64Array([0.5, -0.25]), m = new Float64Array(2), v = new Float64Array(2);
  const c: LambConstants = { clip: 1, beta1: 0.9, beta2: 0.999, beta3: 0.1, bc1: 0.1, bc2Sqrt: Math.sqrt(0.001), eps: 1e-6, wd: 0, lr: 0.1 };
  const ref = [w, g, m, v].map((a) => a.slice()) as Float64Array[];
  lambUpdateWasm(w, g, m, v, new Float64Array(2), c, () => 1, (x) => x);
  lambUpdate(ref[0], ref[1], ref[2], ref[3], new Float64Array(2), c, () => 1, (x) => x);
  assert.equal([...w], [...ref[0]]);
});

test.run();
