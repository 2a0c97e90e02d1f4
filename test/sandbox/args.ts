/** Command-line helpers shared by the sandbox's own commands (`npm run sandbox`, `npm run stack`). */

/** An integer option of at least `min`, or exit 2 naming the option and the value given. */
export function intOption(command: string, name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`${command}: --${name} must be an integer >= ${min}, got "${value}"`);
    process.exit(2);
  }
  return n;
}
