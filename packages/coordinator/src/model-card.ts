// The model card (docs/privacy.md, "Model card"): the fields of Google's Model Card Toolkit schema
// (model_details, model_parameters, quantitative_analysis, considerations), generated from a
// verified privacy ledger, the rounds' metrics and a description of the run the caller supplies.
// Every privacy figure comes from the ledger, never from metrics. Generation is pure (no tfjs);
// `writeModelCard` writes the two files.
import { join } from 'node:path';
import { writeFileAtomically } from './atomic-file.js';
import type { CoordinatorConfig } from './config.js';
import { ACCOUNTANT, ledgerEpsilon, sixDigits, type LedgerEntry, type RoundEntry, type StartEntry } from './ledger.js';
import type { RoundMetrics } from './round.js';

/** One performance figure, as the toolkit's `performance_metrics` holds it. */
export interface PerformanceMetric {
  readonly type: string;
  readonly value: number;
  readonly slice?: string;
}

/** What a model card states about privacy, every figure read from the ledger (a Shoal addition to the toolkit's fields). */
export interface PrivacyStatement {
  readonly differentialPrivacy: boolean;
  /** The plain statement, in words. */
  readonly statement: string;
  /** Client-level (ε, δ) after the last recorded round (null without DP). */
  readonly epsilon: number | null;
  readonly delta: number | null;
  readonly accountant: string | null;
  readonly sampling: 'fixed' | 'poisson';
  readonly samplingAssumption: string;
  readonly noiseMode: 'central' | 'distributed' | null;
  /** Distinct values the ledger's round entries record, ascending. */
  readonly noiseMultipliers: readonly number[];
  readonly clipNorms: readonly number[];
  readonly sampleRates: readonly number[];
  readonly roundsCommitted: number;
  readonly roundsAborted: number;
  /** Rounds the accountant was charged for (committed, and aborted after the sum was released). */
  readonly roundsCharged: number;
  readonly secagg: { readonly mode: 'secagg' | 'secagg+'; readonly thresholds: readonly number[]; readonly fewestSurvivors: number; readonly threatModel: string } | null;
  /** The model hash of the last entry: what this card describes. */
  readonly modelHash: string;
  readonly configHash: string;
  readonly codeVersion: string;
}

/** A model card with the Model Card Toolkit's field names, plus `privacy`. */
export interface ModelCard {
  readonly model_details: {
    readonly name: string;
    readonly overview: string;
    readonly version: { readonly name: string; readonly date: string };
    readonly owners?: readonly { readonly name: string; readonly contact?: string }[];
    readonly licenses?: readonly { readonly identifier: string }[];
    readonly references?: readonly { readonly reference: string }[];
  };
  readonly model_parameters: {
    readonly model_architecture: string;
    readonly data: readonly { readonly name: string; readonly description: string }[];
    readonly input_format: string;
    readonly output_format: string;
  };
  readonly quantitative_analysis: { readonly performance_metrics: readonly PerformanceMetric[] };
  readonly considerations: {
    readonly users: readonly { readonly description: string }[];
    readonly use_cases: readonly { readonly description: string }[];
    readonly limitations: readonly { readonly description: string }[];
    readonly tradeoffs: readonly { readonly description: string }[];
    readonly ethical_considerations: readonly { readonly name: string; readonly mitigation_strategy: string }[];
  };
  readonly privacy: PrivacyStatement;
}

/** Per-group results on labelled predictions (`groupFairness`). */
export interface GroupMetrics {
  readonly accuracy: Readonly<Record<string, number>>;
  /** Highest minus lowest group accuracy. */
  readonly accuracyGap: number;
  /** TPR(unprivileged) − TPR(privileged), AI Fairness 360's equal_opportunity_difference; 0 is parity. */
  readonly equalOpportunityDifference: number;
  readonly privileged: string;
  readonly favorableLabel: number;
}

/** What the caller knows about the run beyond the ledger. */
export interface ModelCardInput {
  /** The entries of a verified ledger (`verifyLedger`). */
  readonly ledger: readonly LedgerEntry[];
  readonly name: string;
  readonly architecture: string;
  readonly inputFormat: string;
  readonly outputFormat: string;
  /** The federated training data: what it is and how it is spread over clients. */
  readonly data: readonly { readonly name: string; readonly description: string }[];
  /** The rounds' metrics (accuracy and federated evaluation); none: no performance figures. */
  readonly rounds?: readonly RoundMetrics[];
  /** Per-group metrics; absent when the data has no group attribute (the card says so). */
  readonly groups?: GroupMetrics;
  readonly owners?: readonly { readonly name: string; readonly contact?: string }[];
  readonly licenses?: readonly { readonly identifier: string }[];
}

