// The SparK presets follow the official registry: encoder drop-path rates, decoder width, densify norms, and the
// parameter counts of the densify layers and decoder that spark-spec §3–4 gives (≈6.23M / ≈1.75M, ≈23.2M).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { models, randn } from '../../src/index.ts';

const count = (sd: [string, { size: number }][], prefix: string) => sd.filter(([k]) => k.startsWith(prefix)).reduce((n, [, p]) => n + p.size, 0);

test('spark.resnet50: drop path 0.05, width 768, BN densify; densify ≈ 6.23M, decoder ≈ 23.2M parameters', () => {
  const s = models.spark.resnet50();
  assert.equal([s.inputSize, s.maskRatio, s.dense_decoder.width, s.densifyNorm, s.lenKeep], [[224, 224], 0.6, 768, 'bn', 20]);
  const blocks = s.encoder as unknown as { layer4: { 2: { drop_path: { p: number } } } };
  assert.is(blocks.layer4[2].drop_path.p, 0.05);
  const params = s.namedParameters();
  assert.is(count(params, 'sparse_encoder.'), 23_508_032);
  const densify = count(params, 'densify_') + count(params, 'mask_tokens');
  assert.ok(Math.abs(densify / 1e6 - 6.23) < 0.005, `densify ${densify}`);
  assert.ok(Math.abs(count(params, 'dense_decoder.') / 1e6 - 23.2) < 0.05);
});

test('spark.convnextSmall: drop path 0.2 (float32 linspace), LN densify, Identity projection at the coarsest map', () => {
  const s = models.spark.convnextSmall();
  assert.is(s.densifyNorm, 'ln');
  assert.ok(!('densify_projs.0.weight' in s.stateDict()));
  const densify = count(s.namedParameters(), 'densify_') + count(s.namedParameters(), 'mask_tokens');
  assert.ok(Math.abs(densify / 1e6 - 1.75) < 0.005, `densify ${densify}`);
  const last = (s.encoder as unknown as { stages: { 3: { 2: { drop_path: { p: number } } } } }).stages[3][2].drop_path.p;
  assert.is(last, Math.fround(0.2));
});

test('small presets train on 32×32 images (4×4 patch grid)', () => {
  for (const s of [models.spark.resnet18Small({ decoderWidth: 64 }), models.spark.convnextAttoSmall({ decoderWidth: 64 })]) {
    assert.equal(s.grid, [4, 4]);
    const out = s.forward(randn([2, 3, 32, 32]));
    out.loss.backward();
    assert.ok(Number.isFinite(out.loss.item()));
  }
});

test.run();
