// Checks and classifies a rule source for the AWS adapter: exact CIDR, family, and whether it is the whole internet.
import { parseCidr } from '../net/cidr.ts';

export interface SourceCidr {
  family: 4 | 6;
  /** The CIDR as it is written to AWS (an address alone gets /32 or /128). */
  cidr: string;
  prefix: number;
  network: bigint;
}

/** Parses `addr/len` or a bare address; undefined when malformed or when host bits are set. */
export function parseSource(source: string): SourceCidr | undefined {
  const text = source.trim();
  const c = parseCidr(text);
  if (c === undefined) return undefined;
  return { family: c.family, cidr: `${text.split('/')[0]!.toLowerCase()}/${c.prefix}`, prefix: c.prefix, network: c.network };
}

export function sameSource(a: SourceCidr, b: SourceCidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}

/** True when the CIDR admits every address of its family: 0.0.0.0/0 or ::/0. */
export function isWorld(cidr: string): boolean {
  const s = parseSource(cidr);
  return s !== undefined && s.prefix === 0;
}
