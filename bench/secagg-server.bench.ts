// The coordinator's unmasking in SecAgg+ at Flower's benchmark size, n = 500, d = 100,000 (k = 27,
// t = 18 from deriveSecAggParams), with 0 %, 10 % and 30 % of the clients dropping after sharing.
// Every client is a real SecAggClient (node:crypto PRG and X25519), so the round is real end to
// end; the dropped clients are spread evenly over the ring, so no neighbourhood loses more than
// t tolerates (random dropouts of 30 % would break some neighbourhood of 27 and abort the round:
// see docs/secagg.md). Timed: closeMasked, every receiveReveal, and finish() (rebuild the secrets,
// regenerate and remove the masks, decode), as a ratio to the bare AES-CTR keystream time of the
// masks it regenerates (target ≤ 1.5×), measured interleaved with it (see BaselineMeter). Flower
// publishes 18.8 / 27.2 / 37.7 s for its server at
// 0 / 10 / 30 % (k = 19).
import { createSeededRandom, shuffled } from '@shoal/protocol';
import { SecAggClient, SecAggServer, deriveSecAggParams, roundConfig } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg } from '@shoal/secagg/node';
import { BaselineMeter, D, DROPOUT_RATES, N, randomBytes, reportUnmask, timed } from './secagg-server-lib.js';

const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: N, numParams: D, bound: 10, maxWeight: 1000 });
const values = (index: number) => Float32Array.from({ length: D }, (_, i) => Math.sin(index + i * 0.01) * params.bound * 0.5);
const context = { sessionId: 'bench', round: 1 };
console.log(`SecAgg+ server, n = ${N}, d = ${D.toLocaleString('en')}: k = ${params.degree}, t = ${params.threshold}`);

const rates = process.argv[2] === undefined ? DROPOUT_RATES : [Number(process.argv[2])];
for (const rate of rates) {
  const random = createSeededRandom(42);
  let ring: number[] = [];
  const shuffle = <T>(items: readonly T[]): T[] => {
    const order = shuffled(items, random);
    ring = order as unknown as number[];
    return order;
  };
  const indices = Array.from({ length: N }, (_, i) => i + 1);
  const meter = new BaselineMeter(nodeMaskPrg);
  const server = new SecAggServer({ ...context, params, indices, prg: meter, agreement: nodeKeyAgreement, shuffle });
  // Every ⌈1/rate⌉-ish place on the ring drops: evenly spread, rate·N clients in all.
  const dropped = new Set(ring.filter((_, position) => Math.floor((position + 1) * rate) > Math.floor(position * rate)));
  const clients = indices.map(
    (index) => new SecAggClient({ config: roundConfig(params, index, context.sessionId), round: context.round, numParams: D, randomBytes, prg: nodeMaskPrg, agreement: nodeKeyAgreement }),
  );
  for (const client of clients) server.receiveAdvertise(client.index, client.advertise());
  const keys = server.closeAdvertise();
  for (const client of clients) server.receiveShares(client.index, client.share(keys.get(client.index)!).ciphertexts);
  const inboxes = server.closeShares();
  let foldMs = 0;
  const plainSum = new Float64Array(D);
  for (const client of clients) {
    if (dropped.has(client.index)) continue;
    client.receiveInbox(inboxes.get(client.index)!);
    const input = values(client.index);
    input.forEach((v, i) => (plainSum[i] = plainSum[i]! + v));
    const masked = await client.mask(input, 1);
    foldMs += (await timed(() => server.receiveMasked(client.index, masked))).ms;
  }

  const closing = await timed(() => server.closeMasked());
  const close = closing.value;
  const answers = clients.filter((c) => close.requests.has(c.index)).map((c) => [c.index, c.reveal(close.requests.get(c.index)!)] as const);
  const revealing = await timed(() => {
    for (const [index, answer] of answers) server.receiveReveal(index, answer);
  });
  const finishing = await timed(() => server.finish());
  const result = finishing.value;

  const masks = close.survivors.length + close.dropped.reduce((total, v) => total + server.neighboursOf(v).filter((u) => !dropped.has(u)).length, 0);
  let worst = 0;
  for (let i = 0; i < D; i++) worst = Math.max(worst, Math.abs(result.sum[i]! - plainSum[i]!));
  reportUnmask(
    `SecAgg+ server, ${Math.round(rate * 100)} % dropouts`,
    {
      unmaskMs: closing.ms + revealing.ms + finishing.ms - meter.keystreamMs,
      finishMs: finishing.ms - meter.keystreamMs,
      revealMs: revealing.ms,
      foldMs,
      survivors: close.survivors.length,
      dropped: close.dropped.length,
    },
    meter,
    `${masks === meter.masks ? 'mask count as expected' : `MASK COUNT ${meter.masks} ≠ ${masks}`}; sum within count/scale: ${worst <= result.count / params.scale ? 'yes' : 'NO'}`,
  );
}
