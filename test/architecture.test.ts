// Keeps the layering of DESIGN.md §2 honest: reads every packages/*/package.json and every
// packages/*/src/**/*.ts import, and fails on a dependency edge the design does not allow, on tfjs
// reaching the server side, or on I/O modules reaching the pure packages.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PROTOCOL = '@shoal/protocol';
const DP = '@shoal/dp';
const SECAGG = '@shoal/secagg';
const STRATEGY = '@shoal/strategy';
const COORDINATOR = '@shoal/coordinator';
const CLIENT = '@shoal/client';
const SIM = '@shoal/sim';
const DATASETS = '@shoal/datasets';
const SCALEOUT = '@shoal/scaleout';
const CLI = '@shoal/cli';
const TESTKIT = '@shoal/testkit';

/**
 * DESIGN.md §2, encoded once: each package and the Shoal packages it may depend on at run time.
 * `protocol` ← `dp`, `secagg` ← `strategy` ← `coordinator`; `protocol`, `dp`, `secagg` ← `client`;
 * `sim` and `cli` see both sides (and `cli`, the top, also runs `sim`); `datasets` (files only) is at
 * the bottom and only `sim` and `cli` see it, so the SDK never ships the data; `testkit` sees
 * `protocol` only and is a dev dependency only, since it is private. `scaleout` (gateways and a
 * leader over Redis) sits on the coordinator, and only `cli` runs it.
 */
const ALLOWED_DEPENDENCIES: Readonly<Record<string, readonly string[]>> = {
  [PROTOCOL]: [],
  [DP]: [PROTOCOL],
  [SECAGG]: [PROTOCOL],
  [STRATEGY]: [PROTOCOL, DP, SECAGG],
  [COORDINATOR]: [PROTOCOL, DP, SECAGG, STRATEGY],
  [CLIENT]: [PROTOCOL, DP, SECAGG],
  [DATASETS]: [],
  [SIM]: [PROTOCOL, DP, SECAGG, STRATEGY, COORDINATOR, CLIENT, DATASETS],
  [SCALEOUT]: [PROTOCOL, DP, SECAGG, STRATEGY, COORDINATOR],
  [CLI]: [PROTOCOL, DP, SECAGG, STRATEGY, COORDINATOR, SCALEOUT, CLIENT, SIM, DATASETS],
  [TESTKIT]: [PROTOCOL],
};
/** Packages that never depend on or import tfjs: weights are flat Float32Arrays on the server side. */
const TFJS_FREE = new Set([PROTOCOL, DP, SECAGG, STRATEGY, COORDINATOR, SCALEOUT, DATASETS]);
/** Packages that do no I/O, so they run unchanged in a browser, a worker or a simulation. */
const IO_FREE = new Set([PROTOCOL, DP, SECAGG, STRATEGY]);
/** Module names (with or without `node:`, any subpath) that mean I/O. */
const IO_MODULES = new Set(['fs', 'net', 'http', 'https', 'http2', 'tls', 'dgram', 'child_process', 'ws']);

interface SourceImport {
  readonly file: string;
  readonly specifier: string;
}

interface PackageFacts {
  readonly name: string;
  /** `dependencies`, `peerDependencies` and `optionalDependencies`: what the code may use at run time. */
  readonly runtimeDependencies: readonly string[];
  readonly devDependencies: readonly string[];
  /** Every import specifier in the package's src/**. */
  readonly sourceImports: readonly SourceImport[];
}

function isShoalPackage(name: string): boolean {
  return name.startsWith('@shoal/');
}

/** `@scope/name/sub` → `@scope/name`, `node:fs/promises` → `node:fs`; undefined for relative paths. */
function packageNameOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isIoModule(specifier: string): boolean {
  const name = packageNameOf(specifier);
  return name !== undefined && IO_MODULES.has(name.replace(/^node:/, ''));
}

function isTfjs(name: string): boolean {
  return name.startsWith('@tensorflow/');
}

/**
 * Import specifiers of a TypeScript source: static, type-only, side-effect, re-export, dynamic,
 * require. With `loadedAtOnce`, only those loaded with the module itself: no dynamic `import()`,
 * no type-only import (erased from the JavaScript).
 */
