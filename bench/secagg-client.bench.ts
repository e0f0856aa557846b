// One client's cost of one SecAgg+ round at Flower's benchmark size: n = 500, d = 100,000 (k and t
// from deriveSecAggParams: k = 27, t = 18). Timed: new client + advertise (two key pairs), share
// (X25519 with 26 neighbours twice, Shamir of two secrets for 27 holders, 26 share boxes),
// receiveInbox (26 boxes opened and checked), mask (encoding with stochastic rounding + 27 masks).
// Not timed: the neighbours sealing their boxes to this client. Reported in milliseconds (Flower
// publishes 89.6 ms per client for n = 500, k = 19, d = 100,000) and as a ratio to one bare AES-CTR
// keystream of d words measured in the same run; plus the bytes the client sends against a plain
// float32 update.
import { createCipheriv, getRandomValues } from 'node:crypto';
import { encodeFrame } from '@shoal/protocol';
import type { NeighbourKeys } from '@shoal/protocol';
import {
  FIELD_PRIME,
  SecAggClient,
  deriveSecAggParams,
  keyPairFromSecret,
  naclKeyAgreement,
  roundConfig,
  sealShares,
  shareBoxKey,
} from '@shoal/secagg';
import type { KeyAgreement } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg } from '@shoal/secagg/node';
import { report, time } from './lib.js';

const N = 500;
const D = 100_000;
const ROUND = 1;
const SESSION = 'bench-session';
const ITERATIONS = 7;

function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let offset = 0; offset < n; offset += 65_536) getRandomValues(bytes.subarray(offset, Math.min(n, offset + 65_536)));
  return bytes;
}

const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: N, numParams: D, bound: 10, maxWeight: 1000 });
const me = 250;
const neighbourIndices = Array.from({ length: params.degree - 1 }, (_, i) => me - (params.degree - 1) / 2 + i + (i >= (params.degree - 1) / 2 ? 1 : 0));
const neighbours = neighbourIndices.map((index) => ({ index, encryption: keyPairFromSecret(randomBytes(32)), mask: keyPairFromSecret(randomBytes(32)) }));
const neighbourKeys: NeighbourKeys[] = neighbours.map((n) => ({ index: n.index, encryptionKey: n.encryption.publicKey, maskKey: n.mask.publicKey }));
const values = Float32Array.from({ length: D }, (_, i) => Math.sin(i) * 5);
const context = { sessionId: SESSION, round: ROUND };

/** The boxes this client's neighbours send it (their work, not timed). */
function inboxFor(encryptionKey: Uint8Array) {
  return neighbours.map((n) => {
    const key = shareBoxKey(naclKeyAgreement.agreeMany(n.encryption.secretKey, [encryptionKey])[0]!, context);
    const shares = { selfMaskShare: BigInt(n.index) % FIELD_PRIME, maskKeyShare: 7n };
    return { from: n.index, box: sealShares(key, randomBytes(24), { ...context, sender: n.index, recipient: me }, shares) };
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(agreement: KeyAgreement) {
  const phases = { advertise: [] as number[], share: [] as number[], inbox: [] as number[], mask: [] as number[], total: [] as number[] };
  let bytes = { advertise: 0, shares: 0, masked: 0, reveal: 0 };
  for (let iteration = 0; iteration < ITERATIONS + 1; iteration++) {
    const t0 = performance.now();
    const client = new SecAggClient({ config: roundConfig(params, me, SESSION), round: ROUND, numParams: D, randomBytes, prg: nodeMaskPrg, agreement });
    const advertised = client.advertise();
    const t1 = performance.now();
    const shares = client.share(neighbourKeys);
    const t2 = performance.now();
    const inbox = inboxFor(advertised.encryptionKey);
    const t3 = performance.now();
    client.receiveInbox(inbox);
    const t4 = performance.now();
    const masked = await client.mask(values, 600);
    const t5 = performance.now();
    const reveal = client.reveal({ survivors: [me, ...neighbourIndices], dropped: [] });
    if (iteration === 0) {
      bytes = {
        advertise: encodeFrame({ type: 'advertise', round: ROUND, ...advertised }).byteLength,
        shares: encodeFrame({ type: 'shares', round: ROUND, ...shares }).byteLength,
        masked: encodeFrame({ type: 'masked', round: ROUND, modelVersion: 'v1', masked, metrics: { loss: 1, accuracy: 0.5, trainMs: 1 } }).byteLength,
        reveal: encodeFrame({ type: 'reveal', round: ROUND, ...reveal }).byteLength,
      };
      continue; // warm-up
    }
    phases.advertise.push(t1 - t0);
    phases.share.push(t2 - t1);
    phases.inbox.push(t4 - t3);
    phases.mask.push(t5 - t4);
    phases.total.push(t1 - t0 + (t2 - t1) + (t4 - t3) + (t5 - t4));
  }
  return { phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])) as Record<keyof typeof phases, number>, bytes };
}

const PIECE = new Uint8Array(64 * 1024);
function bareKeystream(): void {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), new Uint8Array(16));
  for (let offset = 0; offset < 4 * D; offset += PIECE.length) cipher.update(PIECE.subarray(0, Math.min(PIECE.length, 4 * D - offset)));
}

console.log(`SecAgg+ client, n = ${N}, d = ${D.toLocaleString('en')}: k = ${params.degree}, t = ${params.threshold}`);
for (const [name, agreement] of [['tweetnacl X25519 (browser default)', naclKeyAgreement], ['node:crypto X25519', nodeKeyAgreement]] as const) {
  const before = await time(bareKeystream, 500);
  const { phases, bytes } = await measure(agreement);
  const after = await time(bareKeystream, 500);
  const keystreamMs = (before.medianMs + after.medianMs) / 2;
  report(
    `client round cost, ${name}, vs one bare keystream of d words`,
    phases.total / keystreamMs,
    `${phases.total.toFixed(1)} ms = advertise ${phases.advertise.toFixed(1)} + share ${phases.share.toFixed(1)} + inbox ${phases.inbox.toFixed(1)} + mask ${phases.mask.toFixed(1)}; ` +
      `keystream ${keystreamMs.toFixed(3)} ms; Flower: 89.6 ms at k = 19`,
  );
  if (name.startsWith('node')) {
    const plain = encodeFrame({ type: 'update', round: ROUND, modelVersion: 'v1', numExamples: 600, delta: values, metrics: { loss: 1, accuracy: 0.5, trainMs: 1 } }).byteLength;
    const sent = bytes.advertise + bytes.shares + bytes.masked + bytes.reveal;
    report(
      'bytes a SecAgg+ client sends vs a plain float32 update',
      sent / plain,
      `advertise ${bytes.advertise} + shares ${bytes.shares} + masked ${bytes.masked} + reveal ${bytes.reveal} = ${sent} B; plain update ${plain} B`,
    );
  }
}
