/**
 * `npm run demo`: start the sandbox, run `fleetward discover` against it, print the fleet
 * by jurisdiction, stop everything. Exits with discover's exit code.
 */
import { main } from '../../bin/fleetward.ts';
import { startSandbox } from './index.ts';

process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.METADATA_SERVER_DETECTION = 'none';

process.stderr.write('Starting the local clouds (moto, GKE fake, ARM fake, Kubernetes fakes)...\n');
const sandbox = await startSandbox({ clusters: 24, dir: '.fleetward/demo' });
let code = 1;
try {
  code = await main(['discover', '--config', sandbox.configPath]);
} finally {
  await sandbox.stop();
}
process.stderr.write(`Demo finished (exit ${code}); every emulator stopped.\n`);
process.exitCode = code;
