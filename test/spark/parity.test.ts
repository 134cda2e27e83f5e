/**
 * SparK parity with the official PyTorch code: sparkts's SparK (dense-masked reference implementation) against
 * test/fixtures/gen_spark.py, a statement-by-statement transcription of keyu-tian/SparK's pretrain/{encoder,
 * decoder,spark,models/convnext,models/resnet}.py (checked by running the official files themselves, see its
 * docstring), through the fixtures it wrote in float64 (CI only reads the committed files in test/fixtures/spark/;
 * their format is described in that script).
 *
 * Per configuration (the CASES table mirrors CONFIGS in gen_spark.py; each file's `config` metadata must agree) and
 * per mode (train, and eval where the fixture has it):
 *   build the encoder + SparK with the same options, cast to the dtype, loadStateDict(strict) with the PyTorch state
 *   dict (official keys; the deprecated imn_m / imn_s / norm_black are in resnet_basic and must be skipped), set the
 *   mode, run forward(x, { active }) with the fixture's hand-written mask, loss.backward(), then compare
 *     the loss; the pictures inp (= x), masked (= x at visible pixels, 0 elsewhere: derived from the input and the
 *     mask, which gen_spark.py asserts PyTorch produced) and recOrInp (the input at visible pixels, exactly; the
 *     reference everywhere); every parameter gradient; every BN buffer after the forward (train: the references,
 *     num_batches_tracked exactly 8; eval: unchanged, exactly)
 *   in float64 within F64_TOL, and in float32 (weights and input cast; both are exact in float32) within the
 *   float32 tolerances of spark-spec section 15.9, each relative to the reference tensor's largest magnitude.
 *   Large references (pictures, the big decoder weight gradients) are stored as every k-th element of their
 *   row-major flattening (key suffix `.every<k>`); they are compared on those elements.
 * Key for key: the SparK stateDict() key set equals the PyTorch state dict's (order-insensitive; minus the
 * deprecated buffers), with equal shapes and int64 num_batches_tracked.
 *
 * Set SPARK_REPORT=1 to print the worst error of each quantity. Run: npx uvu -r tsx test/spark parity
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/tensor.ts';
import type { FloatDType } from '../../src/tensor/dtype.ts';
import * as io from '../../src/io/index.ts';
import { loadSafetensors, loadSafetensorsMetadata } from '../../src/io/index.ts';
import { resnet, convnext, type ResNetOptions, type ConvNeXtOptions } from '../../models/index.ts';
import { SparK, type SparKOptions, type SparseImpl } from '../../models/spark/index.ts';

/**
 * float64: both sides compute in float64 from identical weights and inputs and differ only in the order of
 * operations (summation order in convs, fused vs composed norms): ~1e-14 relative to the largest magnitude here.
 * 1e-10 is far above that and far below what a wrong formula, index, stride, mask or name makes (≥1e-4).
 */
const F64_TOL = 1e-10;
/**
 * float32 against the float64 reference (spark-spec section 15.9, relative to each tensor's largest magnitude).
 * gen_spark.py prints a float32 PyTorch run of the same fixtures against the same references for scale.
 */
const F32_TOL = { loss: 1e-5, pictures: 1e-4, gradients: 1e-3, buffers: 1e-5 };

const DIR = fileURLToPath(new URL('../fixtures/spark/', import.meta.url));
const PREFIX = '__ref__.';
const REPORT = !!process.env.SPARK_REPORT;
const DEPRECATED = ['imn_m', 'imn_s', 'norm_black'];

type Mode = 'train' | 'eval';
type Quantity = keyof typeof F32_TOL;
type EncoderConfig = ({ family: 'resnet' } & ResNetOptions) | ({ family: 'convnext' } & ConvNeXtOptions);
interface SparkConfig {
  inputSize: number | [number, number];
  maskRatio: number;
  decoderWidth: number;
  densifyNorm: 'bn' | 'ln';
}
interface Case {
  name: string;
  encoder: EncoderConfig;
  spark: SparkConfig;
  modes: Mode[];
  /** densify_projs.0 is Identity (the last encoder width equals the decoder width) */
  identityProj?: boolean;
  /** checks ("<mode> <dtype>") skipped because of a known sparkts mismatch, with the reason */
  known?: Record<string, string>;
}

