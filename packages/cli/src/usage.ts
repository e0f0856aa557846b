// The usage text of every command, in one module with no imports, so that `--help` loads nothing
// else (neither the coordinator nor the simulator and tfjs).

export const SERVE_USAGE = `Usage: shoal serve --config FILE [--host H] [--port P] [--set key.path=value ...]
                   [--log-level L] [--log-format json|pretty]

Runs a coordinator for real clients. They connect over WebSockets with a token from
server.tokens, or from the SHOAL_TOKENS environment variable (comma-separated), which replaces
them. Operators read /metrics and the live dashboard (/dashboard?token=...) with a token from
server.adminTokens, or from SHOAL_ADMIN_TOKENS (comma-separated), which replaces them; with
server.tls it serves wss:// and https:// only. Prints one JSON line on stdout when it listens,
one per round, and one when it finishes; its log goes to stderr (docs/operations.md).

Options:
  --config FILE          the JSON config; its keys and defaults: docs/configuration.md
  --host H               listen on H instead of server.host
  --port P               listen on port P instead of server.port (0: any free port)
  --set key.path=value   override a config key before validation (repeatable)
  --log-level L          debug, info (default), warn or error
  --log-format F         json (pino's JSON lines; the default when stderr is not a terminal)
                         or pretty (one readable line per record; the default on a terminal)
  -h, --help             print this help
`;

export const GATEWAY_USAGE = `Usage: shoal gateway --config FILE --redis URL [--id NAME] [--host H] [--port P]
                     [--set key.path=value ...] [--log-level L] [--log-format json|pretty]

Runs a scale-out gateway (docs/scale-out.md): devices connect to it exactly as to \`shoal serve\`
(same protocol, same tokens); it reports its connected and eligible devices to the task's leader
through Redis, admits up to the quota the leader gives it, runs one secure aggregation per round
over a group of its own devices, and publishes only the group's sum. It keeps no checkpoints and
no privacy budget (the leader does). The task is the config's name. Prints the same JSON lines
as serve.

Options:
  --config FILE          the task's config (the same file for its leader and every gateway)
  --redis URL            the task's Redis, redis://host:port
  --id NAME              this gateway's name among the task's gateways (default: host-pid)
  --host, --port, --set, --log-level, --log-format: as for shoal serve
  -h, --help             print this help
`;

export const LEADER_USAGE = `Usage: shoal leader --config FILE --redis URL [--id NAME] [--lease-ms MS]
                    [--host H] [--port P] [--set key.path=value ...] [--log-level L] [--log-format F]

Runs a scale-out leader (docs/scale-out.md): takes the task's lease in Redis (standing by while
another leader holds it), sets each gateway's quota (groups of at least secagg.groupSize), adds
the groups' sums, adds DP noise once,
steps the strategy and commits: in Redis first (a script that checks the lease's fencing epoch,
so a deposed leader cannot commit), then in server.checkpointDir and its privacy ledger. Give
every leader of a task the same checkpointDir. Takes no device connections; serves /healthz,
/metrics and /dashboard like serve. Exits 3 when another leader took the task over.

Options:
  --config FILE          the task's config (the same file for its leader and every gateway)
  --redis URL            the task's Redis, redis://host:port
  --id NAME              this leader's name (default: host-pid)
  --lease-ms MS          the lease: a dead leader is replaced within this long (default 5000)
  --host, --port, --set, --log-level, --log-format: as for shoal serve
  -h, --help             print this help
`;

export const SIMULATE_USAGE = `Usage: shoal simulate CONFIG.json [--set key.path=value ...] [--out DIR] [--quiet]

Runs the real coordinator with virtual clients on a bundled dataset and writes
DIR/metrics.jsonl, DIR/summary.json and DIR/report.html (plots; their Vega-Lite specs in
DIR/report-specs/).

Options:
  --set key.path=value   override a config key before validation (repeatable)
  --out DIR              where the results go (default: runs/<config name>/)
  --quiet                no progress bar
  -h, --help             print this help
`;

export const SWARM_SYNOPSIS = 'shoal swarm --url ws://HOST:PORT --token T [--clients FROM-TO | --share I/N] CONFIG.json';

