/**
 * Datasets: indexable collections of RGB images with optional integer labels.
 *
 * ImageFolder reads a folder tree the way torchvision's ImageFolder does (one sub-folder per class, classes in
 * sorted order, files sorted per folder as `sorted(os.walk(root))` gives them), or a folder of unlabeled images.
 * Unreadable files are found when the folder is listed (a header check by default), reported with their path,
 * counted and left out, so indices stay stable for the whole run. FashionMnist reads the IDX files of Zalando's
 * Fashion-MNIST (Debian's dataset-fashion-mnist), gzipped or not, grey 28×28 turned into RGB.
 * Not here: TIFF/BMP/WebP files, torchvision's `is_valid_file` hook, downloading.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { join, relative } from 'node:path';
import { decodeImage, sniffFormat, ImageDecodeError, type DecodeOptions, type RgbImage } from './decode.ts';

export interface Sample {
  image: RgbImage;
  /** the class index, or null for unlabeled data */
  label: number | null;
}

export interface Dataset {
  readonly length: number;
  get(i: number): Sample;
  /** Optional: the same sample with its file read asynchronously (the loader prefers it when present). */
  getAsync?(i: number): Promise<Sample>;
  /** class names, indexed by label */
  readonly classes?: readonly string[];
}

function checkIndex(i: number, n: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`${what}: index ${i} out of range [0, ${n})`);
}

// ---------------------------------------------------------------------------------------------------------
// ImageFolder
// ---------------------------------------------------------------------------------------------------------

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface ImageFolderOptions {
  /**
   * 'folders': one sub-folder per class (torchvision ImageFolder; files directly in the root are ignored).
   * 'none': every image under the root, recursively, unlabeled.
   * 'auto' (default): 'none' if the root itself holds image files, otherwise 'folders'.
   */
  labels?: 'auto' | 'folders' | 'none';
  /**
   * How files are checked when listed: 'header' (default) reads the first bytes (PNG signature and IHDR, JPEG
   * SOI); 'decode' decodes every file (slow; small folders); 'none' checks nothing. A file that passes the check
   * but fails to decode later makes `get` throw ImageDecodeError with its path.
   */
  verify?: 'header' | 'decode' | 'none';
  /** file name endings accepted, case-insensitively (default .png .jpg .jpeg) */
  extensions?: readonly string[];
  /** called for every skipped file; without it each is written to console.warn */
  onSkip?: (file: SkippedFile) => void;
  decode?: DecodeOptions;
}

const DEFAULT_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export class ImageFolder implements Dataset {
  readonly root: string;
  /** absolute file paths, in dataset order */
  readonly files: readonly string[];
  /** per-file class index (null when unlabeled) */
  readonly targets: Int32Array | null;
  readonly classes?: readonly string[];
  readonly classToIdx?: Readonly<Record<string, number>>;
  /** files left out when listing, with the reason */
  readonly skipped: readonly SkippedFile[];
  private readonly decodeOptions: DecodeOptions;

  constructor(root: string, options: ImageFolderOptions = {}) {
    this.root = root;
    this.decodeOptions = options.decode ?? {};
    let st;
    try {
      st = statSync(root);
    } catch {
      throw new Error(`ImageFolder: ${root} does not exist`);
    }
    if (!st.isDirectory()) throw new Error(`ImageFolder: ${root} is not a folder`);
    const exts = (options.extensions ?? DEFAULT_EXTENSIONS).map((e) => e.toLowerCase());
    const isImage = (name: string) => exts.some((e) => name.toLowerCase().endsWith(e));
    const verify = options.verify ?? 'header';
    const skipped: SkippedFile[] = [];
    const onSkip = options.onSkip ?? ((f: SkippedFile) => console.warn(`ImageFolder: skipping ${f.path}: ${f.reason}`));
    const accept = (path: string): boolean => {
      const reason = verify === 'none' ? null : checkFile(path, verify, this.decodeOptions);
      if (reason === null) return true;
      const f = { path, reason };
      skipped.push(f);
      onSkip(f);
      return false;
    };

    const top = readdirSync(root, { withFileTypes: true });
    let mode = options.labels ?? 'auto';
    if (mode === 'auto') mode = top.some((d) => !isDir(join(root, d.name), d) && isImage(d.name)) ? 'none' : 'folders';

    const files: string[] = [];
    if (mode === 'none') {
      for (const f of walkSorted(root, isImage)) if (accept(f)) files.push(f);
      this.targets = null;
    } else {
      const classes = top.filter((d) => isDir(join(root, d.name), d)).map((d) => d.name).sort(codePointCompare);
      if (classes.length === 0) throw new Error(`ImageFolder: no class folders in ${root}`);
      const labels: number[] = [];
      classes.forEach((cls, idx) => {
        for (const f of walkSorted(join(root, cls), isImage)) {
          if (accept(f)) { files.push(f); labels.push(idx); }
        }
      });
      this.classes = classes;
      this.classToIdx = Object.fromEntries(classes.map((c, i) => [c, i]));
      this.targets = Int32Array.from(labels);
    }
    if (files.length === 0) throw new Error(`ImageFolder: no readable ${exts.join('/')} images under ${root}`);
    this.files = files;
    this.skipped = skipped;
  }

  get length(): number {
    return this.files.length;
  }

  get skippedCount(): number {
    return this.skipped.length;
  }

  get(i: number): Sample {
    checkIndex(i, this.files.length, 'ImageFolder.get');
    const path = this.files[i];
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new ImageDecodeError(path, `cannot read: ${(e as Error).message}`);
    }
    return { image: decodeImage(bytes, path, this.decodeOptions), label: this.targets ? this.targets[i] : null };
  }

  async getAsync(i: number): Promise<Sample> {
    checkIndex(i, this.files.length, 'ImageFolder.getAsync');
    const path = this.files[i];
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new ImageDecodeError(path, `cannot read: ${(e as Error).message}`);
    }
    return { image: decodeImage(bytes, path, this.decodeOptions), label: this.targets ? this.targets[i] : null };
  }

  /** The path of sample i relative to the root (for messages). */
  relativePath(i: number): string {
    return relative(this.root, this.files[i]);
  }
}