function importSpecifiers(source: string, loadedAtOnce = false): string[] {
  const patterns = [
    /^\s*(?:import|export)\s(?!type\s)[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    ...(loadedAtOnce ? [] : [/^\s*(?:import|export)\s+type\s[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]),
  ];
  return patterns.flatMap((pattern) => [...source.matchAll(pattern)].map((match) => match[1]!));
}

/** Every way the packages break DESIGN.md §2, one readable line each; empty when the layering holds. */
function architectureViolations(packages: readonly PackageFacts[]): string[] {
  const violations: string[] = [];
  for (const pkg of packages) {
    const allowed = ALLOWED_DEPENDENCIES[pkg.name];
    if (allowed === undefined) {
      violations.push(`${pkg.name}: not in the layering table; place it in DESIGN.md §2 and in test/architecture.test.ts`);
      continue;
    }
    const allowedText = allowed.length === 0 ? 'no Shoal package' : allowed.join(', ');
    for (const dep of pkg.runtimeDependencies.filter(isShoalPackage)) {
      if (!allowed.includes(dep)) violations.push(`${pkg.name} → ${dep}: not allowed (it may depend on ${allowedText})`);
    }
    for (const dep of pkg.devDependencies.filter(isShoalPackage)) {
      if (!allowed.includes(dep) && !(dep === TESTKIT && pkg.name !== TESTKIT)) {
        violations.push(`${pkg.name} → ${dep} (dev): not allowed (it may depend on ${allowedText}, and on ${TESTKIT} for tests)`);
      }
    }
    if (TFJS_FREE.has(pkg.name)) {
      for (const dep of [...pkg.runtimeDependencies, ...pkg.devDependencies].filter(isTfjs)) {
        violations.push(`${pkg.name} → ${dep}: this package must never depend on tfjs`);
      }
    }
    for (const { file, specifier } of pkg.sourceImports) {
      const imported = packageNameOf(specifier);
      if (imported === undefined) continue;
      if (TFJS_FREE.has(pkg.name) && isTfjs(imported)) violations.push(`${file} imports ${specifier}: ${pkg.name} must never import tfjs`);
      if (IO_FREE.has(pkg.name) && isIoModule(specifier)) violations.push(`${file} imports ${specifier}: ${pkg.name} must do no I/O`);
      if (isShoalPackage(imported) && imported !== pkg.name && !pkg.runtimeDependencies.includes(imported)) {
        violations.push(`${file} imports ${specifier}: ${imported} is not in ${pkg.name}'s package.json dependencies`);
      }
    }
  }
  return violations;
}

/** Reads the facts of every packages/<dir>/package.json under `root`. */
function readPackages(root: string): PackageFacts[] {
  const packagesDir = join(root, 'packages');
  return readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(packagesDir, entry.name, 'package.json')))
    .map((entry) => {
      const dir = join(packagesDir, entry.name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      const keysOf = (field: string) => Object.keys((manifest[field] as Record<string, string> | undefined) ?? {});
      const srcDir = join(dir, 'src');
      const sourceFiles = existsSync(srcDir)
        ? readdirSync(srcDir, { recursive: true, encoding: 'utf8' }).filter((file) => /\.[mc]?tsx?$/.test(file))
        : [];
      return {
        name: String(manifest['name']),
        runtimeDependencies: [...keysOf('dependencies'), ...keysOf('peerDependencies'), ...keysOf('optionalDependencies')],
        devDependencies: keysOf('devDependencies'),
        sourceImports: sourceFiles.flatMap((file) =>
          importSpecifiers(readFileSync(join(srcDir, file), 'utf8')).map((specifier) => ({ file: `packages/${entry.name}/src/${file}`, specifier })),
        ),
      };
    });
}

/**
 * Every module a source file loads, transitively, following relative imports and `@shoal/*`
 * imports (resolved to their sources through each package's `exports`, "shoal-source" condition);
 * other packages are leaves. Each reached module maps to the chain of imports that reached it,
 * from `entry`. `loadedAtOnce` follows only what loads with the module (see importSpecifiers).
 */
function importGraph(root: string, entry: string, loadedAtOnce = false): Map<string, readonly string[]> {
  const manifests = new Map<string, { dir: string; exports: Record<string, unknown> }>();
  for (const dir of readdirSync(join(root, 'packages'))) {
    const file = join(root, 'packages', dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name: string; exports?: Record<string, unknown> };
    manifests.set(manifest.name, { dir: join('packages', dir), exports: manifest.exports ?? {} });
  }
  /** A specifier as a repo-relative source path, or as itself for a package outside Shoal. */
  const resolve = (from: string, specifier: string): string => {
    if (specifier.startsWith('.')) return join(dirname(from), specifier).replace(/\.js$/, '.ts');
    const name = packageNameOf(specifier)!;
    const manifest = manifests.get(name);
    if (manifest === undefined) return specifier;
    const source = conditionalTarget(manifest.exports[`.${specifier.slice(name.length)}`]);
    if (source === undefined || !source.endsWith('.ts')) throw new Error(`${from}: ${specifier} is not exported with a "shoal-source" condition`);
    return join(manifest.dir, source);
  };
  const reached = new Map<string, readonly string[]>([[entry, [entry]]]);
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (!file.endsWith('.ts')) continue;
    for (const specifier of importSpecifiers(readFileSync(join(root, file), 'utf8'), loadedAtOnce)) {
      const target = resolve(file, specifier);
      if (reached.has(target)) continue;
      reached.set(target, [...reached.get(file)!, target]);
      pending.push(target);
    }
  }
  return reached;
}