export const SWARM_USAGE = `Usage: ${SWARM_SYNOPSIS}
         [--set key.path=value ...]

Hosts CONFIG's virtual clients (all of them, or a share) against a remote coordinator, such as
\`shoal serve\`, over real WebSockets, so one simulation can span several machines. Each client
holds the data \`shoal simulate\` would give it (same dataset, partition and seed) and drops out
as faults says. Prints one JSON line per client joining and per round one of its clients ended
(committed or aborted), and {"event":"finished","rounds":[...]} when the coordinator has finished
training; exits 0 then, or on SIGINT/SIGTERM after closing its connections. Exits 2 with an error
when the coordinator cannot be reached or refuses the token.

Options:
  --url ws://HOST:PORT   the coordinator's WebSocket address (wss:// behind TLS)
  --token T              a token the coordinator accepts (default: the SHOAL_TOKEN environment variable)
  --clients FROM-TO      host clients FROM to TO (0-based, inclusive) of simulation.numClients
  --share I/N            host the I-th of N equal shares of the clients (1-based), e.g. 1/2 and 2/2
  --set key.path=value   override a config key before validation (repeatable)
  -h, --help             print this help
`;

export const SWEEP_SYNOPSIS = 'shoal sweep CONFIG.json --grid key.path=[v1,v2,...] [--grid ...] [--seeds N] [--concurrency C] [--out DIR]';

export const SWEEP_USAGE = `Usage: ${SWEEP_SYNOPSIS}
         [--set key.path=value ...] [--target-accuracy A]

Runs \`shoal simulate\` on every combination of the --grid values (times seeds 0..N-1 with
--seeds), C at a time, each in its own process and folder DIR/<key-value__...>/, then writes
DIR/summary.csv: one row per run with the swept values, seed, final_accuracy, best_accuracy,
rounds_to_target, final_epsilon (DP on), committed_rounds and wall_time_s, and DIR/report.html:
the runs' accuracy curves overlaid, the privacy-utility frontier (final accuracy vs ε) and the
table. Run it again with the same DIR to resume: runs whose summary.json is complete for the same
config are skipped.

Options:
  --grid key.path=[v1,...]  a config key (as for --set) and a JSON array of its values (repeatable)
  --seeds N                 run each combination with seed 0..N-1 (default: the config's seed)
  --concurrency C           runs at a time (default 1)
  --out DIR                 where the runs and summary.csv go (default: runs/<config name>-sweep/)
  --set key.path=value      override a config key in every run (repeatable)
  --target-accuracy A       fill rounds_to_target: the first round with test accuracy >= A
  -h, --help                print this help
`;

export const REPORT_SYNOPSIS = 'shoal report DIR';

export const REPORT_USAGE = `Usage: ${REPORT_SYNOPSIS}

Rebuilds DIR/report.html from the files in DIR: a sweep folder (with summary.csv) gets the sweep
report, a run folder (with metrics.jsonl or summary.json) the run report; a run still in progress
(no summary.json yet) is reported as far as it got. The report is one offline HTML file (inline
SVG, no script); each figure's Vega-Lite spec, data included, goes to DIR/report-specs/ to restyle
and re-render.

Options:
  -h, --help             print this help
`;

export const PRIVACY_SYNOPSIS = 'shoal privacy --sample-rate Q --rounds T --delta D (--noise-multiplier Z | --target-epsilon E) [--json]';

export const PRIVACY_USAGE = `Usage: ${PRIVACY_SYNOPSIS}

The privacy cost of a DP schedule (RDP accountant, Poisson sampling of clients): the ε that
T rounds at sampling rate Q with noise multiplier Z spend, or the noise multiplier that keeps
ε <= E.

Options:
  --sample-rate Q        the fraction of clients sampled per round, in (0, 1]
  --rounds T             the number of rounds
  --delta D              δ, in (0, 1)
  --noise-multiplier Z   the noise std over the clip norm
  --target-epsilon E     find the noise multiplier that keeps ε <= E instead
  --json                 print {"epsilon", "order", "noiseMultiplier"}
  -h, --help             print this help
`;

