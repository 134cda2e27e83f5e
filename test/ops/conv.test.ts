// Gradient properties of conv2d and convTranspose2d over every stride/padding/dilation/groups combination
// that applies (random), their second-order closure, and argument errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { F, randn, tensor } from '../../src/index.ts';
import { gradcheck, leaf, seed } from '../helpers/gradcheck.ts';

const convCase = fc.record({
  n: fc.integer({ min: 1, max: 2 }),
  groups: fc.integer({ min: 1, max: 3 }),
  cPerGroup: fc.integer({ min: 1, max: 2 }),
  kPerGroup: fc.integer({ min: 1, max: 2 }),
  r: fc.integer({ min: 1, max: 3 }),
  s: fc.integer({ min: 1, max: 3 }),
  stride: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 })),
  padding: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
  dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
  h: fc.integer({ min: 3, max: 6 }),
  w: fc.integer({ min: 3, max: 6 }),
  bias: fc.boolean(),
});

const RUNS = { numRuns: 30 };

test('conv2d: gradient of input, weight and bias over random configurations', () => {
  fc.assert(fc.property(convCase, seed, (c, sd) => {
    const C = c.cPerGroup * c.groups, K = c.kPerGroup * c.groups;
    if (c.h + 2 * c.padding[0] < c.dilation[0] * (c.r - 1) + 1 || c.w + 2 * c.padding[1] < c.dilation[1] * (c.s - 1) + 1) return;
    const x = leaf([c.n, C, c.h, c.w], sd), w = leaf([K, c.cPerGroup, c.r, c.s], sd + 1);
    const inputs = c.bias ? [x, w, leaf([K], sd + 2)] : [x, w];
    gradcheck((a, b, bias) => F.conv2d(a, b, bias, { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups }), inputs);
  }), RUNS);
});

test('convTranspose2d: gradient over random configurations incl. outputPadding', () => {
  fc.assert(fc.property(convCase, fc.nat(1), seed, (c, op, sd) => {
    const Cin = c.cPerGroup * c.groups, Cout = c.kPerGroup * c.groups;
    const outputPadding: [number, number] = [Math.min(op, Math.max(c.stride[0], c.dilation[0]) - 1), 0];
    const oh = (c.h - 1) * c.stride[0] - 2 * c.padding[0] + c.dilation[0] * (c.r - 1) + outputPadding[0] + 1;
    const ow = (c.w - 1) * c.stride[1] - 2 * c.padding[1] + c.dilation[1] * (c.s - 1) + 1;
    if (oh < 1 || ow < 1) return;
    const x = leaf([c.n, Cin, c.h, c.w], sd), w = leaf([Cin, c.kPerGroup, c.r, c.s], sd + 1);
    const inputs = c.bias ? [x, w, leaf([Cout], sd + 2)] : [x, w];
    const y = F.convTranspose2d(x, w, inputs[2], { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, outputPadding });
    assert.equal(y.shape, [c.n, Cout, oh, ow]);
    gradcheck((a, b, bias) => F.convTranspose2d(a, b, bias, { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, outputPadding }), inputs);
  }), RUNS);
});

test('the SparK decoder upsample: ConvTranspose2d(k4, s2, p1) exactly doubles H and W', () => {
  const y = F.convTranspose2d(randn([2, 6, 7, 5]), randn([6, 3, 4, 4]), randn([3]), { stride: 2, padding: 1 });
  assert.equal(y.shape, [2, 3, 14, 10]);
});

test('depthwise 7x7 (ConvNeXt): gradient', () => {
  const x = leaf([1, 3, 7, 7], 11), w = leaf([3, 1, 7, 7], 12), b = leaf([3], 13);
  gradcheck((a, k, bias) => F.conv2d(a, k, bias, { padding: 3, groups: 3 }), [x, w, b]);
});

test('conv2dInput and conv2dWeight (torch.nn.grad) are the conv gradients, and are themselves differentiable', () => {
  fc.assert(fc.property(convCase, seed, (c, sd) => {
    const C = c.cPerGroup * c.groups, K = c.kPerGroup * c.groups;
    if (c.h + 2 * c.padding[0] < c.dilation[0] * (c.r - 1) + 1 || c.w + 2 * c.padding[1] < c.dilation[1] * (c.s - 1) + 1) return;
    const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
    const x = leaf([c.n, C, c.h, c.w], sd), w = leaf([K, c.cPerGroup, c.r, c.s], sd + 1);
    const y = F.conv2d(x, w, undefined, opts);
    const dy = leaf([...y.shape], sd + 3);
    y.backward(dy.detach());
    const dx = F.conv2dInput(x.shape, w.detach(), dy.detach(), opts);
    const dw = F.conv2dWeight(x.detach(), w.shape, dy.detach(), opts);
    assert.equal(dx.toArray(), x.grad!.toArray());
    assert.equal(dw.toArray(), w.grad!.toArray());
    // the rules that close the three ops under differentiation
    gradcheck((a, b) => F.conv2dInput(x.shape, a, b, opts), [leaf(w.shape, sd + 4), leaf(dy.shape, sd + 5)]);
    gradcheck((a, b) => F.conv2dWeight(a, w.shape, b, opts), [leaf(x.shape, sd + 6), leaf(dy.shape, sd + 7)]);
  }), RUNS);
});

