// Image decoding: every PNG colour type and JPEG against PIL's `Image.open(f).convert('RGB')`
// (fixtures from test/fixtures/data/gen_data.py), corrupt files, and the PNG encoder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, encodePng, sniffFormat, ImageDecodeError, type RgbImage } from '../../src/data/index.ts';

const DIR = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'fixtures', 'data');
const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as {
  decode: { name: string; file: string; width: number; height: number; pil?: boolean }[];
};
const read = (name: string) => new Uint8Array(readFileSync(join(DIR, 'decode', name)));

function diff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  let max = 0, sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length };
}

for (const fx of manifest.decode) {
  test(`decode ${fx.file} equals ${fx.pil === false ? 'the high-byte rule' : "PIL's convert('RGB')"}`, () => {
    const img = decodeImage(read(fx.file), fx.file);
    const want = read(`${fx.name}.rgb`);
    assert.is(img.width, fx.width);
    assert.is(img.height, fx.height);
    assert.is(img.data.length, want.length);
    const d = diff(img.data, want);
    if (fx.file.endsWith('.jpg')) {
      // libjpeg (PIL) and jpeg-js round their IDCTs differently: a few levels at most
      assert.ok(d.max <= 4 && d.mean < 1, `${fx.file}: max ${d.max}, mean ${d.mean}`);
    } else {
      assert.is(d.max, 0, `${fx.file}: max difference ${d.max}`);
    }
  });
}

test('alpha is dropped, not composited: a fully transparent row keeps its colour', () => {
  const rgba = decodeImage(read('rgba.png'));
  const rgb = decodeImage(read('rgb.png'));
  assert.equal(Array.from(rgba.data.subarray(0, 9 * 3)), Array.from(rgb.data.subarray(0, 9 * 3)));
});

test('the format comes from the magic bytes, not the name', () => {
  const png = read('rgb.png');
  assert.is(sniffFormat(png), 'png');
  assert.is(sniffFormat(read('jpeg_rgb.jpg')), 'jpeg');
  const img = decodeImage(png, 'actually_a_png.jpg');
  assert.is(img.width, 9);
});

function decodeError(bytes: Uint8Array, path: string): ImageDecodeError {
  try {
    decodeImage(bytes, path);
  } catch (e) {
    assert.instance(e, ImageDecodeError);
    return e as ImageDecodeError;
  }
  throw new Error(`${path} decoded`);
}

test('corrupt and unsupported files throw ImageDecodeError naming the path', () => {
  const e1 = decodeError(new TextEncoder().encode('this is not an image at all'), '/data/cls/bad.png');
  assert.is(e1.path, '/data/cls/bad.png');
  assert.match(e1.message, '/data/cls/bad.png');
  assert.match(decodeError(new Uint8Array(0), 'empty.png').message, /empty file/);
  assert.match(decodeError(new TextEncoder().encode('GIF89a....'), 'a.gif').message, /GIF is not supported/);
  const png = read('rgb.png');
  assert.match(decodeError(png.subarray(0, 60), 'trunc.png').message, /trunc\.png: PNG: truncated file/);
  const flipped = png.slice();
  flipped[50] ^= 0xff;
  assert.match(decodeError(flipped, 'crc.png').message, /crc\.png: PNG/);
  const jpg = read('jpeg_rgb.jpg');
  assert.match(decodeError(jpg.subarray(0, Math.floor(jpg.length * 0.7)), 'trunc.jpg').message, /trunc\.jpg: JPEG/);
  assert.match(decodeError(jpg.subarray(0, 20), 'head.jpg').message, /head\.jpg: JPEG/);
});

test('a missing end marker (PNG IEND, JPEG EOI) is tolerated, as PIL tolerates it', () => {
  const png = read('rgb.png');
  assert.equal(decodeImage(png.subarray(0, png.length - 12)).data, decodeImage(png).data);
  const jpg = read('jpeg_rgb.jpg');
  assert.equal(decodeImage(jpg.subarray(0, jpg.length - 2)).data, decodeImage(jpg).data);
});

test('encodePng round-trips through decodeImage and PIL-readable RGB PNG', () => {
  const img: RgbImage = { width: 5, height: 3, data: Uint8Array.from({ length: 45 }, (_, i) => (i * 37) % 256) };
  const bytes = encodePng(img);
  assert.is(sniffFormat(bytes), 'png');
  assert.is(bytes[25], 2); // IHDR colour type: RGB
  const back = decodeImage(bytes);
  assert.equal([back.width, back.height], [5, 3]);
  assert.equal(Array.from(back.data), Array.from(img.data));
  assert.throws(() => encodePng({ width: 2, height: 2, data: new Uint8Array(5) }), /needs 12 bytes/);
});

test.run();