/** Python's str ordering (by code point), not the locale's. */
function codePointCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDir(path: string, d: { isDirectory(): boolean; isSymbolicLink(): boolean }): boolean {
  if (d.isDirectory()) return true;
  if (!d.isSymbolicLink()) return false;
  try {
    return statSync(path).isDirectory(); // os.walk(followlinks=True) follows links
  } catch {
    return false;
  }
}

/**
 * Image files under `dir` in the order of torchvision's make_dataset: `for root, _, names in sorted(os.walk(dir))`
 * then `sorted(names)`, i.e. folders ordered by their full path string, files by name within a folder.
 */
function walkSorted(dir: string, isImage: (name: string) => boolean): string[] {
  const folders: { path: string; names: string[] }[] = [];
  const seen = new Set<string>();
  const visit = (path: string) => {
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return;
    }
    if (seen.has(real)) return; // a link cycle
    seen.add(real);
    const entries = readdirSync(path, { withFileTypes: true });
    const names: string[] = [];
    const subdirs: string[] = [];
    for (const d of entries) {
      const full = join(path, d.name);
      if (isDir(full, d)) subdirs.push(full);
      else if (isImage(d.name)) names.push(d.name);
    }
    folders.push({ path, names: names.sort(codePointCompare) });
    for (const s of subdirs) visit(s);
  };
  visit(dir);
  folders.sort((a, b) => codePointCompare(a.path, b.path));
  return folders.flatMap((f) => f.names.map((n) => join(f.path, n)));
}

