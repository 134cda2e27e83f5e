// SparK's semantics that fixtures alone cannot pin down: mask counts, exact zeros after every sparse layer
// (ResNet basic/bottleneck and ConvNeXt), gradient paths, pictures, official key names, and argument errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { models, randn, tensor, manualSeed, Generator, Tensor, noGrad, nn } from '../../src/index.ts';
import {
  SparK, SparseContext, sparsify, visibleCount, roundHalfEven, randomActive, maskedPatchLoss, patchify, unpatchify,
  SparseConv2d, SparseBatchNorm2d, SparseLayerNorm, SparseMaxPool2d, SparseConvNeXtBlock,
} from '../../models/spark/index.ts';
import type { HierarchicalEncoder } from '../../models/spark/index.ts';
import { gradcheck } from '../helpers/gradcheck.ts';

const tinyResNet = (block: 'basic' | 'bottleneck') => models.resnet({ block, layers: [1, 1, 1, 1], widths: [8, 8, 16, 16] });
const tinyConvNeXt = () => models.convnext({ depths: [1, 1, 1, 1], dims: [8, 16, 16, 24], layerScaleInit: 0.5 });

test('visible cells: round-half-even of f·f·(1 − ratio), as Python round', () => {
  assert.is(visibleCount(7, 7, 0.6), 20);
  assert.is(visibleCount(12, 12, 0.75), 36);
  assert.is(roundHalfEven(2.5), 2);
  assert.is(roundHalfEven(3.5), 4);
  assert.is(roundHalfEven(-2.5), -2);
  assert.is(roundHalfEven(19.6), 20);
});

test('random masks keep exactly lenKeep cells per image and are reproducible from a seed', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.double({ min: 0, max: 0.95, noNaN: true }), fc.nat(), (B, fh, fw, ratio, seed) => {
    const keep = visibleCount(fh, fw, ratio);
    const m = randomActive(B, fh, fw, keep, new Generator(seed));
    assert.equal(m.shape, [B, 1, fh, fw]);
    for (let b = 0; b < B; b++) {
      let n = 0;
      for (let i = 0; i < fh * fw; i++) n += (m.data as Uint8Array)[b * fh * fw + i];
      assert.is(n, keep);
    }
    assert.equal(randomActive(B, fh, fw, keep, new Generator(seed)).toArray(), m.toArray());
  }), { numRuns: 50 });
});

/** Wrap every sparse layer's forward to assert its output is exactly 0 wherever the mask says masked. */
function watchSparseOutputs(model: nn.Module, seen: string[]): void {
  for (const [name, m] of model.namedModules()) {
    const sparse = m instanceof SparseConv2d || m instanceof SparseBatchNorm2d || m instanceof SparseLayerNorm || m instanceof SparseMaxPool2d || m instanceof SparseConvNeXtBlock;
    if (!sparse) continue;
    const layer = m as unknown as { forward: (x: Tensor, ctx?: SparseContext) => Tensor };
    const original = layer.forward.bind(layer);
    layer.forward = (x, ctx) => {
      const y = original(x, ctx);
      const channelsLast = m instanceof SparseLayerNorm && m.dataFormat === 'channelsLast';
      const [h, w] = channelsLast ? [y.shape[1], y.shape[2]] : [y.shape[2], y.shape[3]];
      const mask = ctx!.activeAt(h, w, 'float64').data;
      const [B] = y.shape;
      const C = channelsLast ? y.shape[3] : y.shape[1];
      for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let i = 0; i < h * w; i++) {
        if (mask[b * h * w + i] !== 0) continue;
        const at = channelsLast ? (b * h * w + i) * C + c : (b * C + c) * h * w + i;
        if (y.data[at] !== 0) throw new Error(`${name} (${m.constructor.name}) left ${y.data[at]} at a masked position`);
      }
      seen.push(m.constructor.name);
      return y;
    };
  }
}

