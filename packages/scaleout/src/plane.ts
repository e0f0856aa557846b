import { Redis } from 'ioredis';

/**
 * The control plane of one training task in Redis (../SCALEOUT.md's data model, docs/scale-out.md):
 * the leader lease and its fencing epoch, the round hash, the gateways' heartbeats, the groups'
 * results and the committed round. Every change that a deposed leader must not make is one Lua
 * script that checks the epoch first, so it happens atomically or not at all. Every key carries the
 * hash tag `{task}`, so the same scripts run on Redis Cluster. Vectors are only stored and read
 * here, never summed in Lua (a long script blocks the server).
 */

/**
 * Where a round is. Gateways admit, configure and collect in one go (`selecting`), so the paper's
 * selecting → configuring → reporting collapse into it.
 */
export type Phase = 'selecting' | 'aggregating' | 'committed' | 'abandoned';

/** The round hash: which round, where it is, and under which leader epoch it began. */
export interface RoundStatus {
  readonly round: number;
  readonly phase: Phase;
  /** The leader ran the task's last round (gateways then close their connections). */
  readonly finished: boolean;
  readonly epoch: number;
  /** What gateways need to run their groups (JSON, written by the leader at `begin`). */
  readonly task: string;
}

/** A gateway's heartbeat. */
export interface GatewayStatus {
  readonly id: string;
  readonly connected: number;
  readonly eligible: number;
}

/** One finished group's report: its sum's metadata (JSON) and the sum's bytes. */
export interface GroupReport {
  readonly group: string;
  readonly meta: string;
  readonly sum: Buffer | undefined;
}

/** Thrown when a script refuses a leader's change because a newer leader holds the task. */
export class FencedError extends Error {
  constructor(readonly epoch: number, what: string) {
    super(`leader epoch ${epoch} is no longer current: ${what} refused (another leader took over)`);
    this.name = 'FencedError';
  }
}

/** Thrown when Redis holds no epoch at all: it restarted without its data, and the round state is gone. */
export class StateLostError extends Error {
  constructor(what: string) {
    super(`Redis holds no leader epoch (it restarted empty): ${what} refused`);
    this.name = 'StateLostError';
  }
}

/** A fenced script's outcome: 'fenced' and 'lost' become errors; the rest is the caller's. */
function unfenced<T extends string>(outcome: unknown, epoch: number, what: string): T {
  if (outcome === 'fenced') throw new FencedError(epoch, what);
  if (outcome === 'lost') throw new StateLostError(what);
  return outcome as T;
}

