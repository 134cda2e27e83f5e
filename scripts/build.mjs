// Build: esbuild bundles the library and the CLI into dist/ (ESM, es2022), then tsc writes the .d.ts files.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
// runtime dependencies stay packages (pngjs needs Node's require); everything of ours is bundled
const common = { bundle: true, format: 'esm', platform: 'node', target: 'es2022', sourcemap: true, logLevel: 'warning', packages: 'external' };
await build({ ...common, entryPoints: { index: 'src/index.ts' }, outdir: 'dist' });
await build({ ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist' });
execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
console.log('built dist/index.js, dist/cli.js and dist/*.d.ts');
