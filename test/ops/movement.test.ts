// Gradient properties of the movement ops, and their shape semantics and errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  reshape, permute, transpose, expand, slice, narrow, pad, concat, stack, repeat, upsampleNearest, indexSelect, indexScatter, gather,
  flatten, squeeze, unsqueeze, tensor, arange, randn, type Tensor,
} from '../../src/index.ts';
import { gradcheck, leaf, seed, seededData, shapeArb, RUNS } from '../helpers/gradcheck.ts';
import { gatherSites, scatterSites } from '../../src/ops/sites.ts';

const nonEmpty = shapeArb(1, 4, 4);

test('reshape shares storage and its gradient is reshaped back', () => {
  const x = randn([2, 6]);
  assert.ok(reshape(x, [3, -1]).data === x.data);
  fc.assert(fc.property(nonEmpty, seed, (shape, s) => {
    gradcheck((t) => reshape(t, [-1]), [leaf(shape, s)]);
  }), RUNS);
});

test('permute: gradient is the inverse permutation', () => {
  fc.assert(fc.property(nonEmpty, seed, fc.nat(), (shape, s, r) => {
    const axes = shape.map((_, i) => i).sort((a, b) => ((a * 7919 + r) % 13) - ((b * 7919 + r) % 13));
    gradcheck((t) => permute(t, axes), [leaf(shape, s)]);
  }), RUNS);
});

test('transpose and flatten/squeeze/unsqueeze', () => {
  gradcheck((t) => transpose(t, 0, 2), [leaf([2, 3, 4], 5)]);
  assert.equal(flatten(randn([2, 3, 4]), 1).shape, [2, 12]);
  assert.equal(squeeze(randn([1, 3, 1])).shape, [3]);
  assert.equal(unsqueeze(randn([3]), -1).shape, [3, 1]);
});

test('expand: gradient sums over the broadcast copies', () => {
  fc.assert(fc.property(nonEmpty, seed, fc.nat(2), (shape, s, extra) => {
    const small = shape.map((d, i) => (i % 2 ? 1 : d));
    gradcheck((t) => expand(t, [...new Array(extra).fill(2), ...shape]), [leaf(small, s)]);
  }), RUNS);
});

test('slice with steps and negative bounds; narrow', () => {
  fc.assert(fc.property(nonEmpty, seed, fc.nat(3), fc.integer({ min: -4, max: 4 }), fc.integer({ min: 1, max: 3 }), (shape, s, ax, start, step) => {
    const axis = ax % shape.length;
    gradcheck((t) => slice(t, axis, start, shape[axis], step), [leaf(shape, s)]);
  }), RUNS);
  const x = arange(10);
  assert.equal(slice(x, 0, 1, 8, 3).toArray(), [1, 4, 7]);
  assert.equal(slice(x, 0, -3, 10).toArray(), [7, 8, 9]);
  assert.equal(narrow(x, 0, 2, 3).toArray(), [2, 3, 4]);
  assert.throws(() => narrow(x, 0, 8, 3), /narrow: start 8 with length 3 is out of range for axis 0 of shape \[10\]/);
});

test('pad: constant, asymmetric, from the last axis', () => {
  fc.assert(fc.property(shapeArb(2, 4, 3), seed, fc.array(fc.nat(2), { minLength: 4, maxLength: 4 }), (shape, s, pads) => {
    gradcheck((t) => pad(t, pads, 0.5), [leaf(shape, s)]);
  }), RUNS);
  assert.equal(pad(tensor([[1]]), [1, 0, 0, 1], 9).toArray(), [[9, 1], [9, 9]]);
  assert.throws(() => pad(tensor([[1]]), [-1, 0]), /pad: padding must be non-negative/);
});

test('concat and stack: each input gets its span of the gradient', () => {
  fc.assert(fc.property(shapeArb(1, 3, 3), seed, fc.nat(2), (shape, s, ax) => {
    const axis = ax % shape.length;
    const other = shape.map((d, i) => (i === axis ? d + 1 : d));
    gradcheck((a, b) => concat([a, b, a], axis), [leaf(shape, s), leaf(other, s + 1)]);
    gradcheck((a, b) => stack([a, b], axis), [leaf(shape, s), leaf(shape, s + 2)]);
  }), RUNS);
  assert.throws(() => concat([randn([2, 3]), randn([3, 3])], 1), /concat: tensor 1 of shape \[3, 3\] does not match tensor 0 of shape \[2, 3\] outside axis 1/);
});

test('repeat tiles like torch.Tensor.repeat', () => {
  assert.equal(repeat(tensor([1, 2]), [2, 2]).toArray(), [[1, 2, 1, 2], [1, 2, 1, 2]]);
  gradcheck((t) => repeat(t, [2, 1, 3]), [leaf([2, 3], 9)]);
});

