/**
 * PyTorch parity of the models: sparkts's ResNet and ConvNeXt against PyTorch versions of timm 0.5.4's ResNet and
 * the official ConvNeXt V1, through fixtures that test/fixtures/gen_models.py wrote in float64 (CI only reads the
 * committed files in test/fixtures/models/; the fixture format is described in that script).
 *
 * Per configuration (the FIXTURES table mirrors CONFIGS in gen_models.py; the fixture's `config` metadata must agree):
 *   float64: build with the same options, .to('float64'), loadStateDict(strict) with the PyTorch state dict, then
 *     eval logits, train logits, every parameter gradient of (logits · gout).sum(), every BN buffer after that
 *     one train forward, and the four stage maps of forwardFeatures (train mode, from the same state), each within
 *     F64_TOL of the reference relative to its largest magnitude;
 *   float32: the same model in float32 (weights rounded on load), outputs within F32_OUT_TOL and gradients within
 *     F32_GRAD_TOL of the float64 reference;
 *   export: stateDict() → io.saveSafetensors (a temp dir) → io.loadSafetensors gives back the PyTorch keys (the
 *     file orders them as the reference writer does), dtypes (int64 num_batches_tracked) and values. That PyTorch loads such a file strictly is checked outside CI
 *     (test/fixtures/export_models.ts, then gen_models.py).
 * Key for key: the full presets' stateDict() against keys.json (PyTorch's ordered [key, shape] lists).
 *
 * Set PARITY_REPORT=1 to print the worst error of each quantity. Run: npx uvu -r tsx test/models parity
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/tensor.ts';
import { cast, mul } from '../../src/ops/elementwise.ts';
import { sum } from '../../src/ops/reduce.ts';
import { noGrad } from '../../src/autograd/mode.ts';
import * as io from '../../src/io/index.ts';
import { loadSafetensors, loadSafetensorsMetadata, saveSafetensors } from '../../src/io/index.ts';
import type { FloatDType } from '../../src/tensor/dtype.ts';
import {
  ResNet, ConvNeXt, resnet, convnext, resnet18, resnet50, convnextTiny, type ResNetOptions, type ConvNeXtOptions,
} from '../../models/index.ts';

/**
 * float64: both sides compute in float64 and differ only in the order of operations (summation order in convs,
 * batch statistics, fused vs composed norms): a few ulp per operation, ~1e-14 relative to the largest magnitude
 * after the few hundred terms of these small nets. 1e-10 is far above that and far below what a wrong formula,
 * index, stride or name makes (≥1e-3).
 */
const F64_TOL = 1e-10;
/**
 * float32 against the float64 reference, relative to the largest magnitude of each tensor: ~6e-8 rounding per
 * operation through a dozen layers with batch statistics gives ~1e-6 on outputs; gradients pass twice as many
 * operations, including the x − mean differences of the norms (spec §15.9: a faithful float32 PyTorch run stays
 * within 2e-7 / 8e-5). Outputs (logits, stage maps, BN buffers) 1e-4, gradients 1e-3.
 */
const F32_OUT_TOL = 1e-4;
const F32_GRAD_TOL = 1e-3;

const DIR = fileURLToPath(new URL('../fixtures/models/', import.meta.url));
const PREFIX = '__ref__.';
const REPORT = !!process.env.PARITY_REPORT;

type Config = ({ family: 'resnet' } & ResNetOptions) | ({ family: 'convnext' } & ConvNeXtOptions);
type Model = ResNet | ConvNeXt;

/** The configurations of gen_models.py (CONFIGS), in its order. */
const FIXTURES: { name: string; config: Config; known?: string }[] = [
  { name: 'resnet_basic', config: { family: 'resnet', block: 'basic', layers: [2, 1, 1, 1], widths: [4, 6, 10, 14], numClasses: 5 } },
  { name: 'resnet_bottleneck', config: { family: 'resnet', block: 'bottleneck', layers: [1, 2, 1, 1], widths: [2, 4, 6, 8], numClasses: 5 } },
  { name: 'resnet_small_input', config: { family: 'resnet', block: 'basic', layers: [1, 1, 1, 1], widths: [2, 4, 6, 8], numClasses: 0, smallInput: true } },
  { name: 'convnext', config: { family: 'convnext', depths: [1, 1, 2, 1], dims: [4, 6, 10, 12], numClasses: 5, layerScaleInit: 0.5 } },
  { name: 'convnext_small_input', config: { family: 'convnext', depths: [1, 1, 1, 1], dims: [4, 6, 8, 12], numClasses: 0, smallInput: true } },
];

