// Writes the shared .rdp file (src/connect/rdp.ts) for `portcullis open --rdp-file`.
import { writeFileSync } from 'node:fs';
import { rdpFileText as text, RdpAddressError } from '../../connect/rdp.ts';
import { usage } from './cli-error.ts';

/** The shared generator, its refusal shown as a usage error (exit 2). */
export function rdpFileText(host: string, port: number): string {
  try {
    return text(host, port);
  } catch (e) {
    if (e instanceof RdpAddressError) throw usage(e.message);
    throw e;
  }
}

export function writeRdpFile(path: string, host: string, port: number): void {
  writeFileSync(path, rdpFileText(host, port), { mode: 0o644 });
}