/**
 * Accuracy per group, the accuracy gap and the equal-opportunity difference (AI Fairness 360:
 * true-positive rate of the unprivileged, here every group but `privileged`, minus that of the
 * privileged group, with `favorableLabel` as the positive class). A group or class with no
 * examples gives NaN for what needs it, never a made-up 0.
 */
export function groupFairness(
  examples: readonly { readonly group: string; readonly label: number; readonly predicted: number }[],
  privileged: string,
  favorableLabel: number,
): GroupMetrics {
  const totals = new Map<string, { correct: number; count: number }>();
  const positives = { privileged: { hit: 0, count: 0 }, unprivileged: { hit: 0, count: 0 } };
  for (const { group, label, predicted } of examples) {
    const total = totals.get(group) ?? { correct: 0, count: 0 };
    total.count++;
    if (label === predicted) total.correct++;
    totals.set(group, total);
    if (label === favorableLabel) {
      const side = group === privileged ? positives.privileged : positives.unprivileged;
      side.count++;
      if (predicted === favorableLabel) side.hit++;
    }
  }
  const accuracy = Object.fromEntries([...totals].sort(([a], [b]) => a.localeCompare(b)).map(([group, t]) => [group, t.correct / t.count]));
  const values = Object.values(accuracy);
  const tpr = (side: { hit: number; count: number }) => (side.count === 0 ? Number.NaN : side.hit / side.count);
  return {
    accuracy,
    accuracyGap: values.length === 0 ? Number.NaN : Math.max(...values) - Math.min(...values),
    equalOpportunityDifference: tpr(positives.unprivileged) - tpr(positives.privileged),
    privileged,
    favorableLabel,
  };
}

const SECAGG_THREAT_MODEL =
  'The coordinator learns only the sum of each cohort\'s updates (Bonawitz et al. 2017; SecAgg+ of Bell et al. 2020), as long as fewer than the threshold of clients collude with it; ' +
  'it still learns who took part, each client\'s example-count weight only inside the masked sum, and the sum itself. ' +
  'Residual trust: that the coordinator distributes the clients\' public keys authentically (pinned client identity keys remove it). ' +
  'A round with fewer survivors than the threshold aborts without revealing anything.';

/** The privacy statement of a verified ledger. */
export function privacyStatement(ledger: readonly LedgerEntry[]): PrivacyStatement {
  const start = ledger[0] as StartEntry | undefined;
  if (start === undefined || start.type !== 'start') throw new RangeError('privacyStatement: a verified ledger begins with its start entry');
  const settings = ([...ledger].reverse().find((entry) => entry.type === 'start' || entry.type === 'resume') as StartEntry).settings;
  const rounds = ledger.filter((entry): entry is RoundEntry => entry.type === 'round');
  const charged = rounds.filter((entry) => entry.q !== null);
  const distinct = (values: readonly (number | null)[]) => [...new Set(values.filter((v): v is number => v !== null))].sort((a, b) => a - b);
  const dp = settings.dp;
  const epsilon = ledgerEpsilon(ledger);
  const secaggRounds = rounds.filter((entry) => entry.secagg !== null);
  const samplingAssumption =
    settings.sampling === 'poisson'
      ? 'Poisson sampling: each client joins a round independently with probability q, as the accountant assumes.'
      : 'Fixed-size cohorts, accounted as if each client were Poisson-sampled with probability q = cohort / available clients: the usual approximation, not a proof.';
  const statement = dp
    ? `Client-level (ε = ${sixDigits(epsilon)}, δ = ${dp.delta})-differential privacy over ${charged.length} charged rounds: ${dp.mode} Gaussian noise (noise multiplier ${distinct(charged.map((e) => e.noiseMultiplier)).join(', ') || dp.noiseMultiplier}) on updates clipped to L2 norm ${distinct(charged.map((e) => e.clipNorm)).join(', ') || dp.clipNorm}, accounted by ${ACCOUNTANT} RDP. The guarantee covers each client's whole contribution, not single examples.`
    : 'No differential privacy: no formal privacy guarantee. Updates are not noised, and the model may memorise and reveal information about individual clients\' data.';
  const last = ledger.at(-1)!;
  return {
    differentialPrivacy: dp !== null,
    statement,
    epsilon: dp ? epsilon : null,
    delta: dp ? dp.delta : null,
    accountant: dp ? ACCOUNTANT : null,
    sampling: settings.sampling,
    samplingAssumption,
    noiseMode: dp?.mode ?? null,
    noiseMultipliers: distinct(charged.map((e) => e.noiseMultiplier)),
    clipNorms: distinct(charged.map((e) => e.clipNorm)),
    sampleRates: distinct(charged.map((e) => e.q)),
    roundsCommitted: rounds.filter((e) => e.status === 'committed').length,
    roundsAborted: rounds.filter((e) => e.status === 'aborted').length,
    roundsCharged: charged.length,
    secagg:
      settings.secagg === null
        ? null
        : {
            mode: settings.secagg.mode,
            thresholds: distinct(secaggRounds.map((e) => e.secagg!.threshold)),
            fewestSurvivors: secaggRounds.length === 0 ? 0 : Math.min(...secaggRounds.map((e) => e.secagg!.survivors)),
            threatModel: SECAGG_THREAT_MODEL,
          },
    modelHash: last.modelHash,
    configHash: start.configHash,
    codeVersion: start.codeVersion,
  };
}