function build(config: Config): Model {
  const { family, ...options } = config;
  return family === 'resnet' ? resnet(options as ResNetOptions) : convnext(options as ConvNeXtOptions);
}

// ------------------------------------------------------------------------------------------ helpers

interface Fixture {
  state: Record<string, Tensor>;
  ref: Record<string, Tensor>;
  metadata: Record<string, string>;
}

function loadFixture(name: string): Fixture {
  const path = join(DIR, `${name}.safetensors`);
  const all = loadSafetensors(path);
  const state: Record<string, Tensor> = {};
  const ref: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(all)) {
    if (k.startsWith(PREFIX)) ref[k.slice(PREFIX.length)] = t;
    else state[k] = t;
  }
  return { state, ref, metadata: loadSafetensorsMetadata(path) };
}

/** x = (input_u8 − 128) / 64, exact in both float types. */
function inputOf(fx: Fixture, dtype: FloatDType): Tensor {
  const u8 = fx.ref['input_u8'];
  assert.is(u8.dtype, 'uint8');
  const data = dtype === 'float64' ? new Float64Array(u8.size) : new Float32Array(u8.size);
  for (let i = 0; i < u8.size; i++) data[i] = (Number(u8.data[i]) - 128) / 64;
  return new Tensor(data, u8.shape, dtype);
}

function refOf(fx: Fixture, key: string): Tensor {
  const t = fx.ref[key];
  if (!t) throw new Error(`fixture has no ${PREFIX}${key}`);
  return t;
}

/** max |got − ref| / max |ref| (absolute when ref is all zeros), after checking the shapes agree. */
function relErr(got: Tensor, ref: Tensor, what: string): number {
  assert.equal([...got.shape], [...ref.shape], `${what}: shape`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.size; i++) {
    const r = Number(ref.data[i]);
    const d = Math.abs(Number(got.data[i]) - r);
    if (!(d <= diff)) diff = d; // NaN propagates
    scale = Math.max(scale, Math.abs(r));
  }
  return scale > 0 ? diff / scale : diff;
}

/** Worst error per "dtype quantity" over all fixtures, for PARITY_REPORT. */
const worst = new Map<string, { err: number; where: string }>();

function check(got: Tensor, ref: Tensor, tol: number, quantity: string, where: string): void {
  const err = relErr(got, ref, where);
  const w = worst.get(quantity);
  if (!w || !(err <= w.err)) worst.set(quantity, { err, where });
  assert.ok(err <= tol, `${where}: max relative error ${err.toExponential(2)} > ${tol}`);
}

function isBnBuffer(key: string): boolean {
  return /\.(running_mean|running_var|num_batches_tracked)$/.test(key);
}

