// RFC 5424 framing of an audit event for a SIEM: the event's own JSON (hash included) is the MSG, so the chain stays verifiable.
import { hostname } from 'node:os';
import type { AuditEvent } from './chain.ts';

/** Facility 13, "log audit" (RFC 5424 §6.2.1). */
const FACILITY = 13;
/** RFC 5612's enterprise number for documentation; an operator with its own can map the SD-ID in the SIEM. */
const SD_ID = 'portcullis@32473';
const NOTICE = /(denied|rejected|mfa_missing|orphan|failed|refused|broken|restored)/;

export interface SyslogOptions {
  hostname?: string;
  procId?: string;
}

export function toSyslog(e: AuditEvent, opts: SyslogOptions = {}): string {
  const severity = NOTICE.test(e.type) ? 5 : 6;
  const params: [string, unknown][] = [['seq', e.seq], ['hash', e.hash], ['grant', e.grant], ['actor', e.actor], ['target', e.target]];
  const sd = params
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k}="${String(v).replace(/["\\\]]/g, (c) => `\\${c}`)}"`)
    .join(' ');
  // MSGID and header fields are PRINTUSASCII without spaces, at most 32 (MSGID) or 255 (HOSTNAME) characters.
  const field = (s: string | undefined, max: number) => (s ? s.replace(/[^\x21-\x7e]/g, '_').slice(0, max) : '-') || '-';
  const host = field(opts.hostname ?? hostname(), 255);
  return `<${FACILITY * 8 + severity}>1 ${e.time} ${host} portcullis ${field(opts.procId ?? String(process.pid), 128)} ${field(e.type, 32)} [${SD_ID} ${sd}] \uFEFF${JSON.stringify(e)}`;
}
