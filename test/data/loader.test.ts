// DataLoader: batch shapes and dtypes, the last batch (keep / drop / fill), seeded order per epoch, and batches
// that depend only on (seed, epoch, batch): the same with or without prefetch, sync or async, resumed or not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator } from '../../src/tensor/random.ts';
import {
  DataLoader, ImageFolder, encodePng, pretrainTransform, evalTransform, derivedGenerator,
  type Batch, type Dataset, type RgbImage,
} from '../../src/data/index.ts';

/** N images of varying size whose pixels encode their index; label = index % 3 (or none). */
function memoryDataset(n: number, labeled = true, withAsync = false): Dataset & { reads: number[] } {
  const reads: number[] = [];
  const make = (i: number): RgbImage => {
    const w = 20 + (i % 5) * 3, h = 16 + (i % 4) * 2;
    const g = new Generator(1000 + i);
    return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, () => g.int(256)) };
  };
  const ds: Dataset & { reads: number[] } = {
    length: n,
    reads,
    get(i: number) {
      reads.push(i);
      return { image: make(i), label: labeled ? i % 3 : null };
    },
  };
  if (withAsync) {
    ds.getAsync = async (i: number) => {
      await new Promise((r) => setTimeout(r, (i * 7) % 5)); // finish out of order
      return ds.get(i);
    };
  }
  return ds;
}

const sig = (b: Batch) => ({ indices: b.indices, shape: b.images.shape, labels: b.labels ? Array.from(b.labels.data as BigInt64Array, Number) : null });

async function collect(loader: DataLoader, start = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.stream(start)) out.push(b);
  return out;
}

function sameBatches(a: Batch[], b: Batch[]): void {
  assert.is(a.length, b.length);
  a.forEach((x, k) => {
    assert.equal(sig(x), sig(b[k]));
    assert.equal(x.images.data, b[k].images.data, `batch ${k} pixels`);
  });
}

test('batches: (B,3,H,W) float32 and (B,) int64 labels; the last batch kept, dropped or filled', () => {
  const ds = memoryDataset(10);
  const keep = new DataLoader(ds, { batchSize: 4, transform: pretrainTransform(8), seed: 1 });
  const kb = [...keep];
  assert.is(keep.length, 3);
  assert.equal(kb.map((b) => b.images.shape), [[4, 3, 8, 8], [4, 3, 8, 8], [2, 3, 8, 8]]);
  assert.is(kb[0].images.dtype, 'float32');
  assert.is(kb[0].labels!.dtype, 'int64');
  assert.equal(kb[0].labels!.shape, [4]);
  assert.equal(kb.flatMap((b) => b.indices).sort((a, b) => a - b), [...Array(10).keys()]);
  kb.forEach((b) => assert.equal(sig(b).labels, b.indices.map((i) => i % 3)));

  const drop = new DataLoader(ds, { batchSize: 4, dropLast: true, transform: pretrainTransform(8), seed: 1 });
  assert.is(drop.length, 2);
  assert.equal([...drop].map((b) => b.indices), kb.slice(0, 2).map((b) => b.indices));

  // SparK's sampler: iters = ceil(10/4) = 3, the order padded with its own first entries
  const fill = new DataLoader(ds, { batchSize: 4, fillLast: true, transform: pretrainTransform(8), seed: 1 });
  const fb = [...fill];
  assert.equal(fb.map((b) => b.images.shape[0]), [4, 4, 4]);
  const order = fill.order();
  assert.equal(order.slice(10), order.slice(0, 2));
  assert.equal(fb.flatMap((b) => b.indices), order);
  const tiny = new DataLoader(memoryDataset(3), { batchSize: 8, fillLast: true, transform: evalTransform(8), shuffle: false });
  assert.equal(tiny.order(), [0, 1, 2, 0, 1, 2, 0, 1]);

  assert.throws(() => new DataLoader(ds, { batchSize: 4, dropLast: true, fillLast: true }), /exclude/);
  assert.throws(() => new DataLoader(ds, { batchSize: 0 }), /batchSize/);
  // images of different sizes without a resizing transform cannot be stacked
  assert.throws(() => new DataLoader(ds, { batchSize: 4, shuffle: false }).getBatch(0), /same size/);
});

