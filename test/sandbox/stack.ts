/**
 * The deployed stack, locally: reads the CloudFormation template and the function zips that
 * `serverless package` wrote and runs them the way AWS would, against the sandbox.
 *
 * - `AWS::SQS::Queue` and `AWS::DynamoDB::Table` are created in moto (queues with their
 *   attributes, so moto applies each RedrivePolicy: a message received `maxReceiveCount` times
 *   moves to its dead-letter queue on the next receive).
 * - `AWS::Lambda::Function`: each zip is unpacked into its own task root; an invocation runs in an
 *   execution environment (`lambda-host.ts`, one Node process each, one invocation at a time,
 *   started on demand and reused warm), with the template's environment, Ref/GetAtt resolved to
 *   moto's queue URLs, ARNs and table names, and `AWS_ENDPOINT_URL` pointing at moto. The
 *   function's `Timeout` ends the environment, as Lambda does.
 * - `AWS::Lambda::EventSourceMapping` (SQS): a poller per mapping receives up to `BatchSize`
 *   within `MaximumBatchingWindowInSeconds`, runs at most `ScalingConfig.MaximumConcurrency`
 *   invocations at once, deletes what succeeded and, with `ReportBatchItemFailures`, leaves only
 *   the reported items to be received again.
 * - `AWS::Events::Rule` with a `ScheduleExpression`: `rate(...)` and `cron(...)` timers (when
 *   `schedules` is on), each target's `Input` as the event; `tick(name)` fires one now.
 * - `AWS::ApiGatewayV2::Route`: a loopback HTTP server translating each request into an API
 *   Gateway HTTP API payload 2.0 event and the function's answer back into a response.
 * - `AWS::IAM::Role` (option `iam`, default `enforce`): each function's environment signs with
 *   its own access key (derived from the function name; moto accepts any), and its
 *   `AWS_ENDPOINT_URL` (and the queue URLs, which the SQS client uses as its endpoint) point at an
 *   AWS proxy in front of moto that checks every call against the inline policies of the role the
 *   function's `Role` names, resolved like the environment: IAM action from the operation, with
 *   wildcards; resource ARN where the request names one (queue, table, parameter, secret, AppConfig
 *   profile, bucket, object, role to assume, KMS key). A call the role does not allow is answered
 *   `AccessDenied` in the service's shape, naming role, function, action and resource, and is
 *   recorded (`stack.iam`); `record` lets it through and records it; `off` checks nothing.
 * - AppConfig (moto has no AppConfig): the proxy answers its data plane (`appconfig-fake.ts`), with
 *   the `config` given deployed to the application, environment and profile the functions'
 *   environment names, so a function reads the deployed config from AppConfig as deployed (the
 *   copy in the task root is the packaged fallback).
 *   See `stack-iam.ts` for what is not evaluated (conditions, resource policies, resources a
 *   request does not name). Member-account calls are checked when the deployed config sends them
 *   to the stack's AWS endpoint (`awsPort`) without credentials, as a deployment reaches them
 *   with the function's role: each `sts:AssumeRole` against the role; what the assumed session
 *   then calls is for the member account's reader role to allow, which is not emulated.
 *
 * Deliberate differences from AWS: a failed item becomes visible again after
 * `retryVisibilitySeconds` when that is set (instead of the queue's visibility timeout, 6x the
 * worker timeout); scheduled invocations are not retried on error; EventBridge pattern rules,
 * log groups and alarms are not emulated; the runner itself (queue polling, table creation) uses
 * moto directly with the sandbox keys, as Lambda's own service roles are not modelled.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createAppConfigFake } from './appconfig-fake.ts';
import { type Authorizer, type AwsProxy, type OverrideHandler, startAwsProxy } from './aws-proxy.ts';
import {
  accessDeniedMessage,
  functionCredentials,
  type IamCall,
  type IamMode,
  iamRequests,
  refusedResource,
  type Statement,
  statementsOf,
} from './stack-iam.ts';

/** moto's default account. */
export const STACK_ACCOUNT = '123456789012';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Resource {
  Type: string;
  Properties?: Record<string, Json>;
}
export interface Template {
  Resources: Record<string, Resource>;
}

export interface StackOptions {
  /** The directory `serverless package --package DIR` wrote (template, zips, serverless-state.json). */
  packageDir: string;
  /** moto: the stack's queues and table live there; the functions reach it through the stack's AWS proxy. */
  awsEndpoint: string;
  /**
   * A fleet.yaml to deploy with the functions: deployed to AppConfig where the functions'
   * environment names it, and copied into each task root as `fleet.yaml` and over the packaged
   * config (the file the template's `FLEETWARD_CONFIG` names), the fallback.
   */
  config?: string;
  /** Where the zips are unpacked (default: a temporary directory, removed on stop). */
  workDir?: string;
  /** Added to every function's environment, after the template's. */
  env?: Record<string, string>;
  /** Run the rate/cron timers of the enabled schedules (default true). `tick` works either way. */
  schedules?: boolean;
  /** A failed SQS item is visible again after this many seconds instead of the queue's visibility timeout. */
  retryVisibilitySeconds?: number;
  /** Port of the HTTP API (default: a free one). */
  httpPort?: number;
  /** Every line a function writes to stdout or stderr. */
  onLog?: (fn: string, line: string) => void;
  /** Every finished invocation. */
  onInvoke?: (invocation: Invocation) => void;
  /**
   * Port of the stack's AWS endpoint (default: a free one), so a deployed config can name it as
   * `clouds.aws.endpoint` and send the member-account calls (STS AssumeRole) through the IAM check too.
   */
  awsPort?: number;
  /**
   * IAM for the functions' own-account calls (`stack-iam.ts`; default `enforce`): each function
   * signs with its own key and reaches moto through an AWS proxy that checks the call against the
   * function's role in the template; `record` lets a call the role does not allow through but
   * records it; `off` checks nothing and gives every function the shared sandbox keys.
   */
  iam?: IamMode;
}

