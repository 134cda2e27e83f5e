/**
 * Command-line flags: each command declares its flags (name, kind, default, help); parsing turns argv into typed
 * values. An unknown flag or a bad value is a UsageError naming it (the CLI exits with code 2).
 * Accepted forms: `--name value`, `--name=value`, and bare `--name` for booleans.
 */

export type FlagKind = 'int' | 'float' | 'string' | 'bool';

export interface FlagSpec {
  kind: FlagKind;
  help: string;
  default?: number | string | boolean;
  /** inclusive bounds for numbers */
  min?: number;
  max?: number;
  choices?: readonly string[];
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, number | string | boolean | undefined>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function convert(name: string, spec: FlagSpec, raw: string): number | string | boolean {
  if (spec.kind === 'bool') {
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new UsageError(`--${name} expects true or false, got '${raw}'`);
  }
  if (spec.kind === 'string') {
    if (spec.choices && !spec.choices.includes(raw)) throw new UsageError(`--${name} must be one of ${spec.choices.join(', ')}, got '${raw}'`);
    return raw;
  }
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || (spec.kind === 'int' && !Number.isInteger(v))) {
    throw new UsageError(`--${name} expects ${spec.kind === 'int' ? 'an integer' : 'a number'}, got '${raw}'`);
  }
  if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) {
    throw new UsageError(`--${name} must be in [${spec.min ?? '-inf'}, ${spec.max ?? 'inf'}], got ${v}`);
  }
  return v;
}

export function parseFlags(argv: readonly string[], specs: FlagSpecs): FlagValues {
  const out: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) out[name] = spec.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag --${name}`);
    let raw: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (raw === undefined) {
      if (spec.kind === 'bool' && (i + 1 >= argv.length || argv[i + 1].startsWith('--'))) raw = 'true';
      else if (i + 1 < argv.length) raw = argv[++i];
      else throw new UsageError(`--${name} needs a value`);
    }
    out[name] = convert(name, spec, raw);
  }
  return out;
}

export function helpText(command: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const value = s.kind === 'bool' ? '' : ` ${s.choices ? s.choices.join('|') : s.kind.toUpperCase()}`;
    const dflt = s.default === undefined || s.default === false ? '' : ` (default ${s.default})`;
    return [`  --${name}${value}`, `${s.help}${dflt}`];
  });
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return `usage: sparkts ${command} [flags]\n\n${summary}\n\nflags:\n${rows.map(([a, b]) => a.padEnd(width) + b).join('\n')}\n`;
}

/** The flags that argv sets explicitly (as opposed to defaults). */
export function explicitFlags(argv: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const arg of argv) if (arg.startsWith('--')) names.add(arg.slice(2).split('=')[0]);
  return names;
}
