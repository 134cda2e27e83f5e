/**
 * Parameter groups: spark-spec §8.3's no-decay rule on a real sparkts SparK model, and §9's layer-wise lr decay
 * ids on the real ResNet-50 / ConvNeXt-S parameter names.
 * The full-size models take seconds to build, so the layer-decay tests use same-depth twins with tiny widths
 * (names do not depend on widths); the ResNet-50 twin's names are checked against timm's resnet50 state-dict
 * keys in test/fixtures/models/keys.json, and the ConvNeXt twins' against the presets' construction order.
 * The expected ids below are written out from the spec's table, independently of the implementation.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Parameter } from '../../src/nn/module.ts';
import { Conv2d, ConvTranspose2d, BatchNorm2d } from '../../src/nn/layers.ts';
import { zeros, randn } from '../../src/tensor/create.ts';
import { Generator } from '../../src/tensor/random.ts';
import { resnet, convnext } from '../../models/index.ts';
import { SparK } from '../../models/spark/index.ts';
import {
  paramGroupsForSpark, noDecayGroups, layerDecayGroups, resnetLayerId, convnextLayerId, isNoDecay, LAMB,
  type NamedParamGroup,
} from '../../src/optim/index.ts';

/** name → [group name, lrScale, weightDecayScale] */
function membership(groups: NamedParamGroup[]): Map<string, [string, number, number]> {
  const out = new Map<string, [string, number, number]>();
  for (const g of groups) {
    assert.is(g.params.length, g.paramNames.length);
    for (const n of g.paramNames) {
      assert.not.ok(out.has(n), `${n} in two groups`);
      out.set(n, [g.name, g.lrScale, g.weightDecayScale]);
    }
  }
  return out;
}

const sparkModel = () => new SparK(resnet({ layers: [1, 1, 1, 1], widths: [8, 8, 16, 16] }), { inputSize: 64, decoderWidth: 32 });

test('SparK: mask tokens, biases and BN weights get no decay; conv weights decay (spec §8.3)', () => {
  const spark = sparkModel();
  const named = spark.namedParameters();
  const groups = paramGroupsForSpark(named);
  assert.equal(groups.map((g) => [g.name, g.weightDecayScale, g.lrScale]), [['decay', 1, 1], ['no_decay', 0, 1]]);
  const m = membership(groups);
  assert.is(m.size, named.length);   // the groups cover the whole SparK model
  for (const [, p] of named) assert.ok(groups.some((g) => g.params.includes(p)));

  const convWeights: string[] = [], bnWeights: string[] = [];
  for (const [prefix, mod] of spark.namedModules()) {
    if (mod instanceof Conv2d || mod instanceof ConvTranspose2d) convWeights.push(`${prefix}.weight`);
    if (mod instanceof BatchNorm2d && mod.weight) bnWeights.push(`${prefix}.weight`);
  }
  const maskTokens = named.map(([n]) => n).filter((n) => /^mask_tokens\.\d+$/.test(n));
  const biases = named.map(([n]) => n).filter((n) => n.endsWith('.bias'));
  assert.is(maskTokens.length, 4);
  assert.ok(bnWeights.some((n) => n.startsWith('sparse_encoder.')) && bnWeights.some((n) => n.startsWith('densify_norms.'))
    && bnWeights.some((n) => n.startsWith('dense_decoder.')));
  assert.ok(convWeights.length > 10 && biases.length > 10);
  for (const n of [...maskTokens, ...biases, ...bnWeights]) assert.equal(m.get(n), ['no_decay', 1, 0], n);
  for (const n of convWeights) assert.equal(m.get(n), ['decay', 1, 1], n);
  // nothing else is in the model
  assert.is(new Set([...maskTokens, ...biases, ...bnWeights, ...convWeights]).size, named.length);
  // mask tokens are 4-D: only their name puts them in no_decay
  for (const n of maskTokens) assert.is(named.find(([k]) => k === n)![1].shape.length, 4);
});

