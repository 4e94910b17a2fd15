// Reads EC2 Query-protocol parameters (form-encoded, flattened lists such as IpPermissions.1.IpRanges.2.CidrIp).
import { Ec2Error } from './errors.ts';

export class QueryParams {
  private readonly map: Map<string, string>;

  constructor(body: string) {
    this.map = new Map(new URLSearchParams(body));
  }

  get(key: string): string | undefined {
    return this.map.get(key);
  }

  /** Every key, for checks that refuse parameters the action does not take. */
  keys(): string[] {
    return [...this.map.keys()];
  }

  /**
   * The member prefixes of a flattened list, in index order: `list('Filter')` → ['Filter.1', 'Filter.2'].
   * EC2 numbers members from 1; a gap or a 0 is malformed.
   */
  list(prefix: string): string[] {
    const indices = new Set<number>();
    const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)(\\.|$)`);
    for (const key of this.map.keys()) {
      const m = re.exec(key);
      if (m) indices.add(Number(m[1]));
    }
    const sorted = [...indices].sort((a, b) => a - b);
    sorted.forEach((n, i) => {
      if (n !== i + 1) throw new Ec2Error('InvalidParameterValue', `Invalid list index in parameter ${prefix}.${n}`);
    });
    return sorted.map((n) => `${prefix}.${n}`);
  }

  /** Values of a list of scalars: `SecurityGroupRuleId.1`, `SecurityGroupRuleId.2` … */
  values(prefix: string): string[] {
    return this.list(prefix).map((p) => this.map.get(p) ?? '');
  }

  int(key: string): number | undefined {
    const raw = this.map.get(key);
    if (raw === undefined) return undefined;
    if (!/^-?\d+$/.test(raw)) throw new Ec2Error('InvalidParameterValue', `Value (${raw}) for parameter ${key} is invalid. Expected an integer.`);
    return Number(raw);
  }
}
