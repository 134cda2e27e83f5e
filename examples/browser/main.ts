/**
 * The browser example's page script (bundled into dist/main.js by build.mjs): loads the tiny SparK checkpoint
 * with fetch, selects the gpu backend (gpu.js on WebGL2/WebGL) or falls back to the CPU, decodes the chosen
 * image with a canvas, masks it with a seeded mask, and draws original | masked | reconstruction.
 *
 * URL parameters: `sample` (bundled sample index, default 0), `seed` (mask seed, default 0), `backend=cpu` to
 * skip the gpu backend. The page names the backend that actually ran, and publishes its last result on
 * `window.sparkDemo` (for the test in test/examples/browser.test.ts): `state` is 'done' or 'error' once a run ends.
 * Left out: batching several images, changing the mask ratio (it is the checkpoint's).
 */
import { setBackend, getBackendName, backend } from '../../src/backend/registry.ts';
import { tidy } from '../../src/tensor/scope.ts';
import type { SparK } from '../../models/spark/spark.ts';
import type { RgbImage } from '../../src/data/decode.ts';
import { sparkFromCheckpoint, prepareImage, rgbFromRgba, maskFromSeed, reconstruct, toRgba, type DemoConfig, type Reconstruction } from './demo.ts';

const CHECKPOINT = './assets/spark-tiny.safetensors';
const SAMPLES = ['./assets/sample-0.png', './assets/sample-1.png', './assets/sample-2.png', './assets/sample-3.png'];

/** What the page publishes on window.sparkDemo. */
export interface DemoState {
  state: 'loading' | 'running' | 'done' | 'error';
  error?: string;
  /** getBackendName() during the run, e.g. 'gpu (gpu.js webgl2, WebGL2Kernel)', or 'cpu' */
  backend: string;
  /** the gpu.js Kernel class the last kernel ran on ('' on the cpu backend) */
  kernelClass: string;
  /** why the CPU runs instead of WebGL ('' when the gpu backend runs on WebGL) */
  fallback: string;
  /** the image: 'sample-<i>' or the picked file's name; the mask seed */
  image: string;
  seed: number;
  /** normalised (3, H, W) input and reconstruction (visible patches from the input, masked ones predicted) */
  input?: Float32Array;
  reconstruction?: Float32Array;
  mask?: Uint8Array;
  loss?: number;
  ms?: number;
  /** run again with another sample or seed (for the test and the console) */
  run: (options: { sample?: number; seed?: number }) => Promise<DemoState>;
}

declare global {
  interface Window { sparkDemo: DemoState }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

function setStatus(text: string, error = false): void {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', error);
}

/** Decode image bytes with the browser, exactly (no colour conversion, no premultiplied alpha), to RGB. */
async function decode(blob: Blob): Promise<RgbImage> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return rgbFromRgba(data, canvas.width, canvas.height);
}

function draw(id: string, chw: Float32Array, size: number): void {
  const canvas = $<HTMLCanvasElement>(id);
  canvas.width = canvas.height = size;
  canvas.getContext('2d')!.putImageData(new ImageData(toRgba(chw, size, size), size, size), 0, 0);
}

/** The gpu.js kernel class of the gpu backend's last kernel, or '' on the cpu backend. */
function kernelClass(): string {
  return backend().device?.kernelClass() ?? '';
}

/**
 * Select the gpu backend if it runs on WebGL here; otherwise the cpu backend, with the reason. gpu.js's 'gpu'
 * mode picks WebGL2, then WebGL, and would quietly fall back to its WebAssembly or CPU kernels: those are
 * refused here (they are slower than sparkts's own CPU kernels), so that the page never claims WebGL falsely.
 */
async function chooseBackend(): Promise<string> {
  if (params.get('backend') === 'cpu') {
    await setBackend('cpu');
    return 'asked for with ?backend=cpu';
  }
  try {
    await setBackend('gpu', { mode: 'gpu' });
  } catch (e) {
    await setBackend('cpu');
    return `${hasWebGL() ? 'the gpu backend could not start' : 'WebGL missing'} (${(e as Error).message})`;
  }
  const cls = kernelClass();
  if (!/^WebGL2?Kernel$/.test(cls)) {
    await setBackend('cpu');
    return hasWebGL() ? `gpu.js picked ${cls || 'no kernel'}, not WebGL` : `WebGL missing (gpu.js offered ${cls || 'no kernel'})`;
  }
  return '';
}

/** Whether this browser hands out a WebGL2 or WebGL context at all (to name the reason for a fallback). */
function hasWebGL(): boolean {
  const canvas = document.createElement('canvas');
  return (canvas.getContext('webgl2') ?? canvas.getContext('webgl')) !== null;
}

function showBackend(fallback: string): void {
  const el = $('backend');
  el.textContent = fallback ? `cpu fallback: ${fallback}; running on ${getBackendName()}` : getBackendName();
  el.classList.toggle('fallback', fallback !== '');
}