/** KEYS: lease, epoch. ARGV: node id, lease ms, smallest acceptable epoch. Returns the new epoch, or 0 while another node holds the lease. */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local epoch = redis.call('INCR', KEYS[2])
if epoch < tonumber(ARGV[3]) then epoch = tonumber(ARGV[3]); redis.call('SET', KEYS[2], epoch) end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return epoch`;

/** KEYS: lease. ARGV: holder (node:epoch), lease ms. 1 when still held and extended. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/**
 * KEYS: epoch, round. ARGV: epoch, round, task. Begins `round` unless that round or a later one is
 * recorded (an older round left open, one its leader gave up on, is superseded: its reports are late).
 */
const BEGIN = `
local held = redis.call('GET', KEYS[1])
if not held then return 'lost' end
if held ~= ARGV[1] then return 'fenced' end
local current = tonumber(redis.call('HGET', KEYS[2], 'round') or '0')
if current >= tonumber(ARGV[2]) then return 'busy' end
redis.call('HSET', KEYS[2], 'round', ARGV[2], 'phase', 'selecting', 'epoch', ARGV[1], 'task', ARGV[3])
redis.call('HDEL', KEYS[2], 'finished')
return 'ok'`;

/** KEYS: epoch, round. ARGV: epoch, round, from phase, to phase. */
const ADVANCE = `
local held = redis.call('GET', KEYS[1])
if not held then return 'lost' end
if held ~= ARGV[1] then return 'fenced' end
if redis.call('HGET', KEYS[2], 'round') ~= ARGV[2] or redis.call('HGET', KEYS[2], 'phase') ~= ARGV[3] then return 'conflict' end
redis.call('HSET', KEYS[2], 'phase', ARGV[4])
return 'ok'`;

/**
 * KEYS: epoch, round, committed record, new model, model to drop, the round's end marker. ARGV:
 * epoch, round, status, record, weights, marker ttl. Ends `round` (committed or abandoned) and
 * stores its record, and for a commit the new model, in one step: never two ends for one round.
 * The marker lets a gateway that looks late (the next round already began) see how it ended.
 */
const END = `
local held = redis.call('GET', KEYS[1])
if not held then return 'lost' end
if held ~= ARGV[1] then return 'fenced' end
if redis.call('HGET', KEYS[2], 'round') ~= ARGV[2] then return 'conflict' end
local phase = redis.call('HGET', KEYS[2], 'phase')
if phase ~= 'selecting' and phase ~= 'aggregating' then return 'conflict' end
redis.call('HSET', KEYS[2], 'phase', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('SET', KEYS[6], ARGV[3], 'PX', ARGV[6])
if ARGV[3] == 'committed' then
  redis.call('SET', KEYS[4], ARGV[5])
  redis.call('DEL', KEYS[5])
end
return 'ok'`;

/**
 * KEYS: round, results, sum. ARGV: round, epoch, group, meta, sum bytes, ttl ms. A group's report,
 * accepted only while that round (begun under that epoch) is selecting, and once per group.
 */
const REPORT = `
if redis.call('HGET', KEYS[1], 'round') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'phase') ~= 'selecting' then return 'late' end
if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) == 0 then return 'duplicate' end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6]) end
return 'ok'`;

/** How long a group's results stay in Redis unread: long past any round, short enough not to pile up. */
const RESULT_TTL_MS = 10 * 60_000;

/** The Redis side of one task, for one process (a leader or a gateway). Owns its connection. */
export class ControlPlane {
  private readonly redis: Redis;
  private readonly key: (suffix: string) => string;

  /**
   * @param url `redis://host:port[/db]`
   * @param task the training task's name (the config's `name`): its keys are `fl:{task}:…`.
   */
  constructor(url: string, readonly task: string) {
    // Fail a command at once while disconnected instead of queueing it: a leader must not act on
    // stale state after Redis comes back, and every caller retries on its own schedule.
    this.redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => 200 });
    this.redis.on('error', () => {}); // connection errors surface as rejected commands, which callers handle
    this.key = (suffix) => `fl:{${task}}:${suffix}`;
  }

  async connect(): Promise<void> {
    await this.redis.connect();
  }

  /** Closes the connection (idempotent). */
  close(): void {
    this.redis.disconnect();
  }

  // ---- the leader lease ----

  /** Takes the lease if nobody holds it: the new fencing epoch (above `minEpoch`), or undefined. */
  async acquireLease(nodeId: string, leaseMs: number, minEpoch = 0): Promise<number | undefined> {
    const epoch = Number(await this.redis.eval(ACQUIRE, 2, this.key('lease'), this.key('epoch'), nodeId, leaseMs, minEpoch));
    return epoch > 0 ? epoch : undefined;
  }

  /** Extends the lease `nodeId` holds at `epoch`; false when it is no longer theirs. */
  async renewLease(nodeId: string, epoch: number, leaseMs: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key('lease'), `${nodeId}:${epoch}`, leaseMs)) === 1;
  }

  /** Gives the lease up (a leader that stops cleanly), if `nodeId` still holds it at `epoch`. */
  async releaseLease(nodeId: string, epoch: number): Promise<void> {
    await this.redis.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0`, 1, this.key('lease'), `${nodeId}:${epoch}`);
  }

  // ---- the round ----

  /** The round hash, or undefined before the first round (or after Redis lost its data). */
  async roundStatus(): Promise<RoundStatus | undefined> {
    const fields = await this.redis.hgetall(this.key('round'));
    if (fields['round'] === undefined) return undefined;
    return { round: Number(fields['round']), phase: fields['phase'] as Phase, finished: fields['finished'] === '1', epoch: Number(fields['epoch']), task: fields['task'] ?? '' };
  }

  /** Begins `round` under `epoch` with the gateways' `task`; false when Redis already has that round (or a later one). */
  async begin(epoch: number, round: number, task: string): Promise<boolean> {
    const outcome = await this.redis.eval(BEGIN, 2, this.key('epoch'), this.key('round'), epoch, round, task);
    return unfenced(outcome, epoch, `beginning round ${round}`) === 'ok';
  }

  /** Moves `round` from one phase to the next; false when it is not in `from`. */
  async advance(epoch: number, round: number, from: Phase, to: Phase): Promise<boolean> {
    const outcome = await this.redis.eval(ADVANCE, 2, this.key('epoch'), this.key('round'), epoch, round, from, to);
    return unfenced(outcome, epoch, `moving round ${round} from ${from} to ${to}`) === 'ok';
  }

  /**
   * Ends `round` as committed (with the new model's weights, under `modelVersion`) or abandoned,
   * storing `record` (the encoded round record) as the last ended round. False when the round is
   * not open; throws FencedError when a newer leader holds the task, StateLostError when Redis lost it all.
   */
  async end(epoch: number, round: number, outcome: { status: 'committed'; modelVersion: string; previousVersion: string | undefined; weights: Float32Array } | { status: 'abandoned' }, record: Uint8Array): Promise<boolean> {
    const committed = outcome.status === 'committed';
    const result = await this.redis.eval(
      END,
      6,
      this.key('epoch'),
      this.key('round'),
      this.key('last-round'),
      committed ? this.key(`model:${outcome.modelVersion}`) : this.key('model:none'),
      committed && outcome.previousVersion !== undefined ? this.key(`model:${outcome.previousVersion}`) : this.key('model:none'),
      this.key(`r${round}:ended`),
      epoch,
      round,
      outcome.status,
      Buffer.from(record.buffer, record.byteOffset, record.byteLength),
      committed ? floatBytes(outcome.weights) : '',
      RESULT_TTL_MS,
    );
    return unfenced(result, epoch, `ending round ${round}`) === 'ok';
  }

  /** Marks the task finished (the leader ran its last round): gateways close their connections. */
  async finish(epoch: number, round: number): Promise<void> {
    const outcome = await this.redis.eval(
      `local held = redis.call('GET', KEYS[1])
if not held then return 'lost' end
if held ~= ARGV[1] then return 'fenced' end
if redis.call('HEXISTS', KEYS[2], 'round') == 0 then redis.call('HSET', KEYS[2], 'round', ARGV[2], 'phase', 'abandoned', 'epoch', ARGV[1]) end
redis.call('HSET', KEYS[2], 'finished', '1') return 'ok'`,
      2,
      this.key('epoch'),
      this.key('round'),
      epoch,
      round,
    );
    unfenced(outcome, epoch, 'finishing the task');
  }

  /** How `round` ended, while its marker lasts (RESULT_TTL_MS); undefined while it is open, or unknown. */
  async roundEnd(round: number): Promise<'committed' | 'abandoned' | undefined> {
    return ((await this.redis.get(this.key(`r${round}:ended`))) ?? undefined) as 'committed' | 'abandoned' | undefined;
  }

  /** The encoded record of the last round a leader ended (committed or abandoned), if Redis has it. */
  async lastEndedRecord(): Promise<Buffer | undefined> {
    return (await this.redis.getBuffer(this.key('last-round'))) ?? undefined;
  }

  /** The weights committed as `modelVersion` (the newest two are kept). */
  async model(modelVersion: string): Promise<Float32Array | undefined> {
    const bytes = await this.redis.getBuffer(this.key(`model:${modelVersion}`));
    return bytes === null ? undefined : float32Of(bytes);
  }

  /** Stores the weights of `modelVersion` (the leader does before each round: Redis may have restarted empty). */
  async putModel(modelVersion: string, weights: Float32Array): Promise<void> {
    await this.redis.set(this.key(`model:${modelVersion}`), floatBytes(weights));
  }

  // ---- gateways ----

  /** A gateway's heartbeat: its counts, valid for `ttlMs`. */
  async heartbeat(status: GatewayStatus, ttlMs: number): Promise<void> {
    await this.redis
      .multi()
      .set(this.key(`gw:${status.id}`), JSON.stringify(status), 'PX', ttlMs)
      .sadd(this.key('gateways'), status.id)
      .exec();
  }

  /** The gateways whose heartbeat has not expired. */
  async liveGateways(): Promise<GatewayStatus[]> {
    const ids = await this.redis.smembers(this.key('gateways'));
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.key(`gw:${id}`)));
    const gone = ids.filter((_, i) => values[i] === null);
    if (gone.length > 0) await this.redis.srem(this.key('gateways'), ...gone);
    return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as GatewayStatus);
  }

  // ---- group results ----

  /** Reports one group's result for `round` begun under `epoch`: 'ok', or why not ('late': that round is past selecting; 'duplicate'). */
  async report(round: number, epoch: number, group: string, meta: string, sum: Float64Array | undefined): Promise<'ok' | 'late' | 'duplicate'> {
    return (await this.redis.eval(
      REPORT,
      3,
      this.key('round'),
      this.key(`r${round}:results`),
      this.key(`r${round}:sum:${group}`),
      round,
      epoch,
      group,
      meta,
      sum ? Buffer.from(sum.buffer, sum.byteOffset, sum.byteLength) : '',
      RESULT_TTL_MS,
    )) as 'ok' | 'late' | 'duplicate';
  }

  /** The groups that reported for `round` so far (metadata only). */
  async reportedGroups(round: number): Promise<Record<string, string>> {
    return this.redis.hgetall(this.key(`r${round}:results`));
  }

  /** One group's sum, as reported. */
  async groupSum(round: number, group: string): Promise<Float64Array | undefined> {
    const bytes = await this.redis.getBuffer(this.key(`r${round}:sum:${group}`));
    return bytes === null ? undefined : new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }

  /** Deletes a round's results once it ended: no group sum outlives its round. */
  async dropResults(round: number, groups: readonly string[]): Promise<void> {
    await this.redis.del(this.key(`r${round}:results`), ...groups.map((group) => this.key(`r${round}:sum:${group}`)));
  }
}

function floatBytes(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function float32Of(bytes: Buffer): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
