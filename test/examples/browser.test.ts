/**
 * The browser example end to end: builds examples/browser (esbuild), serves it on a localhost port, opens it in
 * Debian's headless chromium through playwright-core (WebGL on SwiftShader), and checks that the page draws
 * original | masked | reconstruction, that it ran on the gpu backend with a gpu.js WebGL kernel class, and that
 * its reconstruction equals the one the same code (examples/browser/demo.ts) computes in Node on the cpu
 * backend from the same checkpoint, image and mask seed.
 *
 * Skipped (and says so) where /usr/bin/chromium is absent. If WebGL cannot start in the headless browser, the
 * test says so and checks the page's CPU fallback instead. Not covered: picking a file (<input type=file>).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { decodeImage } from '../../src/data/decode.ts';
import { setBackend } from '../../src/backend/registry.ts';
import { sparkFromCheckpoint, prepareImage, maskFromSeed, reconstruct, toRgba } from '../../examples/browser/demo.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../examples/browser/', import.meta.url));
const SAMPLE = 1;
const SEED = 3;
/**
 * Agreement wanted between the page and Node, on normalised values (about −2.1 … 2.6). Measured: 2.4e-6 between
 * WebGL2 (SwiftShader) and Node's CPU; the page's CPU fallback uses relaxed-SIMD WebAssembly (fused multiply-add),
 * Node's does not, so those differ by float32 rounding too.
 */
const TOLERANCE = 1e-4;

/** Run before the page's scripts: no canvas hands out a WebGL context, as on a machine without WebGL. */
const NO_WEBGL = `(() => {
  const refuse = (getContext) => function (type, ...rest) {
    return /webgl/i.test(String(type)) ? null : getContext.call(this, type, ...rest);
  };
  HTMLCanvasElement.prototype.getContext = refuse(HTMLCanvasElement.prototype.getContext);
  if (typeof OffscreenCanvas !== 'undefined') OffscreenCanvas.prototype.getContext = refuse(OffscreenCanvas.prototype.getContext);
})()`;

const ARGS = [
  '--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic', '--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json',
  '.png': 'image/png', '.safetensors': 'application/octet-stream',
};

/** A static server over examples/browser on 127.0.0.1 (a free port). */
async function serve(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(join(ROOT, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!path.startsWith(ROOT) || !existsSync(path) || !statSync(path).isFile() || !TYPES[extname(path)]) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(path)] }).end(readFileSync(path));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** The page's three canvases: size and RGBA bytes. */
const CANVASES = `(() => Object.fromEntries(['original', 'masked', 'reconstruction'].map((id) => {
  const c = document.getElementById(id);
  return [id, { width: c.width, height: c.height, rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) }];
})))()`;

interface PageResult {
  state: string; error?: string; backend: string; kernelClass: string; fallback: string; image: string; seed: number;
  input: number[]; reconstruction: number[]; loss: number; ms: number; backendText: string;
}

const RESULT = `(() => {
  const d = window.sparkDemo;
  return { state: d.state, error: d.error, backend: d.backend, kernelClass: d.kernelClass, fallback: d.fallback, image: d.image,
    seed: d.seed, input: Array.from(d.input ?? []), reconstruction: Array.from(d.reconstruction ?? []), loss: d.loss, ms: d.ms,
    backendText: document.getElementById('backend').textContent };
})()`;

/**
 * Named function expressions the bundle renamed (`function idiv2(`): esbuild renames a nested name that equals a
 * global the bundle references, and the kernels reference gpu.js's added functions as globals. gpu.js reads an
 * added function's name from its source unless addFunction's settings carry `name`. Used to explain a failure.
 */
