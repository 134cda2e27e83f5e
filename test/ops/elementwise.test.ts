// Gradient properties of the elementwise ops (float64 central differences over random broadcast shapes),
// plus the semantics a gradient check cannot see: dtype promotion, comparisons, error messages.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  add, sub, mul, div, pow, maximum, minimum, neg, exp, log, sqrt, rsqrt, abs, relu, relu6, gelu, sigmoid, tanh, erf,
  clamp, where, gt, eq, cast, tensor, randn, Tensor,
} from '../../src/index.ts';
import { gradcheck, leaf, broadcastPairArb, seed, shapeArb, RUNS } from '../helpers/gradcheck.ts';

const binaries: [string, (a: Tensor, b: Tensor) => Tensor, [number, number], [number, number]][] = [
  ['add', add, [-2, 2], [-2, 2]],
  ['sub', sub, [-2, 2], [-2, 2]],
  ['mul', mul, [-2, 2], [-2, 2]],
  ['div', div, [-2, 2], [0.5, 2]],
  ['pow', pow, [0.5, 2], [-1.5, 1.5]],
  ['maximum', maximum, [-2, 2], [-2, 2]],
  ['minimum', minimum, [-2, 2], [-2, 2]],
];

for (const [name, f, ra, rb] of binaries) {
  test(`${name}: gradient matches central differences under broadcasting`, () => {
    fc.assert(fc.property(broadcastPairArb, seed, ([sa, sb], s) => {
      gradcheck(f, [leaf(sa, s, ...ra), leaf(sb, s + 1, ...rb)]);
    }), RUNS);
  });
}

const unaries: [string, (x: Tensor) => Tensor, [number, number]][] = [
  ['neg', neg, [-2, 2]], ['exp', exp, [-2, 2]], ['log', log, [0.2, 3]], ['sqrt', sqrt, [0.2, 3]],
  ['rsqrt', rsqrt, [0.2, 3]], ['abs', abs, [-2, 2]], ['relu', relu, [-2, 2]], ['relu6', relu6, [-1, 8]],
  ['gelu', gelu, [-4, 4]], ['sigmoid', sigmoid, [-6, 6]], ['tanh', tanh, [-3, 3]], ['erf', erf, [-3, 3]],
  ['clamp', (x) => clamp(x, -0.5, 0.7), [-2, 2]],
];

for (const [name, f, range] of unaries) {
  test(`${name}: gradient matches central differences`, () => {
    fc.assert(fc.property(shapeArb(0, 3, 5), seed, (shape, s) => {
      // kinks (relu at 0, relu6 at 0/6, abs at 0, clamp at its bounds) are hit with probability ~0 by random doubles
      gradcheck(f, [leaf(shape, s, ...range)]);
    }), RUNS);
  });
}

test('where: gradient flows to the chosen side only', () => {
  fc.assert(fc.property(broadcastPairArb, seed, ([sa, sb], s) => {
    const a = leaf(sa, s), b = leaf(sb, s + 1);
    const cond = gt(leaf(sa, s + 2).detach(), 0);
    gradcheck((x, y) => where(cond, x, y), [a, b]);
  }), RUNS);
});

test('cast: the gradient is cast back to the input dtype (float64 → float32 → float64 keeps float32 precision)', () => {
  gradcheck((x) => cast(x, 'float64'), [leaf([3, 2], 4)]);
  const x = leaf([4], 5);
  mul(cast(x, 'float32'), 3).sum().backward();
  assert.is(x.grad!.dtype, 'float64');
  assert.equal(x.grad!.toArray(), [3, 3, 3, 3]);
});

test('gelu is exact (erf form): gelu(1) = 0.8413447460685429', () => {
  assert.ok(Math.abs(gelu(tensor([1], [1], { dtype: 'float64' })).item() - 0.8413447460685429) < 1e-15);
});

test('relu and relu6 gradients at the kinks follow PyTorch (0 at x = 0 and x = 6)', () => {
  const x = tensor([0, 6, 3, -1], [4], { dtype: 'float64', requiresGrad: true });
  relu6(x).sum().backward();
  assert.equal(x.grad!.toArray(), [0, 0, 1, 0]);
  const y = tensor([0, 1], [2], { dtype: 'float64', requiresGrad: true });
  relu(y).sum().backward();
  assert.equal(y.grad!.toArray(), [0, 1]);
});

test('maximum/minimum split the gradient on ties, as PyTorch', () => {
  const a = tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const b = tensor([1, 3], [2], { dtype: 'float64', requiresGrad: true });
  maximum(a, b).sum().backward();
  assert.equal(a.grad!.toArray(), [0.5, 0]);
  assert.equal(b.grad!.toArray(), [0.5, 1]);
});

test('pow: gradients at a zero base are the limits, not NaN', () => {
  const a = tensor([0, 0], [2], { dtype: 'float64', requiresGrad: true });
  const b = tensor([2, 0], [2], { dtype: 'float64', requiresGrad: true });
  pow(a, b).sum().backward();
  assert.equal(a.grad!.toArray(), [0, 0]);
  assert.equal(b.grad!.toArray(), [0, 0]);
});

test('float32 with float64 computes in float64 and each input gets its own dtype of gradient', () => {
  const a = randn([3], { requiresGrad: true });
  const b = randn([3], { dtype: 'float64', requiresGrad: true });
  const y = mul(a, b);
  assert.is(y.dtype, 'float64');
  y.sum().backward();
  assert.is(a.grad!.dtype, 'float32');
  assert.is(b.grad!.dtype, 'float64');
});

test('comparisons give bool tensors; a bool operand beside a float is cast', () => {
  const x = tensor([1, 2, 3]);
  const m = eq(x, 2);
  assert.is(m.dtype, 'bool');
  assert.equal(m.toArray(), [0, 1, 0]);
  assert.equal(mul(x, m).toArray(), [0, 2, 0]);
});

test('errors name the op and the shapes', () => {
  assert.throws(() => add(randn([2, 3]), randn([4])), /add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
  const i = tensor([1, 2], [2], { dtype: 'int64' });
  assert.throws(() => add(i, i), /add: needs a float operand, got int64 \[2\] and int64 \[2\]/);
  assert.throws(() => exp(i), /exp: input must be a float tensor, got int64 of shape \[2\]/);
  assert.throws(() => clamp(randn([2]), 1, 0), /clamp: min \(1\) is greater than max \(0\)/);
});

test.run();
