/**
 * The other members of a SecAgg round that a scripted coordinator plays against one real client:
 * honest `SecAggClient`s from @shoal/secagg, so every key, box and signature the client sees is
 * real. Full SecAgg (every member a neighbour of every other).
 */
import type { AdvertiseMessage, NeighbourKeys, SecAggRoundConfig, SharesMessage } from '@shoal/protocol';
import { SecAggClient } from '@shoal/secagg';
import { nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';

export class ScriptedPeers {
  private readonly peers: Map<number, SecAggClient>;
  private readonly advertised = new Map<number, NeighbourKeys>();
  /** Boxes each peer sealed, by recipient: `sealed.get(from).get(to)`. */
  private readonly sealed = new Map<number, Map<number, Uint8Array>>();

  constructor(
    config: SecAggRoundConfig,
    readonly round: number,
    numParams: number,
    readonly indices: readonly number[],
    identitySeeds: ReadonlyMap<number, Uint8Array> = new Map(),
  ) {
    this.peers = new Map(
      indices.map((index) => {
        const identitySeed = identitySeeds.get(index);
        const client = new SecAggClient({
          config: { ...config, index },
          round,
          numParams,
          prg: nodeMaskPrg,
          signing: nodeSigning,
          randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
          ...(identitySeed && { identitySeed }),
        });
        return [index, client];
      }),
    );
  }

  /** Stage 1: each peer's signed advertisement, as `keys` forwards it. */
  advertise(): NeighbourKeys[] {
    for (const [index, peer] of this.peers) this.advertised.set(index, { index, ...peer.advertise() });
    return [...this.advertised.values()];
  }

  /** Stage 2: each peer shares with the real client (`client` is its advertisement) and with the other peers. */
  share(client: AdvertiseMessage, clientIndex: number): void {
    const { type: _type, round: _round, ...keys } = client;
    const everyone = [{ index: clientIndex, ...keys }, ...this.advertised.values()];
    for (const [index, peer] of this.peers) {
      const { ciphertexts } = peer.share(everyone.filter((neighbour) => neighbour.index !== index));
      this.sealed.set(index, new Map(ciphertexts.map(({ to, box }) => [to, box])));
    }
  }

  /** The `inbox` of member `to`: every peer's box for it. */
  inboxFor(to: number): { from: number; box: Uint8Array }[] {
    return [...this.sealed].filter(([from]) => from !== to).map(([from, boxes]) => ({ from, box: boxes.get(to)! }));
  }

  /** Stage 3: each peer opens its inbox (the real client's boxes and the other peers') and masks a zero update. */
  async mask(clientShares: SharesMessage, clientIndex: number, numParams: number): Promise<void> {
    for (const [index, peer] of this.peers) {
      const fromClient = clientShares.ciphertexts.find((entry) => entry.to === index)!;
      peer.receiveInbox([{ from: clientIndex, box: fromClient.box }, ...this.inboxFor(index)]);
      await peer.mask(new Float32Array(numParams), 1);
    }
  }

  /** Stage 4: each peer's signature of `survivors` (honest peers each sign the set they are shown). */
  confirm(survivors: readonly number[] | ((index: number) => readonly number[])): { index: number; signature: Uint8Array }[] {
    return [...this.peers].map(([index, peer]) => ({ index, signature: peer.confirm(typeof survivors === 'function' ? survivors(index) : survivors) }));
  }
}
