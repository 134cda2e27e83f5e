/**
 * Image transforms with torchvision's semantics on PIL images, over 8-bit RGB (HWC) and float CHW arrays.
 *
 * Resizing is PIL's convolution resampler (Pillow's Resample.c, as torchvision's Resize/RandomResizedCrop call
 * `img.resize(size, BICUBIC|BILINEAR)` on PIL images): separable, horizontal pass then vertical pass, a filter
 * whose support widens by the downscale factor (antialiasing), per-pixel weights normalised to sum 1 and turned
 * into 22-bit fixed point, each pass rounded and clipped to uint8. Bicubic is Keys' cubic with a = −0.5. The
 * arithmetic follows Pillow step for step, so outputs equal PIL's (the tests check the bytes against PIL 9.4).
 *
 * Randomness comes from a `Generator` passed in (the loader hands each sample its own), never a global.
 * torchvision draws from torch's generator; here the draws come from sparkts's xoshiro stream, so the crop
 * boxes follow torchvision's procedure but not its numbers.
 * Not here: colour jitter, AutoAugment/TrivialAugment, RandomErasing, Mixup (fine-tuning only, spec §9).
 */
import type { Generator } from '../tensor/random.ts';
import { checkImage, type RgbImage } from './decode.ts';

export type Interpolation = 'bicubic' | 'bilinear';

/** A float image, channels first (C, H, W), as ToTensor gives. */
export interface ChwImage {
  channels: number;
  height: number;
  width: number;
  data: Float32Array;
}

/** A crop box in torchvision's order: top row, left column, height, width. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

// ---------------------------------------------------------------------------------------------------------
// PIL's resampler
// ---------------------------------------------------------------------------------------------------------

interface Filter {
  support: number;
  fn: (x: number) => number;
}

/** Keys' cubic convolution, a = −0.5 (Pillow's bicubic_filter). */
function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  if (x < 1) return 1 - x;
  return 0;
}

const FILTERS: Record<Interpolation, Filter> = {
  bicubic: { support: 2, fn: bicubicFilter },
  bilinear: { support: 1, fn: bilinearFilter },
};

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  ksize: number;
  /** per output pixel: first input index and the number of taps */
  bounds: Int32Array;
  /** ksize fixed-point weights per output pixel */
  kk: Int32Array;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for the input range [in0, in1) mapped onto outSize pixels.
 * Output pixel xx has centre in0 + (xx + ½)·scale; input pixel x has centre x + ½. When downscaling the filter is
 * stretched by the scale factor, so every input pixel contributes (antialiasing).
 */
function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: Filter): Coeffs {
  const scale = (in1 - in0) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let ww = 0;
    let xmin = Math.trunc(center - support + 0.5); // C's (int) truncates toward zero
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      let w = x < xmax ? k[x] : 0;
      if (x < xmax && ww !== 0) w /= ww;
      // 22-bit fixed point, rounded half away from zero as (int)(±0.5 + w·2^22)
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Pillow's clip8: a fixed-point sum back to a byte. */
function clip8(v: number): number {
  if (v >= 1 << PRECISION_BITS << 8) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

const HALF = 1 << (PRECISION_BITS - 1);

/** Horizontal pass over rows [rowOffset, rowOffset + outH) of `src` (width srcW), output width outW. */
function resampleHorizontal(src: Uint8Array, srcW: number, rowOffset: number, outH: number, outW: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(outW * outH * 3);
  const { ksize, bounds, kk } = c;
  for (let yy = 0; yy < outH; yy++) {
    const rowBase = (yy + rowOffset) * srcW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2];
      const xmax = bounds[xx * 2 + 1];
      const kb = xx * ksize;
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let x = 0; x < xmax; x++) {
        const w = kk[kb + x];
        const p = rowBase + (x + xmin) * 3;
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
      }
      const o = (yy * outW + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/** Vertical pass: output row yy mixes `bounds` rows of `src` (width w). */
function resampleVertical(src: Uint8Array, w: number, outH: number, c: Coeffs, boundsShift: number): Uint8Array {
  const out = new Uint8Array(w * outH * 3);
  const { ksize, bounds, kk } = c;
  const rowLen = w * 3;
  // row-wise accumulation (contiguous reads); the sums are integers below 2^31, exact in doubles
  const acc = new Float64Array(rowLen);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2] - boundsShift;
    const ymax = bounds[yy * 2 + 1];
    const kb = yy * ksize;
    acc.fill(HALF);
    for (let y = 0; y < ymax; y++) {
      const wgt = kk[kb + y];
      const r = (y + ymin) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += src[r + i] * wgt;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]);
  }
  return out;
}

