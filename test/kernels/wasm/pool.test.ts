// The worker-thread pool: shares of one export run on several threads over one shared memory, the caller waits
// without spinning, a trap on a worker becomes an error on the caller, and an idle pool keeps no process alive;
// the runtime's split zero fills and plane copies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModuleBuilder } from '../../../kernels/wasm/builder.ts';
import { local, ThreadPool } from '../../../kernels/wasm/pool.ts';
import { WasmRuntime } from '../../../kernels/wasm/runtime.ts';
import { wasmOrSkip } from './helpers.ts';

/** addOne(ptr, n): n f32 values at byte address ptr each get +1. */
function buildModule(): WebAssembly.Module {
  const m = new ModuleBuilder();
  m.importMemory('env', 'memory', { initial: 1, maximum: 16, shared: true });
  m.func('addOne', [['ptr', 'i32'], ['n', 'i32']], [], (f) => {
    const end = f.local('i32', 'end');
    f.get('ptr').get('n').i32Const(4).i32Mul().i32Add().set(end);
    f.block((done) => {
      f.loop((again) => {
        f.get('ptr').get(end).i32GeU().brIf(done);
        f.get('ptr').get('ptr').f32Load().f32Const(1).f32Add().f32Store();
        f.get('ptr').i32Const(4).i32Add().set('ptr');
        f.br(again);
      });
    });
  });
  return new WebAssembly.Module(m.build());
}

test('shares run on every thread over the shared memory; the result is complete', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  const module = buildModule();
  const local = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
  const pool = new ThreadPool(3, module, memory, local, { importModule: 'env', importName: 'memory', names: ['addOne'] });
  const view = new Float32Array(memory.buffer, 0, 3000);
  // Many short rounds: a worker's late wake-up from one round must not pass for the end of the next. Before
  // join waited for the state to change, three runs left round 100, 700 and 4600 incomplete.
  for (let round = 1; round <= 5000; round++) {
    pool.run('addOne', [[0, 1000], [4000, 1000], [8000, 1000]]);
    if (round % 100 === 0 || round < 20) assert.ok(view.every((v) => v === round), `round ${round}`);
  }
  assert.throws(() => pool.run('addOne', [[0, 1], [70000 * 16, 1000]]), /failed on a worker thread/);
  assert.throws(() => pool.run('nope', [[0, 1]]), /'nope' is not one of the pool's exports/);
  pool.close();
});

test('runPrograms: each thread runs its list in order, in several rounds when long; a failure is reported', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  const module = buildModule();
  const local = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
  const pool = new ThreadPool(3, module, memory, local, { importModule: 'env', importName: 'memory', names: ['addOne'] });
  const view = new Float32Array(memory.buffer, 0, 3000);
  // thread t adds 1 to its 1000 floats 5000 times, one float group per call: longer than one round (4 ints a call)
  const programs = [0, 1, 2].map((t) => Array.from({ length: 5000 }, (_, k) => ['addOne', [4000 * t + 4 * (k % 1000), 1]] as const));
  pool.runPrograms(programs);
  assert.ok(view.every((v) => v === 5), 'every float incremented 5 times');
  assert.throws(() => pool.runPrograms([[], [['addOne', [70000 * 16, 1000]]]]), /failed on a worker thread/);
  assert.throws(() => pool.runPrograms([[['nope', [0, 1]]]]), /'nope' is not one of the pool's exports/);
  pool.close();
});

