// Gradient properties of the composed nn functions (batch/layer norm, softmax, losses, dropout, drop path)
// and the semantics a gradient check cannot see: running statistics, masks, reductions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { F, tensor, randn, zeros, ones, Generator, sum, Tensor } from '../../src/index.ts';
import { gradcheck, leaf, seed, RUNS } from '../helpers/gradcheck.ts';

const imageShape = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }));

test('batchNorm (training): gradient of input, weight and bias', () => {
  fc.assert(fc.property(imageShape, seed, ([n, c, h, w], s) => {
    if (n * h * w < 2) return;
    const rm = zeros([c], { dtype: 'float64' }), rv = ones([c], { dtype: 'float64' });
    gradcheck((x, g, b) => F.batchNorm(x, rm, rv, g, b, { training: true }), [leaf([n, c, h, w], s), leaf([c], s + 1), leaf([c], s + 2)]);
  }), RUNS);
});

test('batchNorm (eval): gradient through the running statistics', () => {
  const rm = tensor([0.1, -0.2], [2], { dtype: 'float64' }), rv = tensor([0.5, 2], [2], { dtype: 'float64' });
  gradcheck((x, g, b) => F.batchNorm(x, rm, rv, g, b, { training: false }), [leaf([2, 2, 3, 3], 3), leaf([2], 4), leaf([2], 5)]);
});

test('batchNorm updates running stats in place with momentum and the unbiased variance', () => {
  const x = tensor([1, 2, 3, 6], [4, 1], { dtype: 'float64' });
  const rm = zeros([1], { dtype: 'float64' }), rv = ones([1], { dtype: 'float64' });
  F.batchNorm(x, rm, rv, null, null, { training: true, momentum: 0.1 });
  // mean 3, unbiased variance 14/3
  assert.ok(Math.abs((rm.data[0] as number) - 0.3) < 1e-15);
  assert.ok(Math.abs((rv.data[0] as number) - (0.9 + 0.1 * 14 / 3)) < 1e-15);
  assert.throws(() => F.batchNorm(randn([1, 3]), null, null, null, null, { training: true }), /batchNorm: expected more than 1 value per channel when training, got input \[1, 3\]/);
  assert.throws(() => F.batchNorm(randn([2, 3]), zeros([4]), ones([4]), null, null), /batchNorm: runningMean of shape \[4\] does not match 3 channels/);
});

test('layerNorm over the last 1 or 2 dims: gradient of input, weight and bias', () => {
  fc.assert(fc.property(imageShape, fc.integer({ min: 1, max: 2 }), seed, (shape, k, s) => {
    const norm = shape.slice(4 - k);
    if (norm.reduce((a, b) => a * b, 1) < 2) return;
    gradcheck((x, g, b) => F.layerNorm(x, norm, g, b, 1e-6), [leaf(shape, s), leaf(norm, s + 1), leaf(norm, s + 2)]);
  }), RUNS);
  assert.throws(() => F.layerNorm(randn([2, 3]), [4]), /layerNorm: normalizedShape \[4\] does not match the trailing dims of input \[2, 3\]/);
});

test('softmax and logSoftmax: gradient along any axis; rows sum to one', () => {
  fc.assert(fc.property(imageShape, fc.integer({ min: -4, max: 3 }), seed, (shape, axis, s) => {
    gradcheck((x) => F.softmax(x, axis), [leaf(shape, s, -5, 5)]);
    gradcheck((x) => F.logSoftmax(x, axis), [leaf(shape, s, -5, 5)]);
  }), RUNS);
  const p = F.softmax(tensor([[1000, 1001, 1002]], undefined, { dtype: 'float64' }), 1);
  assert.ok(Math.abs(sum(p).item() - 1) < 1e-15);
});

test('crossEntropy: class targets, label smoothing, ignoreIndex, spatial dims, probability targets', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 2, max: 5 }), fc.constantFrom(0, 0.1), fc.constantFrom('mean', 'sum', 'none') as fc.Arbitrary<'mean' | 'sum' | 'none'>, seed, (n, c, ls, reduction, s) => {
    const target = tensor(Array.from({ length: n }, (_, i) => (i * 7 + s) % c), [n], { dtype: 'int64' });
    gradcheck((x) => F.crossEntropy(x, target, { labelSmoothing: ls, reduction }), [leaf([n, c], s)]);
  }), RUNS);
  const t4 = tensor([0, 2, 1, -100, 1, 0, 2, 2], [2, 2, 2], { dtype: 'int64' });
  gradcheck((x) => F.crossEntropy(x, t4, { labelSmoothing: 0.2 }), [leaf([2, 3, 2, 2], 9)]);
  const probs = F.softmax(leaf([3, 4], 10).detach(), 1);
  gradcheck((x) => F.crossEntropy(x, probs, { labelSmoothing: 0.1 }), [leaf([3, 4], 11)]);
});