/**
 * Resize to exactly width × height, as PIL's `img.resize((width, height), BICUBIC|BILINEAR)`.
 * (torchvision's `Resize((h, w))` on a PIL image.)
 */
export function resizeTo(img: RgbImage, width: number, height: number, interpolation: Interpolation = 'bicubic'): RgbImage {
  checkImage(img, 'resize');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`resize: target size must be positive integers, got ${width}x${height}`);
  }
  const filter = FILTERS[interpolation];
  if (!filter) throw new Error(`resize: unknown interpolation '${String(interpolation)}' (bicubic or bilinear)`);
  const needH = width !== img.width;
  const needV = height !== img.height;
  if (!needH && !needV) return { width, height, data: img.data.slice() };
  const horiz = precomputeCoeffs(img.width, 0, img.width, width, filter);
  const vert = precomputeCoeffs(img.height, 0, img.height, height, filter);
  let data = img.data;
  let shift = 0;
  if (needH) {
    // only the rows the vertical pass will read
    const first = vert.bounds[0];
    const last = vert.bounds[height * 2 - 2] + vert.bounds[height * 2 - 1];
    data = resampleHorizontal(img.data, img.width, first, last - first, width, horiz);
    shift = first;
  }
  if (needV) data = resampleVertical(data, width, height, vert, shift);
  return { width, height, data };
}

/**
 * torchvision's Resize: `size` a number resizes the shorter side to it, keeping the aspect ratio (the longer
 * side is truncated: int(size·long/short)); `[h, w]` resizes to exactly that.
 */
export function resize(img: RgbImage, size: number | readonly [number, number], interpolation: Interpolation = 'bicubic'): RgbImage {
  if (typeof size === 'number') return resizeShorter(img, size, interpolation);
  return resizeTo(img, size[1], size[0], interpolation);
}

/** The output size of torchvision's Resize(int): shorter side `size`, longer side int(size·long/short). */
export function shorterSideSize(width: number, height: number, size: number): { width: number; height: number } {
  if (!Number.isInteger(size) || size <= 0) throw new Error(`resizeShorter: size must be a positive integer, got ${size}`);
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

export function resizeShorter(img: RgbImage, size: number, interpolation: Interpolation = 'bicubic'): RgbImage {
  checkImage(img, 'resizeShorter');
  const s = shorterSideSize(img.width, img.height, size);
  return resizeTo(img, s.width, s.height, interpolation);
}

// ---------------------------------------------------------------------------------------------------------
// Crops and flips
// ---------------------------------------------------------------------------------------------------------

/** torchvision F.crop / PIL crop: the box may reach outside the image; outside pixels are 0 (black). */
export function crop(img: RgbImage, box: CropBox): RgbImage {
  checkImage(img, 'crop');
  const { top, left, height, width } = box;
  if (![top, left, height, width].every(Number.isInteger) || height <= 0 || width <= 0) {
    throw new Error(`crop: bad box top=${top} left=${left} height=${height} width=${width}`);
  }
  const out = new Uint8Array(width * height * 3);
  const x0 = Math.max(0, left), x1 = Math.min(img.width, left + width);
  for (let y = 0; y < height; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= img.height || x1 <= x0) continue;
    out.set(img.data.subarray((sy * img.width + x0) * 3, (sy * img.width + x1) * 3), (y * width + (x0 - left)) * 3);
  }
  return { width, height, data: out };
}

