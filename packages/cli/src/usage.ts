// The usage text of every command, in one module with no imports, so that `--help` loads nothing
// else (neither the coordinator nor the simulator and tfjs).

export const SERVE_USAGE = `Usage: shoal serve --config FILE [--host H] [--port P] [--set key.path=value ...]

Runs a coordinator for real clients. They connect over WebSockets with a token from
server.tokens, or from the SHOAL_TOKENS environment variable (comma-separated), which replaces
them. Prints one JSON line when it listens, one per round, and one when it finishes.

Options:
  --config FILE          the JSON config; its keys and defaults: docs/configuration.md
  --host H               listen on H instead of server.host
  --port P               listen on port P instead of server.port (0: any free port)
  --set key.path=value   override a config key before validation (repeatable)
  -h, --help             print this help
`;

export const SIMULATE_USAGE = `Usage: shoal simulate CONFIG.json [--set key.path=value ...] [--out DIR] [--quiet]

Runs the real coordinator with virtual clients on a bundled dataset and writes
DIR/metrics.jsonl and DIR/summary.json.

Options:
  --set key.path=value   override a config key before validation (repeatable)
  --out DIR              where the results go (default: runs/<config name>/)
  --quiet                no progress bar
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

export const HELP = `shoal: federated learning coordinator and simulator

Usage:
  shoal serve --config FILE [--host H] [--port P] [--set key.path=value ...]
      Run a coordinator. Clients connect over WebSockets with a token from server.tokens
      (or the SHOAL_TOKENS environment variable, comma-separated).
  shoal simulate CONFIG.json [--set key.path=value ...] [--out DIR] [--quiet]
      Run the real coordinator with virtual clients on a bundled dataset; writes
      DIR/metrics.jsonl and DIR/summary.json (default DIR: runs/<config name>/).
  ${PRIVACY_SYNOPSIS}
      The privacy cost of a DP schedule: the ε it spends, or the noise multiplier that keeps
      ε <= E. --json prints {"epsilon", "order", "noiseMultiplier"}.
  shoal --help | --version
  shoal COMMAND --help

Configuration keys and their defaults: docs/configuration.md
`;

/** Each command's usage, for `shoal COMMAND --help`. */
export const USAGE: Readonly<Record<'serve' | 'simulate' | 'privacy', string>> = { serve: SERVE_USAGE, simulate: SIMULATE_USAGE, privacy: PRIVACY_USAGE };
