/**
 * Image decoding to 8-bit RGB (HWC, interleaved), and PNG encoding for pictures.
 *
 * The decoded pixels are what `PIL.Image.open(path).convert('RGB')` gives, which is how torchvision's ImageFolder
 * loads images: the format is told by the file's magic bytes (not its name); PNG goes through pngjs and JPEG
 * through jpeg-js. Every colour type becomes RGB:
 *   grey, grey+alpha, 1/2/4-bit grey   → the grey value in all three channels (low bit depths scaled to 0..255);
 *   palette (with or without tRNS)      → the palette colour;
 *   RGBA, grey+alpha, tRNS              → alpha is DROPPED, not composited (PIL's convert('RGB') does the same);
 *   16-bit samples                      → the high byte (PIL's "RGB;16B" / "LA;16B" unpackers do the same).
 * One deliberate difference from PIL: a 16-bit grey PNG opens in PIL 9 as mode "I" and convert('RGB') clips it
 * to 255 (white); here it also keeps the high byte.
 * JPEG decoders differ by a few intensity levels (libjpeg's IDCT and chroma upsampling vs jpeg-js's), so JPEG
 * pixels match PIL only approximately. EXIF orientation is ignored, as PIL's open() and torchvision ignore it.
 * Not supported: GIF, BMP, WebP, TIFF, animated PNG frames past the first, CMYK corner cases.
 */
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R,G,B (HWC). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A file that cannot be decoded: corrupt, truncated, or of an unsupported format. `path` names it. */
export class ImageDecodeError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(`cannot decode image ${path}: ${reason}`);
    this.name = 'ImageDecodeError';
    this.path = path;
  }
}

export type ImageFormat = 'png' | 'jpeg';

export interface DecodeOptions {
  /** jpeg-js's cap on the memory one decode may take (default 1024 MB). */
  maxMemoryUsageInMB?: number;
  /** jpeg-js's cap on the pixel count (default 256 megapixels). */
  maxResolutionInMP?: number;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format told by the first bytes, or a description of what was found instead. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | { unsupported: string } {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length === 0) return { unsupported: 'empty file' };
  const ascii = (n: number) => String.fromCharCode(...bytes.subarray(0, n));
  if (ascii(4) === 'GIF8') return { unsupported: 'GIF is not supported (PNG and JPEG only)' };
  if (ascii(2) === 'BM') return { unsupported: 'BMP is not supported (PNG and JPEG only)' };
  if (ascii(4) === 'RIFF' && bytes.length >= 12 && String.fromCharCode(...bytes.subarray(8, 12)) === 'WEBP') {
    return { unsupported: 'WebP is not supported (PNG and JPEG only)' };
  }
  if (ascii(4) === 'II*\0' || ascii(4) === 'MM\0*') return { unsupported: 'TIFF is not supported (PNG and JPEG only)' };
  return { unsupported: 'not a PNG or JPEG file (unknown magic bytes)' };
}

