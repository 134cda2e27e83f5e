// Transforms: PIL's bicubic/bilinear resampling byte for byte (fixtures from gen_data.py with PIL 9.4),
// torchvision's RandomResizedCrop procedure (properties over random sizes and parameters), flips, crops,
// ToTensor+Normalize bit for bit against torch float32, and the pretraining/eval pipelines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Generator } from '../../src/tensor/random.ts';
import {
  decodeImage, resizeTo, resize, resizeShorter, crop, centerCrop, centerCropBox, horizontalFlip, randomHorizontalFlip,
  randomResizedCrop, randomResizedCropParams, roundHalfEven, toTensorNormalize, denormalizeToImage, pretrainTransform,
  evalTransform, type RgbImage, type Interpolation,
} from '../../src/data/index.ts';

const DIR = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'fixtures', 'data');
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as {
  resize: { file: string; filter: Interpolation; width: number; height: number; box: [number, number, number, number] | null }[];
};
const src = decodeImage(readFileSync(join(DIR, 'resize', 'src.png')));

function randomImage(w: number, h: number, seed: number): RgbImage {
  const g = new Generator(seed);
  return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, () => g.int(256)) };
}
const px = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

for (const fx of manifest.resize) {
  const what = fx.box ? `crop(${fx.box}).resize((${fx.width}, ${fx.height}), ${fx.filter})` : `resize((${fx.width}, ${fx.height}), ${fx.filter})`;
  test(`PIL ${what}: the same bytes`, () => {
    const input = fx.box ? crop(src, { left: fx.box[0], top: fx.box[1], width: fx.box[2] - fx.box[0], height: fx.box[3] - fx.box[1] }) : src;
    const out = resizeTo(input, fx.width, fx.height, fx.filter);
    const want = decodeImage(readFileSync(join(DIR, 'resize', fx.file)));
    let max = 0, n = 0;
    for (let i = 0; i < want.data.length; i++) {
      const d = Math.abs(out.data[i] - want.data[i]);
      if (d > max) max = d;
      if (d) n++;
    }
    // the brief allows ±1; the fixed-point arithmetic reproduces Pillow exactly, so hold it to 0
    assert.is(max, 0, `${fx.file}: ${n} bytes differ, by up to ${max}`);
  });
}

test('resize: identity size copies; constant images stay constant; bad sizes throw', () => {
  const img = randomImage(6, 4, 1);
  const same = resizeTo(img, 6, 4);
  assert.equal(same.data, img.data);
  assert.ok(same.data !== img.data);
  const flat: RgbImage = { width: 7, height: 5, data: new Uint8Array(105).fill(200) };
  for (const [w, h] of [[3, 2], [20, 11], [7, 1]]) {
    for (const f of ['bicubic', 'bilinear'] as const) assert.ok(resizeTo(flat, w, h, f).data.every((v) => v === 200));
  }
  assert.throws(() => resizeTo(img, 0, 3), /positive integers/);
  assert.throws(() => resizeTo(img, 2.5, 3), /positive integers/);
  assert.throws(() => resizeTo(img, 2, 3, 'lanczos' as Interpolation), /unknown interpolation/);
});

test("resizeShorter and resize(int) follow torchvision: shorter side to size, longer int(size*long/short)", () => {
  const img = randomImage(37, 29, 2);
  const r = resizeShorter(img, 16);
  assert.equal([r.width, r.height], [20, 16]); // int(16*37/29) = 20
  const t = resize({ width: 29, height: 37, data: img.data }, 16);
  assert.equal([t.width, t.height], [16, 20]);
  assert.equal([resize(img, [10, 12]).width, resize(img, [10, 12]).height], [12, 10]); // [h, w]
});

test('centerCrop: Python rounding of (H-h)/2 and zero padding when the crop is larger', () => {
  assert.equal(centerCropBox(37, 29, 16, 16), { top: 6, left: 10, height: 16, width: 16 }); // round(6.5)=6, round(10.5)=10
  assert.equal(centerCropBox(10, 10, 7, 7), { top: 2, left: 2, height: 7, width: 7 }); // round(1.5)=2
  const img = randomImage(5, 4, 3);
  const c = centerCrop(img, 3);
  assert.equal(px(c, 0, 0), px(img, 1, 0)); // top round(0.5)=0, left round(1)=1
  const big = centerCrop(img, [6, 8]); // pad 1 left / 2 right, 1 top / 1 bottom
  assert.equal([big.width, big.height], [8, 6]);
  assert.equal(px(big, 0, 0), [0, 0, 0]);
  assert.equal(px(big, 1, 1), px(img, 0, 0));
  assert.equal(px(big, 5, 4), px(img, 4, 3));
  assert.equal(px(big, 7, 5), [0, 0, 0]);
  assert.is(roundHalfEven(2.5), 2);
  assert.is(roundHalfEven(3.5), 4);
  assert.is(roundHalfEven(-0.5), -0);
  assert.is(roundHalfEven(2.4999), 2);
});