/** The performance figures: central test accuracy and loss, the per-client spread, per-group metrics. */
function performanceMetrics(rounds: readonly RoundMetrics[], groups: GroupMetrics | undefined): PerformanceMetric[] {
  const metrics: PerformanceMetric[] = [];
  const committed = rounds.filter((r) => r.status === 'committed');
  const central = [...committed].reverse().find((r) => r.accuracy !== undefined);
  if (central?.accuracy !== undefined) metrics.push({ type: 'accuracy', value: central.accuracy, slice: `central test set, round ${central.round}` });
  if (central?.loss !== undefined) metrics.push({ type: 'loss', value: central.loss, slice: `central test set, round ${central.round}` });
  const federated = [...committed].reverse().find((r) => r.federatedEvaluation !== undefined);
  const spread = federated?.federatedEvaluation;
  if (spread !== undefined) {
    const slice = `per-client accuracy over ${spread.clients} clients' held-out data, round ${federated!.round}`;
    metrics.push(
      { type: 'accuracy (min)', value: spread.accuracy.min, slice },
      { type: 'accuracy (worst 10 % mean)', value: spread.accuracy.worst10, slice },
      { type: 'accuracy (mean)', value: spread.accuracy.mean, slice },
      { type: 'accuracy (best 10 % mean)', value: spread.accuracy.best10, slice },
      { type: 'accuracy (max)', value: spread.accuracy.max, slice },
    );
  }
  if (groups !== undefined) {
    for (const [group, value] of Object.entries(groups.accuracy)) metrics.push({ type: 'accuracy', value, slice: `group ${group}` });
    metrics.push({ type: 'accuracy gap', value: groups.accuracyGap, slice: 'highest minus lowest group accuracy' });
    metrics.push({ type: 'equal opportunity difference', value: groups.equalOpportunityDifference, slice: `TPR(unprivileged) − TPR(${groups.privileged}), label ${groups.favorableLabel}` });
  }
  return metrics;
}

