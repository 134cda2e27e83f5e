/**
 * The browser example's model code, shared by the page (main.ts), the checkpoint script (make-checkpoint.ts)
 * and the test that checks the page against Node: the tiny SparK's shape, building it from checkpoint bytes,
 * turning an RGB image into the model's input, drawing a mask from a seed, and one eval-mode forward.
 *
 * Browser-safe on purpose: it imports only modules that touch no Node built-in at run time (the safetensors
 * byte parser, not src/io/index.ts, which reads files). What it leaves out: the DOM (main.ts draws) and any
 * choice of backend (the caller selects cpu or gpu before calling `reconstruct`).
 */
import { Tensor } from '../../src/tensor/tensor.ts';
import { Generator } from '../../src/tensor/random.ts';
import { noGrad } from '../../src/autograd/mode.ts';
import { parseSafetensors } from '../../src/io/safetensors.ts';
import { resnet } from '../../models/resnet.ts';
import { SparK } from '../../models/spark/spark.ts';
import { evalTransform, IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/transforms.ts';
import type { RgbImage } from '../../src/data/decode.ts';

/** The shape of the tiny SparK, stored in the checkpoint's `__metadata__.config` (JSON). */
export interface DemoConfig {
  /** basic-block ResNet stage widths and blocks per stage, 3×3 stride-1 stem (smallInput) */
  widths: number[];
  layers: number[];
  inputSize: number;
  maskRatio: number;
  decoderWidth: number;
}

/** Small enough that the float32 checkpoint stays near 1 MB: a quarter of resnet-tiny's widths' square. */
export const DEMO_CONFIG: DemoConfig = { widths: [8, 16, 32, 64], layers: [1, 1, 1, 1], inputSize: 32, maskRatio: 0.6, decoderWidth: 64 };

/** A fresh SparK of this shape; `generator` draws its training masks (the default generator if absent). */
export function buildSpark(config: DemoConfig, generator?: Generator): SparK {
  const encoder = resnet({ block: 'basic', layers: config.layers, widths: config.widths, smallInput: true });
  return new SparK(encoder, { inputSize: config.inputSize, maskRatio: config.maskRatio, decoderWidth: config.decoderWidth, densifyNorm: 'bn', generator });
}

/** The SparK a checkpoint holds (its config from the metadata, its weights loaded strictly), in eval mode. */
export function sparkFromCheckpoint(bytes: Uint8Array): { spark: SparK; config: DemoConfig; metadata: Record<string, string> } {
  const { tensors, metadata } = parseSafetensors(bytes);
  const meta = metadata ?? {};
  if (!meta.config) throw new Error('checkpoint: no __metadata__.config (write it with examples/browser/make-checkpoint.ts)');
  const config = JSON.parse(meta.config) as DemoConfig;
  const spark = buildSpark(config);
  const state: Record<string, Tensor> = {};
  for (const [name, raw] of Object.entries(tensors)) state[name] = new Tensor(raw.data, raw.shape, raw.dtype);
  spark.loadStateDict(state, { strict: true });
  spark.eval();
  return { spark, config, metadata: meta };
}

/**
 * The model's input from an 8-bit RGB image of any size: bicubic resize of the shorter side to `size` (PIL's
 * resampler), centre crop, ToTensor + ImageNet normalisation; (1, 3, size, size) float32.
 */
export function prepareImage(img: RgbImage, size: number): Tensor {
  const chw = evalTransform(size, 1)(img, new Generator(0));
  return new Tensor(chw.data, [1, 3, size, size], 'float32');
}

/** RGBA bytes (canvas ImageData order) to RGB, the alpha dropped as decodeImage does. */
export function rgbFromRgba(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    data[3 * p] = rgba[4 * p];
    data[3 * p + 1] = rgba[4 * p + 1];
    data[3 * p + 2] = rgba[4 * p + 2];
  }
  return { width, height, data };
}

/** The mask for `seed`: (1, 1, f, f) bool, 1 = visible, as SparK draws it. */
export function maskFromSeed(spark: SparK, seed: number): Tensor {
  return spark.randomMask(1, new Generator(seed));
}

export interface Reconstruction {
  /** (3, H, W) normalised: the input, the masked input, visible patches from the input and masked ones predicted */
  input: Float32Array;
  masked: Float32Array;
  reconstruction: Float32Array;
  /** the masked-patch loss of this image */
  loss: number;
  /** 1 = visible, f·f cells */
  mask: Uint8Array;
}

/** A float tensor's elements as a fresh Float32Array, in host memory (a device tensor is brought home). */
function floats(t: Tensor): Float32Array {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new Error(`expected a float tensor, got ${t.dtype}`);
  return Float32Array.from(t.data as Float32Array | Float64Array);
}

/** One eval-mode forward on whichever backend is selected; the results are brought home (`.data`). */
export function reconstruct(spark: SparK, inputB3HW: Tensor, activeB1ff: Tensor): Reconstruction {
  return noGrad(() => {
    const out = spark.forward(inputB3HW, { active: activeB1ff });
    return {
      input: floats(out.inp),
      masked: floats(out.masked),
      reconstruction: floats(out.recOrInp),
      loss: out.loss.item(),
      mask: Uint8Array.from(out.activeB1ff.data as Uint8Array),
    };
  });
}

/** (3, H, W) normalised floats to RGBA bytes for a canvas: x·std + mean, clamped to [0, 1], rounded. */
export function toRgba(chw: Float32Array, height: number, width: number): Uint8ClampedArray<ArrayBuffer> {
  const n = height * width;
  const out = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) out[4 * p + c] = Math.round(Math.min(1, Math.max(0, chw[c * n + p] * IMAGENET_STD[c] + IMAGENET_MEAN[c])) * 255);
    out[4 * p + 3] = 255;
  }
  return out;
}