export const LEDGER_SYNOPSIS = 'shoal ledger verify DIR';

export const LEDGER_USAGE = `Usage: ${LEDGER_SYNOPSIS}

Verifies the privacy ledger DIR/ledger.jsonl (DIR may also be the file itself): every line is a
whole entry whose own hash matches, seq counts 1, 2, ..., each prev is the SHA-256 of the line
before, round numbers increase and ε never decreases; when DIR holds checkpoints, the newest one's
recorded ledger head must still be in the ledger (so cut trailing entries show). Prints the
privacy history, one line per round (round, status, cohort, q, z, C, SecAgg, ε), and exits 0; or
names the first wrong entry on stderr and exits 1. docs/privacy.md describes the format.

Options:
  -h, --help             print this help
`;

export const CARD_SYNOPSIS = 'shoal card DIR [--config FILE]';

export const CARD_USAGE = `Usage: ${CARD_SYNOPSIS}

Writes DIR/model-card.md and DIR/model-card.json (Model Card Toolkit fields) for the run whose
privacy ledger is DIR/ledger.jsonl: every privacy figure from the verified ledger, performance
from DIR/metrics.jsonl when present, the model and data from DIR/summary.json (a simulation's run
folder) or from --config. Exits 1 without writing when the ledger fails verification.
\`shoal simulate\` and \`shoal serve\` (with a ledger) write the card when training ends.

Options:
  --config FILE          the run's config file (for a checkpoint folder, which has no summary.json)
  -h, --help             print this help
`;

export const HELP = `shoal: federated learning coordinator and simulator

Usage:
  shoal serve --config FILE [--host H] [--port P] [--set key.path=value ...]
      Run a coordinator. Clients connect over WebSockets with a token from server.tokens
      (or the SHOAL_TOKENS environment variable, comma-separated).
  shoal gateway --config FILE --redis URL [--id NAME] [--port P]
      Scale-out: hold device connections and run secure aggregation per group for a leader.
  shoal leader --config FILE --redis URL [--id NAME] [--lease-ms MS]
      Scale-out: lead a task's rounds over its gateways and commit them (docs/scale-out.md).
  shoal simulate CONFIG.json [--set key.path=value ...] [--out DIR] [--quiet]
      Run the real coordinator with virtual clients on a bundled dataset; writes
      DIR/metrics.jsonl, DIR/summary.json and DIR/report.html (default DIR: runs/<config name>/).
  ${SWARM_SYNOPSIS}
      Host a config's virtual clients (or a share of them) against a remote coordinator.
  ${SWEEP_SYNOPSIS}
      Run a grid of simulations, C at a time, resumable; writes DIR/summary.csv, one row per run,
      and DIR/report.html.
  ${REPORT_SYNOPSIS}
      Rebuild the report.html of a run folder or a sweep folder.
  ${PRIVACY_SYNOPSIS}
      The privacy cost of a DP schedule: the ε it spends, or the noise multiplier that keeps
      ε <= E. --json prints {"epsilon", "order", "noiseMultiplier"}.
  ${LEDGER_SYNOPSIS}
      Verify a run's hash-chained privacy ledger and print its privacy history.
  ${CARD_SYNOPSIS}
      Write a run's model card (Markdown and JSON) from its privacy ledger.
  shoal --help | --version
  shoal COMMAND --help

Configuration keys and their defaults: docs/configuration.md
`;

/** Each command's usage, for `shoal COMMAND --help`. */
export const USAGE: Readonly<Record<'serve' | 'gateway' | 'leader' | 'simulate' | 'swarm' | 'sweep' | 'report' | 'privacy' | 'ledger' | 'card', string>> = {
  serve: SERVE_USAGE,
  gateway: GATEWAY_USAGE,
  leader: LEADER_USAGE,
  simulate: SIMULATE_USAGE,
  swarm: SWARM_USAGE,
  sweep: SWEEP_USAGE,
  report: REPORT_USAGE,
  privacy: PRIVACY_USAGE,
  ledger: LEDGER_USAGE,
  card: CARD_USAGE,
};
