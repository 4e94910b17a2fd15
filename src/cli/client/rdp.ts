// A Remote Desktop connection file (.rdp) for an open grant: mstsc, Remmina and FreeRDP read these settings.
import { writeFileSync } from 'node:fs';
import { usage } from './cli-error.ts';

/**
 * The file text. The host comes from the broker's config; anything but a host name or an address is
 * refused, because a newline would let it add settings (e.g. drive redirection) to the file.
 */
export function rdpFileText(host: string, port: number): string {
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(host) && !/^[0-9A-Fa-f:.]{2,45}$/.test(host)) throw usage(`the target's host "${host.slice(0, 60)}" cannot go into an .rdp file`);
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const lines = [
    `full address:s:${address}`,
    `alternate full address:s:${address}`,
    'prompt for credentials:i:1',
    'administrative session:i:0',
    'screen mode id:i:2',
    'use multimon:i:0',
    'authentication level:i:2',
    'enablecredsspsupport:i:1',
    'autoreconnection enabled:i:1',
    'redirectclipboard:i:1',
    // Nothing of the technician's machine is handed to the customer's server unless they choose so in the client.
    'redirectdrives:i:0',
    'redirectprinters:i:0',
    'redirectsmartcards:i:0',
  ];
  // mstsc writes CRLF; every client reads it.
  return `${lines.join('\r\n')}\r\n`;
}

export function writeRdpFile(path: string, host: string, port: number): void {
  writeFileSync(path, rdpFileText(host, port), { mode: 0o644 });
}
