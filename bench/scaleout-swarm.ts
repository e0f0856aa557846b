// The device swarm of the scale-out benchmark (bench/scaleout.bench.ts, issue #14 item 5): one
// child process holding a few thousand real WebSocket devices, spread over 127.x.y.z source
// addresses and over the gateways round-robin (device g connects to gateway g mod G).
//
// A device that is not selected only checks in: hello, welcome, then ws answers the gateway's
// pings by itself. A selected device (a `train` frame arrives) runs real SecAgg with node:crypto
// (@shoal/secagg's SecAggClient with nodeKeyAgreement, nodeMaskPrg, nodeSigning), driven by the
// protocol messages as the SDK's round does (packages/client/src/common/round.ts):
//
//     train.secagg → advertise;  keys → shares;  inbox → masked;  survivors → confirm;  unmask → reveal;  result
//
// It trains nothing: its update is `deviceDelta(g)`, weighed `deviceWeight(g)`, so the parent can
// compute the exact FedAvg of the devices whose masked input was sent (this process reports them
// per round). The parent side of a swarm is `startSwarm`.
import { fork, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { decodeCoordinatorMessage, encodeFrame, type ClientMessage, type CoordinatorMessage, type TrainMessage } from '@shoal/protocol';
import { SecAggClient } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { validHello } from '@shoal/testkit';

/** Connections opened per pacing tick, and the tick: ~100 per 2 ms worked here (SCALEOUT.md, "Testing without a fleet"). */
const CONNECTS_PER_TICK = 100;
const TICK_MS = 2;
/** Connections of one swarm waiting for welcome at most: with 4 swarms well under the 3 gateways' maxPendingHello (1,000 each). */
const MAX_PENDING_WELCOME = 200;
/** Sockets of one source address at most (the ephemeral range per address pair is ~28,000 ports). */
const SOCKETS_PER_ADDRESS = 250;
/** One process holds at most this many sockets (its descriptor limit is 20,000; the parent keeps well below). */
export const MAX_DEVICES_PER_SWARM = 8_000;
/** Error texts a swarm keeps for its report (the count is always exact). */
const KEPT_ERRORS = 5;

/** The largest weight a device uses: the bench's secagg.maxWeight must be at least this. */
export const MAX_DEVICE_WEIGHT = 10;
/** The largest |coordinate| of a device's delta: weight × it stays inside the bench's clip range. */
export const MAX_DEVICE_DELTA = 0.05;

/** Device g's weight in the mean: 1..MAX_DEVICE_WEIGHT. */
export function deviceWeight(g: number): number {
  return 1 + (g % MAX_DEVICE_WEIGHT);
}

/** Device g's update: d values in [−MAX_DEVICE_DELTA, MAX_DEVICE_DELTA], a fixed scramble of (g, j). */
export function deviceDelta(g: number, d: number): Float32Array {
  const delta = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    const mixed = Math.imul(g + 1, 0x9e3779b1) ^ Math.imul(j + 7, 0x85ebca6b);
    delta[j] = (((mixed >>> 0) % 2_001) - 1_000) * (MAX_DEVICE_DELTA / 1_000);
  }
  return delta;
}

/** What a swarm process is told on its command line (JSON). */
export interface SwarmPlan {
  /** Gateway URLs; device g connects to urls[g mod urls.length]. */
  readonly urls: readonly string[];
  readonly token: string;
  /** Global indices first..first + count − 1. */
  readonly first: number;
  readonly count: number;
  /** This swarm's number: its source addresses are 127.(20 + swarm).y.z. */
  readonly swarm: number;
  /** The model's parameter count: the values each masked input carries. */
  readonly numParams: number;
}

/** What one swarm saw of one round. */
export interface SwarmRound {
  readonly round: number;
  /** Per gateway index: devices that got `train`. */
  readonly trained: number[];
  /** Global indices of the devices whose masked input was sent. */
  readonly masked: number[];
  /** Per gateway index: devices whose `result` said committed. */
  readonly committed: number[];
}

/** Parent → swarm. */
type Command = { readonly type: 'connect' } | { readonly type: 'report' } | { readonly type: 'stop' };

/** Swarm → parent. */
export type SwarmMessage =
  | { readonly type: 'ready'; readonly welcomed: number; readonly failed: number; readonly connectMs: number; readonly firstFailure?: string }
  | {
      readonly type: 'report';
      readonly rounds: readonly SwarmRound[];
      readonly errorCount: number;
      readonly errors: readonly string[];
    };

// ---- swarm process ----

/** The swarm's record of every round, and the errors of its devices. */
class Journal {
  readonly rounds = new Map<number, SwarmRound>();
  errorCount = 0;
  readonly errors: string[] = [];
  constructor(private readonly gateways: number) {}

  round(round: number): SwarmRound {
    let entry = this.rounds.get(round);
    if (entry === undefined) {
      entry = { round, trained: new Array<number>(this.gateways).fill(0), masked: [], committed: new Array<number>(this.gateways).fill(0) };
      this.rounds.set(round, entry);
    }
    return entry;
  }

