/**
 * `npm run demo [-- [--keep] [--dir DIR]]`: a tour of Fleetward against the local clouds.
 * Starts the sandbox, then runs the CLI's own commands (`main([...])` of bin/fleetward.ts,
 * with the flags a user would type) one section each: discover, backup run + status, drill
 * run, tags plan, audit collect + verify, snapshot. Each section says what happens and why,
 * shows the command's own output, a legend of its marks and what its exit code means here.
 * Ends with the path of the HTML report, where config and state live and what to try next.
 *
 * Every emulator stops at the end, and on Ctrl-C (SIGINT) or SIGTERM at any point; with
 * `--keep` the local clouds stay up after the tour (so the printed next commands work) until
 * Ctrl-C. Exit 0 when every step ran (the seeded fleet makes several steps exit 1: that is
 * what they are there to show), 1 when a step crashed or was refused as bad usage, 2 for a
 * bad demo option, 130 when interrupted during the tour.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../shared/config/load.ts';
import { stateConfig } from '../../shared/state/config.ts';
import { type Sandbox, startSandbox } from './index.ts';

process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.METADATA_SERVER_DETECTION = 'none';

const CLUSTERS = 12;

const HELP = `Usage: npm run demo [-- [--keep] [--dir DIR]]

A tour of Fleetward against local clouds on 127.0.0.1 (nothing reaches a real cloud):
discover, backup, drill, tags plan, audit collect + verify, snapshot, then where the report,
config and state are and what to try next. Stops every emulator at the end.

  --keep      keep the local clouds running after the tour (Ctrl-C stops them), so the
              commands it suggests work against the same config and state
  --dir DIR   working directory for config, state and report (default .fleetward/demo)

Exit: 0 every step ran (steps exit 1 on the seeded problems: that is what they show),
1 a step crashed or was refused as bad usage, 2 a bad demo option, 130 interrupted.`;

/** One CLI command of a section, and what each of its exit codes means in this tour. */
interface TourCommand {
  /** Arguments after `fleetward`, without `--config` (the tour adds it). */
  args: string[];
  /** Meaning of exit 0 and 1 against the seeded sandbox fleet. */
  exit: { 0: string; 1: string };
  /** Runs before the command (not shown). */
  before?: (sandbox: Sandbox) => Promise<void>;
}

interface Section {
  title: string;
  /** What happens and why it matters: one or two sentences. */
  about: string;
  commands: TourCommand[];
  /** Marks and columns of the output: [mark, meaning]. */
  legend: [string, string][];
}