test('horizontalFlip mirrors columns (RGB and CHW) and is an involution', () => {
  const img = randomImage(5, 3, 4);
  const f = horizontalFlip(img);
  for (let y = 0; y < 3; y++) for (let x = 0; x < 5; x++) assert.equal(px(f, x, y), px(img, 4 - x, y));
  assert.equal(horizontalFlip(f).data, img.data);
  const chw = { channels: 3, height: 3, width: 5, data: toTensorNormalize(img) };
  assert.equal(horizontalFlip(chw).data, toTensorNormalize(f));
  // p = 0 never flips, p = 1 always flips; p = 0.5 flips about half the time
  const g = new Generator(5);
  assert.ok(randomHorizontalFlip(img, g, 0) === img);
  assert.equal(randomHorizontalFlip(img, g, 1).data, f.data);
  let flips = 0;
  for (let i = 0; i < 2000; i++) if (randomHorizontalFlip(img, g, 0.5) !== img) flips++;
  assert.ok(flips > 900 && flips < 1100, `${flips} flips of 2000`);
});

/** The central-crop fallback of torchvision's get_params. */
function fallbackBox(w: number, h: number, ratio: [number, number]) {
  const inRatio = w / h;
  let cw = w, ch = h;
  if (inRatio < Math.min(...ratio)) ch = Math.max(1, roundHalfEven(cw / Math.min(...ratio)));
  else if (inRatio > Math.max(...ratio)) cw = Math.max(1, roundHalfEven(ch * Math.max(...ratio)));
  return { top: Math.floor((h - ch) / 2), left: Math.floor((w - cw) / 2), height: ch, width: cw };
}

test('randomResizedCropParams: inside the image, and either a valid sampled box or the central fallback', () => {
  const eps = 1e-6;
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 2 ** 31 }),
    fc.double({ min: 0.01, max: 1, noNaN: true }), fc.double({ min: 0.01, max: 1, noNaN: true }),
    fc.double({ min: 0.2, max: 5, noNaN: true }), fc.double({ min: 0.2, max: 5, noNaN: true }),
    (W, H, seed, a, b, r0, r1) => {
      const scale: [number, number] = [Math.min(a, b), Math.max(a, b)];
      const ratio: [number, number] = [Math.min(r0, r1), Math.max(r0, r1)];
      const box = randomResizedCropParams(W, H, new Generator(seed), scale, ratio);
      const { top, left, height: h, width: w } = box;
      assert.ok(Number.isInteger(top) && Number.isInteger(left) && Number.isInteger(h) && Number.isInteger(w));
      assert.ok(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= H && left + w <= W, JSON.stringify({ W, H, box }));
      const fb = fallbackBox(W, H, ratio);
      if (top === fb.top && left === fb.left && h === fb.height && w === fb.width) return;
      // sampled: w = round(sqrt(A*r)), h = round(sqrt(A/r)) for some A in scale*W*H and r in ratio, so
      // A lies in [(w-.5)(h-.5), (w+.5)(h+.5)] and r in [(w-.5)/(h+.5), (w+.5)/(h-.5)]
      const A = W * H;
      const aLo = (w - 0.5) * (h - 0.5), aHi = (w + 0.5) * (h + 0.5);
      assert.ok(aHi >= scale[0] * A * (1 - eps) && aLo <= scale[1] * A * (1 + eps), `area ${w}x${h} vs ${scale} of ${A}`);
      const rLo = (w - 0.5) / (h + 0.5), rHi = h > 0.5 ? (w + 0.5) / (h - 0.5) : Infinity;
      assert.ok(rHi >= ratio[0] * (1 - eps) && rLo <= ratio[1] * (1 + eps), `ratio ${w}/${h} vs ${ratio}`);
    },
  ), { numRuns: 2000 });
});

