#!/usr/bin/env node
/**
 * The `sparkts` command: pretrain, finetune, reconstruct, info. Each command parses its own flags; a usage error
 * (unknown flag, bad value) prints a message naming it and exits with code 2.
 */
import { cpus } from 'node:os';
import { getBackendName } from '../backend/registry.ts';
import { getRuntime, wasmDescription } from '../../kernels/wasm/runtime.ts';

const VERSION = '0.1.0';
import { helpText, UsageError, type FlagSpecs } from './args.ts';
import { relaunchTuned, wantsTunedRelaunch } from './allocator.ts';
import { pretrain, PRETRAIN_FLAGS, PRETRAIN_SUMMARY } from './pretrain.ts';
import { finetune, FINETUNE_FLAGS, FINETUNE_SUMMARY } from './finetune.ts';
import { reconstruct, RECONSTRUCT_FLAGS, RECONSTRUCT_SUMMARY } from './reconstruct.ts';

interface Command {
  summary: string;
  flags: FlagSpecs;
  run: (argv: readonly string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  pretrain: { summary: PRETRAIN_SUMMARY, flags: PRETRAIN_FLAGS, run: pretrain },
  finetune: { summary: FINETUNE_SUMMARY, flags: FINETUNE_FLAGS, run: finetune },
  reconstruct: { summary: RECONSTRUCT_SUMMARY, flags: RECONSTRUCT_FLAGS, run: reconstruct },
  info: { summary: 'version, backend, kernels and threads', flags: {}, run: async () => { info(); return 0; } },
};

const usage = `usage: sparkts <command> [flags]

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)}${c.summary}`).join('\n')}

\`sparkts <command> --help\` lists a command's flags.
`;

function info(): void {
  const rt = getRuntime();
  const lines = [
    `sparkts     ${VERSION}`,
    `node        ${process.version}`,
    `backend     ${getBackendName()}`,
    `kernels     ${rt ? `WebAssembly ${wasmDescription()} for matmul and convolutions; TypeScript for the rest` : `TypeScript (WebAssembly SIMD ${wasmDescription()})`}`,
    `threads     ${rt ? rt.threads : 1} (SPARKTS_THREADS to change; SPARKTS_WASM=0 for the TypeScript kernels)`,
    `cpu         ${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
  ];
  console.log(lines.join('\n'));
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`sparkts: unknown command '${name}'\n\n${usage}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(helpText(name, command.summary, command.flags));
    return 0;
  }
  // the training commands run again with glibc's allocator told to keep freed memory and V8's collector on the
  // main thread only (allocator.ts)
  if ((name === 'pretrain' || name === 'finetune') && wantsTunedRelaunch()) {
    const code = await relaunchTuned();
    if (code !== null) return code;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`sparkts ${name}: ${e.message}\n(see sparkts ${name} --help)\n`);
      return 2;
    }
    process.stderr.write(`sparkts ${name}: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