/** The model card of a run. */
export function modelCard(input: ModelCardInput): ModelCard {
  const privacy = privacyStatement(input.ledger);
  const rounds = input.ledger.filter((entry): entry is RoundEntry => entry.type === 'round');
  const lastTime = [...input.ledger].reverse().find((entry): entry is Extract<LedgerEntry, { time: string }> => 'time' in entry)!.time;
  const cohorts = rounds.map((entry) => entry.participants);
  const training = {
    name: 'federated training',
    description:
      `Trained by federated learning over ${rounds.length} rounds (${privacy.roundsCommitted} committed, ${privacy.roundsAborted} aborted); ` +
      (cohorts.length > 0 ? `${Math.min(...cohorts)} to ${Math.max(...cohorts)} clients contributed per round. ` : '') +
      'The training data never left the clients; the coordinator received only model updates' +
      (privacy.secagg ? ', and under secure aggregation only their sum.' : '.'),
  };
  const groupLimitation = input.groups
    ? []
    : [{ description: 'The data has no group attribute, so no per-group metrics (accuracy per group, accuracy gap, equal-opportunity difference) were computed: fairness across groups is unmeasured.' }];
  return {
    model_details: {
      name: input.name,
      overview: `A ${input.architecture} model trained with Shoal by federated learning. ${privacy.statement}`,
      version: { name: privacy.modelHash, date: lastTime },
      ...(input.owners ? { owners: input.owners } : {}),
      ...(input.licenses ? { licenses: input.licenses } : {}),
      references: [{ reference: 'Model Card Toolkit fields: Mitchell et al., "Model Cards for Model Reporting", FAT* 2019' }],
    },
    model_parameters: { model_architecture: input.architecture, data: [...input.data, training], input_format: input.inputFormat, output_format: input.outputFormat },
    quantitative_analysis: { performance_metrics: performanceMetrics(input.rounds ?? [], input.groups) },
    considerations: {
      users: [{ description: 'Researchers and operators evaluating federated training with Shoal; auditors checking the privacy it received.' }],
      use_cases: [{ description: `Classification of inputs of the form: ${input.inputFormat}.` }],
      limitations: [
        ...groupLimitation,
        { description: 'Performance figures come from the run\'s own evaluation data; they say nothing about data from another distribution.' },
        { description: privacy.samplingAssumption },
      ],
      tradeoffs: [
        {
          description: privacy.differentialPrivacy
            ? `Differential privacy (noise multiplier ${privacy.noiseMultipliers.join(', ') || '-'}, clip norm ${privacy.clipNorms.join(', ') || '-'}) costs accuracy in exchange for the (ε = ${sixDigits(privacy.epsilon)}, δ = ${privacy.delta}) guarantee.`
            : 'Without differential privacy there is no accuracy cost for privacy, and no privacy guarantee.',
        },
      ],
      ethical_considerations: [
        { name: 'Privacy of the clients\' data', mitigation_strategy: privacy.statement },
        {
          name: 'What the coordinator can learn',
          mitigation_strategy: privacy.secagg ? `${privacy.secagg.mode}, threshold ${privacy.secagg.thresholds.join(', ') || '-'}: ${privacy.secagg.threatModel}` : 'No secure aggregation: the coordinator sees every client\'s update.',
        },
      ],
    },
    privacy,
  };
}

/** The card as Markdown, section by section in the toolkit's order. */
export function modelCardMarkdown(card: ModelCard): string {
  const { model_details: details, model_parameters: parameters, quantitative_analysis: analysis, considerations, privacy } = card;
  const list = (items: readonly { readonly description: string }[]) => items.map((item) => `- ${item.description}`).join('\n');
  const metrics = analysis.performance_metrics.length === 0
    ? 'No evaluation was recorded.'
    : ['| metric | value | slice |', '| --- | --- | --- |', ...analysis.performance_metrics.map((m) => `| ${m.type} | ${sixDigits(m.value)} | ${m.slice ?? ''} |`)].join('\n');
  const privacyRows = [
    `- Differential privacy: ${privacy.differentialPrivacy ? `${privacy.noiseMode} noise` : 'none: no formal privacy guarantee'}`,
    ...(privacy.differentialPrivacy
      ? [
          `- Client-level ε = ${sixDigits(privacy.epsilon)}, δ = ${privacy.delta}`,
          `- Accountant: ${privacy.accountant}`,
          `- Noise multiplier(s): ${privacy.noiseMultipliers.join(', ') || '-'}; clip norm(s): ${privacy.clipNorms.join(', ') || '-'}; sampling rate(s) q: ${privacy.sampleRates.map(sixDigits).join(', ') || '-'}`,
        ]
      : []),
    `- Sampling: ${privacy.sampling}. ${privacy.samplingAssumption}`,
    `- Rounds: ${privacy.roundsCommitted} committed, ${privacy.roundsAborted} aborted, ${privacy.roundsCharged} charged to the accountant`,
    `- Secure aggregation: ${privacy.secagg ? `${privacy.secagg.mode}, threshold ${privacy.secagg.thresholds.join(', ') || '-'}, fewest survivors ${privacy.secagg.fewestSurvivors}. ${privacy.secagg.threatModel}` : 'off: the coordinator sees each update'}`,
    `- Model hash ${privacy.modelHash}; config hash ${privacy.configHash}; @shoal/coordinator ${privacy.codeVersion}`,
  ];
  return [
    `# Model card: ${details.name}`,
    '',
    '## Model details',
    '',
    details.overview,
    '',
    `- Version: ${details.version.name} (${details.version.date})`,
    ...(details.owners ?? []).map((owner) => `- Owner: ${owner.name}${owner.contact ? ` (${owner.contact})` : ''}`),
    ...(details.licenses ?? []).map((license) => `- License: ${license.identifier}`),
    '',
    '## Model parameters',
    '',
    `- Architecture: ${parameters.model_architecture}`,
    `- Input: ${parameters.input_format}`,
    `- Output: ${parameters.output_format}`,
    ...parameters.data.map((data) => `- Data, ${data.name}: ${data.description}`),
    '',
    '## Privacy (from the privacy ledger)',
    '',
    privacy.statement,
    '',
    ...privacyRows,
    '',
    '## Quantitative analysis',
    '',
    metrics,
    '',
    '## Considerations',
    '',
    '### Intended users',
    list(considerations.users),
    '',
    '### Use cases',
    list(considerations.use_cases),
    '',
    '### Limitations',
    list(considerations.limitations),
    '',
    '### Trade-offs',
    list(considerations.tradeoffs),
    '',
    '### Ethical considerations',
    ...considerations.ethical_considerations.map((item) => `- ${item.name}: ${item.mitigation_strategy}`),
    '',
  ].join('\n');
}