function renamedFunctions(): string[] {
  const dist = join(ROOT, 'dist');
  const found = new Set<string>();
  for (const f of readdirSync(dist).filter((n) => n.endsWith('.js'))) {
    for (const m of readFileSync(join(dist, f), 'utf8').matchAll(/addFunction\(function ([A-Za-z_$][\w$]*?\d+)\(/g)) found.add(m[1]);
  }
  return [...found];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

if (!existsSync(CHROMIUM)) {
  console.log(`SKIPPED browser example test: ${CHROMIUM} is absent`);
  test.skip('browser example in headless chromium', () => {});
} else {
  test('browser example in headless chromium: WebGL reconstruction equals the CPU one', async () => {
    execFileSync(process.execPath, [join(ROOT, 'build.mjs')], { stdio: 'pipe' });

    // the CPU result in Node, through the same code as the page (demo.ts)
    await setBackend('cpu');
    const { spark, config } = sparkFromCheckpoint(readFileSync(join(ROOT, 'assets', 'spark-tiny.safetensors')));
    const image = decodeImage(readFileSync(join(ROOT, 'assets', `sample-${SAMPLE}.png`)));
    const cpu = reconstruct(spark, prepareImage(image, config.inputSize), maskFromSeed(spark, SEED));

    const { chromium } = await import('playwright-core');
    const { server, url } = await serve();
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
      await page.goto(`${url}index.html?sample=${SAMPLE}&seed=${SEED}`);
      await page.waitForFunction('window.sparkDemo && (window.sparkDemo.state === "done" || window.sparkDemo.state === "error")', null, { timeout: 90_000 });
      const r = await page.evaluate(RESULT) as PageResult;
      assert.is(r.state, 'done', `the page failed: ${r.error} ${problems.join('; ')}`);
      assert.is(r.image, `sample-${SAMPLE}`);
      assert.is(r.seed, SEED);

      const hasWebGL = await page.evaluate('!!document.createElement("canvas").getContext("webgl2") || !!document.createElement("canvas").getContext("webgl")') as boolean;
      if (hasWebGL) {
        const renamed = renamedFunctions();
        assert.match(r.backend, /^gpu \(gpu\.js \w+, WebGL2?Kernel\)$/, `expected the gpu backend on WebGL, got '${r.backend}' (fallback: ${r.fallback})` +
          (renamed.length ? `; note: the bundle renamed the functions handed to gpu.js's addFunction (${renamed.join(', ')}), so kernels calling them by their names fail unless addFunction's settings carry \`name\`` : ''));
        assert.match(r.kernelClass, /^WebGL2?Kernel$/);
        assert.is(r.fallback, '');
        assert.is(r.backendText, r.backend, 'the page names the backend that ran');
      } else {
        console.log('NOTE: WebGL cannot start in this headless chromium; checking the CPU fallback instead');
        assert.is(r.backend, 'cpu');
        assert.match(r.backendText, /^cpu fallback: WebGL missing/);
      }

      // the same input as Node's (canvas decoding is exact for these PNGs), and the same reconstruction
      assert.is(maxAbsDiff(r.input, cpu.input), 0, 'the page decoded and resized the sample differently from Node');
      const err = maxAbsDiff(r.reconstruction, cpu.reconstruction);
      console.log(`browser example: ${r.backend}, ${r.ms.toFixed(0)} ms in the page; reconstruction max |page − Node cpu| = ${err.toExponential(2)}; loss page ${r.loss.toFixed(6)} vs Node ${cpu.loss.toFixed(6)}`);
      assert.ok(err <= TOLERANCE, `reconstruction differs from the CPU one by ${err} (tolerance ${TOLERANCE})`);
      assert.ok(Math.abs(r.loss - cpu.loss) <= TOLERANCE, `loss ${r.loss} vs ${cpu.loss}`);

      // the three canvases: drawn at the model size, not blank, and the reconstruction canvas shows those numbers
      const canvases = await page.evaluate(CANVASES) as Record<string, { width: number; height: number; rgba: number[] }>;
      for (const [id, c] of Object.entries(canvases)) {
        assert.is(c.width, config.inputSize, `${id} width`);
        assert.is(c.height, config.inputSize, `${id} height`);
        const alpha = c.rgba.filter((_, i) => i % 4 === 3);
        assert.ok(alpha.every((a) => a === 255), `${id} is not fully drawn`);
        const values = new Set(c.rgba.filter((_, i) => i % 4 !== 3));
        assert.ok(values.size > 8, `${id} looks blank (${values.size} distinct values)`);
      }
      assert.ok(maxAbsDiff(canvases.reconstruction.rgba, toRgba(cpu.reconstruction, config.inputSize, config.inputSize)) <= 1);
      assert.ok(maxAbsDiff(canvases.masked.rgba, toRgba(cpu.masked, config.inputSize, config.inputSize)) <= 1);
      assert.equal(problems, [], 'no errors in the page');

      // the same page where WebGL is missing: the CPU runs, the page says so, and the numbers are the same
      const noGl = await browser.newPage();
      await noGl.addInitScript(NO_WEBGL);
      await noGl.goto(`${url}index.html?sample=${SAMPLE}&seed=${SEED}`);
      await noGl.waitForFunction('window.sparkDemo && (window.sparkDemo.state === "done" || window.sparkDemo.state === "error")', null, { timeout: 30_000 });
      const f = await noGl.evaluate(RESULT) as PageResult;
      assert.is(f.state, 'done', `the page without WebGL failed: ${f.error}`);
      assert.match(f.backend, /^cpu/);
      assert.is(f.kernelClass, '');
      assert.match(f.backendText, /^cpu fallback: WebGL missing/);
      const cpuErr = maxAbsDiff(f.reconstruction, cpu.reconstruction);
      console.log(`browser example without WebGL: '${f.backendText}', ${f.ms.toFixed(0)} ms; reconstruction max |page − Node cpu| = ${cpuErr.toExponential(2)}`);
      assert.ok(cpuErr <= TOLERANCE, `CPU fallback reconstruction differs from Node's by ${cpuErr}`);
    } finally {
      await browser.close();
      server.close();
    }
  });
}

test.run();
