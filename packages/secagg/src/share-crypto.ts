import nacl from 'tweetnacl';
import { equalBytes } from './bytes.js';
import { KEY_BYTES, checkRound, deriveKey } from './keys.js';
import type { RoundContext } from './keys.js';
import { SHARE_BYTES, decodeShare, encodeShare } from './shamir.js';

/**
 * The box that carries one client's two shares to one neighbour, through the coordinator:
 * `nonce (24) ‖ secretbox(plaintext, nonce, key)` with key = KDF('enc', session, round,
 * X25519(c_u, c_v)) and a fresh random nonce. `secretbox` is not key-committing, and the key is the
 * same in both directions of a pair, so the plaintext names everything the recipient must check:
 *
 * | bytes | field |
 * |---|---|
 * | 1 | format version (1) |
 * | 4 | sender index, u32 big-endian |
 * | 4 | recipient index, u32 big-endian |
 * | 8 | round, u64 big-endian |
 * | 16 | session digest: KDF('session', session, round, ∅) |
 * | 33 | share of the sender's self-mask seed b_u |
 * | 33 | share of the sender's mask secret key s_u^SK |
 *
 * A bounced box (sent back to its sender), one replayed from another round or session, or one
 * meant for another recipient therefore fails the checks even when it decrypts.
 */
const FORMAT_VERSION = 1;
const NONCE_BYTES = nacl.secretbox.nonceLength; // 24
const SESSION_DIGEST_BYTES = 16;
const PLAINTEXT_BYTES = 1 + 4 + 4 + 8 + SESSION_DIGEST_BYTES + 2 * SHARE_BYTES; // 99

/** Bytes of one share box: nonce, MAC and plaintext (139). */
export const SHARE_BOX_BYTES = NONCE_BYTES + nacl.secretbox.overheadLength + PLAINTEXT_BYTES;

/** Who a box is from and to, and the round and session it belongs to. */
export interface BoxAddress extends RoundContext {
  readonly sender: number;
  readonly recipient: number;
}

/** The two shares one client holds of a neighbour's secrets. */
export interface SharePair {
  readonly selfMaskShare: bigint;
  readonly maskKeyShare: bigint;
}

/** Either the shares, or why the box was rejected (never an exception: boxes are peer input). */
export type OpenedShares = { readonly ok: true; readonly shares: SharePair } | { readonly ok: false; readonly reason: string };

/** The secretbox key for the boxes between two clients, from X25519(c_u^SK, c_v^PK). */
export function shareBoxKey(agreed: Uint8Array, context: RoundContext): Uint8Array {
  return deriveKey('enc', context, agreed, KEY_BYTES);
}

/** Seals `shares` for `address.recipient` with a fresh 24-byte `nonce`. */
export function sealShares(key: Uint8Array, nonce: Uint8Array, address: BoxAddress, shares: SharePair): Uint8Array {
  return new ShareBoxes(address).seal(key, nonce, address, shares);
}

/** Opens a box from a peer and checks that it is exactly the one `expected` describes. */
export function openShares(key: Uint8Array, box: Uint8Array, expected: BoxAddress): OpenedShares {
  return new ShareBoxes(expected).open(key, box, expected);
}

/**
 * Seals and opens the boxes of one round and session. The session digest every box carries is a
 * SHA-512 of its own; a client seals and opens one box per neighbour, so it is computed once here.
 */
export class ShareBoxes {
  private readonly context: RoundContext;
  private readonly digest: Uint8Array;

  constructor(context: RoundContext) {
    checkRound(context.round);
    this.context = { sessionId: context.sessionId, round: context.round };
    this.digest = sessionDigest(context);
  }

  /** Seals `shares` from `sender` to `recipient` with a fresh 24-byte `nonce`. */
  seal(key: Uint8Array, nonce: Uint8Array, { sender, recipient }: Pick<BoxAddress, 'sender' | 'recipient'>, shares: SharePair): Uint8Array {
    if (nonce.length !== NONCE_BYTES) throw new RangeError(`a nonce must have ${NONCE_BYTES} bytes`);
    const { round } = this.context;
    const plaintext = new Uint8Array(PLAINTEXT_BYTES);
    const view = new DataView(plaintext.buffer);
    plaintext[0] = FORMAT_VERSION;
    view.setUint32(1, sender);
    view.setUint32(5, recipient);
    view.setUint32(9, Math.floor(round / 2 ** 32));
    view.setUint32(13, round % 2 ** 32);
    plaintext.set(this.digest, 17);
    plaintext.set(encodeShare(shares.selfMaskShare), 33);
    plaintext.set(encodeShare(shares.maskKeyShare), 33 + SHARE_BYTES);
    const box = new Uint8Array(SHARE_BOX_BYTES);
    box.set(nonce, 0);
    box.set(nacl.secretbox(plaintext, nonce, key), NONCE_BYTES);
    return box;
  }

  /** Opens a box from a peer and checks that it is from `sender` to `recipient` in this round and session. */
  open(key: Uint8Array, box: Uint8Array, expected: Pick<BoxAddress, 'sender' | 'recipient'>): OpenedShares {
    if (box.length !== SHARE_BOX_BYTES) return { ok: false, reason: `has ${box.length} bytes, not ${SHARE_BOX_BYTES}` };
    const plaintext = nacl.secretbox.open(box.subarray(NONCE_BYTES), box.subarray(0, NONCE_BYTES), key);
    if (plaintext === null) return { ok: false, reason: 'does not decrypt (tampered, or sealed under another key)' };
    const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    if (plaintext[0] !== FORMAT_VERSION) return { ok: false, reason: `has format version ${plaintext[0]}, not ${FORMAT_VERSION}` };
    const sender = view.getUint32(1);
    if (sender !== expected.sender) return { ok: false, reason: `names sender ${sender}, not ${expected.sender}` };
    const recipient = view.getUint32(5);
    if (recipient !== expected.recipient) return { ok: false, reason: `names recipient ${recipient}, not ${expected.recipient}` };
    const round = view.getUint32(9) * 2 ** 32 + view.getUint32(13);
    if (round !== this.context.round) return { ok: false, reason: `is for round ${round}, not ${this.context.round}` };
    if (!equalBytes(plaintext.subarray(17, 33), this.digest)) return { ok: false, reason: 'is for another session' };
    const selfMaskShare = decodeShare(plaintext.subarray(33, 33 + SHARE_BYTES));
    const maskKeyShare = decodeShare(plaintext.subarray(33 + SHARE_BYTES, PLAINTEXT_BYTES));
    if (selfMaskShare === null || maskKeyShare === null) return { ok: false, reason: 'holds a share outside the field' };
    return { ok: true, shares: { selfMaskShare, maskKeyShare } };
  }
}

function sessionDigest(context: RoundContext): Uint8Array {
  return deriveKey('session', context, new Uint8Array(0), SESSION_DIGEST_BYTES);
}