test('SparK: a LAMB step over the groups', () => {
  const spark = sparkModel();
  const named = spark.namedParameters();
  const before = named.map(([, p]) => p.data.slice());
  const opt = new LAMB(paramGroupsForSpark(named), { lr: 1e-3, weightDecay: 0, betas: [0.9, 0.95], maxGradNorm: 5 });
  opt.paramGroups[0].weightDecay = 0.04;
  const x = randn([2, 3, 64, 64], { generator: new Generator(1) });
  spark.forward(x).loss.backward();
  let sq = 0;
  for (const [, p] of named) if (p.grad) for (const g of p.grad.data as Float32Array) sq += g * g;
  opt.step();
  assert.ok(Math.abs(opt.globalGradNorm - Math.sqrt(sq)) <= 1e-12 * Math.sqrt(sq));
  let changed = 0;
  named.forEach(([, p], i) => { if (p.grad && p.data.some((v, j) => v !== before[i][j])) changed++; });
  assert.ok(changed > named.length / 2, `${changed} of ${named.length} parameters moved`);
  opt.zeroGrad();
  for (const [, p] of named) assert.is(p.grad, null);
});

test('noDecayGroups: generic rule without name keys; requiresGrad false is left out', () => {
  const w = new Parameter(zeros([2, 2])), tok = new Parameter(zeros([1, 2, 1, 1])), b = new Parameter(zeros([2]));
  const frozen = new Parameter(zeros([2, 2]), false);
  const named: [string, Parameter][] = [['mask_tokens.0', tok], ['fc.weight', w], ['fc.bias', b], ['frozen.weight', frozen]];
  assert.equal([...membership(noDecayGroups(named))], [['mask_tokens.0', ['decay', 1, 1]], ['fc.weight', ['decay', 1, 1]], ['fc.bias', ['no_decay', 1, 0]]]);
  assert.equal(membership(noDecayGroups(named, { extraNoDecay: ['mask_token'] })).get('mask_tokens.0'), ['no_decay', 1, 0]);
  assert.ok(isNoDecay('stages.0.0.gamma', zeros([4, 4])));
  assert.ok(isNoDecay('x.pos_embed', zeros([4, 4])) && isNoDecay('cls_token', zeros([1, 1, 4])));
  assert.not.ok(isNoDecay('x.weight', zeros([4, 4])));
});

// ---------------------------------------------------------------------------------------------- layer decay

const keysJson = JSON.parse(readFileSync(fileURLToPath(new URL('../fixtures/models/keys.json', import.meta.url)), 'utf8')) as {
  models: Record<string, [string, number[]][]>;
};
const isBuffer = (k: string) => /(running_mean|running_var|num_batches_tracked)$/.test(k);

/** §9's table, R50: stem 0, layer1 1, layer2 blocks 0–1 2 and 2–3 3, layer3 blocks 0–2 4 and 3–5 5, layer4 6, fc 7. */
function r50Expected(name: string): number {
  const m = /^layer(\d)\.(\d+)\./.exec(name);
  if (m) {
    const [s, b] = [Number(m[1]), Number(m[2])];
    return s === 1 ? 1 : s === 2 ? (b <= 1 ? 2 : 3) : s === 3 ? (b <= 2 ? 4 : 5) : 6;
  }
  return name.startsWith('fc.') ? 7 : 0;
}