for (const [label, make, norm] of [
  ['ResNet basic', () => tinyResNet('basic'), 'bn'],
  ['ResNet bottleneck', () => tinyResNet('bottleneck'), 'bn'],
  ['ConvNeXt', tinyConvNeXt, 'ln'],
] as const) {
  test(`${label}: masked positions are exactly 0 after every sparse layer, on random masks`, () => {
    manualSeed(3);
    const spark = new SparK(make(), { inputSize: 64, decoderWidth: 32, densifyNorm: norm });
    const seen: string[] = [];
    watchSparseOutputs(spark, seen);
    for (const ratio of [0.25, 0.6, 0.75]) {
      const active = randomActive(2, 2, 2, visibleCount(2, 2, ratio), new Generator(Math.round(ratio * 100)));
      spark.forward(randn([2, 3, 64, 64]), { active }).loss.backward();
    }
    assert.ok(seen.length > 10, `checked ${seen.length} sparse layer outputs`);
  });
}

test('the reconstruction gets no gradient at visible patches, and gradient at every masked one', () => {
  const rec = randn([2, 4, 12], { dtype: 'float64', requiresGrad: true });
  const target = randn([2, 4, 12], { dtype: 'float64' });
  const active = tensor([1, 0, 0, 1, 0, 1, 1, 1], [2, 1, 2, 2], { dtype: 'bool' });
  maskedPatchLoss(rec, target, active).backward();
  const g = rec.grad!.data as Float64Array;
  for (let patch = 0; patch < 8; patch++) {
    const visible = (active.data as Uint8Array)[patch] === 1;
    const row = g.slice(patch * 12, patch * 12 + 12);
    if (visible) assert.ok(row.every((v) => v === 0), `visible patch ${patch} got gradient`);
    else assert.ok(row.some((v) => v !== 0), `masked patch ${patch} got none`);
  }
});

test('mask tokens receive gradient only when something is masked, and it matches central differences', () => {
  manualSeed(5);
  const spark = new SparK(tinyResNet('basic'), { inputSize: 64, decoderWidth: 32 }).to('float64');
  const x = randn([2, 3, 64, 64], { dtype: 'float64' });
  const active = tensor([1, 0, 0, 1, 1, 1, 0, 1], [2, 1, 2, 2], { dtype: 'bool' });
  const token = spark.mask_tokens[0];
  gradcheck(() => spark.forward(x, { active }).loss, [token], { atol: 1e-7, rtol: 1e-5 });
  const allVisible = tensor([1, 1, 1, 1, 1, 1, 1, 1], [2, 1, 2, 2], { dtype: 'bool' });
  spark.zeroGrad();
  spark.forward(x, { active: allVisible }).loss.backward();
  for (const t of spark.mask_tokens) assert.ok(!t.grad || (t.grad.data as Float64Array).every((v) => v === 0));
});

test('pictures: masked = input at visible patches and 0 elsewhere; recOrInp = input at visible patches', () => {
  manualSeed(6);
  const spark = new SparK(tinyConvNeXt(), { inputSize: [64, 96], decoderWidth: 32, densifyNorm: 'ln' });
  const x = randn([1, 3, 64, 96]);
  const out = spark.forward(x);
  assert.equal(out.activeB1ff.shape, [1, 1, 2, 3]);
  const a = out.activeB1ff.data as Uint8Array;
  for (let c = 0; c < 3; c++) for (let y = 0; y < 64; y++) for (let xx = 0; xx < 96; xx++) {
    const i = (c * 64 + y) * 96 + xx;
    const visible = a[Math.floor(y / 32) * 3 + Math.floor(xx / 32)] === 1;
    assert.is(out.masked.data[i], visible ? x.data[i] : 0);
    if (visible) assert.is(out.recOrInp.data[i], x.data[i]);
  }
  assert.ok(Number.isFinite(out.loss.item()));
});

test('patchify orders each patch (row, column, channel) and unpatchify inverts it', () => {
  const x = randn([2, 3, 4, 6], { dtype: 'float64' });
  const p = patchify(x, 2);
  assert.equal(p.shape, [2, 6, 12]);
  // patch (0,1) of image 0: pixel (row 0, col 1) of the patch, channel 2
  assert.is(p.data[1 * 12 + (0 * 2 + 1) * 3 + 2], x.data[(2 * 4 + 0) * 6 + 3]);
  assert.equal(unpatchify(p, 2, 2, 3).toArray(), x.toArray());
});

