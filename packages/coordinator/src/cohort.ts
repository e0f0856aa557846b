import type { ErrorCode } from '@shoal/protocol';
import { Refusal, type AnswerKind, type AnswerOf, type Clock, type Cohort, type Gathered, type GatherRequest, type RoundMessage } from './ports.js';
import { byAdmission, type ClientRegistry, type ConnectedClient } from './clients.js';
import type { Logger } from './logger.js';
import { crashInStageIfAsked } from './crash-point.js';

/** What the local cohort needs from the coordinator that owns the connections. */
export interface LocalCohortDeps {
  readonly registry: ClientRegistry;
  /** Ready clients with the capabilities the rounds need, in admission order. */
  readonly eligible: () => readonly ConnectedClient[];
  /** Closes one connection with a Shoal close code (the coordinator then calls `disconnected`). */
  readonly close: (client: ConnectedClient, code: ErrorCode, reason: string) => void;
  readonly clock: Clock;
  readonly logger: Logger;
}

interface Member {
  /** Messages for the round not yet taken by a gather, in arrival order. */
  readonly queue: { readonly message: RoundMessage; readonly bytes: number }[];
  /** Left the round (declined, disconnected, refused, or missed a stage): later messages are dropped. */
  out: boolean;
  /** The group whose stages this member answers: set by the first gather that asks it. */
  group?: Group;
}

/**
 * Members gathered together, stage after stage: a round's whole cohort on one machine, or one of
 * a scale-out gateway's SecAgg groups. A group has at most one stage open at a time; groups run
 * their stages concurrently, over disjoint members.
 */
interface Group {
  open?: OpenGather;
}

interface OpenGather {
  readonly request: GatherRequest<AnswerKind>;
  readonly pending: Set<string>;
  readonly answered: string[];
  readonly dropped: string[];
  bytes: number;
  /** A programmer error thrown by `accept`: the gather rejects with it. */
  failure?: unknown;
  wake(): void;
}

/**
 * The cohort over this process's own connections. Frames are pushed in by the connection layer
 * (`receive`) and queued per member; the round pulls them stage by stage with `gather`. This is
 * the only place that knows which round a client is in and which model version it holds.
 *
 * Several gathers may be open at once over disjoint members (a scale-out gateway runs its groups'
 * stages concurrently). The first gather that asks a member binds it to that gather's group; its
 * answers go to the open gather of its group, and wait in its queue while its group is between
 * stages, whatever the other groups are doing. A single-machine round is one group.
 */
export class LocalCohort implements Cohort {
  private round: { readonly number: number; readonly members: Map<string, Member> } | undefined;
  /** The gathers open now, one per group at most, in the order they opened. */
  private readonly open = new Set<OpenGather>();
  /** The model version each connected client holds (sent by us or announced in hello). */
  private readonly held = new Map<string, string>();
  /**
   * Members of the last selected round whose connection closed during it. Nothing more of that
   * round (its result included) goes to them, even once they are back: their new connection was
   * never in it, and whether they are back by then is a matter of timing, which must not change
   * what a seeded simulation records (`bytesDown`).
   */
  private readonly lostDuringRound = new Set<string>();

  constructor(private readonly deps: LocalCohortDeps) {}

  select(round: number, sample: (eligible: readonly string[]) => readonly string[], capability?: string): readonly string[] {
    const eligible = this.deps
      .eligible()
      .filter((client) => capability === undefined || client.capabilities.includes(capability))
      .map((client) => client.clientId!)
      // In admission order, not connection order: a client that reconnected must not move, or a
      // seeded sample would depend on when clients reconnect.
      .sort(byAdmission);
    const chosen = sample(eligible);
    this.round = { number: round, members: new Map(chosen.map((id) => [id, { queue: [], out: false }])) };
    this.lostDuringRound.clear();
    for (const id of chosen) this.deps.registry.get(id)?.assignedRounds.add(round);
    return chosen;
  }

  supports(member: string, capability: string): boolean {
    return this.deps.registry.get(member)?.capabilities.includes(capability) ?? false;
  }

  holds(member: string, modelVersion: string): boolean {
    return this.held.get(member) === modelVersion;
  }