test('layer decay, ResNet-50: ids and scales follow spec §9 (N = 6)', () => {
  const twin = resnet({ block: 'bottleneck', layers: [3, 4, 6, 3], widths: [1, 1, 1, 1], numClasses: 10 });
  const named = twin.namedParameters();
  const timmNames = keysJson.models['resnet50@1000'].map(([k]) => k).filter((k) => !isBuffer(k));
  assert.equal(named.map(([n]) => n), timmNames);   // these are resnet50's names

  const groups = layerDecayGroups(named, { model: 'resnet', decay: 0.7 });
  const m = membership(groups);
  assert.is(m.size, named.length);
  const seen = new Set<number>();
  for (const [name, p] of named) {
    const id = r50Expected(name);
    seen.add(id);
    assert.equal(resnetLayerId(name, { layer2Blocks: 4, layer3Blocks: 6 }), { layerId: id, scaleExp: 7 - id, numLayers: 6 }, name);
    const noWd = p.shape.length === 1 || name.endsWith('.bias');
    const [gname, lrScale, wdScale] = m.get(name)!;
    assert.is(gname, `layer${id}_${noWd ? 'no_decay' : 'decay'}`);
    assert.ok(Math.abs(lrScale - 0.7 ** (7 - id)) < 1e-15, `${name}: lrScale ${lrScale}`);
    assert.is(wdScale, noWd ? 0 : 1);
  }
  assert.equal([...seen].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.is(m.get('fc.weight')![1], 1);              // the head keeps the full lr
  assert.ok(Math.abs(m.get('conv1.weight')![1] - 0.7 ** 7) < 1e-16);
  // groups in order of first appearance: the stem's conv1 first
  assert.equal(groups.slice(0, 3).map((g) => g.name), ['layer0_decay', 'layer0_no_decay', 'layer1_decay']);
});

test('layer decay, ResNet-101/152/200 (official blocks per id) and the ResNet-18 extension', () => {
  const ids = (l2: number, l3: number, names: string[]) => names.map((n) => resnetLayerId(n, { layer2Blocks: l2, layer3Blocks: l3 }).layerId);
  // R101 (4, 23): blk (2, 3): layer3 ids 4..11, layer4 12, fc 13
  assert.equal(ids(4, 23, ['conv1.weight', 'layer1.2.conv1.weight', 'layer2.1.bn1.weight', 'layer2.2.conv1.weight', 'layer3.0.conv1.weight',
    'layer3.2.conv1.weight', 'layer3.3.conv1.weight', 'layer3.22.conv3.weight', 'layer4.0.conv1.weight', 'fc.bias']), [0, 1, 2, 3, 4, 4, 5, 11, 12, 13]);
  // R152 (8, 36): blk (4, 4): layer2 2..3, layer3 4..12, N 13
  assert.equal(ids(8, 36, ['layer2.3.conv1.weight', 'layer2.4.conv1.weight', 'layer3.35.conv1.weight', 'layer4.2.conv1.weight', 'fc.weight']), [2, 3, 12, 13, 14]);
  // R200 (24, 36): blk (4, 4): layer2 2..7, layer3 8..16, N 17
  assert.equal(ids(24, 36, ['layer2.23.conv1.weight', 'layer3.0.conv1.weight', 'layer3.35.conv1.weight', 'layer4.0.conv1.weight', 'fc.weight']), [7, 8, 16, 17, 18]);
  // ours: depths outside the official table use ceil(L/2) blocks per id. R18 (2, 2): layer2.0 2, layer2.1 3, …, N 6
  assert.equal(ids(2, 2, ['layer2.0.conv1.weight', 'layer2.1.conv1.weight', 'layer3.0.conv1.weight', 'layer3.1.conv1.weight', 'layer4.1.conv1.weight', 'fc.weight']), [2, 3, 4, 5, 6, 7]);
  // R34 has R50's (4, 6): the official entry applies
  assert.is(resnetLayerId('layer3.5.conv1.weight', { layer2Blocks: 4, layer3Blocks: 6 }).layerId, 5);
});

/** §9's table, ConvNeXt: stem 0, stages.0 1, downsample 1 / stages.1 2, downsample 2 3, stages.2 block k 3 + k//3, downsample 3 / stages.3 N, else N+1. */
function cnxExpected(name: string, N: number): number {
  const p = name.split('.');
  if (p[0] === 'downsample_layers') return [0, 2, 3, N][Number(p[1])];
  if (p[0] === 'stages') {
    const s = Number(p[1]);
    return s === 0 ? 1 : s === 1 ? 2 : s === 2 ? 3 + Math.floor(Number(p[2]) / 3) : N;
  }
  return N + 1;
}

for (const [label, depths, N] of [['ConvNeXt-S', [3, 3, 27, 3], 12], ['ConvNeXt-T', [3, 3, 9, 3], 6]] as const) {
  test(`layer decay, ${label}: ids and scales follow spec §9 (N = ${N})`, () => {
    const twin = convnext({ depths: [...depths], dims: [4, 4, 4, 4], numClasses: 10 });
    const named = twin.namedParameters();
    if (label === 'ConvNeXt-T') {
      const official = keysJson.models['convnext_tiny@1000'].map(([k]) => k);
      assert.equal(named.map(([n]) => n), official);   // the official ConvNeXt's names
    }
    assert.ok(named.some(([n]) => n === `stages.2.${depths[2] - 1}.gamma`) && named.some(([n]) => n === 'head.weight'));
    const m = membership(layerDecayGroups(named, { model: 'convnext', decay: 0.7 }));
    const seen = new Set<number>();
    for (const [name, p] of named) {
      const id = cnxExpected(name, N);
      seen.add(id);
      assert.equal(convnextLayerId(name, { stage2Blocks: depths[2] }), { layerId: id, scaleExp: N + 1 - id, numLayers: N }, name);
      const noWd = p.shape.length === 1 || name.endsWith('.bias') || name.includes('gamma');
      const [gname, lrScale, wdScale] = m.get(name)!;
      assert.is(gname, `layer${id}_${noWd ? 'no_decay' : 'decay'}`);
      assert.ok(Math.abs(lrScale - 0.7 ** (N + 1 - id)) < 1e-15);
      assert.is(wdScale, noWd ? 0 : 1);
    }
    assert.equal([...seen].sort((a, b) => a - b), Array.from({ length: N + 2 }, (_, i) => i));
    assert.is(m.get('stages.2.0.dwconv.weight')![0], 'layer3_decay');
    assert.is(m.get('stages.2.5.pwconv1.weight')![0], 'layer4_decay');
    assert.is(m.get('stages.1.0.gamma')![0], 'layer2_no_decay');
    assert.is(m.get('downsample_layers.3.1.weight')![0], `layer${N}_decay`);
  });
}

test('layer decay: prefix, explicit depths, and decay outside (0, 1)', () => {
  const twin = resnet({ block: 'bottleneck', layers: [3, 4, 6, 3], widths: [1, 1, 1, 1] });
  const named = twin.namedParameters();
  const prefixed = named.map(([n, p]) => [`sparse_encoder.sp_cnn.${n}`, p] as [string, Parameter]);
  const plain = membership(layerDecayGroups(named, { model: 'resnet', decay: 0.7 }));
  const withPrefix = membership(layerDecayGroups(prefixed, { model: 'resnet', decay: 0.7, prefix: 'sparse_encoder.sp_cnn.' }));
  for (const [n] of named) assert.equal(withPrefix.get(`sparse_encoder.sp_cnn.${n}`), plain.get(n));
  const explicit = membership(layerDecayGroups(named, { model: 'resnet', decay: 0.7, depths: [4, 6] }));
  assert.equal([...explicit], [...plain]);
  assert.throws(() => layerDecayGroups(prefixed, { model: 'resnet', decay: 0.7 }), /layer2/);
  // as officially: no layer scaling unless 0 < decay < 1
  for (const decay of [1, 0]) {
    assert.equal(layerDecayGroups(named, { model: 'resnet', decay }).map((g) => [g.name, g.lrScale]), [['decay', 1], ['no_decay', 1]]);
  }
});

test.run();