test('conv2dActive equals conv2d restricted to the sites, and its gradient checks', () => {
  fc.assert(fc.property(convCase, seed, fc.double({ min: 0, max: 1, noNaN: true }), (c, sd, keep) => {
    const C = c.cPerGroup * c.groups, K = c.kPerGroup * c.groups;
    if (c.h + 2 * c.padding[0] < c.dilation[0] * (c.r - 1) + 1 || c.w + 2 * c.padding[1] < c.dilation[1] * (c.s - 1) + 1) return;
    const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
    const x = leaf([c.n, C, c.h, c.w], sd), w = leaf([K, c.cPerGroup, c.r, c.s], sd + 1);
    const dense = F.conv2d(x, w, undefined, opts);
    const [, , oh, ow] = dense.shape;
    const chosen = Array.from({ length: c.n * oh * ow }, (_, i) => i).filter((i) => ((i * 7919 + sd) % 100) / 100 < keep);
    const sites = tensor(Int32Array.from(chosen), [chosen.length]);
    const y = F.conv2dActive(x, w, sites, opts);
    for (let n = 0; n < c.n; n++) for (let k = 0; k < K; k++) for (let i = 0; i < oh * ow; i++) {
      const at = (n * K + k) * oh * ow + i;
      const want = chosen.includes(n * oh * ow + i) ? dense.data[at] : 0;
      assert.ok(Math.abs((y.data[at] as number) - (want as number)) < 1e-12);
    }
    gradcheck((a, b) => F.conv2dActive(a, b, sites, opts), [x, w]);
  }), RUNS);
});

test('errors name the argument and shapes', () => {
  assert.throws(() => F.conv2dActive(randn([1, 2, 4, 4]), randn([3, 2, 3, 3]), tensor(Int32Array.of(4))), /conv2dActive: site 4 is outside the 1x2x2 output/);
  assert.throws(() => F.conv2dWeight(randn([1, 2, 5, 5]), [3, 2, 3, 3], randn([1, 3, 4, 4])), /conv2dWeight: gradOutput \[1, 3, 4, 4\] should be \[1, 3, 3, 3\]/);
  assert.throws(() => F.conv2d(randn([1, 4, 5, 5]), randn([6, 2, 3, 3]), undefined, { groups: 3 }), /conv2d: groups=3 must divide both input channels \(4, input \[1, 4, 5, 5\]\)/);
  assert.throws(() => F.conv2d(randn([1, 4, 5, 5]), randn([6, 3, 3, 3])), /conv2d: weight \[6, 3, 3, 3\] expects 3 input channels with groups=1, but input \[1, 4, 5, 5\] has 4/);
  assert.throws(() => F.conv2d(randn([1, 3, 5, 5]), randn([2, 3, 3, 3]), undefined, { padding: -1 }), /conv2d: padding must be non-negative integers, got -1/);
  assert.throws(() => F.conv2d(randn([1, 3, 2, 2]), randn([2, 3, 3, 3])), /conv2d: kernel 3x3 .* is larger than the padded input \[1, 3, 2, 2\]/);
  assert.throws(() => F.conv2d(randn([3, 5, 5]), randn([2, 3, 3, 3])), /conv2d: input must have 4 dims, got shape \[3, 5, 5\]/);
  assert.throws(() => F.conv2d(tensor([1, 2, 3, 4], [1, 1, 2, 2], { dtype: 'int32' }), randn([1, 1, 1, 1])), /conv2d: input must be a float tensor, got int32/);
  assert.throws(() => F.conv2d(randn([1, 2, 5, 5]), randn([4, 2, 3, 3]), randn([3])), /conv2d: bias of shape \[3\] does not match 4 output channels/);
  assert.throws(() => F.convTranspose2d(randn([1, 4, 5, 5]), randn([3, 2, 4, 4])), /convTranspose2d: weight \[3, 2, 4, 4\] expects 3 input channels but input \[1, 4, 5, 5\] has 4/);
});

test.run();