/** The IAM emulation of a stack: its decisions, and the role policies it checks against. */
export interface StackIam {
  mode: IamMode;
  /** Every call a function made through the stack's AWS endpoint, with its decision (none when `off`). */
  calls: IamCall[];
  /** The calls a role did not allow: refused (`enforce`) or let through and recorded (`record`). */
  denied(): IamCall[];
  /** The distinct (function, IAM action) pairs the functions used, sorted. */
  used(): { function: string; action: string }[];
  /** The statements of a function's role as the runner checks them (a copy). */
  statements(fn: string): Statement[];
  /**
   * Takes `action` out of every `Allow` statement of the function's role in the runner's policy
   * map (the template and the package stay as they are); answers the undo.
   * @throws Error when the role grants the action only through a wildcard, which cannot be split.
   */
  revoke(fn: string, action: string): () => void;
  /** The access key id the function's environment signs with. */
  accessKeyId(fn: string): string;
  /**
   * Requests signed with a key of no function of the stack (passed through unchecked), except
   * member-account sessions: keys an AssumeRole through this proxy handed out (see `memberCalls`).
   */
  unchecked: number;
  /**
   * Requests signed with member-account session keys (AssumeRole answers that passed through the
   * proxy, when the deployed config sends member-account calls here): the member account's reader
   * role decides those, which is not emulated; the `sts:AssumeRole` that obtained them is checked.
   */
  memberCalls: number;
}

export interface Invocation {
  function: string;
  trigger: 'schedule' | 'sqs' | 'http' | 'invoke';
  requestId: string;
  ms: number;
  ok: boolean;
  /** The parsed result (ok) or the error Lambda reports (`errorType`, `errorMessage`). */
  result?: unknown;
  error?: { errorType: string; errorMessage: string };
  /** SQS: message ids received, and the ones the invocation left to be received again. */
  received?: string[];
  failed?: string[];
}

export interface StackQueue {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
}

export interface Stack {
  /** Base URL of the HTTP API (routes as in the template, e.g. `POST /events/gcp`). */
  url: string;
  /** The functions' `AWS_ENDPOINT_URL`: the stack's AWS proxy (IAM check, AppConfig) in front of moto. */
  awsEndpoint: string;
  /** Function keys as in serverless.yml (`backup-clusters`, ...). */
  functions: string[];
  queues: StackQueue[];
  tables: string[];
  /** Schedules by function key: expression and state. */
  schedules: { function: string; rule: string; expression: string; enabled: boolean }[];
  invocations: Invocation[];
  /** IAM: what the functions called and what their roles refused. */
  iam: StackIam;
  /** Fires one tick of the function's schedule now and waits for its invocation. */
  tick(fn: string): Promise<Invocation>;
  /** Invokes a function synchronously (RequestResponse). */
  invoke(fn: string, event: unknown): Promise<Invocation>;
  /** Resolves when no SQS item is queued, in flight or being handled (or rejects after `timeoutMs`). */
  idle(timeoutMs?: number): Promise<void>;
  /** PIDs of the running execution environments. */
  pids(): number[];
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The template

interface Physical {
  ref: string;
  attrs: Record<string, string>;
}

/** Resolves Ref, Fn::GetAtt, Fn::Join and Fn::Sub against what the stack created. */
export function resolveIntrinsics(
  value: Json,
  physical: Map<string, Physical>,
  pseudo: Record<string, string>,
  where = '',
): Json {
  if (Array.isArray(value))
    return value.map((v, i) => resolveIntrinsics(v, physical, pseudo, `${where}[${i}]`));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  const lookup = (name: string, attr?: string): string => {
    if (attr === undefined && pseudo[name] !== undefined) return pseudo[name];
    const p = physical.get(name);
    const out = attr === undefined ? p?.ref : p?.attrs[attr];
    if (out === undefined) {
      throw new Error(`${where}: cannot resolve ${attr ? `${name}.${attr}` : name} locally`);
    }
    return out;
  };
  if (keys.length === 1) {
    const [key] = keys as [string];
    const arg = value[key] as Json;
    if (key === 'Ref') return lookup(String(arg));
    if (key === 'Fn::GetAtt') {
      const [name, attr] = Array.isArray(arg) ? arg.map(String) : String(arg).split('.');
      return lookup(name!, attr!);
    }
    if (key === 'Fn::Join') {
      const [sep, parts] = arg as [string, Json[]];
      return (resolveIntrinsics(parts, physical, pseudo, where) as Json[]).map(String).join(sep);
    }
    if (key === 'Fn::Sub') {
      const [text, vars] = (Array.isArray(arg) ? arg : [arg, {}]) as [string, Record<string, Json>];
      return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
        if (vars[name] !== undefined) return String(resolveIntrinsics(vars[name], physical, pseudo, where));
        const [ref, attr] = name.split('.');
        return lookup(ref!, attr);
      });
    }
    if (key.startsWith('Fn::')) throw new Error(`${where}: ${key} is not supported locally`);
  }
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, resolveIntrinsics(v, physical, pseudo, `${where}.${k}`)]),
  );
}

const ofType = (template: Template, type: string) =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === type);

const refOf = (value: Json | undefined): string | undefined => {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    if (typeof value.Ref === 'string') return value.Ref;
    const att = value['Fn::GetAtt'];
    if (Array.isArray(att)) return String(att[0]);
    if (typeof att === 'string') return att.split('.')[0];
  }
  return undefined;
};

// ---------------------------------------------------------------------------------------------
// Schedules