  error(device: number, what: string): void {
    this.errorCount++;
    if (this.errors.length < KEPT_ERRORS) this.errors.push(`device ${device}: ${what}`);
  }
}

/** One selected device's round: the SecAgg state machine and what `masked` names. */
interface DeviceRound {
  readonly round: number;
  readonly modelVersion: string;
  readonly secagg: SecAggClient;
  /** Whether training metrics travel beside the masked input (`train.secagg.shareMetrics`, as the SDK decides). */
  readonly shareMetrics: boolean;
}

const randomBytes = (n: number) => randomFillSync(new Uint8Array(n));

/**
 * One device: a socket and, while selected, its round. Frames are handled one at a time in
 * arrival order (a chain of promises), since some SecAgg steps are asynchronous.
 */
class SwarmDevice {
  private current: DeviceRound | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly ws: WebSocket,
    readonly index: number,
    private readonly gateway: number,
    private readonly plan: SwarmPlan,
    private readonly journal: Journal,
  ) {
    ws.on('message', (data: Buffer) => {
      this.chain = this.chain.then(() => this.onFrame(data)).catch((error: unknown) => this.fail(error));
    });
  }

  private async onFrame(data: Buffer): Promise<void> {
    const decoded = decodeCoordinatorMessage(data);
    if (!decoded.ok) throw new Error(`undecodable frame: ${decoded.reason}`);
    const message: CoordinatorMessage = decoded.message;
    if (message.type === 'train') return this.begin(message);
    const current = this.current;
    if (!('round' in message) || current === undefined || message.round !== current.round) return; // another round's: dropped
    const { secagg, round } = current;
    switch (message.type) {
      case 'keys':
        return this.send({ type: 'shares', round, ...(await secagg.shareAsync(message.neighbours)) });
      case 'inbox': {
        secagg.receiveInbox(message.ciphertexts);
        const weight = deviceWeight(this.index);
        const values = deviceDelta(this.index, this.plan.numParams).map((x) => weight * x);
        const masked = await secagg.mask(values, weight);
        this.send({ type: 'masked', round, modelVersion: current.modelVersion, masked, ...(current.shareMetrics ? { metrics: { loss: 0.5, accuracy: 0.5, trainMs: 0 } } : {}) });
        this.journal.round(round).masked.push(this.index);
        return;
      }
      case 'survivors':
        return this.send({ type: 'confirm', round, signature: secagg.confirm(message.survivors) });
      case 'unmask':
        return this.send({ type: 'reveal', round, ...secagg.reveal(message.signatures) });
      case 'result':
        if (message.status === 'committed') this.journal.round(round).committed[this.gateway]!++;
        this.current = undefined;
        return;
      default:
        return;
    }
  }

  private async begin(train: TrainMessage): Promise<void> {
    this.journal.round(train.round).trained[this.gateway]!++;
    this.current = undefined;
    if (train.secagg === undefined) throw new Error(`round ${train.round} has no secagg: the scale-out bench runs secure aggregation only`);
    if (train.weights !== undefined && train.weights.length !== this.plan.numParams) throw new Error(`round ${train.round} sent ${train.weights.length} weights; the plan says ${this.plan.numParams}`);
    const secagg = new SecAggClient({ config: train.secagg, round: train.round, numParams: this.plan.numParams, randomBytes, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning });
    this.current = { round: train.round, modelVersion: train.modelVersion, secagg, shareMetrics: train.secagg.shareMetrics === true };
    this.send({ type: 'advertise', round: train.round, ...(await secagg.advertiseAsync()) });
  }

  /** A step failed: the device declines the round (as the SDK does), and the journal keeps why. */
  private fail(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.journal.error(this.index, reason);
    const round = this.current?.round;
    this.current = undefined;
    if (round !== undefined) this.send({ type: 'decline', round, reason: reason.slice(0, 1_000) });
  }

  private send(message: ClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeFrame(message), { binary: true });
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Opens device g's socket from `localAddress`, says hello and resolves once welcomed. */
function checkIn(plan: SwarmPlan, g: number, localAddress: string, journal: Journal): Promise<SwarmDevice> {
  const gateway = g % plan.urls.length;
  const ws = new WebSocket(plan.urls[gateway]!, { perMessageDeflate: false, localAddress, headers: { authorization: `Bearer ${plan.token}` } });
  return new Promise((resolve, reject) => {
    const checkInEvents = ['error', 'unexpected-response', 'close', 'open', 'message'] as const;
    const fail = (why: string) => {
      for (const event of checkInEvents) ws.removeAllListeners(event);
      ws.on('error', () => {}); // terminate() may report the abort; the rejection says why
      ws.terminate();
      reject(new Error(`device ${g}: ${why}`));
    };
    ws.once('error', (error) => fail(`connection failed: ${error.message}`));
    ws.once('unexpected-response', (_request, response) => fail(`upgrade refused with HTTP ${response.statusCode}`));
    ws.once('close', (code, reason) => fail(`closed before welcome: ${code} ${reason.toString()}`));
    ws.once('open', () => ws.send(encodeFrame(validHello({ capabilities: ['fedavg', 'secagg'] })), { binary: true }));
    ws.once('message', (data: Buffer) => {
      const decoded = decodeCoordinatorMessage(data);
      if (!decoded.ok || decoded.message.type !== 'welcome') return fail(`expected welcome, got ${decoded.ok ? decoded.message.type : decoded.reason}`);
      for (const event of checkInEvents) ws.removeAllListeners(event);
      ws.on('error', () => {}); // a socket error after welcome only ends that device, as a dropout
      resolve(new SwarmDevice(ws, g, gateway, plan, journal));
    });
  });
}

