import { Packr } from 'msgpackr';

// One configured codec for every frame: plain msgpack maps (no msgpackr record extension, which
// other msgpack implementations cannot read) and typed arrays that come back as typed arrays.
const packr = new Packr({ useRecords: false, moreTypes: true });

/** Encodes one message object as one binary frame. */
export function encodeFrame(message: object): Uint8Array {
  return packr.pack(message);
}

/**
 * Decodes one frame to an unvalidated value. Throws on bytes that are not msgpack; callers on
 * untrusted input use the validating decoders in `validate.ts` instead.
 */
export function decodeFrame(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
