/**
 * DataLoader: batches of transformed samples as tensors, with a seeded, resumable order.
 *
 * Order. Epoch e's order is a permutation drawn from a generator seeded by (seed, e) (or 0..N−1 without
 * shuffle), so `setEpoch(e)` alone reproduces it, as DistributedSampler.set_epoch does. The last partial batch is
 * kept ('keep'), dropped (dropLast) or filled (fillLast): SparK's DistInfiniteBatchSampler rule (spec §8.5),
 * iters = ceil(N / batchSize) with the order padded by its own first entries. The order does not reproduce
 * torch's randperm stream, only its rule.
 *
 * Augmentation randomness. Sample slot k of epoch e (its position in that epoch's padded order) gets its own
 * Generator seeded from (seed, e, k), so a batch's pixels depend only on (seed, epoch, batch index), never on
 * how many batches were prefetched, in what order they finished, or where a run was resumed.
 *
 * Prefetch. The async iterator (`for await`) keeps up to `prefetch` batches in preparation while the consumer
 * works on the current one: files are read with fs.promises (libuv's thread pool, so reads overlap compute),
 * and decoding and augmentation run on the main thread in setImmediate slices between the consumer's awaits.
 * There are no worker threads: decoding overlaps compute only as far as the training loop yields. The sync
 * iterator (`for of`) builds each batch on demand.
 */
import { Tensor } from '../tensor/tensor.ts';
import { Generator } from '../tensor/random.ts';
import type { Dataset, Sample } from './datasets.ts';
import { composeTransform, type ChwImage, type Transform } from './transforms.ts';

export interface Batch {
  /** (B, 3, H, W) float32 */
  images: Tensor;
  /** (B,) int64 class indices, or null when the dataset is unlabeled */
  labels: Tensor | null;
  /** the dataset index of every row */
  indices: number[];
  /** which batch of the epoch this is, and the epoch */
  batch: number;
  epoch: number;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** reshuffle every epoch from (seed, epoch) (default true) */
  shuffle?: boolean;
  /** drop the last partial batch (default false) */
  dropLast?: boolean;
  /** pad the order with its own first entries to a whole number of batches (SparK's sampler; default false) */
  fillLast?: boolean;
  /** per-sample transform; default ToTensor + Normalize(ImageNet) with no augmentation */
  transform?: Transform;
  /** the seed source: a number, or a Generator whose next draw is taken as the seed (default 0) */
  seed?: number;
  generator?: Generator;
  /** batches prepared ahead by the async iterator (default 2; 0 builds each batch on demand) */
  prefetch?: number;
  /** files read at once per batch by the async path (default 16) */
  readConcurrency?: number;
  /** the first epoch (default 0) */
  epoch?: number;
}

/** A 32-bit mix (murmur3's finaliser) used to spread (seed, epoch, slot, stream) over a generator state. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A generator whose 128-bit state is a hash of the given 32-bit words (never all zero). */
export function derivedGenerator(...words: number[]): Generator {
  const state: number[] = [];
  let h = 0x9e3779b9;
  for (let lane = 0; lane < 4; lane++) {
    h = fmix32(h ^ Math.imul(lane + 1, 0x27d4eb2f));
    for (const w of words) h = fmix32(((h ^ (w >>> 0)) + Math.imul(0x165667b1, lane + 1)) >>> 0);
    state.push(h);
  }
  if (!state.some((s) => s !== 0)) state[0] = 1;
  const g = new Generator(0);
  g.setState([...state, NaN]);
  return g;
}

const STREAM_ORDER = 0x6f726472; // 'ordr'
const STREAM_SAMPLE = 0x73616d70; // 'samp'