/** Decode PNG or JPEG bytes to RGB. Throws ImageDecodeError naming `pathForErrors`. */
export function decodeImage(bytes: Uint8Array, pathForErrors = '<bytes>', options: DecodeOptions = {}): RgbImage {
  const format = sniffFormat(bytes);
  if (typeof format !== 'string') throw new ImageDecodeError(pathForErrors, format.unsupported);
  try {
    return format === 'png' ? decodePng(bytes) : decodeJpeg(bytes, options);
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ImageDecodeError(pathForErrors, `${format === 'png' ? 'PNG' : 'JPEG'}: ${msg}`);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const IEND = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];

function readPng(bytes: Uint8Array) {
  // skipRescale keeps 16-bit samples as they are (a Uint16Array), so the high byte can be taken as PIL does;
  // pngjs still expands palettes, tRNS and low bit depths to 8-bit RGBA.
  try {
    return PNG.sync.read(asBuffer(bytes), { skipRescale: true });
  } catch (e) {
    // PIL decodes a file whose only fault is a missing IEND chunk: retry once with it appended
    const n = bytes.length;
    if (n >= 12 && IEND.every((b, i) => bytes[n - 12 + i] === b)) throw tidy(e);
    if (!asBuffer(bytes).includes('IDAT')) throw new Error('truncated file (no IDAT chunk)');
    const withEnd = new Uint8Array(n + 12);
    withEnd.set(bytes);
    withEnd.set(IEND, n);
    try {
      return PNG.sync.read(asBuffer(withEnd), { skipRescale: true });
    } catch {
      throw tidy(e);
    }
  }
}

/** pngjs reports running out of data as "read requests waiting on finished stream". */
function tidy(e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  return new Error(/read requests wait/.test(msg) ? 'truncated file' : msg);
}

function decodePng(bytes: Uint8Array): RgbImage {
  const png = readPng(bytes);
  const { width, height } = png;
  if (!(width > 0 && height > 0)) throw new Error(`bad size ${width}x${height}`);
  const rgba = png.data as unknown as Uint8Array | Uint16Array;
  const n = width * height;
  if (rgba.length < n * 4) throw new Error('truncated pixel data');
  const out = new Uint8Array(n * 3);
  if (rgba instanceof Uint16Array || png.depth === 16) {
    for (let p = 0, q = 0; p < n * 4; p += 4, q += 3) {
      out[q] = rgba[p] >> 8;
      out[q + 1] = rgba[p + 1] >> 8;
      out[q + 2] = rgba[p + 2] >> 8;
    }
  } else {
    // 1/2/4-bit grey stays unscaled under skipRescale: ×255, ×85, ×17 as PIL's "1", "L;2", "L;4" unpackers
    // (palette indices were already replaced by colours)
    const mul = png.depth < 8 && !png.palette ? 255 / (2 ** png.depth - 1) : 1;
    for (let p = 0, q = 0; p < n * 4; p += 4, q += 3) {
      out[q] = rgba[p] * mul;
      out[q + 1] = rgba[p + 1] * mul;
      out[q + 2] = rgba[p + 2] * mul;
    }
  }
  return { width, height, data: out };
}

function decodeJpeg(bytes: Uint8Array, options: DecodeOptions): RgbImage {
  // A truncated file is an error (PIL raises too unless LOAD_TRUNCATED_IMAGES is set), but a file whose only
  // fault is a missing end-of-image marker decodes, as libjpeg lets it: retry once with FF D9 appended.
  const opts = {
    useTArray: true as const,
    formatAsRGBA: false,
    tolerantDecoding: false,
    maxMemoryUsageInMB: options.maxMemoryUsageInMB ?? 1024,
    maxResolutionInMP: options.maxResolutionInMP ?? 256,
  };
  let img;
  try {
    img = jpeg.decode(bytes, opts);
  } catch (e) {
    const n = bytes.length;
    if (n < 2 || (bytes[n - 2] === 0xff && bytes[n - 1] === 0xd9)) throw e;
    const withEoi = new Uint8Array(n + 2);
    withEoi.set(bytes);
    withEoi[n] = 0xff;
    withEoi[n + 1] = 0xd9;
    try {
      img = jpeg.decode(withEoi, opts);
    } catch {
      throw e;
    }
  }
  const { width, height } = img;
  if (!(width > 0 && height > 0)) throw new Error(`bad size ${width}x${height}`);
  if (img.data.length !== width * height * 3) throw new Error('unexpected pixel buffer size');
  return { width, height, data: img.data };
}

/** Encode an RGB image as an 8-bit RGB PNG (for reconstruction pictures). */
export function encodePng(img: RgbImage): Uint8Array {
  checkImage(img, 'encodePng');
  const png = new PNG({ width: img.width, height: img.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = asBuffer(img.data);
  return new Uint8Array(PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

/** Throws unless `img` is a well-formed RgbImage. */
export function checkImage(img: RgbImage, op: string): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) {
    throw new Error(`${op}: bad image size ${img.width}x${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`${op}: ${img.width}x${img.height} RGB needs ${img.width * img.height * 3} bytes, got ${img.data.length}`);
  }
}
