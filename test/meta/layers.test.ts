/**
 * Meta tests of the layers (ARCHITECTURE.md, "Layers and folders" and "Rules of the house"):
 * which folder may import which. Compliance reads the records jobs write (shared/state/records.ts),
 * never the jobs; event intake and jobs see ports, never a cloud adapter or SDK; cloud adapters
 * are loaded by the lazy registry (shared/clouds/registry.ts), which the wiring
 * (shared/runtime/deps.ts) calls to build the ports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every `.ts` file under `dir`, as a repository-relative posix path. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((f) => f.isFile() && f.name.endsWith('.ts'))
    .map((f) => posix.join(f.parentPath.split('\\').join('/'), f.name))
    .sort();
}

/** One import of a file: what it names, resolved (repository path for relative ones), and whether it is lazy. */
interface Import {
  target: string;
  lazy: boolean;
}

const STATIC = /\b(?:import|export)\b[^;'"`]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]/g;
const LAZY = /\bimport\s*\(\s*['"`]([^'"`]+)['"`]/g;

/**
 * The imports of a file (static, re-exports, side-effect and dynamic `import()`), comments
 * removed first so a doc comment naming a path is not taken for an import.
 */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|\s)\/\/.*$/gm, '$1');
  const resolve = (spec: string) => (spec.startsWith('.') ? posix.join(posix.dirname(file), spec) : spec);
  return [
    ...[...text.matchAll(STATIC)].map((m) => ({ target: resolve((m[1] ?? m[2])!), lazy: false })),
    ...[...text.matchAll(LAZY)].map((m) => ({ target: resolve(m[1]!), lazy: true })),
  ];
}

/** `file -> target` for every import of the files under `dirs` that `bad` matches. */
function offending(dirs: readonly string[], bad: (i: Import, file: string) => boolean): string[] {
  return dirs
    .flatMap(sources)
    .flatMap((file) => importsOf(file).flatMap((i) => (bad(i, file) ? [`${file} -> ${i.target}`] : [])));
}

/** Packages that talk to a cloud (or a cluster): only adapters, shared/kube and the storage/notify adapters import them. */
const CLOUD_SDK =
  /^(@aws-sdk\/|@smithy\/|@google-cloud\/|@googleapis\/|googleapis|google-auth-library|google-gax|@azure\/|@azure-rest\/|@kubernetes\/)/;
const under = (folder: string) => (i: Import) => i.target.startsWith(`${folder}/`);

describe('layers', () => {
  it('reads the importer of every import form', () => {
    // Prepare / Act: this very file imports node:fs statically.
    const own = importsOf('test/meta/layers.test.ts');

    // Assess
    expect(own).toContainEqual({ target: 'node:fs', lazy: false });
    expect(importsOf('shared/clouds/registry.ts').some((i) => i.lazy)).toBe(true);
  });

  it('keeps compliance on the records, never on the jobs that write them', () => {
    expect(offending(['shared/compliance'], under('shared/jobs'))).toEqual([]);
  });

  it('keeps the state records free of jobs and compliance', () => {
    const bad = (i: Import) => under('shared/jobs')(i) || under('shared/compliance')(i);

    expect(offending(['shared/state'], bad)).toEqual([]);
  });

  it('lets event intake reach clouds only through ports', () => {
    const bad = (i: Import) => under('shared/clouds')(i) || CLOUD_SDK.test(i.target);

    expect(offending(['shared/events'], bad)).toEqual([]);
  });

  it('shows jobs and the budgets room ports only: no cloud SDK, no cloud adapter, no wiring', () => {
    const bad = (i: Import) =>
      CLOUD_SDK.test(i.target) ||
      under('shared/clouds')(i) ||
      i.target === 'shared/runtime/deps.ts' ||
      under('shared/runtime/deps')(i);

    expect(offending(['shared/jobs', 'shared/budgets'], bad)).toEqual([]);
  });

  it('loads the adapters of the cloud registries lazily, and only there', () => {
    // The discovery registry and the budgets' own (so a budgets bundle reaches no discovery SDK).
    const registries = ['shared/clouds/registry.ts', 'shared/clouds/budget-registry.ts'];
    const adapters = registries.flatMap((registry) =>
      importsOf(registry).filter((i) => /^shared\/clouds\/[a-z]+\//.test(i.target)),
    );

    expect(adapters.length).toBeGreaterThan(0);
    expect(adapters.filter((i) => !i.lazy)).toEqual([]);
    const loaded = new Set(adapters.map((i) => i.target));
    // Adapters of one cloud share code among themselves; everything else goes through the registry.
    const bad = (i: Import, file: string) => loaded.has(i.target) && !file.startsWith('shared/clouds/');

    expect(offending(['shared', 'functions', 'bin'], bad)).toEqual([]);
  });
});