export class DataLoader implements Iterable<Batch>, AsyncIterable<Batch> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly fillLast: boolean;
  readonly seed: number;
  readonly prefetch: number;
  readonly readConcurrency: number;
  private readonly transform: Transform;
  private currentEpoch: number;
  private orderCache: { epoch: number; order: number[] } | null = null;

  constructor(dataset: Dataset, options: DataLoaderOptions) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (options.dropLast && options.fillLast) throw new Error('DataLoader: dropLast and fillLast exclude each other');
    if (dataset.length === 0) throw new Error('DataLoader: the dataset is empty');
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = options.shuffle ?? true;
    this.dropLast = options.dropLast ?? false;
    this.fillLast = options.fillLast ?? false;
    this.seed = options.seed ?? (options.generator ? options.generator.nextUint32() : 0);
    this.prefetch = options.prefetch ?? 2;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new Error(`DataLoader: prefetch must be an integer >= 0, got ${this.prefetch}`);
    this.readConcurrency = Math.max(1, options.readConcurrency ?? 16);
    this.transform = options.transform ?? composeTransform([]);
    this.currentEpoch = options.epoch ?? 0;
  }

  /** Select the epoch whose order and augmentations the next iteration uses (DistributedSampler.set_epoch). */
  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`DataLoader.setEpoch: epoch must be an integer >= 0, got ${epoch}`);
    this.currentEpoch = epoch;
  }

  get epoch(): number {
    return this.currentEpoch;
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The dataset indices of the current epoch in order, padded when fillLast, cut when dropLast. */
  order(epoch = this.currentEpoch): number[] {
    if (this.orderCache?.epoch === epoch) return this.orderCache.order;
    const n = this.dataset.length;
    const base = this.shuffle ? derivedGenerator(STREAM_ORDER, this.seed, epoch).permutation(n) : Array.from({ length: n }, (_, i) => i);
    const total = this.length * this.batchSize;
    let order: number[];
    if (this.fillLast) {
      order = base.slice();
      for (let k = 0; order.length < total; k++) order.push(base[k % n]); // pad with the first entries
    } else {
      order = base.slice(0, Math.min(n, total));
    }
    this.orderCache = { epoch, order };
    return order;
  }

  /** The generator of sample slot k of an epoch. */
  sampleGenerator(epoch: number, slot: number): Generator {
    return derivedGenerator(STREAM_SAMPLE, this.seed, epoch, slot);
  }

  /** Batch b's slots [start, end) in the epoch's order. */
  private slots(b: number, order: readonly number[]): { start: number; end: number } {
    if (!Number.isInteger(b) || b < 0 || b >= this.length) throw new RangeError(`DataLoader: batch ${b} out of range [0, ${this.length})`);
    const start = b * this.batchSize;
    return { start, end: Math.min(order.length, start + this.batchSize) };
  }

  private transformSample(sample: Sample, epoch: number, slot: number): ChwImage {
    return this.transform(sample.image, this.sampleGenerator(epoch, slot));
  }

  /** Batch b of an epoch (default the current one), built synchronously. */
  getBatch(b: number, epoch = this.currentEpoch): Batch {
    const order = this.order(epoch);
    const { start, end } = this.slots(b, order);
    const outs: ChwImage[] = [];
    const labels: (number | null)[] = [];
    for (let s = start; s < end; s++) {
      const sample = this.dataset.get(order[s]);
      outs.push(this.transformSample(sample, epoch, s));
      labels.push(sample.label);
    }
    return collate(outs, labels, order.slice(start, end), b, epoch);
  }

  /** Batch b of the given epoch, reading files asynchronously and yielding to the event loop between samples. */
  async getBatchAsync(b: number, epoch = this.currentEpoch): Promise<Batch> {
    const order = this.order(epoch);
    const { start, end } = this.slots(b, order);
    const count = end - start;
    const outs: ChwImage[] = new Array(count);
    const labels: (number | null)[] = new Array(count);
    const ds = this.dataset;
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const k = next++;
        const idx = order[start + k];
        const sample = ds.getAsync ? await ds.getAsync(idx) : await yieldThen(() => ds.get(idx));
        outs[k] = await yieldThen(() => this.transformSample(sample, epoch, start + k));
        labels[k] = sample.label;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.readConcurrency, count) }, worker));
    return collate(outs, labels, order.slice(start, end), b, epoch);
  }

  /** The current epoch's batches from `startBatch` on, built on demand. */
  *batches(startBatch = 0): IterableIterator<Batch> {
    const epoch = this.currentEpoch;
    for (let b = startBatch; b < this.length; b++) yield this.getBatch(b, epoch);
  }

  /** The current epoch's batches from `startBatch` on, with up to `prefetch` batches prepared ahead. */
  async *stream(startBatch = 0): AsyncGenerator<Batch> {
    const epoch = this.currentEpoch;
    const n = this.length;
    const queue: Promise<Batch>[] = [];
    let next = startBatch;
    const fill = (ahead: number) => {
      while (queue.length < ahead && next < n) {
        const p = this.getBatchAsync(next++, epoch);
        p.catch(() => undefined); // rethrown when its turn comes; not an unhandled rejection meanwhile
        queue.push(p);
      }
    };
    while (next < n || queue.length > 0) {
      fill(1);
      const current = queue.shift() as Promise<Batch>;
      fill(this.prefetch); // start the next ones before waiting on this one
      const batch = await current;
      yield batch;
    }
  }

  [Symbol.iterator](): Iterator<Batch> {
    return this.batches(0);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.stream(0);
  }
}

function yieldThen<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(fn());
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Stack CHW images into (B, C, H, W) float32 and labels into (B,) int64. */
export function collate(images: readonly ChwImage[], labels: readonly (number | null)[], indices: number[], batch = 0, epoch = 0): Batch {
  const B = images.length;
  if (B === 0) throw new Error('collate: empty batch');
  const { channels: C, height: H, width: W } = images[0];
  const per = C * H * W;
  const data = new Float32Array(B * per);
  images.forEach((im, k) => {
    if (im.channels !== C || im.height !== H || im.width !== W) {
      throw new Error(
        `collate: sample ${indices[k]} is ${im.channels}x${im.height}x${im.width} but sample ${indices[0]} is ${C}x${H}x${W}; ` +
        'give the DataLoader a transform that makes every image the same size',
      );
    }
    data.set(im.data, k * per);
  });
  const nulls = labels.filter((l) => l === null).length;
  if (nulls !== 0 && nulls !== B) throw new Error('collate: some samples have labels and some do not');
  const labelTensor = nulls === B ? null : new Tensor(BigInt64Array.from(labels, (l) => BigInt(l as number)), [B], 'int64');
  return { images: new Tensor(data, [B, C, H, W], 'float32'), labels: labelTensor, indices, batch, epoch };
}