test('crossEntropy equals −log p of the target and averages over non-ignored targets', () => {
  const logits = tensor([[0, 0], [1, 3]], undefined, { dtype: 'float64' });
  const loss = F.crossEntropy(logits, tensor([1, -100], [2], { dtype: 'int64' }));
  assert.ok(Math.abs(loss.item() - Math.log(2)) < 1e-15);
  assert.throws(() => F.crossEntropy(randn([2, 3]), tensor([1, 2, 0], [3], { dtype: 'int64' })), /crossEntropy: class target \[3\] must have shape \[2\]/);
});

test('mseLoss: gradient, reductions and shape check', () => {
  gradcheck((a, b) => F.mseLoss(a, b), [leaf([2, 3], 1), leaf([2, 3], 2)]);
  gradcheck((a, b) => F.mseLoss(a, b, 'sum'), [leaf([4], 3), leaf([4], 4)]);
  assert.throws(() => F.mseLoss(randn([2]), randn([3])), /mseLoss: input \[2\] and target \[3\] differ in shape/);
});

test('dropout: zeroes with probability p, scales the rest by 1/(1−p), identity in eval; gradient uses the same mask', () => {
  const x = ones([20000], { dtype: 'float64' });
  const y = F.dropout(x, 0.3, true, new Generator(5));
  const data = y.data as Float64Array;
  const kept = data.filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 1 / 0.7) < 1e-12));
  assert.ok(Math.abs(kept.length / data.length - 0.7) < 0.02);
  assert.ok(F.dropout(x, 0.3, false) === x);
  // a fresh generator with the same seed per evaluation: the numeric gradient sees the same mask
  gradcheck((t) => F.dropout(t, 0.5, true, new Generator(1)), [leaf([3, 4], 2)]);
  assert.throws(() => F.dropout(x, 1.5), /dropout: probability p must be in \[0, 1\], got 1.5/);
});

test('dropPath drops whole samples and scales survivors by 1/(1−p)', () => {
  const x = ones([400, 3, 2], { dtype: 'float64' });
  const y = F.dropPath(x, 0.25, true, new Generator(3)) as Tensor;
  const d = y.data as Float64Array;
  let dropped = 0;
  for (let i = 0; i < 400; i++) {
    const sample = d.slice(i * 6, i * 6 + 6);
    assert.ok(sample.every((v) => v === sample[0]), 'a sample is kept or dropped whole');
    if (sample[0] === 0) dropped++;
    else assert.ok(Math.abs(sample[0] - 1 / 0.75) < 1e-12);
  }
  assert.ok(Math.abs(dropped / 400 - 0.25) < 0.07);
  gradcheck((t) => F.dropPath(t, 0.5, true, new Generator(4)), [leaf([4, 2, 2], 3)]);
  assert.ok(F.dropPath(x, 0.25, false) === x);
});

/** The composed forms the fused ops replace: their reference twins. */
function batchNormComposite(x: Tensor, g: Tensor, b: Tensor, eps: number): Tensor {
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const per = x.shape.map((d, i) => (i === 1 ? d : 1));
  const centered = x.sub(x.mean(axes, true));
  const invStd = centered.mul(centered).mean(axes, true).add(eps).rsqrt();
  return centered.mul(invStd).mul(g.reshape(...per)).add(b.reshape(...per));
}

function layerNormComposite(x: Tensor, d: number, g: Tensor, b: Tensor, eps: number): Tensor {
  const centered = x.sub(x.mean(-1, true));
  return centered.mul(centered.mul(centered).mean(-1, true).add(eps).rsqrt()).mul(g).add(b);
}

test('fused batch/layer norm equal their composed twins (values and every gradient)', () => {
  fc.assert(fc.property(imageShape, seed, ([n, c, h, w], s) => {
    if (n * h * w < 2) return;
    const run = (f: (x: Tensor, g: Tensor, b: Tensor) => Tensor) => {
      const x = leaf([n, c, h, w], s), g = leaf([c], s + 1), b = leaf([c], s + 2);
      const y = f(x, g, b);
      y.backward(leaf([...y.shape], s + 3).detach());
      return [y, x.grad!, g.grad!, b.grad!];
    };
    const fused = run((x, g, b) => F.batchNorm(x, null, null, g, b, { training: true }));
    const twin = run((x, g, b) => batchNormComposite(x, g, b, 1e-5));
    fused.forEach((t, k) => (t.data as Float64Array).forEach((v, i) => assert.ok(Math.abs(v - (twin[k].data[i] as number)) < 1e-12, `bn ${k}`)));
    const lnFused = run((x, g, b) => F.layerNorm(x.permute(0, 2, 3, 1), [c], g, b, 1e-6));
    const lnTwin = run((x, g, b) => layerNormComposite(x.permute(0, 2, 3, 1), c, g, b, 1e-6));
    lnFused.forEach((t, k) => (t.data as Float64Array).forEach((v, i) => assert.ok(Math.abs(v - (lnTwin[k].data[i] as number)) < 1e-12, `ln ${k}`)));
  }), RUNS);
});

test.run();
