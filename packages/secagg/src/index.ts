export { SecAggAbort, SecAggError } from './errors.js';
export type { SecAggErrorCode } from './errors.js';
export { KEY_BYTES, boundBytes, deriveKey, isSmallOrder, keyPairFromSecret, naclKeyAgreement } from './keys.js';
export type { KeyAgreement, KeyPair, KeyPurpose, RoundContext } from './keys.js';
export { FIELD_PRIME, Reconstructor, SECRET_BYTES, SHARE_BYTES, decodeShare, elementToSecret, encodeShare, splitSecret } from './shamir.js';
export type { Share } from './shamir.js';
export { SHARE_BOX_BYTES, ShareBoxes, openShares, sealShares, shareBoxKey } from './share-crypto.js';
export type { BoxAddress, OpenedShares, SharePair } from './share-crypto.js';
export { MASK_KEY_BYTES, ZERO_COUNTER, pairMaskKey, selfMaskKey, webCryptoKeystream, webCryptoMaskPrg, wordsOfKeystream } from './prg.js';
export type { MaskPrg } from './prg.js';
export { WordSum } from './word-sum.js';
export { addModularSums, checkEncoding, chooseScale, decodeSum, encodeUpdate, maxEncoded, maxWeightFor, type ModularSum } from './encoding.js';
export type { ChooseScaleOptions, DecodedSum, EncodingParams } from './encoding.js';
export { neighbourGraph } from './graph.js';
export type { Shuffle } from './graph.js';
export { checkSecAggParams, deriveSecAggParams, roundConfig } from './params.js';
export type { DeriveSecAggParamsOptions, SecAggParams } from './params.js';
export { MIN_SECAGG_COHORT, MIN_THRESHOLD, SECAGG_DEFAULTS, SECAGG_MODES, checkMaxDropout, parseSecAggConfig, secAggNeighbourhood, secAggPlusDegree } from './config.js';
export type { CohortSize, SecAggConfig, SecAggMode } from './config.js';
export { SecAggClient } from './client.js';
export type { ClientStage, RevealAnswer, SecAggClientOptions, SurvivorSignature } from './client.js';
export { SecAggServer } from './server.js';
export type { AggregateResult, MaskedClose, Receipt, RevealedShares, SecAggServerOptions, ServerStage } from './server.js';
export { jobMasks, removeMasks, splitUnmaskJobs, unmaskPartial } from './unmask-job.js';
export type { PairMasks, UnmaskJob, UnmaskRunner } from './unmask-job.js';
// Node-only fast paths with the same bytes (node:crypto) are in '@shoal/secagg/node' (node.ts),
// so browser bundles never load node:crypto.
export { SIGNATURE_BYTES, SIGNING_KEY_BYTES, SIGNING_SEED_BYTES, advertisementMessage, naclSigning, survivorsMessage } from './signing.js';
export type { Signing, SigningKeyPair } from './signing.js';
