// The WebAssembly max pool (kernels/wasm/maxpool.ts) against kernels/cpu/pool.ts's maxPool2d on random shapes,
// windows, strides, paddings and dilations, with ties (small integers) and NaNs: values and argmax equal exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { maxPool2d, type Pool2dParams } from '../../../kernels/cpu/pool.ts';
import { maxPool2dWasm } from '../../../kernels/wasm/maxpool.ts';
import { seeded, wasmOrSkip } from './helpers.ts';

function check(p: Pool2dParams, seed: number, nanRate: number): void {
  const rand = seeded(seed);
  const x = Float32Array.from({ length: p.N * p.C * p.H * p.W }, () => (rand() < nanRate ? NaN : Math.floor(rand() * 5) - 2));
  const m = p.N * p.C * p.OH * p.OW;
  const y = new Float32Array(m).fill(7), yRef = new Float32Array(m);
  const a = new Int32Array(m).fill(-1), aRef = new Int32Array(m);
  maxPool2dWasm(x, y, a, p);
  maxPool2d(x, yRef, aRef, p);
  assert.ok(y.every((v, i) => Object.is(v, yRef[i])), `values ${JSON.stringify(p)}`);
  assert.equal(Array.from(a), Array.from(aRef), `argmax ${JSON.stringify(p)}`);
}

function params(N: number, C: number, H: number, W: number, k: number, s: number, pad: number, d: number): Pool2dParams | null {
  const out = (n: number) => Math.floor((n + 2 * pad - d * (k - 1) - 1) / s) + 1;
  const OH = out(H), OW = out(W);
  if (OH < 1 || OW < 1 || 2 * pad > k) return null;
  return { N, C, H, W, OH, OW, kH: k, kW: k, strideH: s, strideW: s, padH: pad, padW: pad, dilationH: d, dilationW: d };
}

test('wasm max pool == reference: values and argmax, ties and NaNs included', () => {
  if (!wasmOrSkip('wasm max pool')) return;
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 2 }),
    fc.nat(), fc.constantFrom(0, 0.1),
    (N, C, H, W, k, s, pad, d, seed, nanRate) => {
      const p = params(N, C, H, W, k, s, pad, d);
      if (p) check(p, seed, nanRate);
    },
  ), { numRuns: 300 });
  // large enough to split the planes over the threads: the ResNet stem's pool
  check(params(16, 64, 32, 32, 3, 2, 1, 1)!, 5, 0.001);
});

test.run();
