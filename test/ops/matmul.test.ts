// Gradient properties of matmul (2-D, batched, broadcast batch dims, 1-D operands) and linear.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { matmul, bmm, F, tensor, randn } from '../../src/index.ts';
import { gradcheck, leaf, seed, RUNS } from '../helpers/gradcheck.ts';

const dim = fc.integer({ min: 1, max: 5 });

test('matmul: gradient over random sizes with broadcast batch dims', () => {
  fc.assert(fc.property(dim, dim, dim, fc.constantFrom([], [2], [1, 3], [2, 1]), fc.constantFrom([], [3], [2, 3], [1]), seed, (m, k, n, ba, bb, s) => {
    const batchA = ba.slice(), batchB = bb.slice();
    // make the two batch shapes broadcastable by aligning mismatches to 1
    const len = Math.max(batchA.length, batchB.length);
    for (let i = 0; i < len; i++) {
      const ia = batchA.length - len + i, ib = batchB.length - len + i;
      if (ia >= 0 && ib >= 0 && batchA[ia] !== batchB[ib]) batchA[ia] = 1;
    }
    gradcheck(matmul, [leaf([...batchA, m, k], s), leaf([...batchB, k, n], s + 1)]);
  }), RUNS);
});

test('matmul with 1-D operands follows torch.matmul', () => {
  gradcheck(matmul, [leaf([4], 1), leaf([4, 3], 2)]);
  gradcheck(matmul, [leaf([2, 3, 4], 3), leaf([4], 4)]);
  gradcheck(matmul, [leaf([4], 5), leaf([4], 6)]);
  assert.equal(matmul(randn([4]), randn([4])).shape, []);
  assert.equal(matmul(randn([2, 3, 4]), randn([4])).shape, [2, 3]);
});

test('bmm with stored transposes: every combination', () => {
  for (const ta of [false, true]) for (const tb of [false, true]) {
    const a = leaf(ta ? [2, 4, 3] : [2, 3, 4], 7), b = leaf(tb ? [2, 5, 4] : [2, 4, 5], 8);
    gradcheck((x, y) => bmm(x, y, ta, tb), [a, b]);
    assert.equal(bmm(a, b, ta, tb).shape, [2, 3, 5]);
  }
});

test('linear: x·wᵀ + b over leading dims', () => {
  fc.assert(fc.property(dim, dim, fc.constantFrom([3], [2, 3], [1, 2, 2]), fc.boolean(), seed, (i, o, lead, withBias, s) => {
    const b = withBias ? leaf([o], s + 2) : undefined;
    const inputs = [leaf([...lead, i], s), leaf([o, i], s + 1), ...(b ? [b] : [])];
    gradcheck((x, w, bias) => F.linear(x, w, bias), inputs);
  }), RUNS);
});

test('errors name the operands and their shapes', () => {
  assert.throws(() => matmul(randn([2, 3]), randn([4, 2])), /matmul: inner dims differ: a \[2, 3\] and b \[4, 2\] \(3 vs 4\)/);
  assert.throws(() => F.linear(randn([2, 3]), randn([4, 5])), /linear: input \[2, 3\] has 3 features but weight \[4, 5\] expects 5/);
  assert.throws(() => matmul(tensor([1, 2], [2], { dtype: 'int32' }), randn([2])), /matmul: a must be a float tensor, got int32/);
});

test.run();
