/**
 * Walks a JSON Schema (draft 4 to 2020-12) node by node. It knows which keywords hold
 * subschemas, so a property that happens to be named like a keyword (`default`, `description`)
 * is never taken for one. Paths read like config paths: `clouds.aws.accounts[].id`,
 * `jurisdictions.*.backup` (a record's values), `state<sqlite>.path` (the union branch whose
 * discriminator is `sqlite`), `#/$defs/Name.field`.
 */
export type Schema = Record<string, unknown>;

export interface SchemaNode {
  /** Where the node is, as a config path. */
  path: string;
  schema: Schema;
  /** A field: the root, a property, or the value of a record (`additionalProperties`, `patternProperties`). */
  field: boolean;
}

const ROOT = '(root)';

const isSchema = (value: unknown): value is Schema =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const join = (path: string, key: string) => (path === ROOT ? key : `${path}.${key}`);

/** `<value>` of a union branch's discriminator (a property with `const`, or a one-value `enum`), else `<anyOf 2>`. */
function branchLabel(branch: Schema, keyword: string, index: number): string {
  for (const property of Object.values(isSchema(branch.properties) ? branch.properties : {})) {
    if (!isSchema(property)) continue;
    if (property.const !== undefined) return `<${String(property.const)}>`;
    if (Array.isArray(property.enum) && property.enum.length === 1) return `<${String(property.enum[0])}>`;
  }
  return `<${keyword} ${index}>`;
}

/** Calls `visit` for every schema node under `root`, `root` included; `$ref`s are not followed ($defs are walked themselves). */
export function walkSchema(root: unknown, visit: (node: SchemaNode) => void): void {
  const walk = (schema: unknown, path: string, field: boolean): void => {
    if (!isSchema(schema)) return; // `true` / `false` schemas have nothing to describe
    visit({ path, schema, field });
    for (const [key, sub] of Object.entries(isSchema(schema.properties) ? schema.properties : {})) {
      walk(sub, join(path, key), true);
    }
    for (const sub of Object.values(isSchema(schema.patternProperties) ? schema.patternProperties : {})) {
      walk(sub, join(path, '*'), true);
    }
    walk(schema.additionalProperties, join(path, '*'), true);
    // Draft 4 tuples are `items: [...]`; 2020-12 ones are `prefixItems`.
    const tuple = [schema.items, schema.prefixItems].find(Array.isArray) ?? [];
    for (const [i, sub] of tuple.entries()) walk(sub, `${path}[${i}]`, false);
    if (!Array.isArray(schema.items)) walk(schema.items, `${path}[]`, false);
    for (const keyword of ['anyOf', 'oneOf', 'allOf'] as const) {
      const branches = schema[keyword];
      if (!Array.isArray(branches)) continue;
      branches.forEach((branch, i) => {
        if (isSchema(branch)) walk(branch, `${path}${branchLabel(branch, keyword, i)}`, false);
      });
    }
    walk(schema.not, `${path}<not>`, false);
    for (const keyword of ['$defs', 'definitions'] as const) {
      const defs = schema[keyword];
      if (!isSchema(defs)) continue;
      for (const [name, sub] of Object.entries(defs)) walk(sub, `#/${keyword}/${name}`, false);
    }
  };
  walk(root, ROOT, true);
}

/** The schema a local `$ref` (`#/$defs/Name`, `#/definitions/Name`) points at. */
function resolveRef(root: Schema, ref: string): Schema | undefined {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    node = isSchema(node) ? node[part.replaceAll('~1', '/').replaceAll('~0', '~')] : undefined;
  }
  return isSchema(node) ? node : undefined;
}

const described = (schema: Schema | undefined): boolean =>
  typeof schema?.description === 'string' && schema.description.trim() !== '';

/** Paths of the fields (see {@link SchemaNode.field}) that have no description, here or at the `$ref` they use. */
export function undescribedFields(root: Schema): string[] {
  const missing: string[] = [];
  walkSchema(root, ({ path, schema, field }) => {
    if (!field || described(schema)) return;
    if (typeof schema.$ref === 'string' && described(resolveRef(root, schema.$ref))) return;
    missing.push(path);
  });
  return missing;
}