test('state dict: official keys; densify proj 1×1 at the coarsest map, 3×3 after, Identity when widths agree', () => {
  const spark = new SparK(models.convnext({ depths: [1, 1, 1, 1], dims: [8, 16, 24, 32] }), { inputSize: 64, decoderWidth: 32, densifyNorm: 'ln' });
  const sd = spark.stateDict();
  assert.ok(!('densify_projs.0.weight' in sd), 'coarsest encoder width = decoder width gives Identity');
  assert.equal(sd['densify_projs.1.weight'].shape, [16, 24, 3, 3]);
  assert.equal(sd['mask_tokens.0'].shape, [1, 32, 1, 1]);
  assert.ok('sparse_encoder.sp_cnn.stages.0.0.gamma' in sd);
  assert.ok('densify_norms.3.weight' in sd && !('densify_norms.3.running_mean' in sd));
  const r = new SparK(tinyResNet('bottleneck'), { inputSize: 64, decoderWidth: 32 });
  const rsd = r.stateDict();
  assert.equal(rsd['densify_projs.0.weight'].shape, [32, 64, 1, 1]);
  assert.equal(rsd['sparse_encoder.sp_cnn.layer1.0.bn3.num_batches_tracked'].dtype, 'int64');
  assert.equal(Object.keys(r.encoderStateDict()).slice(0, 2), ['conv1.weight', 'bn1.weight']);
  const tokens = rsd['mask_tokens.1'].data as Float32Array;
  assert.ok(tokens.every((v) => Math.abs(v) <= 0.02), 'mask tokens are truncated to [-0.02, 0.02]');
});

test('loadStateDict accepts an official dict with its deprecated buffers, strictly', () => {
  const a = new SparK(tinyResNet('basic'), { inputSize: 64, decoderWidth: 32 });
  const b = new SparK(tinyResNet('basic'), { inputSize: 64, decoderWidth: 32 });
  const official = { ...a.stateDict(), imn_m: randn([1, 3, 1, 1]), imn_s: randn([1, 3, 1, 1]), norm_black: randn([1, 3, 64, 64]) };
  b.loadStateDict(official, { strict: true });
  assert.equal(b.mask_tokens[2].toArray(), a.mask_tokens[2].toArray());
  assert.throws(() => b.loadStateDict({ ...official, extra: randn([1]) }), /unexpected keys: extra/);
});