/** null when the file looks readable, else the reason it is not. */
function checkFile(path: string, verify: 'header' | 'decode', decodeOptions: DecodeOptions): string | null {
  try {
    if (verify === 'decode') {
      decodeImage(readFileSync(path), path, decodeOptions);
      return null;
    }
    const head = new Uint8Array(32);
    const fd = openSync(path, 'r');
    let n: number;
    try {
      n = readSync(fd, head, 0, 32, 0);
    } finally {
      closeSync(fd);
    }
    const bytes = head.subarray(0, n);
    const fmt = sniffFormat(bytes);
    if (typeof fmt !== 'string') return fmt.unsupported;
    if (fmt === 'png') {
      if (n < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return 'PNG without an IHDR chunk';
      const dv = new DataView(bytes.buffer, bytes.byteOffset, n);
      if (dv.getUint32(16) === 0 || dv.getUint32(20) === 0) return 'PNG of zero size';
    } else if (n < 4) {
      return 'JPEG too short';
    }
    return null;
  } catch (e) {
    return e instanceof ImageDecodeError ? e.message.replace(/^cannot decode image .*?: /, '') : `cannot read: ${(e as Error).message}`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// IDX files and Fashion-MNIST
// ---------------------------------------------------------------------------------------------------------

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Parse an IDX file (LeCun's MNIST format): two zero bytes, a type byte (only 0x08, unsigned byte, is supported),
 * the number of dimensions, each dimension as a big-endian uint32, then the data row-major. Gzipped input
 * (1f 8b) is inflated first.
 */
export function parseIdx(bytes: Uint8Array, pathForErrors = '<bytes>'): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`parseIdx: ${pathForErrors}: bad gzip data: ${(e as Error).message}`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error(`parseIdx: ${pathForErrors}: not an IDX file`);
  if (bytes[2] !== 0x08) throw new Error(`parseIdx: ${pathForErrors}: element type 0x${bytes[2].toString(16)} not supported (unsigned byte only)`);
  const ndim = bytes[3];
  if (bytes.length < 4 + 4 * ndim) throw new Error(`parseIdx: ${pathForErrors}: truncated header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(dv.getUint32(4 + 4 * d));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndim;
  if (bytes.length - start !== count) {
    throw new Error(`parseIdx: ${pathForErrors}: dims [${dims.join(', ')}] need ${count} bytes of data, file has ${bytes.length - start}`);
  }
  return { dims, data: bytes.subarray(start, start + count) };
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** torchvision's FashionMNIST.classes */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

function findIdx(dir: string, stem: string): string {
  for (const name of [stem, `${stem}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`FashionMnist: neither ${join(dir, stem)} nor ${join(dir, stem)}.gz exists`);
}

/**
 * Fashion-MNIST: 60000 training / 10000 test images, 28×28 grey, labels 0..9. Images come out as RGB with the
 * grey value in all three channels (as `Image.fromarray(x, 'L').convert('RGB')`).
 */
export class FashionMnist implements Dataset {
  readonly classes = FASHION_MNIST_CLASSES;
  readonly split: 'train' | 'test';
  readonly height: number;
  readonly width: number;
  /** N·H·W grey bytes */
  readonly images: Uint8Array;
  readonly targets: Uint8Array;

  constructor(dir: string = FASHION_MNIST_DIR, split: 'train' | 'test' = 'train') {
    if (split !== 'train' && split !== 'test') throw new Error(`FashionMnist: split must be 'train' or 'test', got '${String(split)}'`);
    this.split = split;
    const prefix = split === 'train' ? 'train' : 't10k';
    const imgPath = findIdx(dir, `${prefix}-images-idx3-ubyte`);
    const lblPath = findIdx(dir, `${prefix}-labels-idx1-ubyte`);
    const imgs = parseIdx(readFileSync(imgPath), imgPath);
    const lbls = parseIdx(readFileSync(lblPath), lblPath);
    if (imgs.dims.length !== 3) throw new Error(`FashionMnist: ${imgPath} has ${imgs.dims.length} dims, expected 3`);
    if (lbls.dims.length !== 1) throw new Error(`FashionMnist: ${lblPath} has ${lbls.dims.length} dims, expected 1`);
    if (imgs.dims[0] !== lbls.dims[0]) throw new Error(`FashionMnist: ${imgs.dims[0]} images but ${lbls.dims[0]} labels`);
    [, this.height, this.width] = imgs.dims;
    this.images = imgs.data;
    this.targets = lbls.data;
  }

  get length(): number {
    return this.targets.length;
  }

  get(i: number): Sample {
    checkIndex(i, this.targets.length, 'FashionMnist.get');
    const n = this.height * this.width;
    const grey = this.images.subarray(i * n, (i + 1) * n);
    const data = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = grey[p];
    return { image: { width: this.width, height: this.height, data }, label: this.targets[i] };
  }
}

/** A view of `dataset` through a list of its indices (torch.utils.data.Subset). */
export function subset(dataset: Dataset, indices: readonly number[]): Dataset {
  for (const i of indices) checkIndex(i, dataset.length, 'subset');
  const idx = [...indices];
  const view: Dataset = {
    length: idx.length,
    classes: dataset.classes,
    get: (i) => {
      checkIndex(i, idx.length, 'subset.get');
      return dataset.get(idx[i]);
    },
  };
  const getAsync = dataset.getAsync?.bind(dataset);
  if (getAsync) {
    view.getAsync = (i) => {
      checkIndex(i, idx.length, 'subset.getAsync');
      return getAsync(idx[i]);
    };
  }
  return view;
}