test('runTasks: every task runs once, on whichever thread claims it, with local arguments in that thread\'s area', () => {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
  const module = buildModule();
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
  const pool = new ThreadPool(3, module, memory, exports, { importModule: 'env', importName: 'memory', names: ['addOne'] });
  const f32 = new Float32Array(memory.buffer);
  const bases = [4000, 8000, 12000]; // three areas of 1000 floats
  // task k: +1 at float k % 1000 of the running thread's area, and +1 at its own mark (float 20000 + k)
  const tasks = (count: number) => Array.from({ length: count }, (_, k) => [
    ['addOne', [local(4 * (k % 1000)), 1]], ['addOne', [4 * (20000 + k), 1]],
  ] as const);
  // 3000 tasks fit the task buffer; 40000 do not, and run as per-thread programs instead
  for (const count of [3000, 40000]) {
    f32.fill(0);
    pool.runTasks(tasks(count), bases);
    assert.ok(f32.subarray(20000, 20000 + count).every((v) => v === 1), `${count} tasks: each ran once`);
    const inAreas = f32.subarray(1000, 4000).reduce((a, v) => a + v, 0);
    assert.is(inAreas, count, 'every local +1 landed in some thread\'s area');
    assert.is(f32.subarray(0, 1000).reduce((a, v) => a + v, 0), 0, 'nothing below the areas');
  }
  // a trap on any thread is reported once every thread has stopped; the pool works on afterwards
  for (let i = 0; i < 5; i++) {
    assert.throws(() => pool.runTasks([[['addOne', [0, 1]]], [['addOne', [70000 * 16, 1000]]], [['addOne', [0, 1]]]], bases), /failed on a worker|out of bounds/);
  }
  f32.fill(0);
  pool.runTasks(tasks(100), bases);
  assert.ok(f32.subarray(20000, 20100).every((v) => v === 1), 'after the failures');
  // fixed: thread t runs the t-th contiguous run of tasks (partial sums then do not depend on timing)
  f32.fill(0);
  pool.runTasks(Array.from({ length: 10 }, (_, k) => [['addOne', [local(4 * k), 1]]] as const), bases, true);
  for (let t = 0; t < 3; t++) {
    const mine = Array.from(f32.subarray(1000 * (t + 1), 1000 * (t + 1) + 10));
    assert.equal(mine, Array.from({ length: 10 }, (_, k) => (Math.floor(k / 4) === t ? 1 : 0)), `thread ${t}'s run`);
  }
  assert.throws(() => pool.runTasks([], [0, 1, 2, 3]), /4 bases for 3 threads/);
  f32.fill(0);
  pool.runTasks(tasks(500), bases.slice(0, 2));
  assert.ok(f32.subarray(20000, 20500).every((v) => v === 1), 'on two of the three threads');
  assert.is(f32.subarray(3000, 4000).reduce((a, v) => a + v, 0), 0, 'the third thread\'s area untouched');
  pool.close();
});

test('runtime.zero and runtime.copyPlanes split over the threads give what one thread gives', () => {
  if (!wasmOrSkip('wasm runtime moves')) return;
  for (const threads of [1, 2, 3]) {
    const rt = new WasmRuntime({ threads });
    const n = 1_100_001, planes = 3001, H = 37, W = 39; // above the split thresholds
    const a = rt.alloc(n + 8);
    rt.f32.fill(7, a >>> 2, (a >>> 2) + n + 8);
    rt.zero(a + 4, n);
    assert.is(rt.f32[a >>> 2], 7, 'before');
    assert.ok(rt.f32.subarray((a >>> 2) + 1, (a >>> 2) + 1 + n).every((v) => v === 0), `zeroed on ${threads} threads`);
    assert.is(rt.f32[(a >>> 2) + n + 1], 7, 'after');
    const src = rt.alloc(planes * H * W), dst = rt.alloc(planes * (H + 2) * (W + 3));
    for (let i = 0; i < planes * H * W; i++) rt.f32[(src >>> 2) + i] = i;
    rt.f32.fill(-1, dst >>> 2, (dst >>> 2) + planes * (H + 2) * (W + 3));
    rt.copyPlanes(src, H * W, W, dst + ((W + 3) + 1) * 4, (H + 2) * (W + 3), W + 3, H, W, planes);
    for (const [p, r, c] of [[0, 0, 0], [1500, 20, 28], [3000, 36, 13]]) {
      assert.is(rt.f32[(dst >>> 2) + p * (H + 2) * (W + 3) + (r + 1) * (W + 3) + c + 1], p * H * W + r * W + c);
    }
    assert.is(rt.f32[(dst >>> 2) + 3000 * (H + 2) * (W + 3)], -1, 'the border is left alone');
    rt.pool()?.close();
  }
});

test.run();
