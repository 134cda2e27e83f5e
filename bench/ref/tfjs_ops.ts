/**
 * TensorFlow.js reference for the kernel table (bench/kernels.ts, bench/wasm.ts, bench/ref/torch_ops.py): the same
 * five cases, float32, named alike — matmul 512³ and 1024³; conv 3×3 N16 C64→64 32×32 s1 p1; depthwise 7×7 N16
 * C96 16×16 p3; ConvTranspose2d k4 s2 p1 N8 C96→96 24×24→48×48 — each conv timed as forward + backward input +
 * backward weight through tf.grads with a given output gradient. TF.js's own layout, NHWC, is used (the flop
 * counts are the same). Run as a child process, one backend per process:
 *
 *   node --import tsx bench/ref/tfjs_ops.ts --backend cpu|wasm [--threads N]
 *
 * 'cpu' is @tensorflow/tfjs-backend-cpu (plain JavaScript, one thread); 'wasm' is @tensorflow/tfjs-backend-wasm
 * (XNNPACK, SIMD where the engine has it). With --threads N > 1 the wasm backend is asked for its threaded build;
 * TF.js itself switches that build off under Node (tfjs issue 3830), so it is forced on and, where it cannot
 * start, the run falls back to one thread and `_info` says why. Where a backend lacks a gradient kernel
 * (tf.grads throws), the case reports `cannotTrain` with the error and the forward-only figure instead.
 * Prints one JSON line on stdout: {name: {gflops, ms, runs} | {cannotTrain, fwdGflops, fwdMs, runs}, _info};
 * progress goes to stderr.
 */
import * as tf from '@tensorflow/tfjs-core';
// The gradient functions (tf.grads of conv2d and the rest) are registered by the union package only: tfjs-core's
// Node bundle leaves them out. It also registers the cpu backend; the wasm one is imported below.
import '@tensorflow/tfjs';
import { bestMs, randomFloat32 } from '../timing.ts';

type Case = { gflops: number; ms: number; runs: number } | { cannotTrain: string; fwdGflops: number; fwdMs: number; runs: number };

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const backendName = arg('backend', 'cpu');
const threadsWanted = Number(arg('threads', '1'));
/**
 * A case whose first run takes longer than this is not repeated: that run is the figure (`runs: 1`). The plain-JS
 * backend's convolution gradients take minutes at these sizes (conv 3×3 forward + backward: 2–4 min on a busy
 * 2-core machine, its forward alone ≈ 3 s), and at that scale warm-up no longer matters.
 */
const SLOW_MS = 5000;

function rand(shape: number[]): tf.Tensor {
  return tf.tensor(randomFloat32(shape.reduce((a, b) => a * b, 1)), shape, 'float32');
}

function once(run: () => void): number {
  const t = performance.now();
  tf.tidy(run);
  return performance.now() - t;
}

/** Best-of-several ms of run (tidied), or the first run's ms when that one was slower than SLOW_MS. */
function measure(run: () => void, firstMs = once(run)): { ms: number; runs: number } {
  if (firstMs > SLOW_MS) return { ms: firstMs, runs: 1 };
  return { ms: bestMs(() => tf.tidy(run), 2, 5), runs: 5 };
}

function progress(name: string, c: Case): Case {
  process.stderr.write(`tfjs ${backendName}: ${name} ${JSON.stringify(c)}\n`);
  return c;
}

function benchMatmul(n: number): Case {
  const a = rand([n, n]), b = rand([n, n]);
  const { ms, runs } = measure(() => { tf.matMul(a, b); });
  return progress(`matmul ${n}`, { gflops: (2 * n ** 3) / ms / 1e6, ms, runs });
}

/**
 * forward(x, w) = the op; flops = one pass's flops (the three passes cost the same). Forward + both gradients via
 * tf.grads(forward)([x, w], dy); a backend without a gradient kernel throws there, and then the forward alone is
 * timed and reported as such.
 */
function benchConv(name: string, forward: (x: tf.Tensor, w: tf.Tensor) => tf.Tensor, xShape: number[], wShape: number[], flops: number): Case {
  const x = rand(xShape), w = rand(wShape);
  const y = tf.tidy(() => forward(x, w));
  const dy = rand(y.shape);
  y.dispose();
  const grads = tf.grads(forward);
  const train = () => { grads([x, w], dy); };
  let first: number;
  try {
    first = once(train);
  } catch (e) {
    const { ms, runs } = measure(() => { forward(x, w); });
    return progress(name, { cannotTrain: (e as Error).message.split('\n')[0], fwdGflops: flops / ms / 1e6, fwdMs: ms, runs });
  }
  const { ms, runs } = measure(train, first);
  return progress(name, { gflops: (3 * flops) / ms / 1e6, ms, runs });
}

/** Starts the backend; for wasm with threads > 1, tries the threaded build first. Returns what it ran with. */
async function start(): Promise<string> {
  if (backendName === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend('cpu'))) throw new Error('tfjs-backend-cpu did not start');
    return 'tfjs-backend-cpu (plain JavaScript, 1 thread)';
  }
  if (backendName !== 'wasm') throw new Error(`--backend must be cpu or wasm, got ${backendName}`);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  let why = '';
  if (threadsWanted > 1) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threadsWanted);
    const warn = console.warn;
    // TF.js logs the failure (a message, then the error) instead of throwing it: keep the error's first line.
    console.warn = (...a: unknown[]) => { why = a.map((x) => String(x).split('\n')[0]).join(': '); };
    try {
      if (await tf.setBackend('wasm')) return `tfjs-backend-wasm (threaded${simd ? ' SIMD' : ''} build, ${wasm.getThreadsCount()} threads)`;
    } catch (e) {
      why ||= (e as Error).message;
    } finally {
      console.warn = warn;
    }
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs-backend-wasm did not start');
  const threadsNote = threadsWanted > 1 ? `; its threaded build cannot start under Node: ${why.replace(/\s+/g, ' ').slice(0, 200)}` : '';
  return `tfjs-backend-wasm (${simd ? 'SIMD' : 'no SIMD'}, 1 thread${threadsNote})`;
}

async function main(): Promise<void> {
  const info = await start();
  const same = 'same' as const;
  const out: Record<string, Case | string> = {
    matmul: benchMatmul(512),
    'matmul 1024': benchMatmul(1024),
    'conv3x3 fwd+bwd': benchConv('conv3x3 fwd+bwd',
      (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, same),
      [16, 32, 32, 64], [3, 3, 64, 64], 2 * 16 * 64 * 32 * 32 * 64 * 9,
    ),
    'depthwise7x7 fwd+bwd': benchConv('depthwise7x7 fwd+bwd',
      (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, same),
      [16, 16, 16, 96], [7, 7, 96, 1], 2 * 16 * 96 * 16 * 16 * 49,
    ),
    // ConvTranspose2d(96, 96, 4, stride 2, padding 1): 'same' for the adjoint k4 s2 conv 48→24 pads 1 each side.
    'convTranspose4x4s2 fwd+bwd': benchConv('convTranspose4x4s2 fwd+bwd',
      (x, w) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [8, 48, 48, 96], 2, same),
      [8, 24, 24, 96], [4, 4, 96, 96], 2 * 8 * 96 * 24 * 24 * 96 * 16,
    ),
  };
  out._info = `TF.js ${tf.version_core}, ${info}`;
  console.log(JSON.stringify(out));
}

await main();
process.exit(0); // a half-started threaded wasm build may leave workers behind