/** Polls the sandbox's Velero simulators until no Backup is New or InProgress (at most `timeoutMs`). */
async function backupsSettled(sandbox: Sandbox, timeoutMs = 10_000): Promise<void> {
  const pending = () =>
    (sandbox.kube?.clusters() ?? []).some((cluster) =>
      cluster.objects('velero.io/v1', 'Backup').some((b) => {
        const phase = (b.status as { phase?: string } | undefined)?.phase;
        return phase === undefined || phase === 'New' || phase === 'InProgress';
      }),
    );
  const deadline = Date.now() + timeoutMs;
  while (pending() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

function sections(reportDir: string): Section[] {
  return [
    {
      title: 'Find every cluster',
      about:
        'Fleetward asks every configured AWS account and region, GCP project, Azure subscription and kubeconfig context for its clusters, places each in the jurisdiction of its region, and saves the inventory that every later step acts on. The sandbox seeds its clusters with deliberate problems, so every finding below has a case.',
      commands: [
        {
          args: ['discover'],
          exit: {
            0: 'every account, region, project, subscription and context answered.',
            1: 'some scope did not answer; its clusters are kept as last seen (see Failures above).',
          },
        },
      ],
      legend: [
        ['ENDPOINT', 'public or private: where the Kubernetes API server can be reached from'],
        ['SECRETS ?', 'see the legend discover prints under its tables: the cloud does not report it'],
        ['AUDIT ?', 'AKS reports audit logging through a diagnostic setting, which audit collect checks'],
        [
          'unassigned',
          'a region outside every jurisdiction of fleet.yaml: never backed up or archived until one covers it',
        ],
        ['+ - ~', 'added, removed, changed since the last saved inventory'],
      ],
    },
    {
      title: 'Back up every cluster',
      about:
        "For each cluster Fleetward checks that Velero is installed and that its storage location lies inside the cluster's jurisdiction, then creates one Velero Backup named after the current schedule window (run it twice: nothing new). 'backup status' then records the finished backups and the RPO against the jurisdiction's target.",
      commands: [
        {
          args: ['backup', 'run'],
          exit: {
            0: 'every cluster has its Backup for this window.',
            1: 'expected here: the sandbox seeds clusters without Velero and an EU cluster whose storage location is a US bucket; Fleetward refuses to back those up rather than move data out of its jurisdiction.',
          },
        },
        {
          args: ['backup', 'status'],
          // Velero finishes a Backup after a moment; status should see it done, as a user would later.
          before: backupsSettled,
          exit: {
            0: 'every cluster has a completed backup within its RPO.',
            1: 'expected here: the clusters skipped above have findings and no backup.',
          },
        },
      ],
      legend: [
        ['created', 'a Backup was requested for this schedule window'],
        ['exists', "this window's Backup is already there; nothing new is created"],
        [
          'skipped',
          'a preflight finding (Velero missing, storage outside the jurisdiction, no jurisdiction): nothing written',
        ],
        ['failed', "the cluster's API call failed"],
        [
          'RPO',
          'time since the newest completed backup; TARGET is the jurisdiction\'s RPO; "-" = no backup yet',
        ],
      ],
    },
    {
      title: 'Prove the backups restore',
      about:
        "A backup nobody restored is a hope. Each drill restores a cluster's newest completed backup into scratch namespaces (fw-drill-...), checks that every item came back and the workloads are ready, measures the RTO against the jurisdiction's target, and deletes the scratch namespaces.",
      commands: [
        {
          args: ['drill', 'run'],
          exit: {
            0: 'every drill passed within its RTO.',
            1: 'expected here: the clusters without Velero or without a backup could not be drilled (NOTES says why).',
          },
        },
      ],
      legend: [
        ['PHASE', 'restoring -> verifying -> cleaning -> done'],
        ['RESULT', 'pass or fail; "-" = no drill ran, NOTES says why'],
        ['RTO', "Restore created -> workloads ready; TARGET is the jurisdiction's RTO"],
        ['SCRATCH LEFT', 'fw-drill-... namespaces not deleted yet (0 when the drill cleaned up)'],
      ],
    },
    {
      title: 'Check cost tags',
      about:
        "Like 'terraform plan': the tags Fleetward would write on each cluster (the derived jurisdiction, region, cloud and managed-by, and defaults of required keys) and the required tags it will never invent. Nothing is written; 'tags apply' writes exactly this plan.",
      commands: [
        {
          args: ['tags', 'plan'],
          exit: {
            0: 'the plan is complete; findings alone do not fail it.',
            1: "some cluster's tags could not be read (marked x).",
          },
        },
      ],
      legend: [
        ['~ cluster', 'has tags to write'],
        ['! cluster', 'has findings only'],
        ['x cluster', 'its tags could not be read'],
        ['+ key = "v"', 'a tag to add; ~ key = "old" -> "new": a tag to change'],
        ['! finding', 'a required tag missing or not allowed: never invented, never rewritten'],
      ],
    },
    {
      title: 'Archive and verify audit logs',
      about:
        "'audit collect' copies each cluster's control-plane audit log into its jurisdiction's evidence bucket, after checking that the bucket is write-once and inside the jurisdiction, as hash-chained chunks. 'audit verify' recomputes every hash: an altered or missing chunk would show as BROKEN.",
      commands: [
        {
          args: ['audit', 'collect'],
          exit: {
            0: 'every cluster was archived or up to date.',
            1: 'expected here: the sandbox seeds clusters with audit logging off and a cluster in no jurisdiction.',
          },
        },
        {
          args: ['audit', 'verify'],
          exit: {
            0: 'every archived chain is intact.',
            1: 'a chain is BROKEN or UNVERIFIED: possible tampering, or the evidence store could not be read.',
          },
        },
      ],
      legend: [
        ['archived', 'new events written as a chunk chained to the previous one'],
        ['up-to-date', 'nothing new since the last checkpoint'],
        [
          'skipped',
          'a finding (audit logging off, no jurisdiction, bucket not write-once or outside the jurisdiction): nothing written',
        ],
        ['intact', 'every chunk present and every hash matches'],
        ['BROKEN', 'a chunk is missing, altered or out of order: possible tampering'],
        ['UNVERIFIED', 'the evidence store could not be read: nothing is known'],
        ['nothing', 'nothing archived; the reason is in brackets'],
      ],
    },
    {
      title: 'Write the compliance report',
      about:
        'Every control (residency, encryption, private endpoint, audit logs, backups within RPO, drills within RTO, tags, budgets, Kubernetes support) is evaluated per cluster from the evidence the steps above recorded. Each jurisdiction gets its own report (HTML, JSON, Markdown, CSV), published with SHA-256 hashes to its own write-once evidence buckets.',
      commands: [
        {
          args: ['snapshot', '--out', reportDir],
          exit: {
            0: 'every control passes or is not applicable.',
            1: 'expected here: the seeded problems fail controls, and budgets stay unknown because this tour does not run `budgets plan`.',
          },
        },
      ],
      legend: [
        ['pass / fail', 'the control holds or not; the report says what to change for each fail'],
        ['n/a', 'the control does not apply to the cluster'],
        ['unknown', 'no evidence recorded yet (e.g. budgets: this tour runs no `budgets plan`)'],
        ['sha256', 'hash of the JSON snapshot, listed in the manifest published next to it'],
        ['unassigned', 'clusters in no jurisdiction: written with --out only, published nowhere'],
      ],
    },
  ];
}

const WIDTH = Math.min(process.stdout.columns || 100, 100);

/** Greedy word wrap; continuation lines get `indent`. */
function wrap(text: string, first = '', indent = ''): string {
  const lines: string[] = [];
  let line = first;
  for (const word of text.split(/\s+/)) {
    const sep = line === '' || line.endsWith(' ') ? '' : ' ';
    if (line.length + sep.length + word.length > WIDTH && line.trim() !== '') {
      lines.push(line);
      line = indent + word;
    } else line += sep + word;
  }
  lines.push(line);
  return lines.join('\n');
}

/** The command words of `args`, without its options: `snapshot --out d` -> `snapshot`. */
function words(args: string[]): string {
  const firstOption = args.findIndex((a) => a.startsWith('-'));
  return (firstOption < 0 ? args : args.slice(0, firstOption)).join(' ');
}

const say = (text = '') => process.stdout.write(`${text}\n`);

type StepResult = { command: string; code: number; outcome: 'ran' | 'usage' | 'crashed' };

type Main = (argv: string[]) => Promise<number>;

/**
 * Runs one CLI command in this process, as `fleetward <args>` would. The CLI reports a crash
 * with exit 1 and prints its result (stdout) only when the run completed, so a non-zero exit
 * with nothing on stdout is a crash, not a finding.
 */
async function runCli(main: Main, args: string[]): Promise<{ code: number; printed: boolean }> {
  const write = process.stdout.write;
  let printed = false;
  process.stdout.write = ((...a: Parameters<typeof write>) => {
    printed = true;
    return write.apply(process.stdout, a);
  }) as typeof write;
  try {
    return { code: await main(args), printed };
  } catch (error) {
    console.error(
      `fleetward crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    return { code: 1, printed: false };
  } finally {
    process.stdout.write = write;
  }
}

/** Runs the sections, until `interrupted`; one result per command. */
async function tour(
  main: Main,
  sandbox: Sandbox,
  configArg: string,
  all: Section[],
  interrupted: () => boolean,
): Promise<StepResult[]> {
  const results: StepResult[] = [];
  for (const [i, section] of all.entries()) {
    if (interrupted()) break;
    const names = section.commands.map((c, j) => `${j === 0 ? 'fleetward ' : ''}${words(c.args)}`);
    say();
    say(`== ${i + 1}/${all.length} ${section.title} (${names.join(', ')}) ==`);
    say(wrap(section.about));
    for (const command of section.commands) {
      if (interrupted()) break;
      await command.before?.(sandbox);
      const args = [...command.args, '--config', configArg];
      say();
      say(`$ npx fleetward ${args.join(' ')}`);
      const { code, printed } = await runCli(main, args);
      const outcome: StepResult['outcome'] =
        code === 2 ? 'usage' : code === 0 || (code === 1 && printed) ? 'ran' : 'crashed';
      results.push({ command: words(command.args), code, outcome });
      const meaning =
        outcome === 'usage'
          ? 'bad usage or invalid config: the demo itself is wrong (see the message above).'
          : outcome === 'crashed'
            ? 'the command crashed (see the error above); the tour goes on without it.'
            : command.exit[code as 0 | 1];
      say(wrap(meaning, `-> exit ${code}: `, '   '));
    }
    say('Legend:');
    const pad = Math.max(...section.legend.map(([mark]) => mark.length));
    for (const [mark, meaning] of section.legend)
      say(wrap(meaning, `  ${mark.padEnd(pad)}  `, ' '.repeat(pad + 4)));
  }
  return results;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        keep: { type: 'boolean', default: false },
        dir: { type: 'string', default: join('.fleetward', 'demo') },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    console.error(`demo: ${(error as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
})();
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const dir = resolve(values.dir);
/** A path as a user in this folder would type it: relative when it lies below here. */
const shown = (path: string) => {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
};
const reportDir = join(dir, 'report');
// A report of an earlier run must not pass for this one's.
rmSync(reportDir, { recursive: true, force: true });

say(
  wrap(
    'Fleetward demo: a tour of the CLI against local clouds on 127.0.0.1 (moto for AWS, fakes for GKE, AKS, Kubernetes and Velero, Azurite for blobs). Nothing reaches a real cloud.',
  ),
);
process.stderr.write(`Starting the local clouds with ${CLUSTERS} seeded clusters...\n`);
const startedAt = Date.now();
const starting = startSandbox({ clusters: CLUSTERS, dir });
// Loaded while the emulators start (the CLI's cloud SDKs take seconds to import).
const cli = import('../../bin/fleetward.ts');

/** Stops the emulators once, whoever asks first (the end of the tour or a signal). */
let stopping: Promise<void> | undefined;
const stopClouds = (sandbox: Sandbox | undefined) => (stopping ??= sandbox?.stop() ?? Promise.resolve());

let tourDone = false;
let tourExit = 0;
let signalled = false;
function onSignal(signal: NodeJS.Signals): void {
  if (signalled) return;
  signalled = true;
  void (async () => {
    process.stderr.write(`\n${signal}: stopping the local clouds...\n`);
    await stopClouds(await starting.catch(() => undefined));
    process.stderr.write('Every emulator stopped.\n');
    process.exit(tourDone ? tourExit : 130);
  })();
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

let sandbox: Sandbox;
let main: Main;
try {
  [sandbox, { main }] = await Promise.all([starting, cli]);
} catch (error) {
  console.error(`demo: could not start the local clouds: ${(error as Error).message}`);
  process.exit(1);
}
const counts = Object.entries(
  sandbox.fleet.reduce<Record<string, number>>((acc, c) => {
    acc[c.cloud] = (acc[c.cloud] ?? 0) + 1;
    return acc;
  }, {}),
)
  .map(([cloud, n]) => `${n} ${cloud}`)
  .join(', ');
const tourStarted = Date.now();
say(
  `Local clouds ready in ${seconds(tourStarted - startedAt)}: ${counts} clusters (moto pid ${sandbox.moto.pid}).`,
);

const configArg = shown(sandbox.configPath);
const all = sections(shown(reportDir));
const results = await tour(main, sandbox, configArg, all, () => signalled);
const tourMs = Date.now() - tourStarted;
const broken = results.filter((r) => r.outcome !== 'ran');
tourExit = broken.length > 0 ? 1 : 0;
// Interrupted: onSignal stops the emulators and exits; nothing more to say.
if (!signalled) await finish();

async function finish(): Promise<void> {
  // Where things are: the report files as written (never read from the command's text).
  const config = await loadConfig(sandbox.configPath);
  const reports = existsSync(reportDir)
    ? readdirSync(reportDir).filter((j) => existsSync(join(reportDir, j, 'snapshot.html')))
    : [];
  const shownReport = Object.keys(config.jurisdictions).find((j) => reports.includes(j)) ?? reports[0];
  const state = stateConfig(config);
  say();
  say('== Where things are ==');
  if (shownReport) {
    say(`Report  ${join(reportDir, shownReport, 'snapshot.html')}  (open it in a browser)`);
    const others = reports.filter((j) => j !== shownReport).map((j) => `${j}/`);
    if (others.length > 0)
      say(
        wrap(
          `next to it: ${others.join(', ')} (snapshot.html, .json, .md, .csv each) and fleet-summary.json`,
          '        ',
          '        ',
        ),
      );
  } else say(`Report  none: the snapshot step wrote no HTML report under ${reportDir}`);
  say(`Config  ${sandbox.configPath}  (generated; points at the local clouds only)`);
  say(
    `State   ${state.type === 'sqlite' ? `${resolve(state.path)}  (SQLite: inventory, backups, drills, plans, findings)` : `DynamoDB table ${state.table}`}`,
  );

  say();
  say('== Try next ==');
  say(
    wrap(
      values.keep
        ? 'The local clouds keep running with this state. In a second terminal, from this folder:'
        : 'The local clouds stop with this demo: run `npm run demo -- --keep` to keep them (and this state) running, then in a second terminal, from this folder:',
    ),
  );
  const next: [string, string][] = [
    ['tags apply', 'write the tags step 4 planned'],
    ['budgets plan', 'the cost check this tour skipped'],
    ['doctor', "check every scope's access, naming what to grant"],
  ];
  const width = Math.max(...next.map(([c]) => c.length));
  for (const [command, why] of next)
    say(`  FLEETWARD_CONFIG=${configArg} npx fleetward ${command.padEnd(width)}  # ${why}`);

  say();
  const verdict =
    broken.length === 0
      ? `all ${results.length} commands of the ${all.length} steps ran`
      : broken
          .map((r) => `${r.command} ${r.outcome === 'usage' ? 'was refused as bad usage' : 'crashed'}`)
          .join(', ');
  const timing = `local clouds started in ${seconds(tourStarted - startedAt)}, tour ${seconds(tourMs)}`;
  tourDone = true;
  if (values.keep) {
    say(`Tour done (${timing}): ${verdict}. Press Ctrl-C to stop the local clouds.`);
    // Alive until Ctrl-C: onSignal stops the emulators and exits.
    setInterval(() => {}, 1 << 30);
  } else {
    await stopClouds(sandbox);
    say(`Demo finished in ${seconds(process.uptime() * 1000)} (${timing}):`);
    say(`${verdict}; every emulator stopped.`);
    process.exitCode = tourExit;
  }
}
