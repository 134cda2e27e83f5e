// Bundles the browser example: examples/browser/main.ts → examples/browser/dist/ (ESM, es2022, not minified).
//
//   node examples/browser/build.mjs            then serve examples/browser/ (any static server) and open index.html
//
// - Not minified: gpu.js compiles kernels from their JavaScript source (Function.prototype.toString), and the
//   kernels in kernels/gpu read `this.thread`/`this.constants` and call added functions by name; minifying
//   would rename what gpu.js parses. (esbuild keeps `function` expressions at es2022.)
// - Code splitting on: the gpu backend and gpu.js stay in a chunk of their own, fetched by setBackend('gpu')'s
//   dynamic import only, as in Node. gpu.js comes in as its browser build (the package's "browser" field).
// - Node built-ins: the page never runs the code that needs them, but the import graph reaches them, so each is
//   replaced by a small module (STUBS) that exports the names imported and throws if one is called. A built-in
//   not listed fails the build, so that a new one is looked at rather than silently emptied:
//     node:os             kernels/wasm/runtime.ts asks availableParallelism() only where SharedArrayBuffer
//                         exists (cross-origin isolated pages); the page is not, so the wasm kernels run on 1 thread
//     node:worker_threads kernels/wasm/pool.ts: the thread pool, only started with more than 1 thread
//     pngjs, jpeg-js      src/data/decode.ts (reached through transforms.ts): the page decodes with a canvas
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

const fail = (what) => `() => { throw new Error(${JSON.stringify(`${what} is not available in the browser build`)}); }`;
const STUBS = {
  'node:os': `export const availableParallelism = () => 1; export const cpus = () => [{}];`,
  'node:worker_threads': `export class Worker { constructor() { (${fail('node:worker_threads')})(); } }`,
  pngjs: `export const PNG = { sync: { read: ${fail('pngjs')}, write: ${fail('pngjs')} } };`,
  'jpeg-js': `export default { decode: ${fail('jpeg-js')}, encode: ${fail('jpeg-js')} };`,
};

/** Replace the modules in STUBS; refuse any other Node built-in. */
const stubPlugin = {
  name: 'browser-stubs',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (Object.hasOwn(STUBS, args.path)) return { path: args.path, namespace: 'browser-stub' };
      if (/^node:/.test(args.path)) {
        return { errors: [{ text: `${args.path} (imported by ${args.importer}) has no browser stub in examples/browser/build.mjs` }] };
      }
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'browser-stub' }, (args) => ({ contents: STUBS[args.path], loader: 'js' }));
  },
};

/** Build into examples/browser/dist; returns esbuild's metafile (the test reads which inputs went in). */
export async function buildExample({ quiet = false } = {}) {
  const outdir = `${here}dist`;
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { main: `${here}main.ts` },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: false,
    sourcemap: true,
    metafile: true,
    logLevel: quiet ? 'error' : 'warning',
    plugins: [stubPlugin],
  });
  return result.metafile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const meta = await buildExample();
  const outs = Object.entries(meta.outputs).filter(([p]) => p.endsWith('.js'));
  for (const [p, o] of outs) console.log(`${p.replace(/^.*examples\/browser\//, '')}  ${(o.bytes / 1024).toFixed(0)} KiB`);
  console.log('built examples/browser/dist; serve examples/browser/ and open index.html');
}