/** torchvision F.resized_crop on a PIL image: crop, then resize to size ([h, w] or a square side). */
export function resizedCrop(img: RgbImage, box: CropBox, size: number | readonly [number, number], interpolation: Interpolation = 'bicubic'): RgbImage {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  return resizeTo(crop(img, box), w, h, interpolation);
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision CenterCrop: top = round((H − h)/2), left = round((W − w)/2) with Python's round; a crop larger than
 * the image is zero-padded first ((W−w)//2 on the left, the rest on the right; likewise top/bottom).
 */
export function centerCropBox(width: number, height: number, cropH: number, cropW: number): CropBox {
  if (cropW > width || cropH > height) {
    const padL = cropW > width ? Math.floor((cropW - width) / 2) : 0;
    const padT = cropH > height ? Math.floor((cropH - height) / 2) : 0;
    const padR = cropW > width ? Math.floor((cropW - width + 1) / 2) : 0;
    const padB = cropH > height ? Math.floor((cropH - height + 1) / 2) : 0;
    const inner = centerCropBox(width + padL + padR, height + padT + padB, cropH, cropW);
    return { top: inner.top - padT, left: inner.left - padL, height: cropH, width: cropW };
  }
  return { top: roundHalfEven((height - cropH) / 2), left: roundHalfEven((width - cropW) / 2), height: cropH, width: cropW };
}

export function centerCrop(img: RgbImage, size: number | readonly [number, number]): RgbImage {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  return crop(img, centerCropBox(img.width, img.height, h, w));
}

/** Mirror left–right. Works on RGB (HWC) and float CHW images. */
export function horizontalFlip(img: RgbImage): RgbImage;
export function horizontalFlip(img: ChwImage): ChwImage;
export function horizontalFlip(img: RgbImage | ChwImage): RgbImage | ChwImage {
  const { width: w, height: h } = img;
  if ('channels' in img) {
    const out = new Float32Array(img.data.length);
    for (let r = 0; r < img.channels * h; r++) {
      const b = r * w;
      for (let x = 0; x < w; x++) out[b + x] = img.data[b + w - 1 - x];
    }
    return { channels: img.channels, height: h, width: w, data: out };
  }
  checkImage(img, 'horizontalFlip');
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + (w - 1 - x)) * 3, d = (y * w + x) * 3;
      out[d] = img.data[s]; out[d + 1] = img.data[s + 1]; out[d + 2] = img.data[s + 2];
    }
  }
  return { width: w, height: h, data: out };
}

/** torchvision RandomHorizontalFlip: flips when a uniform draw is below p (one draw per call). */
export function randomHorizontalFlip(img: RgbImage, generator: Generator, p = 0.5): RgbImage {
  return generator.uniform() < p ? horizontalFlip(img) : img;
}

export interface RandomResizedCropOptions {
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
  interpolation?: Interpolation;
}

/**
 * torchvision RandomResizedCrop.get_params: up to 10 tries of an area fraction uniform in `scale` and an aspect
 * ratio log-uniform in `ratio` (w = round(√(A·r)), h = round(√(A/r)), Python rounding); the first box that fits
 * gets a uniform position. Otherwise the central crop of the whole image clamped to the ratio range.
 * torch draws these in float32 (uniform_ on a float tensor, log/exp of float tensors); the same roundings are
 * applied here so boundary cases behave alike.
 */
