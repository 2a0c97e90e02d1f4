/**
 * A throw-away certificate authority and a server certificate for 127.0.0.1 and
 * localhost, made with the system `openssl` at run time (never committed).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalCert {
  /** PEM of the CA that signed `cert`: give it to clients as their trust anchor. */
  ca: string;
  caFile: string;
  cert: string;
  key: string;
}

/** Creates (or reuses) a CA and a loopback server certificate under `dir`. */
export function localCert(dir: string): LocalCert {
  mkdirSync(dir, { recursive: true });
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');
  if (!existsSync(cert)) {
    const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    run([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      caKey,
      '-out',
      caFile,
      '-days',
      '30',
      '-subj',
      '/CN=fleetward-sandbox-ca',
    ]);
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost']);
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
    run([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      caFile,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '30',
      '-extfile',
      ext,
    ]);
  }
  return {
    ca: readFileSync(caFile, 'utf8'),
    caFile,
    cert: readFileSync(cert, 'utf8'),
    key: readFileSync(key, 'utf8'),
  };
}