/** Eval logits, train logits + gradients + buffers, then stage maps, each against the reference. */
function runParity(name: string, config: Config, fx: Fixture, dtype: FloatDType): void {
  const tolOut = dtype === 'float64' ? F64_TOL : F32_OUT_TOL;
  const tolGrad = dtype === 'float64' ? F64_TOL : F32_GRAD_TOL;
  const tag = `${name} [${dtype}]`;
  const model = build(config);
  if (dtype === 'float64') model.to('float64');
  const loaded = model.loadStateDict(fx.state, { strict: true });
  assert.equal(loaded, { missingKeys: [], unexpectedKeys: [] });
  const x = inputOf(fx, dtype);

  // eval mode first: it leaves the BN buffers as stored
  model.eval();
  const logitsEval = noGrad(() => model.forward(x));
  assert.is(logitsEval.dtype, dtype);
  check(logitsEval, refOf(fx, 'logits_eval'), tolOut, `${dtype} logits eval`, `${tag} logits_eval`);

  // train mode: logits, gradients of (logits · gout).sum(), BN buffers after the forward
  model.train();
  const logits = model.forward(x);
  check(logits, refOf(fx, 'logits_train'), tolOut, `${dtype} logits train`, `${tag} logits_train`);
  const gout = cast(refOf(fx, 'gout'), dtype);
  sum(mul(logits, gout)).backward();
  const params = model.namedParameters();
  const gradKeys = Object.keys(fx.ref).filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
  assert.equal(params.map(([k]) => k), gradKeys, `${tag}: parameter names (in order) vs PyTorch named_parameters`);
  for (const [k, p] of params) {
    assert.ok(p.grad, `${tag}: ${k} has no gradient`);
    assert.is(p.grad!.dtype, dtype, `${tag}: ${k} gradient dtype`);
    check(p.grad!, refOf(fx, `grad.${k}`), tolGrad, `${dtype} gradients`, `${tag} grad ${k}`);
  }
  const buffers = model.namedBuffers();
  const afterKeys = Object.keys(fx.ref).filter((k) => k.startsWith('after.')).map((k) => k.slice(6));
  assert.equal(buffers.map(([k]) => k), afterKeys, `${tag}: buffer names (in order) vs PyTorch named_buffers`);
  for (const [k, b] of buffers) {
    const ref = refOf(fx, `after.${k}`);
    if (k.endsWith('num_batches_tracked')) {
      assert.is(b.dtype, 'int64', `${tag}: ${k} dtype`);
      assert.is(b.data[0], ref.data[0], `${tag}: ${k} after one train forward`);
    } else {
      assert.ok(isBnBuffer(k), `${tag}: unexpected buffer ${k}`);
      check(b, ref, tolOut, `${dtype} BN buffers after train`, `${tag} after ${k}`);
    }
  }

  // the stage maps, train mode, from the stored state again (loading resets the buffers)
  model.loadStateDict(fx.state);
  model.train();
  const feats = noGrad(() => model.forwardFeatures(x));
  assert.is(feats.length, 4);
  feats.forEach((f, i) => check(f, refOf(fx, `feat.${i}`), tolOut, `${dtype} stage maps`, `${tag} feat.${i}`));
}

// ------------------------------------------------------------------------------------------ the fixtures

test('fixture table matches gen_models.py (metadata config of every file)', () => {
  for (const { name, config } of FIXTURES) {
    const fx = loadFixture(name);
    assert.equal(JSON.parse(fx.metadata.config), config, `${name}: config`);
    assert.ok(fx.ref['input_u8'] && fx.ref['gout'], `${name}: reference entries`);
  }
});

