/**
 * A local Cloud Resource Manager v3 (`projects.get`) on loopback: answers
 * `GET /v3/projects/{projectId or number}` with a `Project` shaped like the REST reference
 * (cloud.google.com/resource-manager/reference/rest/v3/projects#Project; contract test against
 * `test/fixtures/events/gcp/crm-project.json`), and a project it does not hold with 403
 * `PERMISSION_DENIED`, as the real API answers for a project that does not exist or that the
 * caller may not read. Counts the requests it serves.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running fake. */
export interface CrmFake {
  /** Base URL (loopback), for `clouds.gcp.resourceManagerEndpoint`. */
  url: string;
  /** Paths requested so far, in order. */
  requests(): string[];
  /** Adds or replaces a project. */
  setProject(projectId: string, number: string): void;
  stop(): Promise<void>;
}

/**
 * Starts the fake on 127.0.0.1 holding `projects` (project id -> project number). With
 * `acceptToken`, a request whose bearer token it refuses gets 401 `UNAUTHENTICATED`.
 */
export async function startCrmFake(
  projects: Record<string, string> = {},
  options: { acceptToken?: (bearer: string | undefined) => boolean } = {},
): Promise<CrmFake> {
  const byId = new Map(Object.entries(projects));
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    seen.push(path);
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (options.acceptToken && !options.acceptToken(bearer)) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          error: {
            code: 401,
            message: 'Request had invalid authentication credentials.',
            status: 'UNAUTHENTICATED',
          },
        }),
      );
      return;
    }
    const match = /^\/v3\/projects\/([^/]+)$/.exec(path);
    if (req.method !== 'GET' || !match) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 404, message: 'not found', status: 'NOT_FOUND' } }));
      return;
    }
    const key = decodeURIComponent(match[1]!);
    const entry = [...byId].find(([id, number]) => id === key || number === key);
    if (!entry) {
      res.writeHead(403, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          error: {
            code: 403,
            message: `Permission 'resourcemanager.projects.get' denied on resource '//cloudresourcemanager.googleapis.com/projects/${key}' (or it may not exist).`,
            status: 'PERMISSION_DENIED',
          },
        }),
      );
      return;
    }
    const [projectId, number] = entry;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        name: `projects/${number}`,
        parent: 'organizations/123456789012',
        projectId,
        state: 'ACTIVE',
        displayName: projectId,
        createTime: '2024-01-01T00:00:00.000Z',
        updateTime: '2024-01-01T00:00:00.000Z',
        etag: `W/"${number}"`,
        labels: {},
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => [...seen],
    setProject: (projectId, number) => void byId.set(projectId, number),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