test('upsampleNearest replicates whole blocks; the gradient sums each block', () => {
  assert.equal(upsampleNearest(tensor([[[[1, 2]]]]), [2, 1]).toArray(), [[[[1, 2], [1, 2]]]]);
  fc.assert(fc.property(shapeArb(2, 4, 3), seed, fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), (shape, s, fh, fw) => {
    gradcheck((t) => upsampleNearest(t, [fh, fw]), [leaf(shape, s)]);
  }), RUNS);
});

test('indexSelect and gather: gradients scatter-add back, repeated indices included', () => {
  fc.assert(fc.property(shapeArb(1, 3, 4), seed, (shape, s) => {
    const axis = shape.length - 1;
    const n = shape[axis];
    const picks = Array.from(seededData(s, 5, 0, n), Math.floor);
    const index = tensor(picks, [5], { dtype: 'int64' });
    gradcheck((t) => indexSelect(t, axis, index), [leaf(shape, s)]);
    const gIdx = tensor(Array.from(seededData(s + 3, shape.reduce((a, b) => a * b, 1), 0, n), Math.floor), shape, { dtype: 'int64' });
    gradcheck((t) => gather(t, axis, gIdx), [leaf(shape, s)]);
  }), RUNS);
  assert.throws(() => indexSelect(randn([3]), 0, tensor([3], [1], { dtype: 'int64' })), /indexSelect: index holds 3, out of range for a dim of size 3/);
  assert.throws(() => indexSelect(randn([3]), 0, tensor([1])), /indexSelect: index must be an integer tensor/);
});

test('indexScatter is the adjoint of indexSelect: <select(x), y> = <x, scatter(y)>, and its gradient checks', () => {
  fc.assert(fc.property(shapeArb(1, 3, 4), seed, (shape, s) => {
    const axis = 0;
    const n = shape[0] + 2;
    const index = tensor(Array.from(seededData(s, shape[0], 0, n), Math.floor), [shape[0]], { dtype: 'int64' });
    gradcheck((t) => indexScatter(t, axis, index, n), [leaf(shape, s)]);
    const x = leaf([n, ...shape.slice(1)], s + 1).detach(), y = leaf(shape, s + 2).detach();
    const lhs = (indexSelect(x, axis, index).mul(y).sum()).item();
    const rhs = (x.mul(indexScatter(y, axis, index, n)).sum()).item();
    assert.ok(Math.abs(lhs - rhs) < 1e-12 * (1 + Math.abs(lhs)));
  }), RUNS);
});

test('gatherSites / scatterSites: the visible positions of an NCHW map as (sites, C) rows, equal to permute + indexSelect, adjoint, gradients check', () => {
  const dims = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }));
  fc.assert(fc.property(dims, seed, fc.double({ min: 0.1, max: 1, noNaN: true }), ([N, C, H, W], s, keep) => {
    const picked = Array.from({ length: N * H * W }, (_, i) => i).filter((i) => seededData(s + i, 1, 0, 1)[0] < keep);
    const sites = tensor(picked, [picked.length], { dtype: 'int32' });
    const x = leaf([N, C, H, W], s).detach();
    const viaPermute = indexSelect(reshape(permute(x, [0, 2, 3, 1]), [N * H * W, C]), 0, sites);
    const flat = (t: Tensor) => Array.from(t.data as Float64Array);
    assert.equal(flat(gatherSites(x, sites)), flat(viaPermute));
    const rows = leaf([picked.length, C], s + 1).detach();
    const back = permute(reshape(indexScatter(rows, 0, sites, N * H * W), [N, H, W, C]), [0, 3, 1, 2]);
    assert.equal(flat(scatterSites(rows, sites, [N, C, H, W])), flat(back));
    const lhs = gatherSites(x, sites).mul(rows).sum().item(), rhs = x.mul(scatterSites(rows, sites, [N, C, H, W])).sum().item();
    assert.ok(Math.abs(lhs - rhs) < 1e-12 * (1 + Math.abs(lhs)));
    gradcheck((t) => gatherSites(t, sites), [leaf([N, C, H, W], s + 2)]);
    gradcheck((t) => scatterSites(t, sites, [N, C, H, W]), [leaf([picked.length, C], s + 3)]);
  }), RUNS);
  assert.throws(() => gatherSites(randn([2, 3]), tensor([0], [1], { dtype: 'int32' })), /gatherSites: input must be \(N, C, H, W\), got \[2, 3\]/);
  assert.throws(() => gatherSites(randn([1, 2, 2, 2]), tensor([4], [1], { dtype: 'int32' })), /gatherSites: sites holds 4, out of range for a dim of size 4/);
  assert.throws(() => scatterSites(randn([2, 3]), tensor([0], [1], { dtype: 'int32' }), [1, 3, 2, 2]), /scatterSites: rows \[2, 3\] must be \(sites = 1, C = 3\)/);
});

test('reshape errors say what was asked', () => {
  assert.throws(() => reshape(randn([2, 3]), [4, 2]), /reshape: shape \[4, 2\] is invalid for input of shape \[2, 3\] \(6 elements\)/);
  assert.throws(() => expand(randn([2, 3]), [4, 3]), /expand: cannot expand \[2, 3\] to \[4, 3\]/);
});

test.run();