for (const { name, config, known } of FIXTURES) {
  test(`${name}: state dict keys, order and dtypes equal PyTorch's`, () => {
    const fx = loadFixture(name);
    const sd = build(config).stateDict();
    assert.equal(Object.keys(sd), Object.keys(fx.state));
    for (const [k, t] of Object.entries(sd)) {
      assert.equal([...t.shape], [...fx.state[k].shape], `${name}: shape of ${k}`);
      assert.is(t.dtype === 'int64', fx.state[k].dtype === 'int64', `${name}: ${k} int64 in both`);
    }
  });

  for (const dtype of ['float64', 'float32'] as const) {
    test(`${name}: ${dtype} eval/train logits, gradients, BN buffers, stage maps vs PyTorch`, () => {
      if (known) {
        console.log(`  skipped ${name} [${dtype}]: KNOWN MISMATCH: ${known}`);
        return;
      }
      runParity(name, config, loadFixture(name), dtype);
    });
  }

  test(`${name}: stateDict → saveSafetensors → loadSafetensors keeps keys, dtypes, values`, () => {
    const fx = loadFixture(name);
    const model = build(config).to('float64');
    model.loadStateDict(fx.state);
    model.train();
    noGrad(() => model.forward(inputOf(fx, 'float64'))); // num_batches_tracked 7 → 8, running stats move
    const dir = mkdtempSync(join(tmpdir(), 'sparkts-parity-'));
    try {
      const path = join(dir, `${name}.from_sparkts.safetensors`);
      const sd = model.stateDict();
      saveSafetensors(path, sd);
      const back = loadSafetensors(path);
      // the file itself orders entries as the reference writer does (by dtype width, then name); the key set is PyTorch's
      assert.equal(Object.keys(back).sort(), Object.keys(fx.state).sort(), 'the PyTorch key set');
      for (const [k, t] of Object.entries(back)) {
        assert.is(t.dtype, k.endsWith('num_batches_tracked') ? 'int64' : 'float64', `${k} dtype`);
        assert.equal([...t.shape], [...sd[k].shape], `${k} shape`);
        assert.ok(t.data.every((v, i) => v === sd[k].data[i]), `${k} values`);
      }
      for (const [k, t] of Object.entries(back)) if (k.endsWith('num_batches_tracked')) assert.is(t.data[0], 8n, `${k} counts the train forward`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// ------------------------------------------------------------------------------------------ key for key

interface KeysJson {
  models: Record<string, [string, number[]][]>;
  numParameters: Record<string, number>;
}
const KEYS: KeysJson = JSON.parse(readFileSync(join(DIR, 'keys.json'), 'utf8'));

const PRESETS: [string, () => Model][] = [
  ['resnet18@1000', () => resnet18({ numClasses: 1000 })],
  ['resnet18@0', () => resnet18()],
  ['resnet50@1000', () => resnet50({ numClasses: 1000 })],
  ['resnet50@0', () => resnet50()],
  ['convnext_tiny@1000', () => convnextTiny({ numClasses: 1000 })],
  ['convnext_tiny@0', () => convnextTiny()],
];

for (const [name, make] of PRESETS) {
  test(`${name}: stateDict equals the PyTorch state_dict key for key, in order, with equal shapes`, () => {
    const want = KEYS.models[name];
    assert.ok(want, `keys.json has ${name}`);
    const model = make();
    const got = Object.entries(model.stateDict()).map(([k, t]): [string, number[]] => [k, [...t.shape]]);
    const firstDiff = got.findIndex((g, i) => !want[i] || g[0] !== want[i][0] || g[1].join() !== want[i][1].join());
    assert.is(firstDiff, got.length === want.length ? -1 : Math.min(got.length, want.length),
      `first difference at ${firstDiff}: sparkts ${JSON.stringify(got[firstDiff])} vs PyTorch ${JSON.stringify(want[firstDiff])}`);
    assert.is(got.length, want.length, 'number of keys');
    assert.is(model.numParameters(), KEYS.numParameters[name], 'number of parameters');
    const shapesEqual = got.every((g, i) => g[1].join() === want[i][1].join());
    console.log(`  ${name}: ${got.length} keys, all equal in order: ${firstDiff === -1}, all shapes equal: ${shapesEqual}, ${model.numParameters()} parameters`);
  });
}

test.after(() => {
  if (!REPORT) return;
  console.log('\n  worst error relative to the largest magnitude, over all fixtures:');
  for (const [q, { err, where }] of [...worst].sort()) console.log(`    ${q.padEnd(34)} ${err.toExponential(2)}  (${where})`);
});

test('the same weights saved by torch.save load through io.loadTorch, strictly, to identical values', () => {
  for (const { name, config } of FIXTURES) {
    const fx = loadFixture(name);
    const fromPth = io.stateDictFrom(io.loadTorch(join(DIR, `${name}.pth`))).tensors;
    assert.equal(Object.keys(fromPth).sort(), Object.keys(fx.state).sort(), name);
    for (const [k, t] of Object.entries(fx.state)) {
      assert.is(fromPth[k].dtype, t.dtype, `${name} ${k}`);
      assert.equal(fromPth[k].toArray(), t.toArray(), `${name} ${k}`);
    }
    build(config).to('float64').loadStateDict(fromPth, { strict: true });
  }
});

test.run();