const RATE_UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** EventBridge cron field: `*`, `?`, lists, ranges, `a/b` steps, month and day names. */
function cronField(field: string, min: number, max: number, names: string[] = [], offset = 0): Set<number> {
  const out = new Set<number>();
  const num = (s: string) => {
    const i = names.indexOf(s.toUpperCase());
    const n = i >= 0 ? i + offset : Number(s);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`cron field "${field}" is not supported`);
    return n;
  };
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    let [lo, hi] = [min, max];
    if (range !== '*' && range !== '?') {
      const [a, b] = range!.split('-');
      lo = num(a!);
      hi = b === undefined ? (stepText === undefined ? lo : max) : num(b);
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/** The next time (ms, UTC) after `from` an EventBridge `rate(...)` or `cron(...)` fires. */
export function nextFire(expression: string, from: number, startedAt = from): number {
  const rate = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(expression);
  if (rate) {
    const every = Number(rate[1]) * RATE_UNITS[rate[2]!]!;
    return startedAt + Math.ceil((from + 1 - startedAt) / every) * every;
  }
  const cron = /^cron\((.+)\)$/.exec(expression);
  if (!cron) throw new Error(`schedule expression "${expression}" is not supported`);
  const [mi, h, dom, mon, dow, year] = cron[1]!.trim().split(/\s+/);
  if (year === undefined) throw new Error(`cron "${expression}" needs 6 fields`);
  const minutes = cronField(mi!, 0, 59);
  const hours = cronField(h!, 0, 23);
  const days = cronField(dom!, 1, 31);
  const months = cronField(mon!, 1, 12, MONTHS, 1);
  const weekdays = cronField(dow!, 1, 7, DAYS, 1);
  const years = cronField(year, 1970, 2199);
  const t = new Date(Math.floor(from / 60_000) * 60_000 + 60_000);
  for (let i = 0; i < 366 * 24 * 60 * 5; i++, t.setUTCMinutes(t.getUTCMinutes() + 1)) {
    if (
      minutes.has(t.getUTCMinutes()) &&
      hours.has(t.getUTCHours()) &&
      (dom === '?' || days.has(t.getUTCDate())) &&
      (dow === '?' || weekdays.has(t.getUTCDay() + 1)) &&
      months.has(t.getUTCMonth() + 1) &&
      years.has(t.getUTCFullYear())
    ) {
      return t.getTime();
    }
  }
  throw new Error(`cron "${expression}" never fires`);
}

// ---------------------------------------------------------------------------------------------
// Execution environments

interface Environment {
  child: ChildProcess;
  busy: boolean;
}

interface FunctionSpec {
  key: string;
  logicalId: string;
  name: string;
  arn: string;
  handler: string;
  timeoutMs: number;
  memory: number;
  taskRoot: string;
  env: Record<string, string>;
}

const HOST = resolve(import.meta.dirname, 'lambda-host.ts');

class LambdaFunction {
  private readonly idle: Environment[] = [];
  private readonly all = new Set<Environment>();
  private nextId = 0;

  readonly spec: FunctionSpec;
  private readonly hooks: { onLog?: StackOptions['onLog'] };

  constructor(spec: FunctionSpec, hooks: { onLog?: StackOptions['onLog'] }) {
    this.spec = spec;
    this.hooks = hooks;
  }

  pids(): number[] {
    return [...this.all].map((e) => e.child.pid!).filter(Boolean);
  }

  /** Starts one execution environment and waits for its handler module to load (the cold start). */
  private start(): Promise<Environment> {
    const child = fork(HOST, [], {
      cwd: this.spec.taskRoot,
      env: this.spec.env,
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const env: Environment = { child, busy: false };
    this.all.add(env);
    const tail: string[] = [];
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          tail.push(line);
          if (tail.length > 20) tail.shift();
          this.hooks.onLog?.(this.spec.key, line);
        }
      });
    }
    child.once('exit', () => {
      this.all.delete(env);
      const i = this.idle.indexOf(env);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return new Promise((resolveEnv, reject) => {
      const onMessage = (m: { type?: string; error?: { errorMessage: string } }) => {
        if (m.type === 'ready') {
          child.off('exit', onExit);
          child.off('message', onMessage);
          resolveEnv(env);
        } else if (m.type === 'init-error') {
          reject(new Error(`${this.spec.key}: ${m.error?.errorMessage}`));
        }
      };
      const onExit = (code: number | null) =>
        reject(new Error(`${this.spec.key}: environment exited (${code}) during init: ${tail.join('\n')}`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  }

  async invoke(event: unknown, trigger: Invocation['trigger'], timeoutMs?: number): Promise<Invocation> {
    const started = Date.now();
    const requestId = randomUUID();
    const done = (o: Partial<Invocation>): Invocation => ({
      function: this.spec.key,
      trigger,
      requestId,
      ms: Date.now() - started,
      ok: false,
      ...o,
    });
    let env: Environment;
    try {
      env = this.idle.pop() ?? (await this.start());
    } catch (error) {
      return done({ error: { errorType: 'Runtime.InitError', errorMessage: (error as Error).message } });
    }
    env.busy = true;
    const limit = Math.min(timeoutMs ?? this.spec.timeoutMs, this.spec.timeoutMs);
    const id = ++this.nextId;
    const outcome = await new Promise<Partial<Invocation>>((resolveOutcome) => {
      const finish = (o: Partial<Invocation>) => {
        clearTimeout(timer);
        env.child.off('message', onMessage);
        env.child.off('exit', onExit);
        resolveOutcome(o);
      };
      const onMessage = (m: {
        id?: number;
        ok?: boolean;
        payload?: string;
        error?: { errorType: string; errorMessage: string };
      }) => {
        if (m.id !== id) return;
        if (m.ok) finish({ ok: true, result: JSON.parse(m.payload ?? 'null') });
        else finish({ error: { errorType: m.error!.errorType, errorMessage: m.error!.errorMessage } });
      };
      const onExit = (code: number | null) =>
        finish({ error: { errorType: 'Runtime.ExitError', errorMessage: `exited with ${code}` } });
      // Lambda ends an environment whose invocation outlives the function's timeout.
      const timer = setTimeout(() => {
        env.child.kill('SIGKILL');
        finish({
          error: {
            errorType: 'Sandbox.Timedout',
            errorMessage: `Task timed out after ${limit / 1000} seconds`,
          },
        });
      }, limit);
      env.child.on('message', onMessage);
      env.child.once('exit', onExit);
      env.child.send({ id, event, deadline: Date.now() + limit, requestId });
    });
    env.busy = false;
    if (env.child.exitCode === null && env.child.signalCode === null && this.all.has(env))
      this.idle.push(env);
    return done(outcome);
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.all].map(
        (env) =>
          new Promise<void>((done) => {
            if (env.child.exitCode !== null || env.child.signalCode !== null) return done();
            const timer = setTimeout(() => env.child.kill('SIGKILL'), 2000);
            env.child.once('exit', () => {
              clearTimeout(timer);
              done();
            });
            env.child.kill('SIGTERM');
          }),
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// SQS event source mappings

interface Mapping {
  fn: LambdaFunction;
  queue: StackQueue;
  batchSize: number;
  windowMs: number;
  maxConcurrency: number;
  reportFailures: boolean;
}

function sqsRecord(m: Message, queue: StackQueue, region: string) {
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: m.Attributes ?? {},
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
        k,
        {
          dataType: v.DataType,
          ...(v.StringValue !== undefined && { stringValue: v.StringValue }),
          ...(v.BinaryValue !== undefined && { binaryValue: Buffer.from(v.BinaryValue).toString('base64') }),
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queue.arn,
    awsRegion: region,
  };
}

/** Which received messages an invocation leaves to be received again (Lambda's rules for SQS). */
export function failedItems(invocation: Invocation, ids: string[], reportFailures: boolean): string[] {
  if (!invocation.ok) return ids;
  if (!reportFailures) return [];
  const failures = (invocation.result as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  if (failures === undefined || failures === null) return [];
  if (!Array.isArray(failures)) return ids;
  const named = failures.map((f) => (f as { itemIdentifier?: unknown })?.itemIdentifier);
  // An empty, missing or unknown identifier fails the whole batch, as Lambda does.
  if (named.some((n) => typeof n !== 'string' || !ids.includes(n))) return ids;
  return named as string[];
}

// ---------------------------------------------------------------------------------------------
// HTTP API (payload 2.0)

interface Route {
  method: string;
  pattern: RegExp;
  params: string[];
  routeKey: string;
  fn: LambdaFunction;
  timeoutMs: number;
}

function compileRoute(routeKey: string): { method: string; pattern: RegExp; params: string[] } {
  if (routeKey === '$default') return { method: 'ANY', pattern: /^.*$/, params: [] };
  const [method, path] = routeKey.split(' ') as [string, string];
  const params: string[] = [];
  const source = path
    .split('/')
    .map((seg) => {
      const m = /^\{([^}+]+)(\+?)\}$/.exec(seg);
      if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      params.push(m[1]!);
      return m[2] ? '(.+)' : '([^/]+)';
    })
    .join('/');
  return { method, pattern: new RegExp(`^${source}$`), params };
}

const TEXT_TYPES = /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded))/i;

function apiEvent(req: IncomingMessage, body: Buffer, route: Route, match: RegExpExecArray, apiId: string) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    if (name === 'cookie') continue;
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const cookies = req.headers.cookie?.split(/;\s*/).filter(Boolean);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const pathParameters = Object.fromEntries(
    route.params.map((p, i) => [p, decodeURIComponent(match[i + 1]!)]),
  );
  const now = new Date();
  const text = TEXT_TYPES.test(headers['content-type'] ?? '');
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies?.length && { cookies }),
    headers,
    ...(Object.keys(query).length > 0 && { queryStringParameters: query }),
    requestContext: {
      accountId: STACK_ACCOUNT,
      apiId,
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0],
      http: {
        method: req.method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: route.routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(route.params.length > 0 && { pathParameters }),
    ...(body.length > 0 && { body: text ? body.toString('utf8') : body.toString('base64') }),
    isBase64Encoded: body.length > 0 && !text,
  };
}

/** Writes a function's payload 2.0 answer as API Gateway does (a result without statusCode is a 200 JSON body). */
function writeApiResponse(res: ServerResponse, invocation: Invocation): void {
  const json = (status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message }));
  };
  if (!invocation.ok) {
    if (invocation.error?.errorType === 'Sandbox.Timedout') json(503, 'Service Unavailable');
    else json(500, 'Internal Server Error');
    return;
  }
  const r = invocation.result as {
    statusCode?: number;
    headers?: Record<string, string>;
    body?: string;
    isBase64Encoded?: boolean;
    cookies?: string[];
  } | null;
  if (r === null || typeof r !== 'object' || typeof r.statusCode !== 'number') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r));
    return;
  }
  const headers: Record<string, string | string[]> = { ...(r.headers ?? {}) };
  if (r.cookies?.length) headers['set-cookie'] = r.cookies;
  res.writeHead(r.statusCode, headers);
  res.end(r.body === undefined ? '' : Buffer.from(r.body, r.isBase64Encoded ? 'base64' : 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// The stack

function unzip(zip: string, into: string): void {
  mkdirSync(into, { recursive: true });
  if (spawnSync('unzip', ['-q', '-o', zip, '-d', into]).status === 0) return;
  // No unzip on the machine: Python's zipfile does the same.
  const py = spawnSync('python3', ['-m', 'zipfile', '-e', zip, into]);
  if (py.status !== 0) throw new Error(`cannot unpack ${zip}: ${py.stderr}`);
}

/**
 * Runs a `serverless package` output against the sandbox as AWS would (see the module comment):
 * creates its queues and table in moto, starts its AWS proxy (IAM check, AppConfig), its pollers,
 * timers and HTTP API. `stop()` ends every process and server it started.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const started: (() => Promise<void>)[] = [];
  try {
    return await buildStack(options, started);
  } catch (error) {
    // Whatever started before the failure (the AWS proxy) stops, so a bad template leaks nothing.
    for (const stop of started.reverse()) await stop().catch(() => {});
    throw error;
  }
}

async function buildStack(options: StackOptions, started: (() => Promise<void>)[]): Promise<Stack> {
  const packageDir = resolve(options.packageDir);
  const template = JSON.parse(
    readFileSync(join(packageDir, 'cloudformation-template-update-stack.json'), 'utf8'),
  ) as Template;
  const state = JSON.parse(readFileSync(join(packageDir, 'serverless-state.json'), 'utf8')) as {
    service: {
      service: string;
      provider: { region: string; stage: string; stackName?: string };
      functions?: Record<string, { name?: string }>;
    };
  };
  const { region, stage } = state.service.provider;
  // The fleetward plugin names the stack after the deployment (fleetward-<stage>-<home|jurisdiction>).
  const stackName = state.service.provider.stackName ?? `${state.service.service}-${stage}`;
  /** serverless.yml function keys by deployed function name (names may be hash-truncated). */
  const keyOfName = new Map(
    Object.entries(state.service.functions ?? {}).map(([key, f]) => [f.name ?? `${stackName}-${key}`, key]),
  );
  const pseudo = {
    'AWS::Region': region,
    'AWS::AccountId': STACK_ACCOUNT,
    'AWS::Partition': 'aws',
    'AWS::StackName': stackName,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const aws = { endpoint: options.awsEndpoint, region, credentials };
  const sqs = new SQSClient(aws);
  const dynamo = new DynamoDBClient(aws);
  const physical = new Map<string, Physical>();
  const resolveHere = (value: Json, where: string) => resolveIntrinsics(value, physical, pseudo, where);

  // IAM: each function's role policy, checked by an AWS proxy in front of moto (stack-iam.ts).
  const iamMode: IamMode = options.iam ?? 'enforce';
  interface Identity {
    key: string;
    name: string;
    role: string;
    statements: Statement[];
  }
  const identities = new Map<string, Identity>();
  const identityOf = new Map<string, Identity>();
  const iamCalls: IamCall[] = [];
  let unchecked = 0;
  let memberCalls = 0;
  const authorize: Authorizer = (req) => {
    const who = req.info.accessKeyId ? identities.get(req.info.accessKeyId) : undefined;
    if (!who) {
      if (req.info.accessKeyId && proxy.accounts.has(req.info.accessKeyId)) memberCalls++;
      else unchecked++;
      return undefined;
    }
    const call = `${req.info.service ?? 'unknown'}:${req.info.operation}`;
    for (const need of iamRequests(req, STACK_ACCOUNT, { configurationOf: (t) => configurationOf.get(t) })) {
      const refused = refusedResource(who.statements, need);
      const entry: IamCall = {
        function: who.key,
        action: need.action,
        resources: need.resources,
        allowed: refused === undefined,
        call,
        at: Date.now(),
      };
      iamCalls.push(entry);
      if (refused === undefined) continue;
      entry.message = accessDeniedMessage(STACK_ACCOUNT, who.role, who.name, need.action, refused);
      if (iamMode === 'enforce') return { message: entry.message };
    }
    return undefined;
  };
  const proxy: AwsProxy = await startAwsProxy({
    upstream: options.awsEndpoint,
    ...(options.awsPort !== undefined && { port: options.awsPort }),
    ...(iamMode !== 'off' && { authorize }),
  });
  started.push(() => proxy.stop());
  // AppConfig's data plane (moto has none): the fake answers it in the proxy, and the stack keeps
  // which configuration each session token belongs to, so the IAM check can name its resource.
  const appConfig = createAppConfigFake();
  const configurationOf = new Map<string, string>();
  const tracking =
    (operation: string, handler: OverrideHandler): OverrideHandler =>
    async (req, tools) => {
      const answer = await handler(req, tools);
      if (answer.status >= 300 || answer.body === undefined) return answer;
      if (operation === 'StartConfigurationSession') {
        const [need] = iamRequests(req, STACK_ACCOUNT);
        const token = (JSON.parse(answer.body.toString()) as { InitialConfigurationToken?: string })
          .InitialConfigurationToken;
        if (token && need?.resources[0]) configurationOf.set(token, need.resources[0]);
      } else {
        const token = new URL(req.url, 'http://stack.invalid').searchParams.get('configuration_token');
        const next = answer.headers?.['next-poll-configuration-token'];
        const where = token ? configurationOf.get(token) : undefined;
        if (next && where) configurationOf.set(next, where);
      }
      return answer;
    };
  appConfig.attach({
    override: (operation: string, handler: OverrideHandler) =>
      proxy.override(operation, tracking(operation, handler)),
  } as AwsProxy);
  const published = new Set<string>();

  // Queues: dead-letter targets first, so each RedrivePolicy resolves to a queue that exists.
  const queues: StackQueue[] = [];
  const pendingQueues = ofType(template, 'AWS::SQS::Queue');
  while (pendingQueues.length > 0) {
    const i = pendingQueues.findIndex(([, r]) => {
      const target = refOf(
        (r.Properties?.RedrivePolicy as Record<string, Json> | undefined)?.deadLetterTargetArn,
      );
      return target === undefined || physical.has(target);
    });
    if (i < 0) throw new Error('queues refer to dead-letter queues that are not in the template');
    const [logicalId, resource] = pendingQueues.splice(i, 1)[0]!;
    const props = resolveHere(resource.Properties ?? {}, logicalId) as Record<string, Json>;
    const name = String(props.QueueName ?? `${stackName}-${logicalId}`);
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(props)) {
      if (k === 'QueueName' || k === 'Tags') continue;
      attributes[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
    const url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
      .QueueUrl!;
    const arn = `arn:aws:sqs:${region}:${STACK_ACCOUNT}:${name}`;
    // The SQS client sends each call to the host of its QueueUrl (`useQueueUrlAsEndpoint`), so the
    // functions get the queue's URL on the IAM proxy; moto finds a queue by the path alone.
    const seen = `${proxy.url}${new URL(url).pathname}`;
    physical.set(logicalId, { ref: seen, attrs: { Arn: arn, QueueName: name, QueueUrl: seen } });
    queues.push({ logicalId, name, url, arn });
  }

  const tables: string[] = [];
  for (const [logicalId, resource] of ofType(template, 'AWS::DynamoDB::Table')) {
    const p = resolveHere(resource.Properties ?? {}, logicalId) as Record<string, Json>;
    const name = String(p.TableName ?? `${stackName}-${logicalId}`);
    // The CloudFormation properties of a table that CreateTable takes under the same names.
    const input = Object.fromEntries(
      [
        'AttributeDefinitions',
        'KeySchema',
        'BillingMode',
        'ProvisionedThroughput',
        'GlobalSecondaryIndexes',
        'LocalSecondaryIndexes',
      ]
        .filter((k) => p[k] !== undefined)
        .map((k) => [k, p[k]]),
    );
    try {
      await dynamo.send(
        new CreateTableCommand({ ...input, TableName: name } as unknown as CreateTableCommandInput),
      );
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    physical.set(logicalId, {
      ref: name,
      attrs: { Arn: `arn:aws:dynamodb:${region}:${STACK_ACCOUNT}:table/${name}` },
    });
    tables.push(name);
  }
  dynamo.destroy();

  // Functions: names and ARNs first (environments may refer to each other), then each task root.
  const fnResources = ofType(template, 'AWS::Lambda::Function');
  for (const [logicalId, resource] of fnResources) {
    const name = String(resource.Properties?.FunctionName ?? `${stackName}-${logicalId}`);
    physical.set(logicalId, {
      ref: name,
      attrs: { Arn: `arn:aws:lambda:${region}:${STACK_ACCOUNT}:function:${name}` },
    });
  }
  for (const [logicalId] of ofType(template, 'AWS::ApiGatewayV2::Integration')) {
    physical.set(logicalId, { ref: logicalId, attrs: {} });
  }
  physical.set('HttpApi', { ref: 'local', attrs: { ApiEndpoint: '' } });
  // AppConfig (moto has no AppConfig): the ids in ARNs are the names locally (see stack-iam.ts).
  const APPCONFIG_IDS: Record<string, string> = {
    'AWS::AppConfig::Application': 'ApplicationId',
    'AWS::AppConfig::Environment': 'EnvironmentId',
    'AWS::AppConfig::ConfigurationProfile': 'ConfigurationProfileId',
  };
  for (const [type, attr] of Object.entries(APPCONFIG_IDS)) {
    for (const [logicalId, resource] of ofType(template, type)) {
      const name = String(resource.Properties?.Name ?? logicalId);
      physical.set(logicalId, { ref: name, attrs: { [attr]: name } });
    }
  }

  const workDir = resolve(options.workDir ?? mkdtempSync(join(tmpdir(), 'fleetward-stack-')));
  const functions = new Map<string, LambdaFunction>();
  const byLogical = new Map<string, LambdaFunction>();
  for (const [logicalId, resource] of fnResources) {
    const p = resource.Properties ?? {};
    const name = physical.get(logicalId)!.ref;
    const key =
      keyOfName.get(name) ?? (name.startsWith(`${stackName}-`) ? name.slice(stackName.length + 1) : name);
    const code = p.Code as { S3Key?: string } | undefined;
    const zip = join(packageDir, basename(String(code?.S3Key ?? `${key}.zip`)));
    if (!existsSync(zip)) throw new Error(`${key}: ${zip} is not in the package`);
    const taskRoot = join(workDir, key);
    unzip(zip, taskRoot);
    const variables = resolveHere(
      ((p.Environment as Record<string, Json> | undefined)?.Variables ?? {}) as Json,
      `${key}.Environment.Variables`,
    ) as Record<string, Json>;
    if (options.config) {
      // The deployed config replaces the packaged one, under the name FLEETWARD_CONFIG gives it
      // (the fleetward plugin packages FLEETWARD_CONFIG's file, e.g. fleet.example.yaml).
      const packaged = String(variables.FLEETWARD_CONFIG ?? 'fleet.yaml');
      for (const target of new Set(['fleet.yaml', packaged])) {
        const path = resolve(taskRoot, target);
        if (!path.startsWith(`${taskRoot}/`))
          throw new Error(`${key}: FLEETWARD_CONFIG ${packaged} is outside the task root`);
        copyFileSync(options.config, path);
      }
    }
    const memory = Number(p.MemorySize ?? 128);
    const app = variables.FLEETWARD_APPCONFIG_APPLICATION;
    const appEnv = variables.FLEETWARD_APPCONFIG_ENVIRONMENT;
    const profile = variables.FLEETWARD_APPCONFIG_PROFILE;
    if (options.config && app && appEnv && profile) {
      // The deployed config, deployed to AppConfig where the function reads it (the copy in the
      // task root stays the packaged fallback).
      const target = { application: String(app), environment: String(appEnv), profile: String(profile) };
      const id = JSON.stringify(target);
      if (!published.has(id)) {
        appConfig.publish(target, readFileSync(options.config, 'utf8'), 'application/x-yaml');
        published.add(id);
      }
    }
    const keys = iamMode === 'off' ? credentials : functionCredentials(name);
    if (iamMode !== 'off') {
      const roleId = refOf(p.Role);
      const role = roleId === undefined ? undefined : template.Resources[roleId];
      if (role?.Type !== 'AWS::IAM::Role') {
        throw new Error(`${key}: its Role is not an AWS::IAM::Role of the template; IAM cannot be emulated`);
      }
      const rp = role!.Properties ?? {};
      const policies = (rp.Policies as Json[] | undefined) ?? [];
      const identity: Identity = {
        key,
        name,
        role: String(resolveHere(rp.RoleName ?? roleId!, `${roleId}.RoleName`)),
        statements: policies.flatMap((policy, i) =>
          statementsOf(
            resolveHere(
              (policy as Record<string, Json>).PolicyDocument ?? null,
              `${roleId}.Policies[${i}].PolicyDocument`,
            ),
          ),
        ),
      };
      identities.set(keys.accessKeyId, identity);
      identityOf.set(key, identity);
    }
    const env: Record<string, string> = {
      ...Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, String(v)])),
      // What the Lambda runtime sets, and the role's (fake) credentials.
      AWS_LAMBDA_FUNCTION_NAME: name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memory),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `local/${key}`,
      AWS_EXECUTION_ENV: `AWS_Lambda_${String(p.Runtime ?? 'nodejs')}`,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      LAMBDA_TASK_ROOT: taskRoot,
      _HANDLER: String(p.Handler),
      TZ: 'UTC',
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
      // The sandbox: every AWS call of the deployment's own account goes to moto (through the IAM
      // check unless it is off); nothing leaves loopback.
      AWS_ENDPOINT_URL: proxy.url,
      AWS_EC2_METADATA_DISABLED: 'true',
      METADATA_SERVER_DETECTION: 'none',
      FLEETWARD_STACK_ACCOUNT: STACK_ACCOUNT,
      ...(process.env.PATH && { PATH: process.env.PATH }),
      ...options.env,
    };
    const fn = new LambdaFunction(
      {
        key,
        logicalId,
        name,
        arn: physical.get(logicalId)!.attrs.Arn!,
        handler: String(p.Handler),
        timeoutMs: Number(p.Timeout ?? 3) * 1000,
        memory,
        taskRoot,
        env,
      },
      { ...(options.onLog && { onLog: options.onLog }) },
    );
    functions.set(key, fn);
    byLogical.set(logicalId, fn);
  }
  const fnOf = (value: Json | undefined, where: string) => {
    const id = refOf(value);
    const fn = id === undefined ? undefined : byLogical.get(id);
    if (!fn) throw new Error(`${where}: target is not a function of this stack`);
    return fn;
  };

  const invocations: Invocation[] = [];
  const record = (i: Invocation) => {
    invocations.push(i);
    options.onInvoke?.(i);
    return i;
  };

  // Event source mappings.
  const mappings: Mapping[] = [];
  for (const [logicalId, resource] of ofType(template, 'AWS::Lambda::EventSourceMapping')) {
    const p = resource.Properties ?? {};
    if (p.Enabled === false) continue;
    const queueId = refOf(p.EventSourceArn);
    const queue = queues.find((q) => q.logicalId === queueId);
    if (!queue) throw new Error(`${logicalId}: only SQS event sources of this stack are supported locally`);
    const scaling = p.ScalingConfig as { MaximumConcurrency?: number } | undefined;
    mappings.push({
      fn: fnOf(p.FunctionName, logicalId),
      queue,
      batchSize: Number(p.BatchSize ?? 10),
      windowMs: Number(p.MaximumBatchingWindowInSeconds ?? 0) * 1000,
      // Without a maximum, Lambda scales an SQS source up to 1000 concurrent invocations.
      maxConcurrency: Number(scaling?.MaximumConcurrency ?? 1000),
      reportFailures: ((p.FunctionResponseTypes as string[] | undefined) ?? []).includes(
        'ReportBatchItemFailures',
      ),
    });
  }

  const stopping = new AbortController();
  let busy = 0;
  const inFlight = new Set<Promise<void>>();

  async function receive(m: Mapping, max: number, waitSeconds: number): Promise<Message[]> {
    try {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: m.queue.url,
          MaxNumberOfMessages: Math.min(10, max),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: stopping.signal },
      );
      return out.Messages ?? [];
    } catch (error) {
      if (stopping.signal.aborted) return [];
      throw error;
    }
  }

  async function deliver(m: Mapping, messages: Message[]): Promise<void> {
    const ids = messages.map((x) => x.MessageId!);
    const event = { Records: messages.map((x) => sqsRecord(x, m.queue, region)) };
    const invocation = await m.fn.invoke(event, 'sqs');
    const failed = failedItems(invocation, ids, m.reportFailures);
    record({ ...invocation, received: ids, failed });
    if (stopping.signal.aborted) return;
    const done = messages.filter((x) => !failed.includes(x.MessageId!));
    const again = messages.filter((x) => failed.includes(x.MessageId!));
    for (let i = 0; i < done.length; i += 10) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: m.queue.url,
          Entries: done.slice(i, i + 10).map((x, j) => ({ Id: String(j), ReceiptHandle: x.ReceiptHandle! })),
        }),
      );
    }
    if (options.retryVisibilitySeconds !== undefined) {
      for (let i = 0; i < again.length; i += 10) {
        await sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: m.queue.url,
            Entries: again.slice(i, i + 10).map((x, j) => ({
              Id: String(j),
              ReceiptHandle: x.ReceiptHandle!,
              VisibilityTimeout: options.retryVisibilitySeconds!,
            })),
          }),
        );
      }
    }
  }

  async function poll(m: Mapping): Promise<void> {
    const mine = new Set<Promise<void>>();
    while (!stopping.signal.aborted) {
      if (mine.size >= m.maxConcurrency) {
        await Promise.race(mine);
        continue;
      }
      try {
        const batch = await receive(m, m.batchSize, 2);
        if (batch.length === 0) continue;
        busy++;
        // Gather up to BatchSize within the batching window, as Lambda's poller does.
        const until = Date.now() + m.windowMs;
        while (batch.length < m.batchSize && Date.now() < until && !stopping.signal.aborted) {
          const wait = Math.min(20, Math.max(0, Math.floor((until - Date.now()) / 1000)));
          const more = await receive(m, m.batchSize - batch.length, wait);
          batch.push(...more);
          if (more.length === 0 && wait === 0) break;
        }
        const p: Promise<void> = deliver(m, batch)
          .catch((error) => options.onLog?.(m.fn.spec.key, `local stack: delivery failed: ${error}`))
          .finally(() => {
            busy--;
            mine.delete(p);
            inFlight.delete(p);
          });
        mine.add(p);
        inFlight.add(p);
      } catch (error) {
        options.onLog?.(m.fn.spec.key, `local stack: receive failed: ${error}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  const pollers = mappings.map((m) => poll(m));

  // Schedules.
  const schedules: Stack['schedules'] = [];
  const scheduleTargets = new Map<string, { fn: LambdaFunction; event: unknown }[]>();
  for (const [logicalId, resource] of ofType(template, 'AWS::Events::Rule')) {
    const p = resource.Properties ?? {};
    if (typeof p.ScheduleExpression !== 'string') continue;
    nextFire(p.ScheduleExpression, Date.now());
    for (const target of (p.Targets as Record<string, Json>[] | undefined) ?? []) {
      if (target.InputPath !== undefined || target.InputTransformer !== undefined) {
        throw new Error(`${logicalId}: InputPath and InputTransformer are not supported locally`);
      }
      const fn = fnOf(target.Arn, logicalId);
      const event =
        typeof target.Input === 'string'
          ? JSON.parse(target.Input)
          : {
              version: '0',
              id: randomUUID(),
              'detail-type': 'Scheduled Event',
              source: 'aws.events',
              account: STACK_ACCOUNT,
              region,
              resources: [`arn:aws:events:${region}:${STACK_ACCOUNT}:rule/${String(p.Name ?? logicalId)}`],
              detail: {},
            };
      const list = scheduleTargets.get(fn.spec.key) ?? [];
      list.push({ fn, event });
      scheduleTargets.set(fn.spec.key, list);
      schedules.push({
        function: fn.spec.key,
        rule: String(p.Name ?? logicalId),
        expression: p.ScheduleExpression,
        enabled: (p.State ?? 'ENABLED') === 'ENABLED',
      });
    }
  }
  const timers: NodeJS.Timeout[] = [];
  const startedAt = Date.now();
  const fire = async (fn: LambdaFunction, event: unknown) => {
    const time = new Date().toISOString();
    const e =
      event && typeof event === 'object' && (event as { source?: string }).source === 'aws.events'
        ? { ...event, id: randomUUID(), time }
        : event;
    return record(await fn.invoke(e, 'schedule'));
  };
  if (options.schedules ?? true) {
    for (const s of schedules.filter((x) => x.enabled)) {
      const arm = () => {
        const now = Date.now();
        const at = nextFire(s.expression, now, startedAt);
        // setTimeout holds at most ~24.8 days; re-arm until the fire time is reached.
        const timer = setTimeout(
          () => {
            if (Date.now() >= at) {
              for (const t of scheduleTargets.get(s.function) ?? []) void fire(t.fn, t.event);
            }
            arm();
          },
          Math.min(at - now, 2 ** 31 - 1),
        );
        timers.push(timer);
      };
      arm();
    }
  }

  // HTTP API.
  const routes: Route[] = [];
  for (const [logicalId, resource] of ofType(template, 'AWS::ApiGatewayV2::Route')) {
    const p = resource.Properties ?? {};
    const target = String(resolveHere(p.Target ?? null, logicalId));
    const integration = template.Resources[target.replace(/^integrations\//, '')];
    const ip = integration?.Properties ?? {};
    if (ip.PayloadFormatVersion !== '2.0') {
      throw new Error(`${logicalId}: only payload format 2.0 integrations are supported locally`);
    }
    routes.push({
      ...compileRoute(String(p.RouteKey)),
      routeKey: String(p.RouteKey),
      fn: fnOf(ip.IntegrationUri, logicalId),
      timeoutMs: Number(ip.TimeoutInMillis ?? 30_000),
    });
  }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const candidates = routes
        .filter((r) => r.method === req.method || r.method === 'ANY')
        .map((r) => ({ r, m: r.pattern.exec(path) }))
        .filter((x): x is { r: Route; m: RegExpExecArray } => x.m !== null)
        // The most specific route wins; $default last.
        .sort((a, b) => Number(a.r.routeKey === '$default') - Number(b.r.routeKey === '$default'));
      const hit = candidates[0];
      if (!hit) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'Not Found' }));
        return;
      }
      const event = apiEvent(req, Buffer.concat(chunks), hit.r, hit.m, 'local');
      const invocation = record(await hit.r.fn.invoke(event, 'http', hit.r.timeoutMs));
      writeApiResponse(res, invocation);
    });
  });
  await new Promise<void>((ok) => server.listen(options.httpPort ?? 0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const depth = async (q: StackQueue) => {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: q.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  };

  return {
    url,
    awsEndpoint: proxy.url,
    functions: [...functions.keys()].sort(),
    queues,
    tables,
    schedules,
    invocations,
    iam: {
      mode: iamMode,
      calls: iamCalls,
      denied: () => iamCalls.filter((c) => !c.allowed),
      used() {
        const pairs = new Map(iamCalls.map((c) => [`${c.function} ${c.action}`, c]));
        return [...pairs.keys()]
          .sort()
          .map((k) => ({ function: pairs.get(k)!.function, action: pairs.get(k)!.action }));
      },
      statements: (fn) => structuredClone(identityOf.get(fn)?.statements ?? []),
      revoke(fn, action) {
        const identity = identityOf.get(fn);
        if (!identity) throw new Error(`${fn} is not a function of this stack with an emulated role`);
        const same = (a: string) => a.toLowerCase() === action.toLowerCase();
        const granting = identity.statements.filter((s) => s.effect === 'Allow' && s.actions.some(same));
        if (granting.length === 0) throw new Error(`${fn}: its role does not name ${action}`);
        const before = identity.statements;
        identity.statements = before.map((s) =>
          granting.includes(s) ? { ...s, actions: s.actions.filter((a) => !same(a)) } : s,
        );
        // A wildcard (`sqs:*`, `sqs:Send*`) that still grants it cannot be split: say so rather than pretend.
        if (refusedResource(identity.statements, { action, resources: [] }) === undefined) {
          identity.statements = before;
          throw new Error(`${fn}: its role grants ${action} through a wildcard as well`);
        }
        return () => {
          identity.statements = before;
        };
      },
      accessKeyId(fn) {
        const entry = [...identities].find(([, i]) => i.key === fn);
        if (!entry) throw new Error(`${fn} is not a function of this stack with an emulated role`);
        return entry[0];
      },
      get memberCalls() {
        return memberCalls;
      },
      get unchecked() {
        return unchecked;
      },
    },
    async tick(key) {
      const targets = scheduleTargets.get(key);
      if (!targets?.length) throw new Error(`${key} has no schedule`);
      const results = await Promise.all(targets.map((t) => fire(t.fn, t.event)));
      return results[0]!;
    },
    async invoke(key, event) {
      const fn = functions.get(key);
      if (!fn) throw new Error(`${key} is not a function of this stack`);
      return record(await fn.invoke(event, 'invoke'));
    },
    async idle(timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      const sources = mappings.map((m) => m.queue);
      for (;;) {
        const depths = await Promise.all(sources.map(depth));
        if (busy === 0 && depths.every((d) => d === 0)) return;
        if (Date.now() > until) throw new Error(`stack not idle after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    pids: () => [...functions.values()].flatMap((f) => f.pids()),
    async stop() {
      stopping.abort();
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      await Promise.allSettled(pollers);
      await Promise.all([...functions.values()].map((f) => f.stop()));
      await Promise.allSettled([...inFlight]);
      sqs.destroy();
      await proxy.stop();
      if (!options.workDir) rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/** Every `serverless package` output this stack can read: a directory with the template and zips. */
export function isPackageDir(dir: string): boolean {
  return (
    existsSync(join(dir, 'cloudformation-template-update-stack.json')) &&
    existsSync(join(dir, 'serverless-state.json')) &&
    readdirSync(dir).some((f) => f.endsWith('.zip'))
  );
}
