// Gradient properties of max/avg/adaptive pooling, PyTorch's tie and divisor rules, and errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { F, randn, tensor, ones } from '../../src/index.ts';
import { gradcheck, leaf, distinctLeaf, seed } from '../helpers/gradcheck.ts';

const poolCase = fc.record({
  k: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
  stride: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
  pad: fc.tuple(fc.nat(1), fc.nat(1)),
  dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
  ceilMode: fc.boolean(),
  h: fc.integer({ min: 3, max: 7 }),
  w: fc.integer({ min: 3, max: 7 }),
});
const RUNS = { numRuns: 40 };

test('maxPool2d: gradient over random kernels, strides, padding, dilation, ceil mode', () => {
  fc.assert(fc.property(poolCase, seed, (c, s) => {
    const padding: [number, number] = [Math.min(c.pad[0], c.k[0] >> 1), Math.min(c.pad[1], c.k[1] >> 1)];
    if (c.h + 2 * padding[0] < c.dilation[0] * (c.k[0] - 1) + 1 || c.w + 2 * padding[1] < c.dilation[1] * (c.k[1] - 1) + 1) return;
    gradcheck((x) => F.maxPool2d(x, { kernelSize: c.k, stride: c.stride, padding, dilation: c.dilation, ceilMode: c.ceilMode }), [distinctLeaf([2, 2, c.h, c.w], s)]);
  }), RUNS);
});

test('avgPool2d: gradient with countIncludePad, ceil mode and divisorOverride', () => {
  fc.assert(fc.property(poolCase, fc.boolean(), fc.boolean(), seed, (c, include, override, s) => {
    const padding: [number, number] = [Math.min(c.pad[0], c.k[0] >> 1), Math.min(c.pad[1], c.k[1] >> 1)];
    if (c.h + 2 * padding[0] < c.k[0] || c.w + 2 * padding[1] < c.k[1]) return;
    const opts = { kernelSize: c.k, stride: c.stride, padding, ceilMode: c.ceilMode, countIncludePad: include, divisorOverride: override ? 3 : undefined };
    gradcheck((x) => F.avgPool2d(x, opts), [leaf([2, 2, c.h, c.w], s)]);
  }), RUNS);
});

test('adaptiveAvgPool2d: gradient for divisible and non-divisible sizes', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), seed, (h, w, oh, ow, s) => {
    gradcheck((x) => F.adaptiveAvgPool2d(x, [oh, ow]), [leaf([1, 2, h, w], s)]);
  }), RUNS);
});

test('maxPool2d ties: the gradient goes to the first maximum in row-major window order', () => {
  const x = tensor([[[[1, 1], [1, 1]]]], undefined, { dtype: 'float64', requiresGrad: true });
  F.maxPool2d(x, { kernelSize: 2 }).sum().backward();
  assert.equal(x.grad!.toArray(), [[[[1, 0], [0, 0]]]]);
});

test('the ResNet stem pool (3, s2, p1) halves 112 → 56; ceil mode adds the partial window', () => {
  assert.equal(F.maxPool2d(randn([1, 1, 112, 112]), { kernelSize: 3, stride: 2, padding: 1 }).shape, [1, 1, 56, 56]);
  assert.equal(F.maxPool2d(randn([1, 1, 6, 6]), { kernelSize: 3, stride: 2, ceilMode: true }).shape, [1, 1, 3, 3]);
  assert.equal(F.maxPool2d(randn([1, 1, 6, 6]), { kernelSize: 3, stride: 2 }).shape, [1, 1, 2, 2]);
});

test('avgPool2d divisor: padding counted when countIncludePad (corner of a 3x3 s2 p1 window = 4/9)', () => {
  const y = F.avgPool2d(ones([1, 1, 5, 5], { dtype: 'float64' }), { kernelSize: 3, stride: 2, padding: 1 });
  assert.ok(Math.abs((y.data[0] as number) - 4 / 9) < 1e-15);
  const z = F.avgPool2d(ones([1, 1, 5, 5], { dtype: 'float64' }), { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false });
  assert.is(z.data[0], 1);
});

test('errors', () => {
  assert.throws(() => F.maxPool2d(randn([1, 1, 4, 4]), { kernelSize: 2, padding: 2 }), /maxPool2d: padding \(2,2\) must be at most half the kernel size \(2,2\)/);
  assert.throws(() => F.maxPool2d(randn([1, 4, 4]), { kernelSize: 2 }), /maxPool2d: input must have 4 dims, got shape \[1, 4, 4\]/);
  assert.throws(() => F.avgPool2d(randn([1, 1, 2, 2]), { kernelSize: 3 }), /avgPool2d: kernel 3x3 does not fit input \[1, 1, 2, 2\]/);
});

test.run();
