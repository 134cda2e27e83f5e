/**
 * Pictures for people: the reconstruction grid (rows of original | masked | reconstruction, as the official
 * notebook shows them) and a loss-curve plot, both as RGB images for encodePng. Tensors are in normalised space;
 * they are shown as x·std + mean, clamped to [0, 1].
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { RgbImage } from '../data/decode.ts';

const GAP = 2;

/** Write image b of a (B, 3, H, W) normalised tensor into `out` at (x0, y0), de-normalised. */
function paste(out: RgbImage, t: Tensor, b: number, x0: number, y0: number, mean: readonly number[], std: readonly number[]): void {
  const [, , H, W] = t.shape;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const v = Number(t.data[((b * 3 + c) * H + y) * W + x]) * std[c] + mean[c];
        out.data[((y0 + y) * out.width + x0 + x) * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
      }
    }
  }
}

/** One row per image: original | masked | reconstruction, separated by white gaps. */
export function reconstructionGrid(panels: readonly Tensor[], mean: readonly number[], std: readonly number[], maxRows = 8): RgbImage {
  const [B, , H, W] = panels[0].shape;
  const rows = Math.min(B, maxRows);
  const width = panels.length * W + (panels.length + 1) * GAP;
  const height = rows * H + (rows + 1) * GAP;
  const img: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(255) };
  for (let r = 0; r < rows; r++) {
    panels.forEach((t, i) => paste(img, t, r, GAP + i * (W + GAP), GAP + r * (H + GAP), mean, std));
  }
  return img;
}

/** A plain line plot of one or more series on white, axes at the left and bottom (no text). */
export function linePlot(series: readonly (readonly number[])[], width = 480, height = 240): RgbImage {
  const img: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(255) };
  const set = (x: number, y: number, rgb: readonly number[]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    img.data.set(rgb, (y * width + x) * 3);
  };
  const margin = 8;
  for (let x = margin; x < width - margin; x++) set(x, height - margin, [0, 0, 0]);
  for (let y = margin; y < height - margin; y++) set(margin, y, [0, 0, 0]);
  const all = series.flat().filter(Number.isFinite);
  if (all.length === 0) return img;
  const lo = Math.min(...all), hi = Math.max(...all);
  const colours = [[31, 119, 180], [214, 39, 40], [44, 160, 44], [148, 103, 189]];
  series.forEach((s, k) => {
    let prev: [number, number] | null = null;
    s.forEach((v, i) => {
      const x = margin + Math.round(((width - 2 * margin) * i) / Math.max(1, s.length - 1));
      const y = height - margin - Math.round(((height - 2 * margin) * (v - lo)) / Math.max(1e-12, hi - lo));
      if (prev) {
        const steps = Math.max(Math.abs(x - prev[0]), Math.abs(y - prev[1]), 1);
        for (let j = 0; j <= steps; j++) set(Math.round(prev[0] + ((x - prev[0]) * j) / steps), Math.round(prev[1] + ((y - prev[1]) * j) / steps), colours[k % colours.length]);
      }
      prev = [x, y];
    });
  });
  return img;
}