/** The swarm process: connects on 'connect' (paced), reports on 'report', closes everything on 'stop'. */
async function runSwarm(plan: SwarmPlan): Promise<void> {
  const journal = new Journal(plan.urls.length);
  const devices: SwarmDevice[] = [];
  const send = (message: SwarmMessage) => process.send!(message);

  async function connectAll(): Promise<void> {
    const started = performance.now();
    let failed = 0;
    let firstFailure: string | undefined;
    let pending = 0;
    const settled: Promise<void>[] = [];
    for (let k = 0; k < plan.count; ) {
      const room = Math.min(CONNECTS_PER_TICK, plan.count - k, MAX_PENDING_WELCOME - pending);
      for (let i = 0; i < room; i++, k++) {
        const address = `127.${20 + plan.swarm}.${Math.floor(k / SOCKETS_PER_ADDRESS) % 256}.${1 + (k % SOCKETS_PER_ADDRESS)}`;
        pending++;
        settled.push(
          checkIn(plan, plan.first + k, address, journal).then(
            (device) => void devices.push(device),
            (error: Error) => {
              failed++;
              firstFailure ??= error.message;
            },
          ).finally(() => pending--),
        );
      }
      await sleep(TICK_MS);
    }
    await Promise.all(settled);
    send({ type: 'ready', welcomed: devices.length, failed, connectMs: performance.now() - started, ...(firstFailure !== undefined ? { firstFailure } : {}) });
  }

  process.on('message', (command: Command) => {
    if (command.type === 'connect') void connectAll();
    else if (command.type === 'report') {
      send({
        type: 'report',
        rounds: [...journal.rounds.values()].sort((a, b) => a.round - b.round),
        errorCount: journal.errorCount,
        errors: journal.errors,
      });
    } else {
      for (const device of devices) device.terminate();
      process.disconnect(); // the IPC channel was the last thing keeping this process alive
    }
  });
}

// ---- parent side ----

/** A swarm child process, seen from the bench. */
export interface Swarm {
  readonly child: ChildProcess;
  readonly plan: SwarmPlan;
  /** Starts the paced check-ins; resolves once every device was welcomed or failed. */
  connect(): Promise<Extract<SwarmMessage, { type: 'ready' }>>;
  /** What the swarm saw of every round. */
  report(): Promise<Extract<SwarmMessage, { type: 'report' }>>;
  /** Closes the devices and resolves with the process's exit code. */
  stop(): Promise<number | null>;
  /** SIGKILLs it by pid unless it exited, and waits for the exit (the bench's `finally`). */
  kill(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Forks a swarm process for `plan`; it connects nothing until `connect()`. */
export function startSwarm(plan: SwarmPlan): Swarm {
  if (plan.count > MAX_DEVICES_PER_SWARM) throw new Error(`a swarm of ${plan.count} devices is over ${MAX_DEVICES_PER_SWARM} (the fd limit is 20,000 per process): use more swarms`);
  const child = fork(SELF, ['--swarm', JSON.stringify(plan)], {
    execArgv: ['--conditions=shoal-source', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const gone = exited.then((code) => {
    throw new Error(`swarm ${plan.swarm} exited (code ${code}) before answering`);
  });
  gone.catch(() => {}); // only awaited through next()
  const next = <T extends SwarmMessage['type']>(type: T) =>
    Promise.race([
      new Promise<Extract<SwarmMessage, { type: T }>>((resolve) => {
        const onMessage = (message: SwarmMessage) => {
          if (message.type !== type) return;
          child.off('message', onMessage);
          resolve(message as Extract<SwarmMessage, { type: T }>);
        };
        child.on('message', onMessage);
      }),
      gone,
    ]);
  const command = (message: Command) => child.connected && child.send(message);
  return {
    child,
    plan,
    connect() {
      const ready = next('ready');
      command({ type: 'connect' });
      return ready;
    },
    report() {
      const report = next('report');
      command({ type: 'report' });
      return report;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      command({ type: 'stop' });
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv.includes('--swarm')) {
  await runSwarm(JSON.parse(process.argv[process.argv.indexOf('--swarm') + 1]!) as SwarmPlan);
}