async function start(): Promise<void> {
  const demo: DemoState = window.sparkDemo = {
    state: 'loading', backend: '', kernelClass: '', fallback: '', image: '', seed: 0, run: async () => demo,
  };
  const response = await fetch(CHECKPOINT);
  if (!response.ok) throw new Error(`fetching ${CHECKPOINT}: HTTP ${response.status}`);
  const { spark, config, metadata } = sparkFromCheckpoint(new Uint8Array(await response.arrayBuffer()));
  const training = metadata.training ? JSON.parse(metadata.training) as { steps: number; lossFirst10: number; lossLast10: number } : null;
  $('checkpoint').textContent = `checkpoint: ${spark.numParameters().toLocaleString()} parameters, input ${config.inputSize}×${config.inputSize}, ` +
    `mask ratio ${config.maskRatio}` + (training ? `, ${training.steps} pretraining steps (loss ${training.lossFirst10} → ${training.lossLast10})` : '');

  let fallback = await chooseBackend();
  showBackend(fallback);

  let image: RgbImage | null = null;
  let imageName = '';
  let seed = Number(params.get('seed') ?? 0) || 0;
  $<HTMLInputElement>('seed').value = String(seed);

  const loadSample = async (i: number) => {
    const k = Math.max(0, Math.min(SAMPLES.length - 1, Math.floor(i)));
    image = await decode(await (await fetch(SAMPLES[k])).blob());
    imageName = `sample-${k}`;
    document.querySelectorAll('#samples button').forEach((b, j) => b.classList.toggle('chosen', j === k));
  };

  let first = true;
  const runOnce = async (): Promise<DemoState> => {
    if (!image) throw new Error('no image');
    demo.state = 'running';
    setStatus(first && !fallback ? 'computing… (the first run compiles the WebGL kernels: seconds, or more on a software GL)' : 'computing…');
    first = false;
    await new Promise((r) => setTimeout(r, 0)); // let the status paint
    const t0 = performance.now();
    let rec: Reconstruction;
    try {
      rec = forward(spark, config, image, seed);
    } catch (e) {
      if (fallback) throw e;
      // a gpu kernel failed here: say so, and compute on the CPU instead
      fallback = `the gpu backend failed (${(e as Error).message})`;
      await setBackend('cpu');
      showBackend(fallback);
      rec = forward(spark, config, image, seed);
    }
    const ms = performance.now() - t0;
    const size = config.inputSize;
    draw('original', rec.input, size);
    draw('masked', rec.masked, size);
    draw('reconstruction', rec.reconstruction, size);
    Object.assign(demo, {
      state: 'done', backend: getBackendName(), kernelClass: kernelClass(), fallback, image: imageName, seed,
      input: rec.input, reconstruction: rec.reconstruction, mask: rec.mask, loss: rec.loss, ms,
    });
    setStatus(`${imageName}, mask seed ${seed}: masked-patch loss ${rec.loss.toFixed(4)}, ${ms.toFixed(0)} ms on ${demo.backend}` +
      (demo.kernelClass ? ` (last kernel: ${demo.kernelClass})` : ''));
    return demo;
  };

  const guarded = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return demo;
    } catch (e) {
      demo.state = 'error';
      demo.error = (e as Error).message;
      setStatus(`error: ${demo.error}`, true);
      return demo;
    }
  };
  demo.run = (o) => guarded(async () => {
    if (o.sample !== undefined) await loadSample(o.sample);
    if (o.seed !== undefined) {
      seed = o.seed;
      $<HTMLInputElement>('seed').value = String(seed);
    }
    await runOnce();
  });

  // controls
  SAMPLES.forEach((src, i) => {
    const b = document.createElement('button');
    b.title = `sample ${i}`;
    b.innerHTML = `<img alt="sample ${i}" src="${src}">`;
    b.onclick = () => void demo.run({ sample: i });
    $('samples').append(b);
  });
  $<HTMLInputElement>('file').onchange = (ev) => {
    const file = (ev.target as HTMLInputElement).files?.[0];
    if (!file) return;
    void guarded(async () => {
      image = await decode(file);
      imageName = file.name;
      document.querySelectorAll('#samples button').forEach((b) => b.classList.remove('chosen'));
      await runOnce();
    });
  };
  $<HTMLInputElement>('seed').onchange = (ev) => void demo.run({ seed: Math.max(0, Math.floor(Number((ev.target as HTMLInputElement).value) || 0)) });
  $('fixed').onclick = () => void demo.run({ seed: 0 });
  $('random').onclick = () => void demo.run({ seed: Math.floor(Math.random() * 1e9) });

  await demo.run({ sample: Number(params.get('sample') ?? 0) || 0 });
}

/** One forward; device memory made on the way is freed (only host arrays come out). */
function forward(spark: SparK, config: DemoConfig, image: RgbImage, seed: number): Reconstruction {
  return tidy(() => reconstruct(spark, prepareImage(image, config.inputSize), maskFromSeed(spark, seed)));
}

start().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  window.sparkDemo = { ...(window.sparkDemo ?? {}), state: 'error', error: message } as DemoState;
  setStatus(`error: ${message}`, true);
});