/** The configurations of gen_spark.py (CONFIGS), in its order. */
const CASES: Case[] = [
  {
    name: 'resnet_basic',
    encoder: { family: 'resnet', block: 'basic', layers: [1, 1, 1, 1], widths: [4, 6, 8, 10] },
    spark: { inputSize: 64, maskRatio: 0.6, decoderWidth: 32, densifyNorm: 'bn' },
    modes: ['train', 'eval'],
  },
  {
    // stage 4 has 8·4 = 32 channels = the decoder width: densify_projs.0 is Identity; unequal visible counts per image
    name: 'resnet_bottleneck',
    encoder: { family: 'resnet', block: 'bottleneck', layers: [1, 1, 1, 1], widths: [2, 3, 4, 8] },
    spark: { inputSize: 64, maskRatio: 0.6, decoderWidth: 32, densifyNorm: 'bn' },
    modes: ['train', 'eval'],
    identityProj: true,
  },
  {
    name: 'convnext',
    encoder: { family: 'convnext', depths: [1, 1, 2, 1], dims: [4, 6, 8, 12], layerScaleInit: 0.5 },
    spark: { inputSize: 64, maskRatio: 0.6, decoderWidth: 32, densifyNorm: 'ln' },
    modes: ['train', 'eval'],
  },
  {
    // 64×96: a 2×3 patch grid
    name: 'convnext_rect',
    encoder: { family: 'convnext', depths: [2, 1, 1, 1], dims: [4, 6, 8, 12], layerScaleInit: 0.5 },
    spark: { inputSize: [64, 96], maskRatio: 0.6, decoderWidth: 32, densifyNorm: 'ln' },
    modes: ['train'],
  },
];

function buildSpark(c: Case, sparseImpl: SparseImpl = 'active'): SparK {
  const { family, ...options } = c.encoder;
  const encoder = family === 'resnet' ? resnet(options as ResNetOptions) : convnext(options as ConvNeXtOptions);
  const spark: SparKOptions = { ...c.spark, sparseImpl };
  return new SparK(encoder, spark);
}

// ------------------------------------------------------------------------------------------ fixtures

interface Fixture {
  /** the PyTorch state dict (official keys) */
  state: Record<string, Tensor>;
  /** reference entries without the prefix: input_u8, active_u8, <mode>.loss, <mode>.grad.<key>[.every<k>], … */
  ref: Record<string, Tensor>;
  metadata: Record<string, string>;
  stride: number;
}

const cache = new Map<string, Fixture>();

function loadFixture(c: Case): Fixture {
  const hit = cache.get(c.name);
  if (hit) return hit;
  const path = join(DIR, `${c.name}.safetensors`);
  const state: Record<string, Tensor> = {};
  const ref: Record<string, Tensor> = {};
  const put = (all: Record<string, Tensor>) => {
    for (const [k, t] of Object.entries(all)) {
      if (k.startsWith(PREFIX)) ref[k.slice(PREFIX.length)] = t;
      else state[k] = t;
    }
  };
  put(loadSafetensors(path));
  for (const mode of c.modes) {
    const modePath = join(DIR, `${c.name}.${mode}.safetensors`);
    assert.ok(existsSync(modePath), `fixture ${c.name}.${mode}.safetensors exists`);
    put(loadSafetensors(modePath));
  }
  const metadata = loadSafetensorsMetadata(path);
  const fx = { state, ref, metadata, stride: Number(metadata.sample_stride) };
  cache.set(c.name, fx);
  return fx;
}

/** x = (input_u8 − 128) / 64, exact in both float types. */
function inputOf(fx: Fixture, dtype: FloatDType): Tensor {
  const u8 = fx.ref['input_u8'];
  assert.is(u8.dtype, 'uint8');
  const data = dtype === 'float64' ? new Float64Array(u8.size) : new Float32Array(u8.size);
  for (let i = 0; i < u8.size; i++) data[i] = (Number(u8.data[i]) - 128) / 64;
  return new Tensor(data, u8.shape, dtype);
}

/** The hand-written mask (B,1,fh,fw), uint8 0/1 (1 = visible). */
function activeOf(fx: Fixture): Tensor {
  const a = fx.ref['active_u8'];
  assert.is(a.dtype, 'uint8');
  return a;
}

