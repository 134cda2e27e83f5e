/**
 * Tensors whose storage lives on a device (the gpu backend, here in gpu.js's WebAssembly mode, present in
 * every Node): results of ops stay there; `.data` brings a tensor home (its device copy released) so host
 * writes are seen by the next op; item()/toArray() only read; reshape and detach share the device copy;
 * dispose() frees it and a disposed tensor says so when used; tidy() disposes what a step made but what it
 * returns; float64 and integer work runs on the host unchanged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tensor, setBackend, tidy, backend, Tensor, randn, zeros } from '../../src/index.ts';

async function onGpu<T>(fn: () => T): Promise<T> {
  await setBackend('gpu', { mode: 'webasm' });
  try {
    return fn();
  } finally {
    await setBackend('cpu');
  }
}

test('op results stay on the device; .data brings a tensor home and host writes are seen', async () => {
  await onGpu(() => {
    const x = tensor([1, 2, 3, 4], [2, 2]);
    assert.not.ok(x.isOnDevice, 'a tensor made from host values starts at home');
    const y = x.mul(2);
    assert.ok(y.isOnDevice);
    assert.equal(y.toArray(), [[2, 4], [6, 8]]);
    assert.ok(y.isOnDevice, 'toArray only reads');
    assert.is(y.sum().item(), 20);
    const data = y.data as Float32Array;
    assert.not.ok(y.isOnDevice, '.data brings it home');
    data[0] = 100;
    assert.is(y.add(0).toArray().toString(), '100,4,6,8', 'the next op reads the host write');
  });
});

test('reshape and detach share the device copy; dispose frees it and use afterwards is an error', async () => {
  await onGpu(() => {
    const y = randn([3, 4]).add(1);
    const r = y.reshape(4, 3);
    const d = y.detach();
    assert.ok(r.isOnDevice && d.isOnDevice);
    y.dispose();
    assert.is(r.sum().item().toFixed(3), d.sum().item().toFixed(3), 'the views still read the shared copy');
    assert.throws(() => y.add(1), /used after dispose/);
    assert.throws(() => y.toArray(), /used after dispose/);
    assert.throws(() => y.data, /used after dispose/);
  });
});

test('toDevice moves a float32 tensor; float64 and integer tensors stay at home and ops on them run on the host', async () => {
  await onGpu(() => {
    const w = randn([5]).toDevice();
    assert.ok(w.isOnDevice);
    const f64 = randn([5], { dtype: 'float64' });
    assert.not.ok(f64.toDevice().isOnDevice);
    assert.not.ok(f64.mul(2).isOnDevice, 'float64 computes on the host');
    const i = tensor([1, 2, 3], [3], { dtype: 'int64' });
    assert.not.ok(i.toDevice().isOnDevice);
    assert.is(f64.mul(2).dtype, 'float64');
  });
});

test('tidy disposes the device tensors a step made, except what it returns; existing tensors keep theirs', async () => {
  await onGpu(() => {
    const w = zeros([4]).toDevice();
    let inner: Tensor | null = null;
    const out = tidy(() => {
      inner = w.add(1);
      const kept = inner.mul(3);
      w.adoptDevice(kept.add(0).deviceCopy!.share()); // an existing tensor takes a new device copy
      return { kept };
    });
    assert.ok(inner!.isDisposed, 'a temporary made inside is disposed');
    assert.not.ok(out.kept.isDisposed, 'what is returned survives');
    assert.equal(out.kept.toArray(), [3, 3, 3, 3]);
    assert.equal(w.toArray(), [3, 3, 3, 3], 'the existing tensor keeps the copy it adopted');
    assert.ok(backend().device!.liveTextures() >= 0);
  });
});

test('the gpu backend is selected by name and mode; an unknown backend or mode is an error naming it', async () => {
  await assert.not.throws(async () => onGpu(() => assert.match(backend().name, /gpu \(gpu\.js webasm/)));
  try {
    await setBackend('gpu', { mode: 'nonsense' as never });
    assert.unreachable('an unknown mode must fail');
  } catch (e) {
    assert.match((e as Error).message, /nonsense/);
  }
  await setBackend('cpu');
});

test.run();
