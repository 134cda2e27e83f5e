// io.saveSafetensors / io.loadSafetensors through real files: Node hands back a Buffer whose slice() shares
// (pooled) memory, which must not leak into the decoded tensors; every dtype keeps its values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, tensor, randn } from '../../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sparkts-io-'));

test('small and large files round trip every writable dtype exactly', () => {
  for (const n of [3, 5000]) {
    const path = join(dir, `t${n}.safetensors`);
    const tensors = {
      f64: tensor(Float64Array.from({ length: n }, (_, i) => i / 7), [n]),
      f32: randn([n]),
      i64: tensor(BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 2n ** 40n), [n]),
      i32: tensor(Int32Array.from({ length: n }, (_, i) => -i), [n]),
      u8: tensor(Uint8Array.from({ length: n }, (_, i) => i % 256), [n], { dtype: 'uint8' }),
      mask: tensor(Uint8Array.from({ length: n }, (_, i) => i % 2), [n], { dtype: 'bool' }),
    };
    io.saveSafetensors(path, tensors, { note: 'round trip' });
    const back = io.loadSafetensors(path);
    for (const [name, t] of Object.entries(tensors)) {
      assert.is(back[name].dtype, t.dtype, name);
      assert.equal(back[name].shape, t.shape, name);
      assert.equal(Array.from(back[name].data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), name);
    }
    assert.equal(io.loadSafetensorsMetadata(path), { note: 'round trip' });
  }
});

test('saving leaves no temporary file behind', () => {
  io.saveSafetensors(join(dir, 'x.safetensors'), { x: randn([2]) });
  assert.ok(readdirSync(dir).every((f) => !f.includes('.tmp-')));
});

test.run();