  send(member: string, frame: Uint8Array, holding?: string): number {
    const client = this.deps.registry.get(member);
    if (client?.state !== 'ready' || this.lostDuringRound.has(member)) return 0;
    client.connection.send(frame);
    if (holding !== undefined) this.held.set(member, holding);
    return frame.byteLength;
  }

  identityOf(member: string): Uint8Array | undefined {
    return this.deps.registry.get(member)?.identityKey;
  }

  connected(member: string): boolean {
    return this.deps.registry.get(member)?.state === 'ready';
  }

  /** Whether `clientId` takes part in the round in flight (it may then send model-sized frames). */
  isMember(clientId: string): boolean {
    const member = this.round?.members.get(clientId);
    return member !== undefined && !member.out;
  }

  /**
   * Where the round in flight is, for the dashboard: its number and the answer kind the open stage
   * waits for (`between-stages` while the coordinator computes or sends); undefined between rounds.
   */
  phase(): { readonly round: number; readonly stage: AnswerKind | 'between-stages' } | undefined {
    if (this.round === undefined) return undefined;
    // With several groups under way, the stage of the group that opened its gather first.
    const [first] = this.open;
    return { round: this.round.number, stage: first?.request.kind ?? 'between-stages' };
  }

  /** Whether `clientId` is held by the round in flight (so it is not idle). */
  isBusy(clientId: string): boolean {
    return this.round?.members.has(clientId) ?? false;
  }

  async gather<K extends AnswerKind>(request: GatherRequest<K>): Promise<Gathered> {
    const round = this.round;
    if (round === undefined) throw new Error('gather outside a round: select first');
    const group = this.groupOf(round.members, request.members);
    const pending = new Set(request.members.filter((id) => round.members.get(id)?.out === false && this.connected(id)));
    let wake = () => {};
    const open: OpenGather = {
      request: request as unknown as GatherRequest<AnswerKind>,
      pending,
      answered: [],
      dropped: request.members.filter((id) => !pending.has(id)),
      bytes: 0,
      wake: () => wake(),
    };
    group.open = open;
    this.open.add(open);
    let deadlinePassed = false;
    const cancelTimer = this.deps.clock.after(Math.max(0, request.deadline - this.deps.clock.now()), () => {
      deadlinePassed = true;
      open.wake();
    });
    const onAbort = () => open.wake();
    request.signal.addEventListener('abort', onAbort);
    try {
      for (const id of [...pending]) this.drain(id); // answers that arrived before this stage opened
      const waiting = () =>
        open.failure === undefined && open.pending.size > 0 && open.pending.size + open.answered.length >= request.quorum && !deadlinePassed && !request.signal.aborted;
      while (waiting()) await new Promise<void>((resolve) => (wake = resolve));
    } finally {
      cancelTimer();
      request.signal.removeEventListener('abort', onAbort);
      group.open = undefined;
      this.open.delete(open);
    }
    if (open.failure !== undefined) throw open.failure;
    // Whoever is still pending missed this stage (deadline, unreachable quorum, or stop): out of the round.
    for (const id of [...open.pending]) {
      open.pending.delete(id);
      open.dropped.push(id);
      this.leave(id);
    }
    return { answered: open.answered, dropped: open.dropped, bytes: open.bytes };
  }

  release(round: number): void {
    if (this.round?.number === round) this.round = undefined;
  }

  // ---- pushed in by the connection layer ----

  /** A round message from a client that said hello. Stray messages are handled here, one way (docs/protocol.md). */
  receive(client: ConnectedClient, message: RoundMessage, bytes: number): void {
    const id = client.clientId!;
    const member = this.round?.number === message.round ? this.round.members.get(id) : undefined;
    if (member === undefined) {
      // A straggler's message for a round it really was in, arriving after that round closed: dropped.
      if (client.assignedRounds.has(message.round)) return;
      return this.deps.close(client, 'ROUND_MISMATCH', `client was not selected for round ${message.round}`);
    }
    if (member.out) return; // left this round at an earlier stage: its late messages are dropped
    member.queue.push({ message, bytes });
    this.drain(id);
  }

  /** The client announced (in hello) the model version it holds. */
  announced(clientId: string, modelVersion: string): void {
    this.held.set(clientId, modelVersion);
  }

