/** Shapes of JSON values, for contract tests that compare a fake's answers with a reference. */

export type Shape = Map<string, string>;

/** Every path of a JSON value with its JSON type; array items share the path `x[]`. */
export function shapeOf(value: unknown, path = '', into: Shape = new Map()): Shape {
  if (Array.isArray(value)) {
    into.set(path, 'array');
    for (const item of value) shapeOf(item, `${path}[]`, into);
  } else if (value !== null && typeof value === 'object') {
    if (path) into.set(path, 'object');
    for (const [k, v] of Object.entries(value)) shapeOf(v, path ? `${path}.${k}` : k, into);
  } else {
    into.set(path, value === null ? 'null' : typeof value);
  }
  return into;
}