test('errors: image shape, indivisible size, decoder width, mask shape and values, too few visible cells', () => {
  const enc = tinyResNet('basic');
  assert.throws(() => new SparK(tinyResNet('basic'), { inputSize: 60 }), /inputSize 60x60 is not divisible by the encoder's downsample ratio 32/);
  assert.throws(() => new SparK(tinyResNet('basic'), { inputSize: 64, decoderWidth: 16 }), /decoderWidth must be an integer of at least 32, got 16/);
  const spark = new SparK(enc, { inputSize: 64, decoderWidth: 32 });
  assert.throws(() => spark.forward(randn([2, 3, 32, 32])), /images must be \(B, 3, 64, 64\), got \[2, 3, 32, 32\]/);
  assert.throws(() => spark.forward(randn([2, 3, 64, 64]), { active: randn([2, 1, 3, 3]) }), /active must have shape \[2, 1, 2, 2\]/);
  assert.throws(() => spark.forward(randn([1, 3, 64, 64]), { active: tensor([2, 0, 0, 0], [1, 1, 2, 2]) }), /only 0\/1/);
  assert.throws(() => spark.forward(randn([1, 3, 64, 64]), { active: tensor([1, 0, 0, 0], [1, 1, 2, 2], { dtype: 'bool' }) }), /batch × visible cells must exceed 1 in train mode/);
  spark.eval();
  noGrad(() => spark.forward(randn([1, 3, 64, 64]), { active: tensor([1, 0, 0, 0], [1, 1, 2, 2], { dtype: 'bool' }) }));
});

test("a user's own CNN is made sparse: its conv, BN, pools and global pooling", () => {
  class Tiny extends nn.Module implements HierarchicalEncoder {
    stem = new nn.Conv2d(3, 4, 3, { stride: 2, padding: 1 });
    bn = new nn.BatchNorm2d(4);
    pool = new nn.MaxPool2d({ kernelSize: 2 });
    gap = new nn.AdaptiveAvgPool2d(1);
    readonly downsampleRatio = 4;
    readonly featureMapChannels = [4, 4];
    forwardFeatures(x: Tensor, ctx?: SparseContext): Tensor[] {
      const a = this.bn.forward(this.stem.forward(x, ctx), ctx).relu();
      const b = this.pool.forward(a, ctx);
      return [a, b.add(this.gap.forward(b, ctx))];
    }
  }
  const net = sparsify(new Tiny());
  assert.ok(net.stem instanceof SparseConv2d && net.bn instanceof SparseBatchNorm2d && net.pool instanceof SparseMaxPool2d);
  const ctx = new SparseContext(tensor([1, 0, 0, 1], [1, 1, 2, 2], { dtype: 'bool' }));
  const x = randn([1, 3, 8, 8]);
  const [, b] = net.forwardFeatures(x, ctx);
  const pooled = net.gap.forward(net.pool.forward(net.bn.forward(net.stem.forward(x, ctx), ctx).relu(), ctx), ctx);
  const full = net.pool.forward(net.bn.forward(net.stem.forward(x, ctx), ctx).relu(), ctx);
  // masked mean: Σ over the 2 visible cells / 2, not / 4
  const c0 = (full.data[0] as number) + (full.data[3] as number);
  assert.ok(Math.abs((pooled.data[0] as number) - c0 / 2) < 1e-6);
  assert.equal(b.shape, [1, 4, 2, 2]);
});

/** Two SparK models with identical weights, one per implementation. */
function twins(make: () => HierarchicalEncoder, norm: 'bn' | 'ln', inputSize: [number, number], seed: number): [SparK, SparK] {
  manualSeed(seed);
  const masked = new SparK(make(), { inputSize, decoderWidth: 32, densifyNorm: norm, sparseImpl: 'masked' }).to('float64');
  const active = new SparK(make(), { inputSize, decoderWidth: 32, densifyNorm: norm, sparseImpl: 'active' }).to('float64');
  active.loadStateDict(masked.stateDict());
  return [masked, active];
}

function maxRelDiff(a: Tensor, b: Tensor): number {
  let scale = 1e-300, diff = 0;
  for (let i = 0; i < a.size; i++) {
    scale = Math.max(scale, Math.abs(Number(b.data[i])));
    diff = Math.max(diff, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  }
  return diff / scale;
}

for (const [label, make, norm] of [
  ['ResNet basic', () => tinyResNet('basic'), 'bn'],
  ['ResNet bottleneck', () => tinyResNet('bottleneck'), 'bn'],
  ['ConvNeXt', tinyConvNeXt, 'ln'],
] as const) {
  test(`${label}: the active-site implementation equals the dense-masked one (loss, pictures, gradients, buffers)`, () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.constantFrom<[number, number]>([64, 64], [64, 96], [96, 64]), fc.double({ min: 0.2, max: 0.8, noNaN: true }), fc.boolean(), fc.nat(1000), (B, size, ratio, train, seed) => {
      const [masked, active] = twins(make, norm, size, seed);
      const [fh, fw] = [size[0] / 32, size[1] / 32];
      let keep = visibleCount(fh, fw, ratio);
      if (B * keep < 2) keep = Math.min(fh * fw, 2);
      const mask = randomActive(B, fh, fw, keep, new Generator(seed));
      const x = randn([B, 3, ...size], { dtype: 'float64', generator: new Generator(seed + 1) });
      for (const m of [masked, active]) m.train(train);
      const outs = [masked, active].map((m) => {
        const o = m.forward(x, { active: mask });
        if (train) o.loss.backward();
        return o;
      });
      const tol = 1e-11;
      assert.ok(maxRelDiff(outs[1].loss, outs[0].loss) < tol, 'loss');
      assert.ok(maxRelDiff(outs[1].recOrInp, outs[0].recOrInp) < tol, 'recOrInp');
      assert.ok(maxRelDiff(outs[1].masked, outs[0].masked) === 0, 'masked');
      if (train) {
        const ga = new Map(active.namedParameters()), gm = masked.namedParameters();
        for (const [name, p] of gm) {
          const q = ga.get(name)!;
          if (!p.grad) { assert.ok(!q.grad || (q.grad.data as Float64Array).every((v) => v === 0), name); continue; }
          assert.ok(maxRelDiff(q.grad!, p.grad) < 1e-9, `grad ${name}: ${maxRelDiff(q.grad!, p.grad)}`);
        }
      }
      const ba = new Map(active.namedBuffers());
      for (const [name, b] of masked.namedBuffers()) assert.ok(maxRelDiff(ba.get(name)!, b) < tol, `buffer ${name}`);
    }), { numRuns: 8 });
  });
}

test.run();