export function randomResizedCropParams(
  width: number, height: number, generator: Generator,
  scale: readonly [number, number] = [0.08, 1], ratio: readonly [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const f = Math.fround;
  const area = height * width;
  const logR0 = f(Math.log(f(ratio[0])));
  const logR1 = f(Math.log(f(ratio[1])));
  const s0 = f(scale[0]), s1 = f(scale[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * f(s0 + f(f(s1 - s0) * f(generator.uniform())));
    const aspect = f(Math.exp(f(logR0 + f(f(logR1 - logR0) * f(generator.uniform())))));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = generator.int(height - h + 1);
      const left = generator.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  // fallback: central crop
  const inRatio = width / height;
  const rMin = Math.min(ratio[0], ratio[1]), rMax = Math.max(ratio[0], ratio[1]);
  let w: number, h: number;
  if (inRatio < rMin) {
    w = width;
    h = roundHalfEven(w / rMin);
  } else if (inRatio > rMax) {
    h = height;
    w = roundHalfEven(h * rMax);
  } else {
    w = width;
    h = height;
  }
  // torchvision can round a side to 0 here for degenerate inputs (a 1-px side with ratio 2) and then fails in
  // the crop; keeping at least one pixel changes nothing else
  w = Math.max(1, w);
  h = Math.max(1, h);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** torchvision RandomResizedCrop(size, scale, ratio, interpolation) on a PIL image. Defaults are SparK's (§8.5). */
export function randomResizedCrop(
  img: RgbImage, size: number | readonly [number, number], options: RandomResizedCropOptions, generator: Generator,
): RgbImage {
  checkImage(img, 'randomResizedCrop');
  const box = randomResizedCropParams(img.width, img.height, generator, options.scale ?? [0.67, 1], options.ratio ?? [3 / 4, 4 / 3]);
  return resizedCrop(img, box, size, options.interpolation ?? 'bicubic');
}

// ---------------------------------------------------------------------------------------------------------
// To float and back
// ---------------------------------------------------------------------------------------------------------

/**
 * ToTensor then Normalize: CHW float32, (x/255 − mean)/std, with float32 rounding after each step as torch does
 * (x.float().div(255), then sub_(mean), div_(std)), so the values equal torchvision's bit for bit.
 */
export function toTensorNormalize(
  img: RgbImage, mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD,
): Float32Array {
  checkImage(img, 'toTensorNormalize');
  if (mean.length !== 3 || std.length !== 3) throw new Error('toTensorNormalize: mean and std need 3 entries');
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    // a table per channel: 256 possible inputs
    const m = Math.fround(mean[c]), s = Math.fround(std[c]);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    const base = c * n;
    for (let p = 0; p < n; p++) out[base + p] = lut[img.data[p * 3 + c]];
  }
  return out;
}

/**
 * The inverse for pictures: x·std + mean, then to bytes as torchvision's save_image does
 * (clamp to [0, 1], ·255, +0.5, truncate). `data` is CHW with 3 channels.
 */
export function denormalizeToImage(
  data: ArrayLike<number>, height: number, width: number,
  mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD,
): RgbImage {
  const n = width * height;
  if (data.length !== 3 * n) throw new Error(`denormalizeToImage: ${data.length} values are not 3x${height}x${width}`);
  const out = new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < n; p++) {
      let v = data[c * n + p] * std[c] + mean[c];
      v = v < 0 ? 0 : v > 1 ? 1 : Number.isNaN(v) ? 0 : v;
      out[p * 3 + c] = Math.floor(v * 255 + 0.5);
    }
  }
  return { width, height, data: out };
}

// ---------------------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------------------

/** One per-sample step on RGB images; `generator` is the sample's own. */
export type ImageStep = (img: RgbImage, generator: Generator) => RgbImage;
/** A full per-sample transform: RGB in, normalised CHW float out. */
export type Transform = (img: RgbImage, generator: Generator) => ChwImage;

/** Run the steps in order, then ToTensor + Normalize. */
export function composeTransform(
  steps: readonly ImageStep[], mean: readonly number[] = IMAGENET_MEAN, std: readonly number[] = IMAGENET_STD,
): Transform {
  return (img, generator) => {
    let cur = img;
    for (const step of steps) cur = step(cur, generator);
    return { channels: 3, height: cur.height, width: cur.width, data: toTensorNormalize(cur, mean, std) };
  };
}

/**
 * SparK's pretraining augmentation (spec §8.5): RandomResizedCrop(size, scale=(0.67, 1), ratio=(3/4, 4/3),
 * bicubic), RandomHorizontalFlip(0.5), ToTensor, Normalize(ImageNet mean/std). No colour jitter.
 */
export function pretrainTransform(size = 224, options: RandomResizedCropOptions = {}): Transform {
  const rrc: RandomResizedCropOptions = { scale: [0.67, 1], ratio: [3 / 4, 4 / 3], interpolation: 'bicubic', ...options };
  return composeTransform([
    (img, g) => randomResizedCrop(img, size, rrc, g),
    (img, g) => randomHorizontalFlip(img, g, 0.5),
  ]);
}

/**
 * The fine-tuning eval transform (spec §9, timm's transforms_imagenet_eval): bicubic resize of the shorter side
 * to floor(size / cropPct), center crop `size`, ToTensor, Normalize. Without `cropPct` SparK's rule applies:
 * 0.95 below 384 px, and at 384 px or more a plain bicubic resize to size × size with no crop.
 */
export function evalTransform(size = 224, cropPct?: number): Transform {
  if (cropPct === undefined && size >= 384) return composeTransform([(img) => resizeTo(img, size, size, 'bicubic')]);
  const pct = cropPct ?? 0.95;
  if (!(pct > 0 && pct <= 1)) throw new Error(`evalTransform: cropPct must be in (0, 1], got ${pct}`);
  const scaleSize = Math.floor(size / pct);
  return composeTransform([(img) => centerCrop(resizeShorter(img, scaleSize, 'bicubic'), size)]);
}