  /** The client's connection closed: it leaves the round in flight, and what it held is forgotten. */
  disconnected(clientId: string): void {
    this.held.delete(clientId);
    if (this.round?.members.has(clientId)) this.lostDuringRound.add(clientId);
    if (this.round?.members.has(clientId)) this.leave(clientId);
  }

  /**
   * The group of a gather over `asked`: the one its members were bound to by an earlier gather,
   * or a new one that binds them now. A gather across two groups, or a second open gather in one
   * group, is a caller bug: answers could not be routed.
   */
  private groupOf(members: ReadonlyMap<string, Member>, asked: readonly string[]): Group {
    const groups = new Set(asked.map((id) => members.get(id)?.group).filter((group): group is Group => group !== undefined));
    if (groups.size > 1) throw new Error('a gather must ask the members of one group: these were asked by different earlier gathers');
    const group: Group = groups.values().next().value ?? {};
    if (group.open !== undefined) throw new Error(`a gather for ${group.open.request.kind} is still open over these members: one stage at a time per group`);
    for (const id of asked) {
      const member = members.get(id);
      if (member !== undefined) member.group = group;
    }
    return group;
  }

  /** Hands the member's queued messages to its group's open gather, in order (they wait while the group is between stages). */
  private drain(id: string): void {
    const member = this.round?.members.get(id);
    while (member !== undefined && !member.out && member.queue.length > 0 && member.group?.open !== undefined) {
      const open = member.group.open;
      const { message, bytes } = member.queue.shift()!;
      if (message.type === 'decline') {
        // Peer text goes to the log quoted, so it cannot forge log lines.
        this.deps.logger.info({ round: message.round, clientId: id, reason: message.reason }, 'client declined the round');
        this.leave(id);
      } else if (open.request.kind === 'evaluation' && message.type !== 'evaluation') {
        // A training answer of the round just committed (same number), sent as its stage closed:
        // a straggler's, dropped as any late answer is, not a reason to close the connection.
      } else if (!open.pending.has(id)) {
        const again = open.answered.includes(id) && message.type === open.request.kind;
        this.refuse(id, again ? 'DUPLICATE_MESSAGE' : 'UNEXPECTED_MESSAGE', again ? `second ${message.type} in round ${message.round}` : `${message.type} while the round waits for ${open.request.kind}`);
      } else if (message.type !== open.request.kind) {
        this.refuse(id, 'UNEXPECTED_MESSAGE', `${message.type} while the round waits for ${open.request.kind}`);
      } else {
        this.answer(open, id, message as AnswerOf<AnswerKind>, bytes);
      }
    }
  }

  private answer(open: OpenGather, id: string, message: AnswerOf<AnswerKind>, bytes: number): void {
    try {
      open.request.accept(id, message, bytes);
    } catch (error) {
      // A Refusal, or a SecAggError from the secure-aggregation machine, names the peer's fault.
      const code = error instanceof Refusal ? error.code : (error as { errorCode?: ErrorCode } | undefined)?.errorCode;
      if (code === undefined) {
        open.failure = error; // a bug, not the peer: surface it from gather
        open.wake();
        return;
      }
      return this.refuse(id, code, (error as Error).message);
    }
    open.pending.delete(id);
    open.answered.push(id);
    open.bytes += bytes;
    // Crash tests (SHOAL_CRASH_AT=mid-unmask:<round>, …): die with the stage under way, one answer in.
    if (open.answered.length === 1) crashInStageIfAsked(open.request.kind, this.round!.number);
    open.wake();
  }

  /** Closes a member that broke the round's rules; it leaves the round. */
  private refuse(id: string, code: ErrorCode, reason: string): void {
    this.leave(id);
    const client = this.deps.registry.get(id);
    if (client !== undefined) this.deps.close(client, code, reason);
  }

  /** Takes a member out of the round in flight (and out of the open stage, as a dropout). */
  private leave(id: string): void {
    const member = this.round?.members.get(id);
    if (member === undefined || member.out) return;
    member.out = true;
    member.queue.length = 0;
    const open = member.group?.open;
    if (open?.pending.delete(id)) {
      open.dropped.push(id);
      open.wake();
    }
  }
}