/** Is pixel (b, y, x) of an H×W image visible: its patch's cell of the mask is 1. */
function pixelVisible(active: Tensor, H: number, W: number): (b: number, y: number, x: number) => boolean {
  const [, , fh, fw] = active.shape;
  const ph = H / fh, pw = W / fw;
  return (b, y, x) => Number(active.data[(b * fh + Math.floor(y / ph)) * fw + Math.floor(x / pw)]) === 1;
}

// ------------------------------------------------------------------------------------------ comparisons

/** Worst error per "<dtype> <quantity>" over all fixtures, for SPARK_REPORT. */
const worst = new Map<string, { err: number; where: string }>();

/**
 * max |got − ref| / max |ref| over the reference's elements, where the reference holds either the whole tensor or
 * every `stride`-th element of its flattening (NaN propagates; absolute when the reference is all zeros).
 */
function relErr(got: Tensor, ref: Tensor, stride: number, what: string): number {
  if (stride === 1) assert.equal([...got.shape], [...ref.shape], `${what}: shape`);
  else assert.is(ref.size, Math.ceil(got.size / stride), `${what}: ${ref.size} samples of ${got.size} at stride ${stride}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.size; i++) {
    const r = Number(ref.data[i]);
    const d = Math.abs(Number(got.data[i * stride]) - r);
    if (!(d <= diff)) diff = d;
    scale = Math.max(scale, Math.abs(r));
  }
  return scale > 0 ? diff / scale : diff;
}

function record(quantity: string, err: number, where: string): void {
  const w = worst.get(quantity);
  if (!w || !(err <= w.err)) worst.set(quantity, { err, where });
}

function check(dtype: FloatDType, quantity: Quantity, err: number, where: string): void {
  record(`${dtype} ${quantity}`, err, where);
  const tol = dtype === 'float64' ? F64_TOL : F32_TOL[quantity];
  assert.ok(err <= tol, `${where}: max relative error ${err.toExponential(2)} > ${tol}`);
}

/** The stored reference for `key`: the whole tensor, or every k-th element under `key.every<k>`. */
function refOf(fx: Fixture, key: string): { ref: Tensor; stride: number } {
  if (fx.ref[key]) return { ref: fx.ref[key], stride: 1 };
  const sampled = fx.ref[`${key}.every${fx.stride}`];
  if (!sampled) throw new Error(`fixture has no ${PREFIX}${key}`);
  return { ref: sampled, stride: fx.stride };
}

function compare(fx: Fixture, dtype: FloatDType, quantity: Quantity, got: Tensor, key: string, where: string): void {
  assert.is(got.dtype, dtype, `${where}: dtype`);
  const { ref, stride } = refOf(fx, key);
  check(dtype, quantity, relErr(got, ref, stride, where), where);
}

// ------------------------------------------------------------------------------------------ one run

function runParity(c: Case, mode: Mode, dtype: FloatDType, impl: SparseImpl): void {
  const fx = loadFixture(c);
  const tag = `${c.name} ${mode} [${dtype}, ${impl}]`;
  const spark = buildSpark(c, impl);
  if (dtype === 'float64') spark.to('float64');
  const loaded = spark.loadStateDict(fx.state, { strict: true });
  assert.equal(loaded, { missingKeys: [], unexpectedKeys: [] }, `${tag}: strict load`);
  assert.is(spark.lenKeep, Number(fx.metadata.len_keep), `${tag}: len_keep = round(fh·fw·(1 − maskRatio))`);
  if (mode === 'train') spark.train();
  else spark.eval();

  const x = inputOf(fx, dtype);
  const active = activeOf(fx);
  const out = spark.forward(x, { active });
  out.loss.backward();

  // the loss
  const lossRef = fx.ref[`${mode}.loss`];
  assert.is(out.loss.size, 1, `${tag}: scalar loss`);
  assert.is(out.loss.dtype, dtype, `${tag}: loss dtype`);
  check(dtype, 'loss', Math.abs(out.loss.item() - Number(lossRef.data[0])) / Math.abs(Number(lossRef.data[0])), `${tag} loss`);

  // the pictures
  const [B, C, H, W] = x.shape;
  assert.equal([...out.activeB1ff.shape], [...active.shape], `${tag}: activeB1ff shape`);
  assert.equal(Array.from(out.activeB1ff.data, Number), Array.from(active.data, Number), `${tag}: activeB1ff is the given mask`);
  const visible = pixelVisible(active, H, W);
  let inpErr = 0, maskedErr = 0, visibleErr = 0;
  for (let b = 0; b < B; b++) for (let ch = 0; ch < C; ch++) for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
    const i = ((b * C + ch) * H + y) * W + xx;
    const xi = Number(x.data[i]);
    inpErr = Math.max(inpErr, Math.abs(Number(out.inp.data[i]) - xi));
    const v = visible(b, y, xx);
    maskedErr = Math.max(maskedErr, Math.abs(Number(out.masked.data[i]) - (v ? xi : 0)));
    if (v) visibleErr = Math.max(visibleErr, Math.abs(Number(out.recOrInp.data[i]) - xi));
  }
  for (const [what, t] of [['inp', out.inp], ['masked', out.masked], ['recOrInp', out.recOrInp]] as const) {
    assert.equal([...t.shape], [B, C, H, W], `${tag}: ${what} shape`);
    assert.is(t.dtype, dtype, `${tag}: ${what} dtype`);
  }
  // inp and masked are copies / products with 0 and 1, and recOrInp shows the input at visible pixels: exact
  assert.is(inpErr, 0, `${tag}: inp is the input`);
  assert.is(maskedErr, 0, `${tag}: masked is the input at visible pixels, 0 at masked ones`);
  assert.is(visibleErr, 0, `${tag}: recOrInp is the input at visible pixels`);
  record(`${dtype} pictures`, 0, `${tag} inp/masked`);
  compare(fx, dtype, 'pictures', out.recOrInp, `${mode}.rec_or_inp`, `${tag} recOrInp`);

  // every parameter gradient
  const params = spark.namedParameters();
  const gradKeys = Object.keys(fx.ref).filter((k) => k.startsWith(`${mode}.grad.`))
    .map((k) => k.slice(`${mode}.grad.`.length).replace(new RegExp(`\\.every${fx.stride}$`), ''));
  assert.equal(params.map(([k]) => k).sort(), gradKeys.sort(), `${tag}: parameter names vs PyTorch named_parameters`);
  for (const [k, p] of params) {
    assert.ok(p.grad, `${tag}: ${k} has no gradient`);
    compare(fx, dtype, 'gradients', p.grad!, `${mode}.grad.${k}`, `${tag} grad ${k}`);
  }

  // every buffer after the forward
  const buffers = spark.namedBuffers();
  for (const [k, b] of buffers) {
    assert.ok(/\.(running_mean|running_var|num_batches_tracked)$/.test(k), `${tag}: unexpected buffer ${k}`);
    const stored = fx.state[k];
    if (mode === 'train') {
      const ref = fx.ref[`train.after.${k}`];
      assert.ok(ref, `${tag}: reference for buffer ${k}`);
      if (k.endsWith('num_batches_tracked')) {
        assert.is(b.dtype, 'int64', `${tag}: ${k} dtype`);
        assert.is(b.data[0], ref.data[0], `${tag}: ${k} after one train forward`);
        assert.is(b.data[0], 8n, `${tag}: ${k} counts the forward (7 → 8)`);
      } else {
        compare(fx, dtype, 'buffers', b, `train.after.${k}`, `${tag} after ${k}`);
      }
    } else {
      // eval: batch norm reads its running statistics and leaves them as loaded (exact in both float types)
      assert.ok(b.data.every((v, i) => Number(v) === Number(stored.data[i])), `${tag}: ${k} unchanged by an eval forward`);
    }
  }
  if (mode === 'train') {
    const afterKeys = Object.keys(fx.ref).filter((k) => k.startsWith('train.after.')).map((k) => k.slice(12));
    assert.equal(buffers.map(([k]) => k).sort(), afterKeys.sort(), `${tag}: buffer names vs PyTorch named_buffers`);
  }
}

// ------------------------------------------------------------------------------------------ the tests

test('fixture table matches gen_spark.py (metadata of every file)', () => {
  for (const c of CASES) {
    const fx = loadFixture(c);
    assert.equal(JSON.parse(fx.metadata.config), { encoder: c.encoder, spark: c.spark }, `${c.name}: config`);
    assert.is(fx.metadata.modes, c.modes.join(','), `${c.name}: modes`);
    assert.ok(Number.isInteger(fx.stride) && fx.stride > 1, `${c.name}: sample stride`);
    const [h, w] = typeof c.spark.inputSize === 'number' ? [c.spark.inputSize, c.spark.inputSize] : c.spark.inputSize;
    assert.equal(fx.ref['input_u8'].shape, [2, 3, h, w], `${c.name}: input`);
    assert.equal(fx.ref['active_u8'].shape, [2, 1, h / 32, w / 32], `${c.name}: mask`);
  }
  assert.ok(DEPRECATED.every((k) => k in loadFixture(CASES[0]).state), 'resnet_basic carries the deprecated buffers');
});

for (const c of CASES) {
  test(`${c.name}: SparK stateDict key set and shapes equal PyTorch's (order-insensitive)`, () => {
    const fx = loadFixture(c);
    const sd = buildSpark(c).stateDict();
    const want = Object.keys(fx.state).filter((k) => !DEPRECATED.includes(k));
    assert.equal(Object.keys(sd).sort(), want.sort());
    for (const [k, t] of Object.entries(sd)) {
      assert.equal([...t.shape], [...fx.state[k].shape], `${c.name}: shape of ${k}`);
      assert.is(t.dtype === 'int64', fx.state[k].dtype === 'int64', `${c.name}: ${k} int64 in both`);
    }
    // densify_projs.0 is Identity exactly when the last encoder width equals the decoder width (no keys), else a 1×1 conv
    assert.is('densify_projs.0.weight' in fx.state, !c.identityProj, `${c.name}: PyTorch densify_projs.0`);
    assert.is('densify_projs.0.weight' in sd, !c.identityProj, `${c.name}: sparkts densify_projs.0`);
    if (!c.identityProj) assert.equal([...sd['densify_projs.0.weight'].shape].slice(2), [1, 1], `${c.name}: 1×1 at i = 0`);
    assert.equal([...sd['densify_projs.1.weight'].shape].slice(2), [3, 3], `${c.name}: 3×3 at i ≥ 1`);
  });

  for (const mode of c.modes) {
    for (const dtype of ['float64', 'float32'] as const) {
      for (const impl of ['active', 'masked'] as const) {
        test(`${c.name} ${mode} [${dtype}, ${impl}]: loss, pictures, gradients, BN buffers vs PyTorch`, () => {
          const known = c.known?.[`${mode} ${dtype}`];
          if (known) {
            console.log(`  skipped ${c.name} ${mode} [${dtype}]: KNOWN MISMATCH: ${known}`);
            return;
          }
          runParity(c, mode, dtype, impl);
        });
      }
    }
  }
}

