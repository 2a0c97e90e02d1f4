/**
 * vitest's global setup: finds the tools the sandbox needs once per run, before any test
 * file starts, and says in one line what is missing. Test workers inherit the environment
 * set here: `FLEETWARD_MOTO_PYTHON` when moto was found (or installed into `.fleetward/venv`),
 * `FLEETWARD_MOTO_MISSING` when it was not, so every test that needs moto fails at once with
 * the same one-line install step. The Pub/Sub emulator is optional: its tests skip, with the
 * reason, where it is missing.
 */
import { MOTO_MISSING_ENV, motoPython } from './moto.ts';
import { pubsubEmulatorMissing } from './pubsub-emulator.ts';

export default function setup(): void {
  try {
    process.env.FLEETWARD_MOTO_PYTHON = motoPython();
  } catch (error) {
    process.env[MOTO_MISSING_ENV] = '1';
    console.error(`missing tool: ${(error as Error).message}`);
  }
  const pubsub = pubsubEmulatorMissing();
  if (pubsub) console.error(`missing tool (its tests are skipped): ${pubsub}`);
}