/** Node's resolution of an `exports` target under the CLI's conditions: the first key, in order, that is one of them. */
function conditionalTarget(target: unknown): string | undefined {
  if (typeof target === 'string' || target === undefined || target === null) return target ?? undefined;
  const conditions = ['shoal-source', 'node', 'import', 'default'];
  const key = Object.keys(target).find((condition) => conditions.includes(condition));
  return key === undefined ? undefined : conditionalTarget((target as Record<string, unknown>)[key]);
}

/** The modules of `forbidden` (repo paths of packages, or package names) that `entry` reaches, each with the chain that reaches it. */
function forbiddenImports(graph: Map<string, readonly string[]>, forbidden: readonly string[], why: string): string[] {
  return [...graph]
    .filter(([module]) => forbidden.some((prefix) => module === prefix || module.startsWith(`${prefix}/`)))
    .map(([, chain]) => `${chain.join(' → ')}: ${why}`);
}

/** `shoal serve` must not load the simulator, nor tfjs (the issue #9 rule): an operator's coordinator needs neither. */
const SERVE_MODULE = 'packages/cli/src/serve.ts';
const SIMULATOR = ['packages/sim', '@tensorflow'];

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('architecture (DESIGN.md §2)', () => {
  it('the packages in this repository keep the allowed dependency edges', () => {
    const packages = readPackages(repoRoot);
    // Guard against a vacuous pass: the scan must have found the packages and their imports.
    expect(packages.map((pkg) => pkg.name)).toEqual(expect.arrayContaining([PROTOCOL, STRATEGY, COORDINATOR, CLIENT]));
    expect(packages.find((pkg) => pkg.name === STRATEGY)!.sourceImports.map((i) => i.specifier)).toContain(PROTOCOL);
    expect(architectureViolations(packages)).toEqual([]);
  });
});

