// Gradient properties of the reductions over random axes with and without keepdim, and their semantics.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { sum, mean, var as variance, max, min, argmax, tensor, Tensor } from '../../src/index.ts';
import { gradcheck, leaf, distinctLeaf, seed, shapeArb, RUNS } from '../helpers/gradcheck.ts';

/** A shape with at least one dim and a random subset of its axes (possibly negative). */
const shapeAxesArb = shapeArb(1, 4, 4).chain((shape) =>
  fc.tuple(
    fc.constant(shape),
    fc.subarray(shape.map((_, i) => i), { minLength: 1 }).map((axes) => axes.map((a) => (a % 2 ? a - shape.length : a))),
    fc.boolean(),
  ));

const reductions: [string, (x: Tensor, axes: number[], keep: boolean) => Tensor, boolean][] = [
  ['sum', (x, a, k) => sum(x, a, k), false],
  ['mean', (x, a, k) => mean(x, a, k), false],
  ['var (unbiased)', (x, a, k) => variance(x, a, { keepdim: k }), false],
  ['var (biased)', (x, a, k) => variance(x, a, { unbiased: false, keepdim: k }), false],
  ['max', (x, a, k) => max(x, a, k), true],
  ['min', (x, a, k) => min(x, a, k), true],
];

for (const [name, f, needsDistinct] of reductions) {
  test(`${name}: gradient matches central differences over random axes`, () => {
    fc.assert(fc.property(shapeAxesArb, seed, ([shape, axes, keep], s) => {
      const x = needsDistinct ? distinctLeaf(shape, s) : leaf(shape, s);
      gradcheck((t) => f(t, axes, keep), [x]);
    }), RUNS);
  });
}

test('sum over no axes given reduces everything to a scalar', () => {
  const x = tensor([[1, 2], [3, 4]]);
  assert.equal(sum(x).shape, []);
  assert.is(sum(x).item(), 10);
  assert.equal(sum(x, 1, true).toArray(), [[3], [7]]);
});

test('var is unbiased by default, as torch.var', () => {
  const x = tensor([1, 2, 3, 4], [4], { dtype: 'float64' });
  assert.is(variance(x).item(), 5 / 3);
  assert.is(variance(x, 0, { unbiased: false }).item(), 1.25);
});

test('max with ties shares the gradient equally (torch.amax)', () => {
  const x = tensor([3, 1, 3], [3], { dtype: 'float64', requiresGrad: true });
  max(x).backward();
  assert.equal(x.grad!.toArray(), [0.5, 0, 0.5]);
});

test('argmax returns the first maximum as int64', () => {
  const x = tensor([[1, 5, 5], [7, 0, 7]]);
  const a = argmax(x, 1);
  assert.is(a.dtype, 'int64');
  assert.equal(a.toArray(), [1, 0]);
  assert.is(argmax(x).item(), 3);
});

test('errors name the axis and the shape', () => {
  assert.throws(() => sum(tensor([1, 2]), 2), /sum: axis 2 is out of range for a tensor with 1 dims/);
  assert.throws(() => sum(tensor([[1, 2]]), [0, -2]), /sum: repeated axis/);
});

test.run();
