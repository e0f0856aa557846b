// The npm manifests of the published packages, checked without building anything (the consumer
// test, test/consumer, installs the packed packages for real): every export lists the repository's
// "shoal-source" condition first, pointing at a source file, then built files in dist/ that mirror
// it; the publishing fields are set; Shoal packages depend on each other with a caret range of the
// one shared version; each package's tsconfig.build.json references exactly the Shoal packages
// it depends on, so `tsc -b` builds them first; and every command that runs the sources with tsx
// also turns the "shoal-source" condition on (without it, Node would load a stale or missing dist/).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly private?: boolean;
  readonly type?: string;
  readonly license?: string;
  readonly repository?: { readonly type: string; readonly url: string; readonly directory: string };
  readonly engines?: { readonly node?: string };
  readonly sideEffects?: boolean;
  readonly files?: readonly string[];
  readonly bin?: Record<string, string>;
  readonly exports: Record<string, unknown>;
  readonly dependencies?: Record<string, string>;
  readonly publishConfig?: { readonly access?: string };
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8')) as T;
const workspaces = readJson<{ workspaces: string[] }>('package.json').workspaces.map((dir) => ({ dir, manifest: readJson<Manifest>(`${dir}/package.json`) }));
const published = workspaces.filter(({ manifest }) => manifest.private !== true);
const dirOf = new Map(workspaces.map(({ dir, manifest }) => [manifest.name, dir]));

/** `./src/a/b.ts` → the built files it becomes: `./dist/a/b.js` and `./dist/a/b.d.ts`. */
function builtFrom(source: string): { js: string; dts: string } {
  const base = source.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '');
  return { js: `${base}.js`, dts: `${base}.d.ts` };
}

/**
 * What is wrong with one `exports` entry, one line each. An entry is either a condition map whose
 * first key is "shoal-source" (a source file, or a map by platform) followed by built targets, each
 * a `{ types, default }` pair or, at the top level, plain `types` and `default` strings.
 */
function exportProblems(subpath: string, entry: unknown, packageDir: string): string[] {
  if (subpath === './package.json') return entry === './package.json' ? [] : [`${subpath}: should be "./package.json"`];
  if (entry === null || typeof entry !== 'object') return [`${subpath}: not a condition map`];
  const conditions = Object.entries(entry as Record<string, unknown>);
  const [first, ...built] = conditions;
  if (first?.[0] !== 'shoal-source') return [`${subpath}: "shoal-source" must be the first condition`];
  const sources = typeof first[1] === 'string' ? [first[1]] : Object.values(first[1] as Record<string, string>);
  const problems = sources.filter((source) => !existsSync(join(REPO_ROOT, packageDir, source))).map((source) => `${subpath}: source ${source} does not exist`);
  // Built targets, as { types, default } pairs: the flat form, or one pair per platform condition.
  const pairs = built.every(([, target]) => typeof target === 'string')
    ? [Object.fromEntries(built) as Record<string, string>]
    : built.map(([, target]) => target as Record<string, string>);
  for (const pair of pairs) {
    if (Object.keys(pair).join() !== 'types,default') {
      problems.push(`${subpath}: built targets must be { types, default } in that order, got ${JSON.stringify(pair)}`);
      continue;
    }
    const source = sources.find((candidate) => builtFrom(candidate).js === pair['default']);
    if (source === undefined) problems.push(`${subpath}: ${pair['default']} is not built from any of ${sources.join(', ')}`);
    else if (builtFrom(source).dts !== pair['types']) problems.push(`${subpath}: types ${pair['types']} do not match ${pair['default']}`);
  }
  return problems;
}