describe('the checker itself', () => {
  const clean: PackageFacts[] = [
    { name: PROTOCOL, runtimeDependencies: ['msgpackr'], devDependencies: [], sourceImports: [{ file: 'p/a.ts', specifier: 'node:crypto' }] },
    { name: STRATEGY, runtimeDependencies: [PROTOCOL, DP], devDependencies: [TESTKIT], sourceImports: [{ file: 's/a.ts', specifier: PROTOCOL }, { file: 's/b.ts', specifier: './aggregate.js' }] },
    { name: COORDINATOR, runtimeDependencies: [PROTOCOL, STRATEGY, 'ws'], devDependencies: [], sourceImports: [{ file: 'c/a.ts', specifier: 'node:http' }, { file: 'c/b.ts', specifier: 'ws' }] },
    { name: CLIENT, runtimeDependencies: [PROTOCOL, '@tensorflow/tfjs'], devDependencies: [], sourceImports: [{ file: 'cl/a.ts', specifier: '@tensorflow/tfjs' }] },
    { name: CLI, runtimeDependencies: [SIM, COORDINATOR], devDependencies: [], sourceImports: [{ file: 'cli/a.ts', specifier: '@shoal/sim/report' }] },
    { name: DATASETS, runtimeDependencies: [], devDependencies: [], sourceImports: [{ file: 'ds/a.ts', specifier: 'node:url' }] },
    { name: SIM, runtimeDependencies: [DATASETS, CLIENT], devDependencies: [], sourceImports: [{ file: 'sim/a.ts', specifier: DATASETS }] },
  ];

  it('accepts a graph that follows the design', () => {
    expect(architectureViolations(clean)).toEqual([]);
  });

  it('reports every kind of forbidden edge and import in a fabricated bad graph', () => {
    const bad: PackageFacts[] = [
      { name: PROTOCOL, runtimeDependencies: [STRATEGY], devDependencies: [], sourceImports: [] },
      { name: STRATEGY, runtimeDependencies: [PROTOCOL, '@tensorflow/tfjs'], devDependencies: [COORDINATOR], sourceImports: [
        { file: 's/a.ts', specifier: 'node:fs/promises' },
        { file: 's/b.ts', specifier: '@shoal/dp' },
        { file: 's/c.ts', specifier: '@tensorflow/tfjs-core' },
      ] },
      { name: DP, runtimeDependencies: [PROTOCOL], devDependencies: [], sourceImports: [{ file: 'd/a.ts', specifier: 'ws' }] },
      { name: COORDINATOR, runtimeDependencies: [PROTOCOL, CLIENT], devDependencies: [], sourceImports: [{ file: 'c/a.ts', specifier: '@tensorflow/tfjs-node' }] },
      { name: TESTKIT, runtimeDependencies: [PROTOCOL, STRATEGY], devDependencies: [], sourceImports: [] },
      { name: CLIENT, runtimeDependencies: [PROTOCOL, CLI, DATASETS], devDependencies: [], sourceImports: [] },
      { name: '@shoal/extra', runtimeDependencies: [], devDependencies: [], sourceImports: [] },
    ];
    expect(architectureViolations(bad)).toEqual([
      '@shoal/protocol → @shoal/strategy: not allowed (it may depend on no Shoal package)',
      '@shoal/strategy → @shoal/coordinator (dev): not allowed (it may depend on @shoal/protocol, @shoal/dp, @shoal/secagg, and on @shoal/testkit for tests)',
      '@shoal/strategy → @tensorflow/tfjs: this package must never depend on tfjs',
      's/a.ts imports node:fs/promises: @shoal/strategy must do no I/O',
      "s/b.ts imports @shoal/dp: @shoal/dp is not in @shoal/strategy's package.json dependencies",
      's/c.ts imports @tensorflow/tfjs-core: @shoal/strategy must never import tfjs',
      'd/a.ts imports ws: @shoal/dp must do no I/O',
      '@shoal/coordinator → @shoal/client: not allowed (it may depend on @shoal/protocol, @shoal/dp, @shoal/secagg, @shoal/strategy)',
      'c/a.ts imports @tensorflow/tfjs-node: @shoal/coordinator must never import tfjs',
      '@shoal/testkit → @shoal/strategy: not allowed (it may depend on @shoal/protocol)',
      '@shoal/client → @shoal/cli: not allowed (it may depend on @shoal/protocol, @shoal/dp, @shoal/secagg)',
      '@shoal/client → @shoal/datasets: not allowed (it may depend on @shoal/protocol, @shoal/dp, @shoal/secagg)',
      '@shoal/extra: not in the layering table; place it in DESIGN.md §2 and in test/architecture.test.ts',
    ]);
  });

  it('reads package.json fields and nested src files from disk', () => {
    const root = mkdtempSync(join(tmpdir(), 'shoal-arch-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), text);
      };
      write('packages/protocol/package.json', JSON.stringify({ name: PROTOCOL, peerDependencies: { [COORDINATOR]: '0.1.0' } }));
      write('packages/strategy/package.json', JSON.stringify({ name: STRATEGY, dependencies: { [PROTOCOL]: '0.1.0' }, optionalDependencies: { '@tensorflow/tfjs-node': '4' } }));
      write('packages/strategy/src/deep/nested/io.ts', "import { readFile } from 'node:fs';\n");
      write('packages/strategy/src/README.md', "import x from 'node:net';\n"); // not a source file
      write('packages/empty/README.md', 'no package.json here, so not a package');
      expect(architectureViolations(readPackages(root))).toEqual([
        '@shoal/protocol → @shoal/coordinator: not allowed (it may depend on no Shoal package)',
        '@shoal/strategy → @tensorflow/tfjs-node: this package must never depend on tfjs',
        'packages/strategy/src/deep/nested/io.ts imports node:fs: @shoal/strategy must do no I/O',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('finds every form of import and ignores commented-out ones', () => {
    const source = [
      "import { a } from '@shoal/protocol';",
      'import type {',
      '  B,',
      "} from \"@shoal/dp\";",
      "import 'node:net';",
      "export * from './local.js';",
      "export { c } from '@shoal/secagg/sub';",
      "const lazy = await import('@tensorflow/tfjs');",
      "const legacy = require('fs');",
      "// import { gone } from 'node:http';",
      " * import { doc } from 'ws';",
      "const text = 'this is not from an import';",
    ].join('\n');
    expect(importSpecifiers(source).sort()).toEqual(
      ['./local.js', '@shoal/dp', '@shoal/protocol', '@shoal/secagg/sub', '@tensorflow/tfjs', 'fs', 'node:net'].sort(),
    );
    expect(packageNameOf('@shoal/secagg/sub')).toBe('@shoal/secagg');
    expect(packageNameOf('node:fs/promises')).toBe('node:fs');
    expect(packageNameOf('./local.js')).toBeUndefined();
  });
});

describe('shoal serve does not load the simulator (issue #9)', () => {
  it('the serve module reaches no module of @shoal/sim and no tfjs, through any chain of imports', () => {
    const graph = importGraph(repoRoot, SERVE_MODULE);
    // Guard against a vacuous pass: the walk went through the CLI into the coordinator's sources.
    expect([...graph.keys()]).toEqual(expect.arrayContaining(['packages/cli/src/config-file.ts', 'packages/coordinator/src/index.ts', 'packages/coordinator/src/config.ts']));
    expect(forbiddenImports(graph, SIMULATOR, 'serve must not load the simulator or tfjs')).toEqual([]);
  });

  it('the CLI entry loads no command with itself: each command module is imported when it runs', () => {
    const graph = importGraph(repoRoot, 'packages/cli/src/main.ts', true);
    expect(graph.has('packages/cli/src/usage.ts')).toBe(true);
    expect(forbiddenImports(graph, [...SIMULATOR, 'packages/coordinator', SERVE_MODULE, 'packages/cli/src/simulate.ts'], 'main.ts must load commands lazily')).toEqual([]);
  });

  it('the walk follows relative, re-exported and subpath imports, and dynamic ones unless asked not to', () => {
    const root = mkdtempSync(join(tmpdir(), 'shoal-arch-graph-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), text);
      };
      const exportsOf = (subpaths: Record<string, string>) => Object.fromEntries(Object.entries(subpaths).map(([key, source]) => [key, { 'shoal-source': source, default: 'dist/x.js' }]));
      write('packages/cli/package.json', JSON.stringify({ name: CLI, exports: exportsOf({ '.': './src/index.ts' }) }));
      write('packages/sim/package.json', JSON.stringify({ name: SIM, exports: exportsOf({ '.': './src/index.ts', './config': './src/config.ts' }) }));
      write('packages/cli/src/serve.ts', "import { a } from './helpers/a.js';\nimport type { T } from '@shoal/sim';\n");
      write('packages/cli/src/helpers/a.ts', "export * from '../b.js';\n");
      write('packages/cli/src/b.ts', "export const load = () => import('@shoal/sim/config');\nimport 'ws';\n");
      write('packages/sim/src/config.ts', "import * as tf from '@tensorflow/tfjs';\n");
      write('packages/sim/src/index.ts', '');
      expect(forbiddenImports(importGraph(root, 'packages/cli/src/serve.ts'), SIMULATOR, 'no')).toEqual([
        'packages/cli/src/serve.ts → packages/sim/src/index.ts: no',
        'packages/cli/src/serve.ts → packages/cli/src/helpers/a.ts → packages/cli/src/b.ts → packages/sim/src/config.ts: no',
        'packages/cli/src/serve.ts → packages/cli/src/helpers/a.ts → packages/cli/src/b.ts → packages/sim/src/config.ts → @tensorflow/tfjs: no',
      ]);
      // Loaded with the module: neither the type-only import nor the dynamic one.
      const atOnce = importGraph(root, 'packages/cli/src/serve.ts', true);
      expect([...atOnce.keys()].sort()).toEqual(['packages/cli/src/b.ts', 'packages/cli/src/helpers/a.ts', 'packages/cli/src/serve.ts', 'ws']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
