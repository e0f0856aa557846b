import { RoundLog, type ReleaseSink, type RoundRecord, type RoundSink } from './round-log.js';

/**
 * Data-subject requests (docs/privacy.md, "What the coordinator holds about a device"): a client
 * that announced this capability hears in `welcome` that it may send `subject-access` and `forget`.
 */
export const SUBJECT_REQUESTS_CAPABILITY = 'subject-requests';

/**
 * How many data-subject requests were answered since the last round record: counts only, never
 * who asked. `take` hands the counts over and starts again from zero.
 */
export class SubjectRequestCounter {
  private access = 0;
  private erasure = 0;

  count(kind: 'access' | 'erasure'): void {
    if (kind === 'access') this.access++;
    else this.erasure++;
  }

  take(): NonNullable<RoundRecord['subjectRequests']> {
    const counts = { access: this.access, erasure: this.erasure };
    this.access = 0;
    this.erasure = 0;
    return counts;
  }
}

/**
 * The round log with each record carrying the data-subject requests answered since the previous
 * record (`RoundRecord.subjectRequests`), so sinks (the privacy ledger) record them without the
 * round knowing about them.
 */
export class RoundLogWithSubjectRequests extends RoundLog {
  constructor(
    sinks: readonly RoundSink[],
    private readonly requests: SubjectRequestCounter,
    observers: readonly RoundSink[] = [],
    releaseSinks: readonly ReleaseSink[] = [],
  ) {
    super(sinks, observers, releaseSinks);
  }

  override async commit(record: RoundRecord): Promise<RoundRecord> {
    return super.commit({ ...record, subjectRequests: this.requests.take() });
  }
}