describe('published package manifests', () => {
  it('the published packages are every workspace but the private testkit, all under @shoal at one version', () => {
    expect(workspaces.filter(({ manifest }) => manifest.private === true).map(({ manifest }) => manifest.name)).toEqual(['@shoal/testkit']);
    expect(published.length).toBeGreaterThanOrEqual(9);
    const version = published[0]!.manifest.version;
    for (const { manifest } of published) {
      expect(manifest.name).toMatch(/^@shoal\/[a-z]+$/);
      expect(manifest.version, manifest.name).toBe(version);
    }
  });

  it.each(published.map(({ dir, manifest }) => [manifest.name, dir, manifest] as const))('%s: exports, publishing fields and dependency ranges', (name, dir, manifest) => {
    expect(Object.entries(manifest.exports).flatMap(([subpath, entry]) => exportProblems(subpath, entry, dir))).toEqual([]);
    expect(manifest.exports['./package.json']).toBe('./package.json');
    expect(manifest).toMatchObject({
      type: 'module',
      license: expect.stringContaining('Apache-2.0'),
      repository: { type: 'git', url: expect.stringMatching(/^git\+https:\/\//), directory: dir },
      engines: { node: '>=20' },
      publishConfig: { access: 'public' },
    });
    expect(manifest.files).toContain('dist');
    expect(manifest.files).toContain('!dist/.tsbuildinfo');
    // The CLI is a program, not a library to tree-shake; every library has no import-time effects.
    if (manifest.bin === undefined) expect(manifest.sideEffects, name).toBe(false);
    for (const [dependency, range] of Object.entries(manifest.dependencies ?? {})) {
      if (dependency.startsWith('@shoal/')) expect(range, `${name} → ${dependency}`).toBe(`^${manifest.version}`);
      else expect(range, `${name} → ${dependency}`).toMatch(/^\^\d+\.\d+\.\d+$/);
    }
  });

  it.each(published.map(({ dir, manifest }) => [manifest.name, dir, manifest] as const))('%s: tsconfig.build.json references exactly its Shoal dependencies', (_name, dir, manifest) => {
    const config = readJson<{ extends: string; references?: { path: string }[] }>(`${dir}/tsconfig.build.json`);
    expect(config.extends).toBe('../../tsconfig.build.base.json');
    const referenced = (config.references ?? []).map(({ path }) => path).sort();
    const expected = Object.keys(manifest.dependencies ?? {})
      .filter((dependency) => dirOf.has(dependency))
      .map((dependency) => `../${dirOf.get(dependency)!.replace(/^packages\//, '')}/tsconfig.build.json`)
      .sort();
    expect(referenced).toEqual(expected);
  });

  it('`shoal --version` prints the packages\' version', () => {
    const cli = published.find(({ manifest }) => manifest.name === '@shoal/cli')!;
    expect(readFileSync(join(REPO_ROOT, cli.dir, 'src', 'main.ts'), 'utf8')).toContain(`'shoal ${cli.manifest.version}\\n'`);
  });

  it('the root tsconfig.build.json builds every published package', () => {
    const references = readJson<{ references: { path: string }[] }>('tsconfig.build.json').references.map(({ path }) => path).sort();
    expect(references).toEqual(published.map(({ dir }) => `${dir}/tsconfig.build.json`).sort());
  });
});

/** Code and manifests that may start Node on the TypeScript sources (docs are left alone). */
function filesThatRunNode(): string[] {
  const roots = ['packages', 'test', 'bench', 'examples', 'scripts'];
  const found = ['package.json'];
  for (const root of roots) {
    for (const file of readdirSync(join(REPO_ROOT, root), { recursive: true, encoding: 'utf8' })) {
      if (file.split(/[\\/]/).includes('node_modules') || file.split(/[\\/]/).includes('dist')) continue;
      if (/\.(ts|js|mjs|json)$/.test(file)) found.push(join(root, file));
    }
  }
  return found;
}

describe('running the sources', () => {
  it('every `--import tsx` also sets `--conditions=shoal-source`, on the same line', () => {
    const files = filesThatRunNode();
    expect(files).toContain(join('bench', 'run.ts')); // the scan reached the places that spawn node
    const offending = files.flatMap((file) =>
      readFileSync(join(REPO_ROOT, file), 'utf8')
        .split('\n')
        .map((line, index) => ({ line, where: `${file}:${index + 1}` }))
        .filter(({ line }) => /--import['",\s]+tsx\b/.test(line) && !line.includes('--conditions=shoal-source'))
        .map(({ where, line }) => `${where}: ${line.trim()}`),
    );
    expect(offending).toEqual([]);
  });
});