test('order: seeded, reproducible, a different permutation per epoch; setEpoch returns to an epoch', () => {
  const ds = memoryDataset(50);
  const mk = (seed: number) => new DataLoader(ds, { batchSize: 8, seed, transform: evalTransform(8) });
  const a = mk(7), b = mk(7), c = mk(8);
  const e0 = a.order();
  assert.equal(b.order(), e0);
  assert.not.equal(c.order(), e0);
  assert.equal([...e0].sort((x, y) => x - y), [...Array(50).keys()]);
  a.setEpoch(1);
  const e1 = a.order();
  assert.not.equal(e1, e0);
  a.setEpoch(0);
  assert.equal(a.order(), e0);
  b.setEpoch(1);
  assert.equal(b.order(), e1);
  const plain = new DataLoader(ds, { batchSize: 8, shuffle: false, transform: evalTransform(8) });
  plain.setEpoch(3);
  assert.equal(plain.order(), [...Array(50).keys()]);
  // a Generator can provide the seed
  const viaGen = new DataLoader(ds, { batchSize: 8, generator: new Generator(5), transform: evalTransform(8) });
  assert.is(viaGen.seed, new Generator(5).nextUint32());
});

test('augmentation: the same (seed, epoch) gives the same batches with any prefetch, sync or async', async () => {
  for (const withAsync of [false, true]) {
    const mk = (prefetch: number) => new DataLoader(memoryDataset(23, true, withAsync), {
      batchSize: 5, seed: 3, transform: pretrainTransform(12), prefetch, readConcurrency: 3,
    });
    const sync = [...mk(2)];
    sameBatches(await collect(mk(0)), sync);
    sameBatches(await collect(mk(1)), sync);
    sameBatches(await collect(mk(4)), sync);
    // batches differ from each other and between epochs
    const l = mk(2);
    l.setEpoch(1);
    const e1 = await collect(l);
    assert.not.equal(e1[0].indices, sync[0].indices);
    l.setEpoch(0);
    sameBatches(await collect(l), sync);
  }
});

test('resuming at (epoch, batch) reproduces the rest of the epoch; a sample augments the same wherever it sits', async () => {
  const mk = () => new DataLoader(memoryDataset(30), { batchSize: 4, seed: 11, transform: pretrainTransform(10), prefetch: 2 });
  const full = mk();
  full.setEpoch(2);
  const all = await collect(full);
  const resumed = mk();
  resumed.setEpoch(2);
  sameBatches(await collect(resumed, 5), all.slice(5));
  sameBatches([...resumed.batches(6)], all.slice(6));
  assert.equal(resumed.getBatch(3).images.data, all[3].images.data);
  // sample slot k of epoch e draws from its own generator
  const g1 = resumed.sampleGenerator(2, 13), g2 = derivedGenerator(0x73616d70, 11, 2, 13);
  assert.equal(g1.getState(), g2.getState());
  assert.not.equal(resumed.sampleGenerator(2, 14).getState(), g1.getState());
});

test('prefetch reads ahead: by the time batch 0 is consumed, later batches are being prepared', async () => {
  const ds = memoryDataset(40, true, true);
  const loader = new DataLoader(ds, { batchSize: 4, seed: 0, transform: evalTransform(8), prefetch: 3 });
  const it = loader.stream();
  const first = await it.next();
  assert.ok(!first.done);
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(ds.reads.length >= 4 * 3, `${ds.reads.length} samples read after one batch`);
  assert.ok(ds.reads.length <= 4 * 4, `${ds.reads.length} samples read: prefetch should stop at 3 batches ahead`);
  await it.return(undefined);
});

test('errors surface in order from the async iterator, with no unhandled rejection', async () => {
  const ds = memoryDataset(12);
  const bad: Dataset = { length: 12, get: (i) => { if (i === 9) throw new Error('boom 9'); return ds.get(i); } };
  const loader = new DataLoader(bad, { batchSize: 4, shuffle: false, transform: evalTransform(8), prefetch: 3 });
  const seen: number[] = [];
  try {
    for await (const b of loader) seen.push(b.batch);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /boom 9/);
  }
  assert.equal(seen, [0, 1]);
});

test('ImageFolder through the loader: unlabeled folders give labels null; files read asynchronously', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sparkts-loader-'));
  try {
    mkdirSync(join(root, 'imgs'));
    for (let i = 0; i < 9; i++) {
      const img: RgbImage = { width: 10 + i, height: 12, data: new Uint8Array((10 + i) * 12 * 3).fill(i * 20) };
      writeFileSync(join(root, 'imgs', `${i}.png`), encodePng(img));
    }
    const ds = new ImageFolder(join(root, 'imgs'));
    const loader = new DataLoader(ds, { batchSize: 4, seed: 2, transform: pretrainTransform(8) });
    const batches = await collect(loader);
    assert.equal(batches.map((b) => b.images.shape[0]), [4, 4, 1]);
    assert.ok(batches.every((b) => b.labels === null));
    sameBatches(batches, [...loader]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