test('randomResizedCropParams: the fallback after 10 failed tries, and uniform positions otherwise', () => {
  // a 1000x10 strip: no box of area >= 0.9 A with ratio <= 4/3 fits, so the central crop clamped to ratio 4/3
  for (let s = 0; s < 20; s++) {
    assert.equal(randomResizedCropParams(1000, 10, new Generator(s), [0.9, 1], [3 / 4, 4 / 3]), { top: 0, left: 493, height: 10, width: 13 });
  }
  assert.equal(randomResizedCropParams(10, 1000, new Generator(1), [0.9, 1], [3 / 4, 4 / 3]), { top: 493, left: 0, height: 13, width: 10 });
  // the fallback consumes exactly 20 uniform draws (10 tries x 2), no integer draws
  const g1 = new Generator(9), g2 = new Generator(9);
  randomResizedCropParams(1000, 10, g1, [0.9, 1], [3 / 4, 4 / 3]);
  for (let i = 0; i < 20; i++) g2.uniform();
  assert.equal(g1.getState(), g2.getState());
  // SparK's scale (0.67, 1) on a square picture: area fractions spread over the range, positions over the slack
  const g = new Generator(11);
  const fracs: number[] = [];
  const lefts = new Set<number>();
  for (let i = 0; i < 3000; i++) {
    const b = randomResizedCropParams(100, 100, g, [0.67, 1], [3 / 4, 4 / 3]);
    fracs.push((b.width * b.height) / 1e4);
    if (b.width === 90) lefts.add(b.left);
  }
  const mean = fracs.reduce((p, q) => p + q, 0) / fracs.length;
  assert.ok(Math.min(...fracs) >= 0.64 && Math.max(...fracs) <= 1.0, `area fractions ${Math.min(...fracs)}..${Math.max(...fracs)}`);
  assert.ok(mean > 0.78 && mean < 0.86, `mean area fraction ${mean}`);
  assert.equal([...lefts].sort((a, b) => a - b), [...Array(11).keys()]);
});

test('randomResizedCrop = crop at the sampled box, then PIL resize', () => {
  const img = randomImage(50, 40, 6);
  const box = randomResizedCropParams(50, 40, new Generator(7), [0.67, 1], [3 / 4, 4 / 3]);
  const out = randomResizedCrop(img, 16, {}, new Generator(7)); // SparK's defaults: (0.67, 1), bicubic
  assert.equal(out.data, resizeTo(crop(img, box), 16, 16, 'bicubic').data);
  assert.equal([randomResizedCrop(img, [8, 12], { interpolation: 'bilinear' }, new Generator(1)).height], [8]);
});

test('toTensorNormalize equals torch float32 ToTensor+Normalize bit for bit; denormalize inverts it', () => {
  const norm = JSON.parse(readFileSync(join(DIR, 'normalize.json'), 'utf8')) as { bits: Record<string, number[]> };
  const img: RgbImage = { width: 256, height: 1, data: new Uint8Array(256 * 3) };
  for (let v = 0; v < 256; v++) img.data[3 * v] = img.data[3 * v + 1] = img.data[3 * v + 2] = v;
  const out = toTensorNormalize(img);
  const bits = new Uint32Array(out.buffer);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) assert.is(bits[c * 256 + v], norm.bits[String(c)][v], `channel ${c}, value ${v}`);
  }
  const pic = randomImage(7, 5, 8);
  assert.equal(denormalizeToImage(toTensorNormalize(pic), 5, 7).data, pic.data);
  assert.equal(denormalizeToImage(new Float32Array(3).fill(100), 1, 1).data, new Uint8Array([255, 255, 255]));
  assert.equal(denormalizeToImage(new Float32Array(3).fill(-100), 1, 1).data, new Uint8Array([0, 0, 0]));
  const custom = toTensorNormalize(pic, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
  assert.equal(denormalizeToImage(custom, 5, 7, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]).data, pic.data);
});

test('pretrainTransform(size): 3xsizexsize, deterministic per generator, flips about half the time', () => {
  const img = randomImage(60, 45, 9);
  const t = pretrainTransform(32);
  const a = t(img, new Generator(3));
  assert.equal([a.channels, a.height, a.width, a.data.length], [3, 32, 32, 3 * 32 * 32]);
  assert.equal(t(img, new Generator(3)).data, a.data);
  assert.not.equal(t(img, new Generator(4)).data, a.data);
  // same draws as crop then flip by hand
  const g = new Generator(12);
  const crop1 = randomResizedCrop(img, 32, { scale: [0.67, 1] }, g);
  const manual = randomHorizontalFlip(crop1, g, 0.5);
  assert.equal(t(img, new Generator(12)).data, toTensorNormalize(manual));
});

test('evalTransform: shorter side to floor(size/0.95) then center crop; plain resize at 384', () => {
  const img = randomImage(80, 60, 10);
  const t = evalTransform(32); // floor(32/0.95) = 33
  const out = t(img, new Generator(0));
  assert.equal([out.height, out.width], [32, 32]);
  assert.equal(out.data, toTensorNormalize(centerCrop(resizeShorter(img, 33, 'bicubic'), 32)));
  assert.is(Math.floor(224 / 0.95), 235);
  const e875 = evalTransform(32, 0.875)(img, new Generator(0)); // floor(32/0.875) = 36
  assert.equal(e875.data, toTensorNormalize(centerCrop(resizeShorter(img, 36), 32)));
  const big = evalTransform(384)(randomImage(20, 10, 1), new Generator(0));
  assert.equal([big.height, big.width], [384, 384]);
  assert.throws(() => evalTransform(32, 1.5), /cropPct/);
});

test.run();
