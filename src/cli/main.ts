#!/usr/bin/env node
/**
 * The `sparkts` command. This version has `info` (what the engine is running on); the training commands
 * (pretrain, finetune, reconstruct, bench) arrive with the training issue and are refused by name until then.
 */
import { cpus } from 'node:os';
import { getBackendName } from '../backend/registry.ts';

const usage = `usage: sparkts <command>

commands:
  info        version, backend and machine
`;

function info(): void {
  const lines = [
    `sparkts     ${process.env.npm_package_version ?? '0.1.0'}`,
    `node        ${process.version}`,
    `backend     ${getBackendName()} (plain TypeScript kernels, 1 thread)`,
    `cpu cores   ${cpus().length}`,
  ];
  console.log(lines.join('\n'));
}

function main(argv: string[]): number {
  const [command] = argv;
  if (command === 'info') {
    info();
    return 0;
  }
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(usage);
    return command === undefined ? 1 : 0;
  }
  process.stderr.write(`sparkts: unknown command '${command}'\n${usage}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
