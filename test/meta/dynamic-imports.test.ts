/**
 * Dynamic `import()` of a package, bundled the way the deployment bundles (serverless.yml
 * `custom.esbuild`: ESM with code splitting), must still hand over the names the code takes
 * from it. For a CommonJS package (the AWS SDK v3 clients, google-auth-library) esbuild gives a
 * split chunk's exports as `default` only, so `const { SSMClient } = await import(...)` is
 * `undefined` in Lambda while it works unbundled, in every other test. This test finds each such
 * import in the runtime code, bundles a probe of it with the deployment's options, runs it, and
 * fails on a name that comes back undefined. The fix is a static import in a module that is
 * itself imported lazily (as shared/clouds/aws/secrets.ts is).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { esbuildOptions } from '../bench/coldstart.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');

interface DynamicImport {
  file: string;
  specifier: string;
  names: string[];
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** `const { A, B } = await import('pkg')` and `import('pkg').then(({ A, B }) => ...)`, bare specifiers only. */
function dynamicImports(file: string, text: string): DynamicImport[] {
  const found: DynamicImport[] = [];
  const patterns = [
    /const\s*\{([^}]*)\}\s*=\s*await\s+import\(\s*'([^'.][^']*)'\s*\)/g,
    /import\(\s*'([^'.][^']*)'\s*\)\s*\.then\(\s*\(\s*\{([^}]*)\}/g,
  ];
  for (const [index, pattern] of patterns.entries()) {
    for (const match of text.matchAll(pattern)) {
      const [, first = '', second = ''] = match;
      const [rawNames, specifier] = index === 0 ? [first, second] : [second, first];
      if (specifier.startsWith('node:')) continue;
      const names = rawNames
        .split(',')
        .map((n) => n.trim().split(':')[0]?.trim() ?? '')
        .filter(Boolean);
      found.push({ file, specifier, names });
    }
  }
  return found;
}

/** Bundles one probe per import with the deployment's esbuild options and reports each name's `typeof`. */
async function probe(
  imports: readonly DynamicImport[],
  work: string,
): Promise<Map<DynamicImport, Record<string, string>>> {
  const entries = imports.map((imp, i) => {
    const entry = join(work, `probe-${i}.ts`);
    writeFileSync(
      entry,
      `const m: any = await import('${imp.specifier}');\n` +
        `console.log(JSON.stringify({ ${imp.names.map((n) => `${JSON.stringify(n)}: typeof m.${n}`).join(', ')} }));\n`,
    );
    return entry;
  });
  await build({
    ...esbuildOptions(ROOT),
    entryPoints: entries,
    outdir: join(work, 'out'),
    absWorkingDir: ROOT,
    nodePaths: [join(ROOT, 'node_modules')],
    logLevel: 'error',
  });
  const out = new Map<DynamicImport, Record<string, string>>();
  imports.forEach((imp, i) => {
    const printed = execFileSync(NODE, [join(work, 'out', `probe-${i}.mjs`)], {
      encoding: 'utf8',
      env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', METADATA_SERVER_DETECTION: 'none' },
    });
    out.set(imp, JSON.parse(printed.trim().split('\n').at(-1) ?? '{}'));
  });
  return out;
}

describe('dynamic imports of packages in a code-split bundle', () => {
  const work = mkdtempSync(join(tmpdir(), 'fleetward-dynamic-imports-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('hand over every name the runtime code takes from them', async () => {
    const imports = [...sources(join(ROOT, 'shared')), ...sources(join(ROOT, 'functions'))]
      .filter((file) => !relative(ROOT, file).startsWith('shared/deploy/'))
      .flatMap((file) => dynamicImports(relative(ROOT, file), readFileSync(file, 'utf8')));
    expect(imports.length).toBeGreaterThan(0);

    const seen = await probe(imports, work);
    const undefinedNames = imports.flatMap((imp) =>
      imp.names
        .filter((n) => seen.get(imp)?.[n] === 'undefined')
        .map((n) => `${imp.file}: ${n} from import('${imp.specifier}') is undefined when bundled`),
    );
    expect(undefinedNames).toEqual([]);
  }, 120_000);

  it('catches a destructured dynamic import of a CommonJS package', async () => {
    const text = "const { SSMClient, GetParameterCommand } = await import('@aws-sdk/client-ssm');";
    const imports = dynamicImports('probe.ts', text);
    expect(imports).toEqual([
      { file: 'probe.ts', specifier: '@aws-sdk/client-ssm', names: ['SSMClient', 'GetParameterCommand'] },
    ]);

    const seen = await probe(imports, mkdtempSync(join(work, 'bites-')));

    expect(seen.get(imports[0] as DynamicImport)).toEqual({
      SSMClient: 'undefined',
      GetParameterCommand: 'undefined',
    });
  }, 120_000);
});