test('an official *_withdecoder_* checkpoint (torch.save of {module: state dict + config, ...}) loads strictly through io.loadTorch', () => {
  const c = CASES.find((k) => k.name === 'resnet_basic')!;
  const { tensors, extras } = io.stateDictFrom(io.loadTorch(join(DIR, 'resnet_basic_withdecoder.pth')));
  const spark = buildSpark(c);
  spark.loadStateDict(tensors, { strict: true });
  const fx = loadFixture(c);
  for (const [k, t] of Object.entries(spark.stateDict())) {
    const ref = fx.state[k];
    assert.equal(t.toArray(), ref.to(t.dtype).toArray(), k);
  }
  const ckpt = io.loadTorch(join(DIR, 'resnet_basic_withdecoder.pth')) as Record<string, unknown>;
  assert.is(ckpt.is_pretrain, true);
  assert.equal((extras as Record<string, unknown>).config, spark.officialConfig());
});

test.after(() => {
  if (!REPORT) return;
  console.log('\n  worst error relative to the largest magnitude, over all fixtures:');
  console.log(`    ${'quantity'.padEnd(20)} ${'worst'.padEnd(9)} tolerance  where`);
  for (const [q, { err, where }] of [...worst].sort()) {
    const [dtype, quantity] = q.split(' ') as [FloatDType, Quantity];
    const tol = dtype === 'float64' ? F64_TOL : F32_TOL[quantity];
    console.log(`    ${q.padEnd(20)} ${err.toExponential(2).padEnd(9)} ${tol.toExponential(0).padEnd(10)} ${where}`);
  }
});

test.run();
