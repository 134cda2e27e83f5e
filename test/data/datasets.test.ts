// Datasets: ImageFolder (class folders and flat, torchvision's ordering, unreadable files skipped and counted),
// IDX parsing, and Debian's Fashion-MNIST when it is installed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  ImageFolder, FashionMnist, parseIdx, subset, encodePng, decodeImage, ImageDecodeError, FASHION_MNIST_DIR,
  type RgbImage, type SkippedFile,
} from '../../src/data/index.ts';

const FIX = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'fixtures', 'data', 'decode');
const solid = (w: number, h: number, v: number): RgbImage => ({ width: w, height: h, data: new Uint8Array(w * h * 3).fill(v) });

function tree(files: Record<string, Uint8Array | string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sparkts-data-'));
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, content);
  }
  return root;
}

test('ImageFolder: classes sorted, labels by class index, files in torchvision order, other files ignored', () => {
  const jpg = readFileSync(join(FIX, 'jpeg_rgb.jpg'));
  const root = tree({
    'dog/b.png': encodePng(solid(2, 2, 20)),
    'dog/a.PNG': encodePng(solid(2, 2, 10)),
    'dog/sub/c.jpeg': jpg,
    'dog/notes.txt': 'not an image',
    'cat/z.JPG': jpg,
    'cat/y.png': encodePng(solid(3, 1, 30)),
    'ant/x.png': encodePng(solid(1, 1, 40)),
    'empty_class/.keep': '',
  });
  try {
    const ds = new ImageFolder(root);
    assert.equal(ds.classes, ['ant', 'cat', 'dog', 'empty_class']);
    assert.equal(ds.files.map((f) => f.slice(root.length + 1)), ['ant/x.png', 'cat/y.png', 'cat/z.JPG', 'dog/a.PNG', 'dog/b.png', 'dog/sub/c.jpeg']);
    assert.equal(Array.from(ds.targets!), [0, 1, 1, 2, 2, 2]);
    assert.is(ds.length, 6);
    assert.is(ds.skippedCount, 0);
    const s = ds.get(3);
    assert.is(s.label, 2);
    assert.equal([s.image.width, s.image.height, s.image.data[0]], [2, 2, 10]);
    assert.is(ds.get(5).image.width, 32);
    assert.throws(() => ds.get(6), /out of range/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ImageFolder: unreadable files are reported with their path, skipped and counted', async () => {
  const good = encodePng(solid(2, 2, 1));
  const truncated = good.subarray(0, 40); // a valid header, cut inside IDAT
  const root = tree({
    'a/ok.png': good,
    'a/garbage.png': 'this is not an image',
    'a/empty.jpg': new Uint8Array(0),
    'b/trunc.png': truncated,
    'b/ok2.jpg': readFileSync(join(FIX, 'jpeg_grey.jpg')),
  });
  try {
    const seen: SkippedFile[] = [];
    const ds = new ImageFolder(root, { onSkip: (f) => seen.push(f) });
    assert.is(ds.skippedCount, 2); // the header check catches garbage and empty files
    assert.equal(seen, ds.skipped);
    assert.equal(ds.skipped.map((f) => f.path), [join(root, 'a/empty.jpg'), join(root, 'a/garbage.png')]);
    assert.match(ds.skipped[0].reason, /empty file/);
    assert.match(ds.skipped[1].reason, /not a PNG or JPEG/);
    assert.is(ds.length, 3);
    // the truncated PNG passes the header check; reading it throws ImageDecodeError with its path
    const i = ds.files.indexOf(join(root, 'b/trunc.png'));
    assert.ok(i >= 0);
    try {
      ds.get(i);
      assert.unreachable('decoded a truncated file');
    } catch (e) {
      assert.instance(e, ImageDecodeError);
      assert.is((e as ImageDecodeError).path, join(root, 'b/trunc.png'));
    }
    try {
      await ds.getAsync(i);
      assert.unreachable('decoded a truncated file');
    } catch (e) {
      assert.instance(e, ImageDecodeError);
    }
    // verify: 'decode' finds it when listing
    const full = new ImageFolder(root, { verify: 'decode', onSkip: () => undefined });
    assert.is(full.skippedCount, 3);
    assert.ok(full.skipped.some((f) => f.path === join(root, 'b/trunc.png') && /truncated/.test(f.reason)));
    assert.equal(Array.from(full.targets!), [0, 1]);
    assert.equal((await full.getAsync(1)).image.data, full.get(1).image.data);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ImageFolder: a flat folder is unlabeled and listed recursively', () => {
  const root = tree({
    '2.png': encodePng(solid(1, 1, 2)),
    '10.png': encodePng(solid(1, 1, 10)),
    'more/1.png': encodePng(solid(1, 1, 1)),
    'more-b/3.png': encodePng(solid(1, 1, 3)),
    'more/sub/4.png': encodePng(solid(1, 1, 4)),
  });
  try {
    const ds = new ImageFolder(root);
    assert.is(ds.classes, undefined);
    assert.is(ds.targets, null);
    // sorted(os.walk): folders by their path string ('R/more' < 'R/more-b' < 'R/more/sub' since '-' < '/'),
    // names sorted within a folder (checked against Python's os.walk)
    assert.equal(ds.files.map((f) => f.slice(root.length + 1)), ['10.png', '2.png', 'more/1.png', 'more-b/3.png', 'more/sub/4.png']);
    assert.is(ds.get(0).label, null);
    const forced = new ImageFolder(root, { labels: 'folders' });
    assert.equal(forced.classes, ['more', 'more-b']);
    assert.equal(Array.from(forced.targets!), [0, 0, 1]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.throws(() => new ImageFolder('/nonexistent/sparkts'), /does not exist/);
});

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  const dv = new DataView(head.buffer);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

test('parseIdx reads a hand-built IDX file, raw and gzipped, and rejects bad ones', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 5);
  const raw = idx([2, 3, 4], data);
  const a = parseIdx(raw);
  assert.equal(a.dims, [2, 3, 4]);
  assert.equal(Array.from(a.data), Array.from(data));
  assert.equal(parseIdx(gzipSync(raw)).dims, [2, 3, 4]);
  assert.throws(() => parseIdx(raw.subarray(0, raw.length - 1), 'short'), /short: dims \[2, 3, 4\] need 24 bytes/);
  const f32 = raw.slice();
  f32[2] = 0x0d;
  assert.throws(() => parseIdx(f32), /unsigned byte only/);
  assert.throws(() => parseIdx(new Uint8Array([1, 2, 3, 4])), /not an IDX/);
});

test('FashionMnist reads a tiny IDX pair (t10k, gzipped images) as RGB', () => {
  const imgs = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => i * 20);
  const root = tree({
    't10k-images-idx3-ubyte.gz': gzipSync(idx([3, 2, 2], imgs)),
    't10k-labels-idx1-ubyte': idx([3], new Uint8Array([9, 0, 4])),
  });
  try {
    const ds = new FashionMnist(root, 'test');
    assert.is(ds.length, 3);
    const s = ds.get(1);
    assert.is(s.label, 0);
    assert.equal([s.image.width, s.image.height], [2, 2]);
    assert.equal(Array.from(s.image.data), [80, 80, 80, 100, 100, 100, 120, 120, 120, 140, 140, 140]);
    assert.is(ds.classes[9], 'Ankle boot');
    assert.throws(() => new FashionMnist(root, 'train'), /train-images-idx3-ubyte/);
    const sub = subset(ds, [2, 0]);
    assert.is(sub.length, 2);
    assert.is(sub.get(0).label, 4);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

const haveFashion = existsSync(join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz')) || existsSync(join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte'));
if (haveFashion) {
  test(`FashionMnist from ${FASHION_MNIST_DIR}: 60000 + 10000 images, the first training label is 9 (ankle boot)`, () => {
    const train = new FashionMnist();
    assert.is(train.length, 60000);
    assert.equal([train.height, train.width], [28, 28]);
    const first = train.get(0);
    assert.is(first.label, 9);
    assert.equal([first.image.width, first.image.height, first.image.data.length], [28, 28, 28 * 28 * 3]);
    const test10k = new FashionMnist(FASHION_MNIST_DIR, 'test');
    assert.is(test10k.length, 10000);
    const counts = new Array(10).fill(0);
    for (const l of test10k.targets) counts[l]++;
    assert.equal(counts, new Array(10).fill(1000));
  });
} else {
  console.log(`skipped: Fashion-MNIST is not installed at ${FASHION_MNIST_DIR} (Debian package dataset-fashion-mnist)`);
}

test('decodeImage of an ImageFolder file equals get()', () => {
  const root = tree({ 'x/a.png': encodePng(solid(3, 2, 77)) });
  try {
    const ds = new ImageFolder(root);
    assert.equal(ds.get(0).image, decodeImage(readFileSync(ds.files[0])));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
