import { createServer } from 'node:net';

/** An unused TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls `probe` until it resolves truthy or `timeoutMs` passes. */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}

/** Safety: the sandbox refuses to point anything at a non-loopback address. */
export function assertLoopback(url: string): void {
  const host = new URL(url.includes('://') ? url : `http://${url}`).hostname.replace(/^\[|\]$/g, '');
  if (!(host === 'localhost' || host === '::1' || /^127\./.test(host))) {
    throw new Error(`refusing non-loopback address ${host}`);
  }
}

/** Whether a process (or, with a negative id, a process group) still exists; EPERM means it does. */
export function alive(pidOrGroup: number): boolean {
  try {
    process.kill(pidOrGroup, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