/** What the CLI or the simulator knows of a run, as plain data (no dataset is loaded to describe it). */
export interface RunDescription {
  readonly name: string;
  readonly model: { readonly builtin?: string; readonly path?: string; readonly inputShape?: readonly number[]; readonly numClasses?: number };
  /** The dataset the clients hold (a bundled one in simulations). */
  readonly dataset?: string;
  /** How it was split over clients (a simulation's partition report). */
  readonly partition?: { readonly kind: string; readonly params: Readonly<Record<string, number | string>>; readonly sizes: readonly number[] };
}

/** What a run description needs of a config: its name and model (and a simulation's dataset). */
export type DescribedConfig = Pick<CoordinatorConfig, 'name' | 'model'> & { readonly simulation?: { readonly dataset?: string } };

/**
 * A run's description from its config (and a simulation's partition report). A built-in model
 * without `inputShape` / `numClasses` was shaped for its data: `dataShape` (the dataset's, which
 * the caller knows; this package knows no datasets) fills them in.
 */
export function runDescription(
  config: DescribedConfig,
  partition?: RunDescription['partition'],
  dataShape?: { readonly featureShape: readonly number[]; readonly numClasses: number },
): RunDescription {
  const shaped = dataShape !== undefined && !('path' in config.model) ? { inputShape: dataShape.featureShape, numClasses: dataShape.numClasses } : {};
  return {
    name: config.name,
    model: { ...shaped, ...config.model },
    ...(config.simulation?.dataset !== undefined ? { dataset: config.simulation.dataset } : {}),
    ...(partition ? { partition: { kind: partition.kind, params: partition.params, sizes: partition.sizes } } : {}),
  };
}

/** The card input of a run: the model and data from its description, the privacy from the ledger. */
export function describedCardInput(run: RunDescription, ledger: readonly LedgerEntry[], rounds?: readonly RoundMetrics[]): ModelCardInput {
  const start = ledger[0] as StartEntry;
  const { model } = run;
  const shape = model.inputShape ? `[${model.inputShape.join(', ')}]` : 'the shape the model was built for';
  const partition = run.partition;
  const clientData = partition
    ? `${partition.sizes.length} clients, partition ${partition.kind}${Object.keys(partition.params).length > 0 ? ` (${Object.entries(partition.params).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}, ` +
      `${Math.min(...partition.sizes)} to ${Math.max(...partition.sizes)} examples per client.`
    : 'Held by the clients that connected; the coordinator never sees it.';
  return {
    ledger,
    name: run.name,
    architecture: `${model.builtin !== undefined ? `built-in ${model.builtin}` : `saved model ${model.path ?? '(unknown)'}`}, ${start.parameters} parameters`,
    inputFormat: `float32 tensors of shape ${shape}`,
    outputFormat: model.numClasses !== undefined ? `probabilities over ${model.numClasses} classes` : 'the model\'s output layer (class probabilities)',
    data: [{ name: run.dataset ?? 'client data', description: clientData }],
    ...(rounds ? { rounds } : {}),
  };
}

/** Writes DIR/model-card.json and DIR/model-card.md (each atomically); returns their paths. */
export async function writeModelCard(dir: string, card: ModelCard): Promise<{ json: string; markdown: string }> {
  const json = join(dir, 'model-card.json');
  const markdown = join(dir, 'model-card.md');
  await writeFileAtomically(json, `${JSON.stringify(card, null, 2)}\n`);
  await writeFileAtomically(markdown, modelCardMarkdown(card));
  return { json, markdown };
}
